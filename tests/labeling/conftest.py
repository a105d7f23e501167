"""Fixtures of the labeling tests. The real Label Studio server (`ls_server`, started once
per test session) lives in tests/conftest.py, so tests/flows can use it too.

The server's venv is installed once and reused across runs: `LABELSTUDIO_TEST_VENV`,
default `~/.cache/chfen/labelstudio-venv`. A freshly migrated, empty data dir is cached beside
it (`labelstudio-data-<version>-<key>`), so later runs skip the first-start migrations: the
first run spends ≈3–4 minutes on setup, later ones a few seconds.

Every test gets its own project (by title) and its own warehouse, so tests do not see each
other's tasks; videos are small lavfi clips written into the server's media root.
Set SKIP_LABELSTUDIO_TESTS=1 to skip the server tests.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from label_studio_sdk import LabelStudio
from labkit import Lab, LabelStudioServer, slug

from labeling.project import connect
from warehouse import Warehouse


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
