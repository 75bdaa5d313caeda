"""Faults: one set of actions for the Session API, the CLI and recipe schedules."""

# Filled in by the faults issue; recipes validate their schedule against this list.
ACTIONS: tuple[str, ...] = ()
