"""A real Label Studio server for the labeling tests, started once per test session.

The server's venv is installed once and reused across runs: `LABELSTUDIO_TEST_VENV`,
default `~/.cache/chfen/labelstudio-venv`. A freshly migrated, empty data dir is cached beside
it (`labelstudio-data-<version>-<key>`), so later runs skip the first-start migrations: the
first run spends ≈3–4 minutes on setup, later ones a few seconds.

Every test gets its own project (by title) and its own warehouse, so tests do not see each
other's tasks; videos are small lavfi clips written into the server's media root.
Set SKIP_LABELSTUDIO_TESTS=1 to skip the server tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from label_studio_sdk import LabelStudio
from labkit import Lab, LabelStudioServer, free_port, make_settings, slug, template_dir

from labeling import server
from labeling.project import connect
from warehouse import Warehouse


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    """Install (once, cached), start, and at the end stop a Label Studio server."""
    if os.environ.get("SKIP_LABELSTUDIO_TESTS"):
        pytest.skip("SKIP_LABELSTUDIO_TESTS is set")
    root = tmp_path_factory.mktemp("ls") / "data"
    settings = make_settings(root, free_port())
    paths = server.server_paths(settings)
    template = template_dir(settings)
    server.ensure_installed(settings, log=print)
    if template.exists():
        shutil.copytree(template, paths.data_dir)
    else:
        # First run on this machine: migrate an empty data dir once and keep a copy.
        server.start(settings, log=print)
        server.stop(settings)
        tmp = template.with_name(template.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(paths.data_dir, tmp)
        try:
            tmp.rename(template)
        except OSError:  # another run cached it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
    info = server.start(settings, log=print)
    try:
        yield LabelStudioServer(settings, root, info)
    finally:
        server.stop(settings)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[float, Path]:
    """Two tiny H.264/AAC clips (2 s) at 25 and 30 fps, made once with ffmpeg's lavfi."""
    out = tmp_path_factory.mktemp("clips")
    made = {}
    for fps in (25.0, 30.0):
        path = out / f"clip{int(fps)}.mp4"
        subprocess.run(
            [
                "ffmpeg", "-v", "error", "-y",
                "-f", "lavfi", "-i", f"testsrc=size=160x120:rate={fps:g}:duration=2",
                "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
                "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                str(path),
            ],
            check=True,
            timeout=120,
        )  # fmt: skip
        made[fps] = path
    return made


@pytest.fixture
def lab(
    ls_server: LabelStudioServer,
    clips: dict[float, Path],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Lab:
    """A fresh project and warehouse on the session's server."""
    name = request.node.name
    return Lab(
        ls_server.for_test(name), Warehouse(tmp_path / "wh"), ls_server, clips, slug(name)[:40]
    )


@pytest.fixture
def client(lab: Lab) -> LabelStudio:
    """An SDK client of the session's server (the admin's token)."""
    return connect(lab.settings)
