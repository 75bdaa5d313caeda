"""Broker Lab: the same workload through Kafka, RabbitMQ, Redis and PostgreSQL, side by side."""

__version__ = "0.1.0"

BROKERS = ("kafka", "rabbitmq", "redis", "postgres")
