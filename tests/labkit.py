"""Helpers shared by the labeling tests (the fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from chfen.config import Settings
from chfen.demo import Catalogue
from labeling import server
from warehouse import Warehouse

TOKEN = "chfen-test-token-0123456789"
AUTH = {"Authorization": f"Token {TOKEN}"}
CACHE = Path(os.environ.get("LABELSTUDIO_TEST_CACHE", "~/.cache/chfen")).expanduser()
VENV = Path(os.environ.get("LABELSTUDIO_TEST_VENV", CACHE / "labelstudio-venv")).expanduser()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(root: Path, port: int, **labelstudio: object) -> Settings:
    """Test settings: the given data root and port, the cached venv, a test token."""
    return Settings.model_validate(
        {
            "data_root": str(root),
            "labelstudio": {
                "port": port,
                "venv_dir": str(VENV),
                "token": TOKEN,
                "password": "chfen-test-password",
                **labelstudio,
            },
        }
    )


def template_dir(settings: Settings) -> Path:
    """Where a freshly migrated, empty Label Studio data dir is cached between runs."""
    # The migrated DB holds the admin user and token: key the cache on them.
    ls = settings.labelstudio
    key = hashlib.sha256(f"{ls.version}|{ls.username}|{TOKEN}".encode()).hexdigest()[:12]
    return CACHE / f"labelstudio-data-{ls.version}-{key}"


def fresh_data_dir(settings: Settings) -> None:
    """Give these settings' server a migrated, empty data dir (copied from the cache).

    The first call on a machine migrates one (a server start and stop, 1-2 minutes) and caches
    it beside the venv; later calls copy it in a second. Call after `ensure_installed`."""
    paths = server.server_paths(settings)
    template = template_dir(settings)
    if template.exists():
        shutil.copytree(template, paths.data_dir)
        return
    server.start(settings, log=print)
    server.stop(settings)
    tmp = template.with_name(template.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(paths.data_dir, tmp)
    try:
        tmp.rename(template)
    except OSError:  # another run cached it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)


def demo_overrides(catalogue: Catalogue) -> list[str]:
    """Settings overrides that make the pipeline serve this generated catalogue (its cache,
    size, seed and emotions; a free port each run) instead of rendering its own."""
    plan = catalogue.plan
    return [
        f"demo_site.cache_dir={catalogue.root.parent}",
        f"demo_site.n_videos={plan.n_videos}",
        f"demo_site.seed={plan.seed}",
        f"demo_site.emotions=[{', '.join(plan.labels)}]",
        "demo_site.port=0",
    ]


@contextmanager
def pipeline_labelstudio(root: Path) -> Iterator[list[str]]:
    """Settings overrides for a pipeline run on data root `root` with a Label Studio of its own.

    The pipeline starts the server itself (as `chfen run` does); this prepares it (the cached
    venv, a migrated empty data dir, a free port, the test token) and stops it at the end.
    The session's `ls_server` cannot be shared: Label Studio serves media from one data root,
    and each pipeline test needs a data root (warehouse) of its own.
    Skips when SKIP_LABELSTUDIO_TESTS is set.
    """
    if os.environ.get("SKIP_LABELSTUDIO_TESTS"):
        pytest.skip("SKIP_LABELSTUDIO_TESTS is set")
    port = free_port()
    settings = make_settings(root, port)
    server.ensure_installed(settings, log=print)
    fresh_data_dir(settings)
    try:
        yield [
            f"data_root={root}",
            f"labelstudio.port={port}",
            f"labelstudio.venv_dir={VENV}",
            f"labelstudio.token={TOKEN}",
            f"labelstudio.password={settings.labelstudio.password.get_secret_value()}",
        ]
    finally:
        server.stop(settings)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass
class LabelStudioServer:
    """The session's server: its settings (data root = server root) and start info."""

    settings: Settings
    root: Path
    info: server.ServerInfo

    @property
    def media_root(self) -> Path:
        return self.root / "media"

    @property
    def url(self) -> str:
        return server.base_url(self.settings)

    def for_test(self, name: str, **labelstudio: object) -> Settings:
        """Settings of this server with a project of its own."""
        digest = hashlib.sha256(name.encode()).hexdigest()[:6]
        ls = {"project_title": f"{slug(name)[:40]} {digest}", **labelstudio}
        return make_settings(self.root, self.settings.labelstudio.port, **ls)


@dataclass
class Lab:
    """One test's world: settings with its own project, a warehouse, and helpers."""

    settings: Settings
    wh: Warehouse
    server: LabelStudioServer
    clips: dict[float, Path]
    prefix: str

    def vid(self, n: int) -> str:
        return f"{self.prefix}-{n}"

    def add_video(
        self,
        n: int,
        *,
        fps: float = 25.0,
        words: tuple[str, ...] = (" I", " love", " this", " song"),
        segments: Sequence[Sequence[str]] | None = None,
        title: str | None = None,
        asr_done: bool = True,
        status: str = "ok",
    ) -> str:
        """A processed video: media file, `videos` row, ASR ledger row, transcript words.

        The words fall two to a segment, or `segments` gives each segment's words."""
        video_id = self.vid(n)
        folder = self.server.media_root / video_id
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.clips[fps], folder / "video.mp4")
        self.wh.append(
            "videos",
            [
                {
                    "video_id": video_id,
                    "source": "test",
                    "title": title if title is not None else f"Title of {video_id}",
                    "description": f"Description of {video_id}",
                    "uploader": f"uploader-{n % 2}",
                    "fps": fps,
                    "duration_s": 2.0,
                    "width": 160,
                    "height": 120,
                    "media_path": f"{video_id}/video.mp4",
                    "status": status,
                }
            ],
        )
        if asr_done:
            self.wh.mark_done(video_id, "asr", "1")
        if segments is None:
            segments = [words[i : i + 2] for i in range(0, len(words), 2)]
        numbered = [(seg_idx, word) for seg_idx, seg in enumerate(segments) for word in seg]
        self.wh.append(
            "transcript_words",
            [
                {
                    "video_id": video_id,
                    "word_idx": i,
                    "segment_idx": seg_idx,
                    "word": word,
                    "start_s": i * 0.4,
                    "end_s": i * 0.4 + 0.3,
                }
                for i, (seg_idx, word) in enumerate(numbered)
            ],
        )
        return video_id
