# The two commands of the README. Each sets itself up (apt packages, .venv) and is safe to repeat.
.PHONY: demo test lint bench setup

setup:
	@bash scripts/setup.sh

demo: setup
	@.venv/bin/chfen run

test: setup
	@bash scripts/test.sh

lint: setup
	@.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench: setup
	@.venv/bin/python -m benchmarks.warehouse
