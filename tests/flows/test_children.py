"""Children die with their parent (issue 18, point 3): a SIGKILLed `chfen` command leaves no
embedded Prefect server and no Dask worker behind, and an orphan recorded by an earlier killed
run is stopped at the next start. Real console commands, real processes, real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from chfen import procs
from flows.runtime import EMBEDDED_MARKERS


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.pop("CHFEN_CONFIG", None)
    return env


def _wait_for(predicate, within_s: float, what: str):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {within_s:.0f} s")


def _gone(pid: int, within_s: float = 15.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not procs.alive(pid):
            return True
        time.sleep(0.2)
    return False


def _orphan(children: Path) -> int:
    """A real orphan as a killed run leaves it: a process whose recorded parent is dead."""
    script = f"""
import subprocess, sys, time
from pathlib import Path
from chfen import procs
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "chfen-orphan"])
procs.record_child(Path({str(children)!r}), child.pid, (b"chfen-orphan",), "a test orphan")
print(child.pid, flush=True)
time.sleep(120)
"""
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    return pid


def test_killed_command_takes_its_embedded_prefect_server_along(tmp_path: Path) -> None:
    root = tmp_path / "data"
    children = root / "run" / "children"
    orphan = _orphan(children)  # left by an earlier killed run
    assert procs.alive(orphan, (b"chfen-orphan",))
    cmd = [sys.executable, "-m", "flows.cli", "--set", f"data_root={root}", "process"]
    run = subprocess.Popen(
        cmd, env=_env(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        # the next start stops the orphan, then Prefect starts its embedded server
        records = _wait_for(
            lambda: [
                json.loads(p.read_text())
                for p in children.glob("*.json")
                if "Prefect" in p.read_text()
            ],
            120,
            "record of the embedded server",
        )
        server = records[0]["pid"]
        assert records[0]["parent"] == run.pid
        assert procs.alive(server, EMBEDDED_MARKERS)
        assert _gone(orphan, 5)
        run.send_signal(signal.SIGKILL)
        run.wait()
        assert _gone(server), "the embedded Prefect server outlived its killed command"
    finally:
        if run.poll() is None:
            run.kill()
        if run.stderr is not None:
            run.stderr.close()
    assert not [p for p in children.glob("*.json") if str(orphan) in p.name]


def test_dask_workers_end_with_a_killed_flow_process(tmp_path: Path) -> None:
    """The local cluster `prefect.task_runner=dask` starts: its worker processes watch
    their parent (Dask's own guard); checked here so an upgrade cannot lose it."""
    script = f"""
import os, signal, subprocess
from flows.scaleout import local_cluster
if __name__ == "__main__":
    cluster = local_cluster(n_workers=1, threads_per_worker=1, processes=True,
                            local_directory={str(tmp_path / "dask")!r},
                            dashboard_address="127.0.0.1:0")
    pids = [w.process.pid for w in cluster.workers.values()]
    print(" ".join(map(str, pids)), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    workers = [int(p) for p in proc.stdout.split()]
    assert workers
    for pid in workers:
        assert _gone(pid), f"a Dask worker (pid {pid}) outlived its killed parent"


def test_embedded_servers_of_one_data_root_start_one_at_a_time(tmp_path: Path) -> None:
    """Two commands starting together on a fresh data root both migrate its one Prefect
    database; the loser's server died with an alembic traceback (probe 2, repeated). While
    another process is starting this data root's server, a command waits with its own:
    no server process until the lock is free, then a normal start."""
    root = tmp_path / "data"
    script = f"""
from chfen.config import load_settings
from flows import runtime
runtime.configure(load_settings(None, ["data_root={root}"])[0])
from prefect.server.api.server import SubprocessASGIServer
server = SubprocessASGIServer()
print("starting", flush=True)
server.start()
print("started", flush=True)
server.stop()
"""
    lock = root / "run" / "locks" / "prefect-server-start.lock"
    with procs.file_lock(lock):
        proc = subprocess.Popen(
            [sys.executable, "-c", script], env=_env(), stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline() == "starting\n"
        time.sleep(3.0)
        assert _embedded_children(proc.pid) == [] and proc.poll() is None
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0 and out == "started\n"


def _embedded_children(pid: int) -> list[int]:
    """The embedded Prefect servers among `pid`'s child processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and procs.alive(int(entry.name), EMBEDDED_MARKERS):
            found.append(int(entry.name))
    return found
