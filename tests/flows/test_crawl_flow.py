"""The crawl flow in real Prefect, and the `chfen crawl` command killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from chfen.demo import DemoSite
from warehouse import Warehouse


def feed_sources(site: DemoSite) -> str:
    items = ", ".join(f'{{name: "{n}", url: "{u}"}}' for n, u in site.feed_urls.items())
    return f"[{items}]"


def test_sigkill_during_crawl_then_rerun(
    tmp_path: Path, demo_site: DemoSite, prefect_api_url: str
) -> None:
    root = tmp_path / "data"
    overrides = [
        f"data_root={root}",
        f"sources={feed_sources(demo_site)}",
        "crawl.concurrency=1",
        "warehouse.commit_videos=1",  # a commit per video: killed between two of them
    ]
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-cli"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # the session's server, as with `chfen prefect start`: no embedded one to start (the
        # killed run's children, that server included, are test_fault_injection's subject)
        "PREFECT_API_URL": prefect_api_url,
    }
    cmd = [str(Path(sys.executable).parent / "chfen")]
    for item in overrides:
        cmd += ["--set", item]
    proc = subprocess.Popen(
        [*cmd, "crawl"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    wh = Warehouse(root)
    deadline = time.monotonic() + 300
    while wh.version("videos") < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "the crawl finished before it could be killed"
    time.sleep(0.5)  # well inside the next download
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    landed_before = wh.count("videos")
    good = [v for v in demo_site.ground_truth["videos"] if v["channel"] != "hardcases"]
    assert 1 <= landed_before < len(good)

    from flows.crawl import crawl_flow

    summary = crawl_flow(overrides=overrides)
    assert summary["failed"] == 0
    assert summary["downloaded"] + landed_before >= len(good)
    ids = [r["video_id"] for r in wh.rows("SELECT video_id FROM videos")]
    assert len(ids) == len(set(ids)) == len(good)  # no duplicate rows
    done = wh.rows(
        "SELECT count(*) AS n FROM stage_runs_latest WHERE stage = 'crawl' AND status = 'done'"
    )
    assert done == [{"n": len(good)}]
    media = root / "media"
    partial = media / ".partial"
    assert not partial.exists() or not any(partial.iterdir())  # no partial files left
    assert {p.name for p in media.iterdir() if p.name != ".partial"} == set(ids)
    assert not list(media.rglob("*.part")) and not list(media.rglob("*.tmp*"))
    # and a third run finds nothing new
    again = crawl_flow(overrides=overrides)
    assert again["candidates"] == 0 and again["downloaded"] == 0
    assert wh.count("videos") == len(good)


def test_a_local_folder_source_is_imported_by_each_crawl(
    tmp_path: Path, prefect_harness: None
) -> None:
    """`sources: [{name, path, labels}]`: the scheduled crawl imports the folder's new files
    (generated espeak-ng speech), and a crawl of an unchanged folder writes nothing."""
    import shutil

    import pytest

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    from chfen.ingest import imported_votes
    from chfen.media.testmedia import speak, write_wav
    from flows.crawl import crawl_flow

    folder = tmp_path / "clips"
    write_wav(folder / "a.wav", speak("What a wonderful surprise"))
    write_wav(folder / "b.wav", speak("I am so sorry for your loss"))
    labels = tmp_path / "labels.csv"
    labels.write_text("clip,feeling,speaker\na.wav,happy,amy\nb.wav,sad,bob\n")
    label_map = tmp_path / "map.yaml"
    label_map.write_text("happy: joy\nsad: sadness\n")
    root = tmp_path / "data"
    source = (
        f'{{name: mine, path: "{folder}", labels: "{labels}", label_map: "{label_map}", '
        "columns: {file: clip, label: feeling, uploader: speaker}}"
    )
    overrides = [f"data_root={root}", f"sources=[{source}]"]

    first = crawl_flow(overrides=overrides)
    assert first["imported"]["mine"]["new"] == 2 and first["source_errors"] == []
    wh = Warehouse(root)
    rows = {r["video_id"]: r for r in wh.rows("SELECT * FROM videos_latest")}
    assert set(rows) == {"mine-a-wav", "mine-b-wav"}
    assert rows["mine-b-wav"]["uploader"] == "bob" and rows["mine-b-wav"]["width"] is None
    assert {v["video_id"]: v["label"] for v in imported_votes(wh)} == {
        "mine-a-wav": "joy",
        "mine-b-wav": "sadness",
    }
    assert sorted(wh.pending("scenes", "1")) == ["mine-a-wav", "mine-b-wav"]

    # a new file (and its label): the next crawl brings in that one only
    write_wav(folder / "c.wav", speak("Get out of my house"))
    labels.write_text(labels.read_text() + "c.wav,angry,amy\n")
    label_map.write_text("happy: joy\nsad: sadness\nangry: anger\n")
    second = crawl_flow(overrides=overrides)
    assert second["imported"]["mine"] | {"votes": 0} == {
        "new": 1, "changed": 0, "unchanged": 2, "removed": 0, "audio_only": 1, "votes": 0,
    }  # fmt: skip
    assert wh.count("videos") == 3 and len(imported_votes(wh)) == 3

    versions = wh.versions()
    third = crawl_flow(overrides=overrides)
    assert third["imported"]["mine"]["new"] == third["imported"]["mine"]["changed"] == 0
    # nothing written but the source's row of this discovery (`sources`: 3 files seen)
    after = wh.versions()
    assert after.pop("sources") == versions.pop("sources") + 1 and after == versions
    assert wh.rows("SELECT items_seen FROM sources_latest") == [{"items_seen": 3}]

    # a bad labels file is that source's error, reported; nothing of it written
    labels.write_text(labels.read_text().replace("c.wav,angry", "c.wav,elated"))
    versions = wh.versions()
    bad = crawl_flow(overrides=overrides)
    assert "mine" not in bad["imported"] and "elated" in bad["source_errors"][0]
    # nothing of the import written: only the source's failed row and its failure
    after = wh.versions()
    assert after.pop("sources") == versions.pop("sources") + 1
    assert after.pop("failures") == versions.pop("failures") + 1 and after == versions
    state = wh.rows("SELECT status, error FROM sources_latest")
    assert state[0]["status"] == "failed" and "elated" in state[0]["error"]


def test_dead_and_invalid_sources_are_recorded_and_the_others_run(
    tmp_path: Path, prefect_harness: None
) -> None:
    """A feed nobody answers and a string that is not a URL: each is a failed `sources` row
    and a `failures` row with a one-line reason; the folder source beside them still runs."""
    import socket

    from flows.crawl import crawl_flow

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tmp_path / "empty"
    folder.mkdir()
    root = tmp_path / "data"
    sources = (
        f'[{{name: dead, url: "http://127.0.0.1:{port}/feed.xml"}}, '
        '{name: typo, url: "not a url"}, '
        f'{{name: mine, path: "{folder}"}}]'
    )
    summary = crawl_flow(overrides=[f"data_root={root}", f"sources={sources}", "crawl.retries=0"])
    errors = sorted(summary["source_errors"])
    assert len(errors) == 2 and errors[0].startswith("dead: ") and errors[1].startswith("typo: ")
    assert "not a URL" in errors[1]
    assert all("\n" not in e for e in errors)
    wh = Warehouse(root)
    rows = {r["name"]: r for r in wh.rows("SELECT * FROM sources")}
    assert rows["dead"]["status"] == "failed" and rows["dead"]["error"]
    assert rows["typo"]["status"] == "failed" and "not a URL" in rows["typo"]["error"]
    assert rows["mine"]["status"] == "ok" and rows["mine"]["items_seen"] == 0
    failed = {r["video_id"]: r for r in wh.rows("SELECT * FROM failures")}
    assert set(failed) == {"source:dead", "source:typo"}
    assert failed["source:dead"]["error_kind"] == "network" and failed["source:dead"]["transient"]
    assert failed["source:typo"]["error_kind"] == "unsupported"


def test_source_names_must_be_unique() -> None:
    import pytest

    from chfen.config import Settings

    with pytest.raises(ValueError, match="unique"):
        Settings(sources=[{"name": "a", "url": "http://x/f"}, {"name": "a", "url": "http://y/f"}])


def test_an_unknown_source_is_a_usage_error_before_anything_starts(
    tmp_path: Path, demo_site: DemoSite
) -> None:
    """`check_source` (what `chfen crawl --source` checks before the flow starts) accepts
    exactly the channels the demo site serves, from its plan alone: nothing is rendered."""
    import pytest

    from chfen.config import load_settings
    from flows.crawl import check_source
    from flows.runtime import UsageError

    plan = demo_site.catalogue.plan
    demo = [f"demo_site.n_videos={plan.n_videos}", f"demo_site.seed={plan.seed}"]
    settings, _ = load_settings(None, [f"data_root={tmp_path / 'data'}", *demo])
    for channel in demo_site.feed_urls:
        check_source(settings, channel)
    check_source(settings, None)
    with pytest.raises(UsageError, match="no channel 'hardcases'"):
        check_source(settings, "hardcases")  # served, but not a feed the crawl reads
    with pytest.raises(UsageError, match="no channel 'nope'"):
        check_source(settings, "nope")
    assert not (tmp_path / "data").exists()  # no catalogue rendered, no data root made

    sources = (
        '[{name: live, url: "http://127.0.0.1:9/f"}, '
        '{name: parked, url: "http://127.0.0.1:9/g", enabled: false}]'
    )
    settings, _ = load_settings(None, [f"data_root={tmp_path / 'data'}", f"sources={sources}"])
    check_source(settings, "live")
    for name in ("parked", "nope"):
        with pytest.raises(UsageError, match=f"no enabled source named '{name}'"):
            check_source(settings, name)
