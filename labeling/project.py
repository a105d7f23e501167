"""The Label Studio project: found by title, created once, kept in step with the label set.

`ensure_project` is idempotent: a second call finds the project, changes nothing when the
generated labeling config is unchanged, updates it when the label set changed, and attaches
the local-files storage on the media root only once (that storage is what allows Label Studio
to serve `/data/local-files/?d=<path relative to the media root>` to the annotators).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from chfen.config import Settings
from labeling.config import config_fingerprint, label_config
from labeling.server import LabelStudioError, base_url, server_paths

COMPONENT = "label_project"  # not a stage: it only prefixes error messages

DESCRIPTION = (
    "Watch the short video and report how it makes YOU feel (your own response, not what the "
    "people in it feel): one overall emotion, how strongly, and optionally the moments where "
    "you felt it."
)


@dataclass(frozen=True)
class ProjectInfo:
    """The project as `ensure_project` left it."""

    id: int
    title: str
    created: bool
    config_updated: bool
    storage_id: int


def connect(settings: Settings) -> LabelStudio:
    """An SDK client for the configured server, authenticated with the configured token."""
    ls = settings.labelstudio
    return LabelStudio(
        base_url=base_url(settings),
        api_key=ls.token.get_secret_value(),
        timeout=ls.request_timeout_s,
        max_retries=0,  # retrying a bulk import could create tasks twice; callers decide
    )


def describe_api_error(exc: Exception, settings: Settings) -> str:
    """A one-line reason for an SDK/HTTP failure that a user can act on (never the token)."""
    if isinstance(exc, httpx.ConnectError | httpx.RemoteProtocolError | httpx.ReadError):
        return (
            f"Label Studio at {base_url(settings)} cannot be reached ({type(exc).__name__}); "
            "start it with `chfen labelstudio start`"
        )
    if isinstance(exc, httpx.TimeoutException):
        return f"Label Studio at {base_url(settings)} stopped answering ({type(exc).__name__})"
    if isinstance(exc, ApiError):
        if exc.status_code == 401:
            return (
                f"Label Studio at {base_url(settings)} refused the API token (401); check "
                "labelstudio.token / CHFEN_LABELSTUDIO__TOKEN"
            )
        body = str(exc.body)[:500]
        return f"Label Studio answered HTTP {exc.status_code}: {body}"
    return f"{type(exc).__name__}: {exc}"


def is_unreachable(exc: BaseException) -> bool:
    """True for failures that mean the server is down or stopped answering."""
    return isinstance(exc, httpx.TransportError)


def find_project(client: LabelStudio, title: str) -> int | None:
    """The id of the project with exactly this title (the oldest, if there are several)."""
    found = [p.id for p in client.projects.list(title=title) if p.title == title and p.id]
    return min(found) if found else None


def ensure_project(
    settings: Settings,
    client: LabelStudio | None = None,
    *,
    log: Callable[[str], None] | None = None,
) -> ProjectInfo:
    """Find or create the project, update its labeling config when the label set changed, and
    attach the local-files storage on the media root. Raises `LabelStudioError`."""
    client = client or connect(settings)
    say = log or (lambda _msg: None)
    ls = settings.labelstudio
    title = ls.project_title
    xml = label_config()
    try:
        project_id = find_project(client, title)
        created = config_updated = False
        if project_id is None:
            project = client.projects.create(
                title=title,
                description=DESCRIPTION,
                label_config=xml,
                show_skip_button=True,
                maximum_annotations=ls.annotations_per_task,
                show_instruction=True,
                expert_instruction=f"<p>{DESCRIPTION}</p>",
            )
            project_id = int(project.id)
            created = True
            say(f"created Label Studio project {title!r} (id {project_id})")
        else:
            current = client.projects.get(project_id).label_config or ""
            if config_fingerprint(current) != config_fingerprint(xml):
                client.projects.update(project_id, label_config=xml)
                config_updated = True
                say(f"updated the labeling config of project {title!r} (id {project_id})")
        storage_id = _ensure_media_storage(client, project_id, server_paths(settings).media_root)
    except ApiError as exc:
        raise LabelStudioError(
            f"[{COMPONENT}] project {title!r}: {describe_api_error(exc, settings)}"
        ) from exc
    except httpx.TransportError as exc:
        raise LabelStudioError(
            f"[{COMPONENT}] project {title!r}: {describe_api_error(exc, settings)}"
        ) from exc
    return ProjectInfo(project_id, title, created, config_updated, storage_id)


def _ensure_media_storage(client: LabelStudio, project_id: int, media_root: Path) -> int:
    media_root.mkdir(parents=True, exist_ok=True)
    wanted = str(media_root)
    for storage in client.import_storage.local.list(project=project_id):
        if storage.path and str(Path(storage.path)) == wanted and storage.id is not None:
            return int(storage.id)
    # Tasks are imported as JSON with local-files URLs; this storage is never synced, it only
    # authorises serving files below the media root to the project's annotators.
    storage = client.import_storage.local.create(
        project=project_id,
        path=wanted,
        title="chfen media",
        description="Videos under <data_root>/media, served as /data/local-files/",
        use_blob_urls=True,
        recursive_scan=True,
        regex_filter=r".*\.(mp4|webm|mov|mkv)$",
    )
    return int(storage.id)
