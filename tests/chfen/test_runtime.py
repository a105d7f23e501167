"""The per-process helpers every stage shares: `chfen.runtime` (model cache, torch threads)
and `chfen.procs.ManagedProcess` (the life cycle of the Prefect and Label Studio servers),
here run on a real background process (Python's http.server)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from chfen import procs
from chfen.procs import ManagedProcess, alive
from chfen.runtime import ProcessCache, torch_threads
from tests.labkit import free_port


def test_one_build_per_key_even_when_callers_race() -> None:
    cache = ProcessCache()
    builds: list[str] = []

    def build(key: str) -> object:
        time.sleep(0.05)  # long enough for the other threads to arrive meanwhile
        builds.append(key)
        return object()

    got: list[object] = []
    threads = [
        threading.Thread(target=lambda: got.append(cache.get("a", lambda: build("a"))))
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert builds == ["a"] and len({id(o) for o in got}) == 1
    assert cache.get("b", lambda: build("b")) is not got[0] and builds == ["a", "b"]


def test_a_failed_build_is_tried_again_and_the_bound_drops_the_oldest() -> None:
    cache = ProcessCache(max_size=2)

    def broken() -> int:
        raise RuntimeError("model missing")

    with pytest.raises(RuntimeError):
        cache.get("k", broken)
    assert "k" not in cache and cache.get("k", lambda: 1) == 1

    cache.get("x", lambda: 2)
    cache.get("k", lambda: 0)  # used again: "x" is now the oldest
    cache.get("y", lambda: 3)
    assert "k" in cache and "y" in cache and "x" not in cache and len(cache) == 2
    cache.clear()
    assert len(cache) == 0


def test_torch_threads_are_restored_and_zero_leaves_them() -> None:
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(0):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError), torch_threads(1):
        raise ValueError("a failing fit")
    assert torch.get_num_threads() == before


class ServerDown(RuntimeError):
    pass


def _http_server(folder: Path, port: int) -> ManagedProcess:
    return ManagedProcess(
        title="the test server",
        program="http.server",
        stage="test-server",
        markers=(b"http.server",),
        folder=folder,
        url=f"http://127.0.0.1:{port}",
        health_path="/",
        port_setting="test.port",
        stop_command="stop it",
        error=ServerDown,
    )


def test_a_managed_server_starts_once_stops_from_anywhere_and_says_why_it_fails(
    tmp_path: Path,
) -> None:
    port = free_port()
    server = _http_server(tmp_path / "srv", port)
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    announced: list[str] = []

    pid, started = server.start(
        cmd, {}, cwd=tmp_path, timeout_s=30, before_spawn=lambda: announced.append("spawn")
    )
    try:
        assert started and announced == ["spawn"] and server.running_pid() == pid
        assert server.pid_file.read_text() == str(pid) and server.healthy()
        assert "chfen: starting http.server" in server.log_path.read_text()
        # a second start finds it running: no new process
        assert server.start(cmd, {}, cwd=tmp_path, timeout_s=30) == (pid, False)
        # another data root's server on the same port is refused, not started twice
        other = _http_server(tmp_path / "other", port)
        with pytest.raises(ServerDown, match=r"\[test-server\] something else .* test.port"):
            other.start(cmd, {}, cwd=tmp_path, timeout_s=30)
    finally:
        stopped = server.stop(timeout_s=10)
    assert stopped and not alive(pid) and not server.pid_file.exists()
    assert server.stop() is False and server.running_pid() is None

    # a command that exits at once: its exit code and the log's tail, no pid file left
    dying = [sys.executable, "-c", "print('port already in use'); raise SystemExit(3)"]
    with pytest.raises(ServerDown) as err:
        server.start(dying, {}, cwd=tmp_path, timeout_s=30)
    assert "exited with code 3" in str(err.value) and "port already in use" in str(err.value)
    assert not server.pid_file.exists()


# ---- children that die with their parent (issue 18, point 3) --------------------------------

_SLEEPER = "import time; time.sleep(120)"


def _spawn_parent(tmp_path: Path, children: Path, with_parent: bool) -> tuple[int, int]:
    """A real parent process that starts a sleeping child (parent-death signal or not),
    records it in `children` and sleeps; (parent pid, child pid)."""
    script = f"""
