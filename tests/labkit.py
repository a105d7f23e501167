"""Helpers shared by the labeling tests (the fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from chfen.config import Settings
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
        asr_done: bool = True,
        status: str = "ok",
    ) -> str:
        """A processed video: media file, `videos` row, ASR ledger row, transcript words."""
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
                    "title": f"Title of {video_id}",
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
        self.wh.append(
            "transcript_words",
            [
                {
                    "video_id": video_id,
                    "word_idx": i,
                    "segment_idx": i // 2,
                    "word": word,
                    "start_s": i * 0.4,
                    "end_s": i * 0.4 + 0.3,
                }
                for i, word in enumerate(words)
            ],
        )
        return video_id
