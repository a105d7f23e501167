#!/usr/bin/env bash
# The test command (`make test`): lint, then the whole suite against real services.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 PYANNOTE_METRICS_ENABLED=0 PREFECT_SERVER_ANALYTICS_ENABLED=false
.venv/bin/ruff check .
.venv/bin/python -m pytest -q -ra --durations=10 "$@"
