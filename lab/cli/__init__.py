"""The headless UI: the `lab` command (main.py), `lab run`'s live table, `lab dlq`."""

from lab.cli.main import main

__all__ = ["main"]
