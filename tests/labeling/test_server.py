"""The Label Studio server's lifecycle: install once, start, status, secrets kept out of sight."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from labkit import TOKEN, LabelStudioServer, free_port, make_settings

from labeling import server


@pytest.mark.slow
def test_status_of_the_running_server(ls_server: LabelStudioServer) -> None:
    st = server.status(ls_server.settings)
    assert st.running and st.healthy
    pid_file = server.server_paths(ls_server.settings).pid_file
    assert st.pid == int(pid_file.read_text())  # another test may have restarted it
    assert st.installed_version == ls_server.settings.labelstudio.version
    assert st.url.startswith("http://127.0.0.1:")


@pytest.mark.slow
def test_the_token_is_never_shown(ls_server: LabelStudioServer) -> None:
    paths = server.server_paths(ls_server.settings)
    assert TOKEN not in paths.log_file.read_text(errors="replace")
    pid = server.status(ls_server.settings).pid
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    assert TOKEN not in cmdline and "--data-dir" in cmdline and "127.0.0.1" in cmdline
    printed: list[str] = []
    assert server.cli("status", ls_server.settings, printed.append) == 0
    assert server.cli("start", ls_server.settings, printed.append) == 0  # already running
    text = "\n".join(printed)
    assert TOKEN not in text and "healthy" in text and "already running" in text


@pytest.mark.slow
def test_install_and_start_are_idempotent(ls_server: LabelStudioServer) -> None:
    t0 = time.perf_counter()
    venv = server.ensure_installed(ls_server.settings)
    assert time.perf_counter() - t0 < 10  # found, not reinstalled
    assert (venv / "bin" / "label-studio").exists()
    running = server.status(ls_server.settings).pid
    again = server.start(ls_server.settings)
    assert not again.started and again.pid == running


def _fake_venv(root: Path, exit_code: int, version: str = "1.23.2") -> Path:
    """A venv whose python reports `version` and whose label-studio dies at once."""
    bin_dir = root / "fake-venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f"#!/bin/sh\necho {version}\n")
    (bin_dir / "label-studio").write_text(
        "#!/bin/sh\necho 'django.db.utils.OperationalError: database is locked'\n"
        f"exit {exit_code}\n"
    )
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return root / "fake-venv"


def test_a_server_that_dies_at_start_gives_a_clear_error(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", free_port(), start_timeout_s=30)
    settings.labelstudio.venv_dir = str(_fake_venv(tmp_path, 3))

    with pytest.raises(server.LabelStudioError) as err:
        server.start(settings)

    message = str(err.value)
    assert "[labelstudio]" in message and "exited with code 3" in message
    assert "database is locked" in message  # the tail of the log
    assert str(server.server_paths(settings).log_file) in message
    assert not server.server_paths(settings).pid_file.exists()
    assert server.stop(settings) is False
    assert not server.status(settings).running


def test_a_wrong_version_would_be_reinstalled(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", free_port())
    settings.labelstudio.venv_dir = str(_fake_venv(tmp_path, 0, version="1.0.0"))
    assert server.installed_version(settings) == "1.0.0"
    assert server.installed_version(settings) != settings.labelstudio.version


def test_server_environment_is_quiet_offline_and_namespaced(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", 8123)
    env = server.server_env(settings, base={"USERNAME": "me", "PORT": "1", "PATH": "/bin"})
    assert "USERNAME" not in env and "PORT" not in env and env["PATH"] == "/bin"
    assert env["LABEL_STUDIO_USER_TOKEN"] == TOKEN
    assert env["LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED"] == "true"
    assert env["LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"] == str(settings.data_path)
    assert env["LABEL_STUDIO_LATEST_VERSION_CHECK"] == "false"
    assert env["SENTRY_DSN"] == "" and env["LABEL_STUDIO_COLLECT_ANALYTICS"] == "false"
    cmd = server.server_command(settings)
    assert TOKEN not in " ".join(cmd)
    assert cmd[cmd.index("--data-dir") + 1] == str(settings.data_path / "labelstudio" / "data")
    assert cmd[cmd.index("--port") + 1] == "8123"
