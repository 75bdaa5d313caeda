"""The native runtime: the brokers' own binaries on this host, one private instance each."""

from lab.runtimes.native.runtime import NativeRuntime

__all__ = ["NativeRuntime"]
