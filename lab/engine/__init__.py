"""The engine: runs a recipe on N brokers; owns workers, clock, ledger and snapshots."""
