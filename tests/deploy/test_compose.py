"""docker-compose.yml, the Dockerfile and .env.example, checked without a Docker engine.

`docker-compose config` (Debian's docker-compose 1.29, installed by scripts/setup.sh) validates
and resolves the compose file against .env.example; its output is then checked for what the
deployment needs: the services, healthchecks, start order, the worker built from our Dockerfile,
commands that exist in our CLIs, one data volume seen by the worker and by Label Studio at the
same path, a worker environment that resolves to valid chfen settings, and no secret written
into the file itself.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"

SERVICES = {"postgres", "prefect-server", "labelstudio", "worker"}
# Services that run once and exit (no healthcheck; dependents wait for their success).
ONE_SHOT: set[str] = set()
# What each service's healthcheck must probe.
HEALTH_PROBES = {
    "postgres": "pg_isready",
    "prefect-server": "/api/health",
    "labelstudio": "/health",
    "worker": "/health",
}
# Who waits for whom.
DEPENDS = {
    "prefect-server": {"postgres"},
    "labelstudio": {"postgres"},
    "worker": {"prefect-server", "labelstudio"},
}

SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEY|ACCESS_KEY")
REQUIRED_REF = re.compile(r"\$\{([A-Z][A-Z0-9_]*):\?[^}]*\}")
FLAG_VALUES = {"true", "false", "0", "1", ""}


# ---- helpers ----------------------------------------------------------------------------------


def _docker_compose() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip(
            "docker-compose is not on PATH (scripts/setup.sh installs Debian's docker-compose "
            "package); it validates docker-compose.yml without a Docker engine"
        )
    return exe


def _compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment: compose prefers shell variables over the env file, so a
    # POSTGRES_PASSWORD exported in the developer's shell must not change the result.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(env_file.parent)}
    return subprocess.run(
        [_docker_compose(), "--env-file", str(env_file), "-f", str(COMPOSE), "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The compose file as `docker-compose config` resolves it with .env.example."""
    out = _compose_config(ENV_EXAMPLE)
    assert out.returncode == 0, f"docker-compose config failed:\n{out.stderr}"
    return yaml.safe_load(out.stdout)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """The compose file as written (no interpolation)."""
    return yaml.safe_load(COMPOSE.read_text())


def _env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever form the file uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _words(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(w) for w in value]


