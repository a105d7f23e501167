"""Default credentials (issue 18, point 9): Label Studio is not served beyond this machine
while the shipped admin password or API token is in use, and their use is announced once."""

from __future__ import annotations

from pathlib import Path

import pytest
from labkit import free_port
from typer.testing import CliRunner

from chfen.config import Settings
from labeling import server


def settings_for(root: Path, **labelstudio: object) -> Settings:
    return Settings.model_validate(
        {"data_root": str(root), "labelstudio": {"port": free_port(), **labelstudio}}
    )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.1.1", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("192.168.1.20", False), ("::", False), ("labelstudio", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert server.is_loopback(host) is loopback


def test_defaults_on_a_public_address_are_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path / "data", host="0.0.0.0", venv_dir=str(tmp_path / "none"))
    with pytest.raises(server.LabelStudioError) as err:
        server.start(settings)
    message = str(err.value)
    assert "refusing to serve on 0.0.0.0" in message
    assert "admin password and API token" in message and "CHFEN_LABELSTUDIO__TOKEN" in message
    assert "chfen-dev-token" not in message and "chfen-admin" not in message
    assert not (tmp_path / "none").exists()  # nothing installed, nothing spawned
    assert not server.server_paths(settings).pid_file.exists()
    # one default left is enough to refuse
    half = settings_for(tmp_path / "data", host="0.0.0.0", password="a-real-password")
    with pytest.raises(server.LabelStudioError, match="default API token is in use"):
        server.check_credentials(half)


def test_own_credentials_may_serve_anywhere_and_defaults_warn_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = settings_for(tmp_path, host="0.0.0.0", password="pw-of-mine", token="token-of-mine")
    said: list[str] = []
    server.check_credentials(own, warn=said.append)
    assert said == []
    monkeypatch.setattr(server, "_warned_defaults", False)
    local = settings_for(tmp_path)
    server.check_credentials(local, warn=said.append)
    server.check_credentials(local, warn=said.append)
    assert len(said) == 1 and "default admin password and API token" in said[0]


def test_the_command_refuses_in_one_line(tmp_path: Path) -> None:
    from flows.cli import app

    res = CliRunner().invoke(
        app,
        ["--set", f"data_root={tmp_path}", "--set", "labelstudio.host=0.0.0.0",
         "labelstudio", "start"],
        env={"COLUMNS": "300"},
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "refusing to serve on 0.0.0.0" in res.output and "Traceback" not in res.output
