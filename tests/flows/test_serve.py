"""`chfen prefect start|stop` and `chfen serve` against a real local Prefect server: the
deployments are served, `train` runs from the REST call the UI's run button makes (custom
TrainConfig parameters end up in `training_runs`), the new-labels event starts a train run
through the automation, and the UI's custom-run page renders the TrainConfig form (headless
Chromium; the screenshot is kept in test-artifacts/).

The warehouse is the training tests' synthetic one (cached embeddings and votes), so no media
work is needed; training runs a few epochs of a small model.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from trainkit import write_synthetic_warehouse

from chfen.config import TrainConfig, load_settings
from warehouse import Warehouse

CHFEN = str(Path(sys.executable).parent / "chfen")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# No baselines: the report's logistic regressions are half of such a run's time (measured
# 17 s with, 8 s without on a busy 2-core machine) and nothing here reads them.
SMALL_TRAIN = {
    "epochs": 3, "batch_size": 16, "hidden_dim": 16, "heads": 2, "threads": 1, "baselines": False,
}  # fmt: skip
DEPLOYMENTS = {"ingest", "label-sync", "embed", "train"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    root: Path
    config: Path
    api: str
    deployments: dict[str, str]  # name -> id
    env: dict[str, str]

    def chfen(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [CHFEN, "-c", str(self.config), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def runs(self, deployment: str) -> list[dict]:
        resp = httpx.post(
            f"{self.api}/flow_runs/filter",
            json={"deployments": {"id": {"any_": [self.deployments[deployment]]}}},
            timeout=30,
        )
        resp.raise_for_status()
        return resp.json()

    def wait_final(self, run_id: str, timeout_s: float = 420) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = httpx.get(f"{self.api}/flow_runs/{run_id}", timeout=30).json()
            if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                return run
            time.sleep(2)
        raise AssertionError(f"flow run {run_id} not finished after {timeout_s} s")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("serve")
    root = base / "data"
    write_synthetic_warehouse(root)
    config = base / "chfen.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_root": str(root),
                "prefect": {
                    "server_port": _free_port(),
                    "label_sync_minutes": 1440,  # no scheduled sync while the test runs
                    "crawl_cron": "0 0 1 1 *",
                    "train_min_labeled": 10,
                    "retrain_min_new_labels": 5,
                },
                "train": SMALL_TRAIN,
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CHFEN_"))}
    env["CHFEN_CONFIG"] = str(config)
    # The served runner looks for runs to start every 10 s by default: a test that waits for
    # two runs spends that wait twice. How runs are started is the same.
    env["PREFECT_RUNNER_POLL_FREQUENCY"] = "2"
    settings, _ = load_settings(config, [])
    api = f"http://127.0.0.1:{settings.prefect.server_port}/api"
    s = Served(root, config, api, {}, env)

    started = s.chfen("prefect", "start")
    assert started.returncode == 0, started.stdout + started.stderr
    serve_log = open(base / "serve.log", "wb")
    proc = subprocess.Popen(
        [CHFEN, "-c", str(config), "serve"],
        env=env,
        stdout=serve_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and set(s.deployments) != DEPLOYMENTS:
            assert proc.poll() is None, (base / "serve.log").read_text()[-3000:]
            found = httpx.post(f"{api}/deployments/filter", json={}, timeout=30).json()
            s.deployments = {d["name"]: d["id"] for d in found}
            time.sleep(1)
        assert set(s.deployments) == DEPLOYMENTS, (base / "serve.log").read_text()[-3000:]
        yield s
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        serve_log.close()
        stopped = s.chfen("prefect", "stop")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def _training_runs(root: Path) -> list[dict]:
    return Warehouse(root, catalog=False).rows(
        "SELECT run_id, status, config_json FROM training_runs_latest ORDER BY started_at"
    )


def test_local_server_status_and_schedules(served: Served) -> None:
    out = served.chfen("prefect", "status")
    assert out.returncode == 0 and "healthy" in out.stdout, out.stdout + out.stderr
    found = httpx.post(f"{served.api}/deployments/filter", json={}, timeout=30).json()
    by_name = {d["name"]: d for d in found}
    ingest = by_name["ingest"]["schedules"][0]["schedule"]
    assert ingest["cron"] == "0 0 1 1 *"
    sync = by_name["label-sync"]["schedules"][0]["schedule"]
    assert sync["interval"] == 1440 * 60
    # every deployment works on this data root, whatever folder a served run starts in
    for d in found:
        assert f"data_root={served.root}" in d["parameters"]["overrides"]
    form = by_name["train"]["parameter_openapi_schema"]
    assert "config" in form["properties"]
    assert set(TrainConfig.model_fields) <= set(form["definitions"]["TrainConfig"]["properties"])


def test_new_labels_event_starts_a_train_run(served: Served) -> None:
    assert served.runs("train") == []
    script = (
        "from chfen.config import load_settings; from flows.label import announce_labels; "
        "from warehouse import Warehouse; import json; "
        f"s, _ = load_settings({str(served.config)!r}, []); "
        "print(json.dumps(announce_labels(s, Warehouse(s.data_path))))"
    )
    env = {**served.env, "PREFECT_API_URL": served.api}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    assert payload["enough"] and not payload["trained"] and payload["new"] >= 10
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not served.runs("train"):
        time.sleep(2)
    runs = served.runs("train")
    assert len(runs) == 1, "the automation did not start a train run"
    final = served.wait_final(runs[0]["id"])
    assert final["state_type"] == "COMPLETED", final["state"]
    rows = _training_runs(served.root)
    assert [r["status"] for r in rows] == ["done"]
    assert json.loads(rows[0]["config_json"])["epochs"] == SMALL_TRAIN["epochs"]

    # the model has now seen every agreed label: nothing new, no event
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    assert payload["trained"] and payload["new"] == 0 and not payload["enough"]


def test_train_from_the_run_button_with_custom_parameters(served: Served) -> None:
    before = {r["run_id"] for r in _training_runs(served.root)}
    custom = {**SMALL_TRAIN, "seed": 7, "epochs": 2, "lr": 0.001, "fusion": "decision"}
    resp = httpx.post(
        f"{served.api}/deployments/{served.deployments['train']}/create_flow_run",
        json={"parameters": {"config": custom}},
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    final = served.wait_final(resp.json()["id"])
    assert final["state_type"] == "COMPLETED", final["state"]
    new = [r for r in _training_runs(served.root) if r["run_id"] not in before]
    assert len(new) == 1 and new[0]["status"] == "done"
    recorded = json.loads(new[0]["config_json"])
    for key, value in custom.items():
        assert recorded[key] == value, key

    # the server validates parameters against the TrainConfig schema (the form's contract)
    bad = httpx.post(
        f"{served.api}/deployments/{served.deployments['train']}/create_flow_run",
        json={"parameters": {"config": {"epochs": "many"}}},
        timeout=30,
    )
    assert bad.status_code == 409, bad.text


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_the_custom_run_page_renders_the_train_config_form(served: Served, tmp_path: Path) -> None:
    url = served.api.removesuffix("/api") + (
        f"/deployments/deployment/{served.deployments['train']}/run"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "train-custom-run-form.png"
    common = [
        "chromium",
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=20000",
        "--window-size=1280,3000",
    ]
    dom = subprocess.run(
        [*common, "--dump-dom", url], capture_output=True, text=True, timeout=180
    ).stdout
    shot = subprocess.run(
        [*common, f"--screenshot={png}", url], capture_output=True, text=True, timeout=180
    )
    assert shot.returncode == 0 and png.stat().st_size > 10_000, shot.stderr[-2000:]
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)))
    assert "Create Flow Run for Deployment: train" in text
    # every TrainConfig field appears as a form field, with the model's descriptions
    for name, prop in TrainConfig.model_json_schema()["properties"].items():
        assert f"{prop['title']} (Optional)" in text, f"form field for {name} missing"
        description = prop.get("description", "")
        if description and not re.search(r"[`*_\[]", description):
            assert description[:40] in text, f"description of {name} missing"
