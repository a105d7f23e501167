#!/usr/bin/env bash
# The test command (`make test`): lint, then the whole suite against real services.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 PYANNOTE_METRICS_ENABLED=0 PREFECT_SERVER_ANALYTICS_ENABLED=false
# The demo catalogues the tests render (the session's 6 videos, test_pipeline_learns' 48: a
# minute or two on 2 cores) are kept between runs, like Label Studio's venv. Deterministic and
# keyed by generator version, seed and size; an item counts only once all its files are written.
export DEMO_SITE_TEST_CACHE="${DEMO_SITE_TEST_CACHE:-$HOME/.cache/chfen/demo-site-tests}"
# Test files run in parallel worker processes (pytest-xdist), one file per worker at a time:
# the suite waits on servers and subprocesses about half the time, so on 2 cores two workers
# take about two thirds of the serial time. One worker per core, at most 4 (each holds its own
# Label Studio and Prefect servers and models, 2-3 GB); TEST_WORKERS=N sets it, 0 runs serially.
workers="${TEST_WORKERS:-$(nproc)}"
if [ "$workers" -gt 4 ]; then workers=4; fi
if [ "$workers" -le 1 ]; then workers=0; fi
.venv/bin/ruff check .
.venv/bin/python -m pytest -q -ra --durations=10 -n "$workers" --dist loadfile \
  --no-loadscope-reorder "$@"
