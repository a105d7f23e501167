"""Every path under the data root goes through `DataRoot`, so a local folder can later be
replaced by an fsspec/object-store URL (s3://bucket/prefix) in one place.

Layout: media/<video_id>/…, warehouse/<table>/ (Delta tables of Parquet files),
warehouse.duckdb (views only), models/<run_id>/…, prefect/, labelstudio/.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

_LOCAL_SCHEMES = {"", "file"}


class DataRoot:
    """The data root: a local directory or an object-store URL."""

    def __init__(self, root: str | Path, storage_options: dict[str, str] | None = None):
        text = str(root)
        scheme = urlparse(text).scheme
        # "C:\..." style drive letters parse as a scheme of one letter; treat them as local.
        self.is_local = scheme in _LOCAL_SCHEMES or len(scheme) == 1
        if self.is_local:
            path = Path(text[len("file://") :] if text.startswith("file://") else text)
            self._local = path.expanduser().resolve()
            self.url = str(self._local)
        else:
            self._local = None
            self.url = text.rstrip("/")
        self.storage_options = storage_options

    def __repr__(self) -> str:
        return f"DataRoot({self.url!r})"

    def uri(self, *parts: str) -> str:
        """A URI (or absolute local path) below the root."""
        if self._local is not None:
            return str(self._local.joinpath(*parts))
        return "/".join([self.url, *parts])

    def local(self, *parts: str) -> Path:
        """A local path below the root; object-store roots have none (say so clearly)."""
        if self._local is None:
            raise NotImplementedError(
                f"{self.url} is not a local folder; this step needs a local data root"
            )
        return self._local.joinpath(*parts)

    # The named places of the layout.
    def table_uri(self, table: str) -> str:
        return self.uri("warehouse", table)

    def catalog_path(self) -> Path:
        return self.local("warehouse.duckdb")

    def media_dir(self, video_id: str | None = None) -> Path:
        return self.local("media", video_id) if video_id else self.local("media")

    def models_dir(self, run_id: str | None = None) -> Path:
        return self.local("models", run_id) if run_id else self.local("models")

    def prefect_home(self) -> Path:
        return self.local("prefect")

    def labelstudio_dir(self) -> Path:
        return self.local("labelstudio")

    def reports_dir(self) -> Path:
        return self.local("reports")

    def run_dir(self, *parts: str) -> Path:
        """What running commands keep: records of the children they started, stage locks."""
        return self.local("run", *parts)

    def ensure(self) -> None:
        if self._local is not None:
            for sub in ("warehouse", "media", "models", "reports"):
                self._local.joinpath(sub).mkdir(parents=True, exist_ok=True)
