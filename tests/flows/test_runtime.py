"""flows/runtime.py helpers against the real Prefect engine (test harness)."""

from __future__ import annotations

from flows.runtime import without_subflow_heartbeats


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
