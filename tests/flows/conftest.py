"""Session-wide services of the flow tests: Prefect (the real engine against a temporary local
API, the test harness) and one local Dask cluster. Each test still gets its own data root."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def prefect_api_url(prefect_harness: None) -> str:
    """The API URL of the session's Prefect server, for `chfen` run as a subprocess
    (`PREFECT_API_URL`): it then uses this server, as with `chfen prefect start`, instead of
    starting an embedded one of its own (10-20 s on 2 cores)."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url, "the Prefect test harness set no API URL"
    return url


@pytest.fixture(scope="session")
def dask_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The scheduler address of one local Dask cluster for the session, exactly the one a flow
    starts for `prefect.task_runner=dask` with two workers (two spawned processes, one thread
    each); give flows `prefect.dask_address=<it>` so they do not each start their own."""
    from chfen.config import load_settings
    from flows import scaleout

    root = tmp_path_factory.mktemp("dask")
    settings, _ = load_settings(
        None, [f"data_root={root}", "prefect.task_runner=dask", "prefect.dask_workers=2"]
    )
    runner = scaleout.task_runner(settings)
    cluster = runner.cluster_class(**runner.cluster_kwargs)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()
