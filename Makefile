# The three commands the README opens with. Each runs `setup` first, which installs
# only what is missing and is silent otherwise.
VENV ?= .venv
LAB := $(VENV)/bin/lab

.PHONY: setup run demo test lint bench clean

setup:
	@bash scripts/setup.sh

run: setup
	@$(LAB) tui

# DEMO_ARGS: more flags for `lab run` (CI shortens the run: DEMO_ARGS="--duration 6").
demo: setup
	@$(LAB) run quickstart $(DEMO_ARGS)

test: setup
	@$(VENV)/bin/pytest

lint: setup
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: setup
	@$(VENV)/bin/python -m bench.startup
	@$(VENV)/bin/python -m bench.throughput
	@$(VENV)/bin/python -m bench.throughput --overhead
	@$(VENV)/bin/python -m bench.proxy_overhead
	@$(VENV)/bin/python -m bench.tui_cpu

clean:
	@$(LAB) down >/dev/null 2>&1 || true
