"""flows/runtime.py helpers against the real Prefect engine (test harness)."""

from __future__ import annotations

from pathlib import Path

from chfen.config import load_settings
from flows.runtime import compact_after, without_subflow_heartbeats
from warehouse import Warehouse
from warehouse.core import utcnow


def test_subflows_inside_the_block_run_without_heartbeats(prefect_harness: None) -> None:
    """The engine reads `flows.heartbeat_frequency` when a run starts: subflows called in the
    block see None (no heartbeat thread to join), the enclosing flow and later subflows keep
    Prefect's default."""
    from prefect import flow
    from prefect.settings import get_current_settings

    @flow
    def child() -> int | None:
        return get_current_settings().flows.heartbeat_frequency

    @flow
    def parent() -> dict[str, int | None]:
        seen = {"parent": get_current_settings().flows.heartbeat_frequency}
        with without_subflow_heartbeats():
            seen["inside"] = child()
        seen["after"] = child()
        return seen

    seen = parent()
    assert seen["inside"] is None
    assert seen["parent"] == seen["after"] == 180


def test_a_crawl_compacts_the_sources_table_too(tmp_path: Path) -> None:
    """Each discovery writes its source's row (one commit per source and crawl): an hourly
    crawl of three sources adds 72 files a day, so the crawl stage compacts `sources` as well
    once it passes `warehouse.compact_files`."""
    root = tmp_path / "data"
    settings = load_settings(None, [f"data_root={root}", "warehouse.compact_files=3"])[0]
    wh = Warehouse(root)
    for i in range(4):
        row = {"name": f"s{i % 2}", "url": "http://x/feed.xml", "kind": "feed", "enabled": True}
        wh.append("sources", [{**row, "updated_at": utcnow(), "status": "ok"}])
    assert len(wh.live_files("sources")[1]) == 4
    done = compact_after(settings, ("crawl",))
    assert "sources" in {d["table"] for d in done}
    assert len(wh.live_files("sources")[1]) == 1 and wh.count("sources") == 4
