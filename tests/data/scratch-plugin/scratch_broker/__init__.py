"""A broker from another installed package: a second Redis Streams under its own name.

Found through the entry-point group `broker_lab.brokers` (see the .dist-info beside it);
nothing in the lab names it. tests/runtimes/test_plugins.py puts this folder on
PYTHONPATH and checks that the whole lab picks it up.
"""

from lab.brokers.redis import RedisPlugin


class ScratchPlugin(RedisPlugin):
    name = "scratch"
    display = "Scratch (a second Redis)"
    order = 99
    ports = {"scratch": 389}
    default = False


PLUGIN = ScratchPlugin()