import subprocess, sys, time
from pathlib import Path
from chfen import procs
child = subprocess.Popen(
    [sys.executable, "-c", {_SLEEPER!r}, "chfen-test-child"],
    preexec_fn=procs.die_with_parent() if {with_parent} else None,
)
procs.record_child(Path({str(children)!r}), child.pid, (b"chfen-test-child",), "the test child")
print(child.pid, flush=True)
time.sleep(120)
"""
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    return parent, child


def _gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_a_child_with_the_parent_death_signal_ends_when_its_parent_is_killed(
    tmp_path: Path,
) -> None:
    parent, child = _spawn_parent(tmp_path, tmp_path / "children", with_parent=True)
    assert alive(child, (b"chfen-test-child",))
    parent.kill()  # SIGKILL: no atexit, no finally
    parent.wait()
    assert _gone(child)


def test_the_sweep_stops_orphans_of_killed_parents_only(tmp_path: Path) -> None:
    children = tmp_path / "children"
    live_parent, live_child = _spawn_parent(tmp_path, children, with_parent=False)
    dead_parent, orphan = _spawn_parent(tmp_path, children, with_parent=False)
    try:
        dead_parent.kill()
        dead_parent.wait()
        time.sleep(0.5)
        assert alive(orphan, (b"chfen-test-child",))  # no signal: it outlived its parent
        # a record whose pid now names another program (pid reuse) is never signalled
        bystander = subprocess.Popen([sys.executable, "-c", _SLEEPER])
        (children / f"{bystander.pid}.json").write_text(
            json.dumps(
                {"pid": bystander.pid, "start": procs.start_time(bystander.pid),
                 "markers": ["chfen-test-child"], "title": "x", "parent": dead_parent.pid,
                 "parent_start": None}
            )
        )  # fmt: skip
        stopped = procs.sweep_orphans(children, timeout_s=5)
        assert len(stopped) == 1 and f"pid {orphan}" in stopped[0]
        assert _gone(orphan)
        assert alive(live_child, (b"chfen-test-child",))  # its parent runs: left alone
        assert bystander.poll() is None
        assert sorted(p.name for p in children.iterdir()) == [f"{live_child}.json"]
        bystander.kill()
        bystander.wait()
    finally:
        live_parent.kill()
        live_parent.wait()
        procs.terminate(live_child, (), 5)


# ---- one writer per stage (issue 18, point 2) --------------------------------------------------


def test_a_lock_names_its_holder_and_a_killed_holders_lock_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "crawl.lock"
    script = f"""
import time
from pathlib import Path
from chfen import procs
with procs.exclusive(Path({str(path)!r}), "the crawl stage", wait_s=0):
    print("held", flush=True)
    time.sleep(120)
"""
    holder = subprocess.Popen(
        [sys.executable, "-c", script, "--set", "labelstudio.token=s3cret"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        told: list[str] = []
        t0 = time.monotonic()
        with pytest.raises(procs.LockBusy) as err:
            with procs.exclusive(path, "the crawl stage", wait_s=0.6, on_wait=told.append):
                pass
        assert time.monotonic() - t0 >= 0.6  # it waited before giving up
        message = str(err.value)
        assert f"in use by pid {holder.pid} on host {socket.gethostname()}" in message
        assert "labelstudio.token=***" in message and "s3cret" not in message
        assert "since 20" in message and len(told) == 1 and f"pid {holder.pid}" in told[0]
    finally:
        holder.kill()  # SIGKILL: its lock goes with it, its record stays in the file
        holder.wait()
    assert f'"pid": {holder.pid}' in path.read_text()
    with procs.exclusive(path, "the crawl stage", wait_s=0):
        assert f'"pid": {os.getpid()}' in path.read_text()
    assert path.read_text() == ""  # released: nobody named