def _mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Container path -> (named volume or host path, read-only) for a service."""
    found = {}
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            found[vol["target"]] = (vol.get("source", ""), bool(vol.get("read_only")))
        else:
            parts = vol.split(":")
            source, target = parts[0], parts[1]
            found[target] = (source, len(parts) > 2 and "ro" in parts[2].split(","))
    return found


def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=value: {line!r}"
            values[key.strip()] = value.strip()
    return values


def _console_scripts() -> dict[str, str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def _check_chfen(args: list[str]) -> str:
    """Walk `chfen ARGS` through the real Typer app; return the command path it names."""
    from flows.cli import app

    # Typer vendors its own click: tell groups by their `commands`, not by class.
    cmd = typer.main.get_command(app)
    path = ["chfen"]
    i = 0
    while i < len(args):
        word = args[i]
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            param = next(
                (p for p in cmd.params if name in p.opts or name in p.secondary_opts), None
            )
            assert param is not None, f"`{' '.join(path)}` has no option {name}"
            takes_value = not (getattr(param, "is_flag", False) or getattr(param, "count", False))
            i += 2 if takes_value and "=" not in word else 1
            continue
        if not hasattr(cmd, "commands"):
            break  # an argument of a leaf command
        sub = cmd.commands.get(word)
        assert sub is not None, (
            f"`{' '.join(path)}` has no command {word!r} (has: {', '.join(sorted(cmd.commands))})"
        )
        cmd, i = sub, i + 1
        path.append(word)
    if hasattr(cmd, "commands"):
        assert cmd.invoke_without_command, f"`{' '.join(path)}` is a group: name a command"
    return " ".join(path)


def _check_prefect(args: list[str]) -> None:
    """`prefect SUBCOMMAND... --help` must succeed with the pinned prefect."""
    exe = Path(sys.executable).parent / "prefect"
    if not exe.exists():
        exe = Path(shutil.which("prefect") or "prefect")
    sub = []
    for word in args:
        if word.startswith("-"):
            break
        sub.append(word)
    out = subprocess.run(
        [str(exe), *sub, "--help"], capture_output=True, text=True, timeout=180, check=False
    )
    assert out.returncode == 0, f"`prefect {' '.join(sub)}` is not a prefect command:\n{out.stderr}"


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending: list[str] = []
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending.append(stripped.removesuffix("\\").strip())
        if stripped.endswith("\\"):
            continue
        word, _, rest = " ".join(pending).partition(" ")
        instructions.append((word.upper(), rest.strip()))
        pending = []
    return instructions


def _locked_version(package: str) -> str:
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.startswith(f"{package}=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{package} is not pinned in requirements.lock")


# ---- the compose file -------------------------------------------------------------------------


def test_config_resolves_with_the_example_env(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == SERVICES


def test_a_missing_secret_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    out = _compose_config(empty)
    assert out.returncode != 0
    assert "set in .env" in out.stderr


def test_long_running_services_have_healthchecks(resolved: dict[str, Any]) -> None:
    for name, svc in resolved["services"].items():
        if name in ONE_SHOT:
            continue
        check = svc.get("healthcheck") or {}
        test = _words(check.get("test"))
        assert test and test[0] != "NONE" and not check.get("disable"), f"{name}: no healthcheck"
        assert test[0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck {test}"
        assert HEALTH_PROBES[name] in " ".join(test), f"{name}: healthcheck {test}"
        assert svc.get("restart") in ("unless-stopped", "always"), f"{name}: no restart policy"


def test_services_start_after_their_dependencies_are_healthy(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on without conditions"
        assert set(deps) == DEPENDS.get(name, set()), f"{name} depends on {sorted(deps)}"
        for dep, how in deps.items():
            want = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert how.get("condition") == want, f"{name} -> {dep}: {how}"
            if dep not in ONE_SHOT:
                assert services[dep].get("healthcheck"), f"{dep} has no healthcheck to wait for"


def test_worker_is_built_from_our_dockerfile(resolved: dict[str, Any]) -> None:
    worker = resolved["services"]["worker"]
    build = worker["build"]
    build = {"context": build} if isinstance(build, str) else build
    assert Path(build["context"]).resolve() == ROOT
    assert (ROOT / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert _words(worker["command"]) == ["chfen", "serve"]


def test_service_commands_name_real_entry_points(resolved: dict[str, Any]) -> None:
    seen = set()
    for name, svc in resolved["services"].items():
        for key in ("entrypoint", "command"):
            words = _words(svc.get(key))
            if not words:
                continue
            program = words[0]
            if program == "chfen":
                assert "chfen" in _console_scripts()
                _check_chfen(words[1:])
            elif program == "prefect":
                _check_prefect(words[1:])
            elif program == "label-studio":
                # The server is not in our environment (its own venv, or the image).
                assert svc["image"].startswith("heartexlabs/label-studio:"), name
                assert words[1:2] == ["start"], f"{name}: {words}"
            else:
                continue
            seen.add(program)
    assert seen == {"chfen", "prefect", "label-studio"}


def test_images_match_the_pinned_versions(resolved: dict[str, Any]) -> None:
    from chfen.config import LabelStudioConfig

    services = resolved["services"]
    prefect_tag = services["prefect-server"]["image"].split(":", 1)[1]
    assert prefect_tag.split("-")[0] == _locked_version("prefect")
    ls_tag = services["labelstudio"]["image"].split(":", 1)[1]
    assert ls_tag == LabelStudioConfig().version


def test_worker_environment_resolves_to_the_right_settings(resolved: dict[str, Any]) -> None:
    from chfen.config import load_settings
    from labeling.server import server_paths

    services = resolved["services"]
    worker_env = _env(services["worker"])
    ls_env = _env(services["labelstudio"])
    settings, _ = load_settings(environ=worker_env)

    # Label Studio: reached by service name, same admin and token as the server creates.
    ls = settings.labelstudio
    assert ls.host == "labelstudio"
    ls_port = _words(services["labelstudio"]["command"])
    assert str(ls.port) == ls_port[ls_port.index("--port") + 1]
    assert ls.username == ls_env["LABEL_STUDIO_USERNAME"]
    assert ls.password.get_secret_value() == ls_env["LABEL_STUDIO_PASSWORD"]
    assert ls.token.get_secret_value() == ls_env["LABEL_STUDIO_USER_TOKEN"]
    assert len(ls.token.get_secret_value()) <= 40  # Label Studio's token column

    # Prefect: the worker's API is the prefect-server service on the port it listens on.
    api = urlsplit(worker_env["PREFECT_API_URL"])
    assert settings.prefect.api_url == worker_env["PREFECT_API_URL"]
    server_cmd = _words(services["prefect-server"]["command"])
    assert (api.hostname, str(api.port)) == (
        "prefect-server",
        server_cmd[server_cmd.index("--port") + 1],
    )
    assert api.path == "/api"

    # The data root is a volume Label Studio sees at the same path, as its local-files root.
    paths = server_paths(settings)
    doc_root = ls_env["LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"]
    assert ls_env["LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED"] == "true"
    assert paths.document_root == Path(doc_root).resolve()
    worker_mounts = _mounts(services["worker"])
    ls_mounts = _mounts(services["labelstudio"])
    volume, read_only = worker_mounts[settings.data_root]
    assert volume in resolved["volumes"] and not read_only
    assert ls_mounts[doc_root][0] == volume


def test_databases_are_made_by_the_postgres_service(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    pg = services["postgres"]
    pg_env = _env(pg)
    script = " ".join(_words(pg.get("entrypoint")))
    made = {pg_env["POSTGRES_DB"], *re.findall(r"CREATE DATABASE (\w+)", script)}

    url = urlsplit(_env(services["prefect-server"])["PREFECT_API_DATABASE_CONNECTION_URL"])
    assert url.scheme == "postgresql+asyncpg"
    assert (url.hostname, url.port) == ("postgres", 5432)
    assert (url.username, url.password) == (pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"])
    assert url.path.lstrip("/") in made

    ls_env = _env(services["labelstudio"])
    assert ls_env["DJANGO_DB"] == "default"
    assert ls_env["POSTGRE_HOST"] == "postgres" and ls_env["POSTGRE_PORT"] == "5432"
    assert ls_env["POSTGRE_USER"] == pg_env["POSTGRES_USER"]
    assert ls_env["POSTGRE_PASSWORD"] == pg_env["POSTGRES_PASSWORD"]
    assert ls_env["POSTGRE_NAME"] in made
    assert ls_env["POSTGRE_NAME"] != url.path.lstrip("/")


# ---- secrets ------------------------------------------------------------------------------------


def test_no_secret_is_written_into_the_compose_file(raw: dict[str, Any]) -> None:
    for name, svc in raw["services"].items():
        for key, value in _env(svc).items():
            if SECRET_NAME.search(key) and value.lower() not in FLAG_VALUES:
                assert REQUIRED_REF.fullmatch(value), (
                    f"{name}: {key} must be a ${{VAR:?...}} reference, not {value!r}"
                )
            for match in re.finditer(r"://[^/@\s]*?:([^@\s]+)@", value):
                assert REQUIRED_REF.fullmatch(match.group(1)), (
                    f"{name}: {key} has a password written into its URL"
                )
    text = COMPOSE.read_text()
    for key, value in _env_example().items():
        if SECRET_NAME.search(key):
            assert value not in text, f"the example value of {key} is written in the compose file"


def test_env_example_matches_the_compose_file() -> None:
    lines = COMPOSE.read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    required = set(REQUIRED_REF.findall(text))
    referenced = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    example = _env_example()
    assert required <= {k for k, v in example.items() if v}, "a required variable is missing"
    unused = set(example) - referenced - {"COMPOSE_PROJECT_NAME"}
    assert not unused, f".env.example sets variables the compose file never uses: {unused}"
    for key, value in example.items():
        assert not key.startswith("CHFEN_"), f"{key}: CHFEN_* names are read as chfen settings"
        if SECRET_NAME.search(key):
            assert f"${{{key}:?" in text, f"{key} must be a required variable"
            assert "change-me" in value, f"{key}: the example value must be a placeholder"


# ---- the image ----------------------------------------------------------------------------------


def test_dockerfile_builds_the_locked_environment_as_a_non_root_user() -> None:
    steps = _dockerfile()
    words = [w for w, _ in steps]
    text = "\n".join(f"{w} {a}" for w, a in steps)
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert re.search(r"apt-get install[^\n]*\bffmpeg\b", text)
    assert re.search(r"apt-get install[^\n]*\bespeak-ng\b", text)
    assert re.search(r"uv pip install [^\n]*-r requirements\.lock", text)
    assert re.search(r"uv pip install [^\n]*--no-deps \.(\s|$)", text)
    assert "WORKDIR" in words
    users = [a for w, a in steps if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must not run as root"
    # No extra index: torch is the PyPI build, as in requirements.lock and the local .venv.
    assert "--index-url" not in text and "--extra-index-url" not in text

    # The default command (exec form, so signals reach it) is a real command of one of our
    # console scripts.
    entrypoint = [json.loads(a) for w, a in steps if w == "ENTRYPOINT"]
    cmd = [json.loads(a) for w, a in steps if w == "CMD"]
    argv = (entrypoint[-1] if entrypoint else []) + (cmd[-1] if cmd else [])
    assert argv and argv[0] in _console_scripts(), f"the image runs {argv}"
    assert _check_chfen(argv[1:]) == "chfen serve"


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".venv", "data", "benchmarks/results", ".git", ".env", "**/__pycache__"):
        assert needed in patterns, f".dockerignore lacks {needed}"
