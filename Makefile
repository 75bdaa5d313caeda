# The three commands the README opens with. Each runs `setup` first, which installs
# only what is missing and is silent otherwise.
VENV ?= .venv
LAB := $(VENV)/bin/lab

.PHONY: setup run demo test lint bench clean

setup:
	@bash scripts/setup.sh

run: setup
	@$(LAB) tui

demo: setup
	@$(LAB) up && $(LAB) status

test: setup
	@$(VENV)/bin/pytest

lint: setup
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

bench: setup
	@$(VENV)/bin/python -m bench.startup

clean:
	@$(LAB) down >/dev/null 2>&1 || true
