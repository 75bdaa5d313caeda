"""Broker adapters: one module per broker, one contract (lab/brokers/base.py)."""

from importlib import import_module

from lab.brokers.base import BrokerAdapter, RunSpec

_MODULES = {
    "kafka": ("lab.brokers.kafka", "KafkaAdapter"),
    "rabbitmq": ("lab.brokers.rabbitmq", "RabbitMQAdapter"),
    "redis": ("lab.brokers.redis", "RedisAdapter"),
    "postgres": ("lab.brokers.postgres", "PostgresAdapter"),
}


def adapter_for(spec: RunSpec) -> BrokerAdapter:
    """The adapter of the spec's broker; modules are imported on first use only."""
    module, cls = _MODULES[spec.broker]
    return getattr(import_module(module), cls)(spec)
