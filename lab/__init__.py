"""Broker Lab: the same workload through several message brokers, side by side."""

__version__ = "0.1.0"
