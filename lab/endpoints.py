"""How a client reaches a broker: host, port, credentials, as a URL and as a redacted URL."""

from dataclasses import dataclass, field, replace
from urllib.parse import quote


@dataclass(frozen=True)
class Endpoint:
    broker: str
    scheme: str  # of its URL: kafka, amqp, redis, postgresql...
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # AMQP virtual host, Redis database number or PostgreSQL database name.
    path: str = ""

    def _url(self, password: str | None) -> str:
        auth = ""
        if self.username or password is not None:
            # Redis takes a password without a user name: redis://:secret@host:port/0.
            auth = quote(self.username or "", safe="")
            if password is not None:
                auth += ":" + password
            auth += "@"
        path = "/" + quote(self.path, safe="") if self.path else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}{path}"

    @property
    def url(self) -> str:
        """The full URL, password included: for client libraries only, never for display."""
        return self._url(quote(self.password, safe="") if self.password else None)

    def redacted(self) -> str:
        """The URL with its password masked: safe for logs, snapshots and results."""
        return self._url("***" if self.password else None)

    def __str__(self) -> str:
        return self.redacted()

    def via(self, host: str, port: int) -> "Endpoint":
        """The same broker and credentials reached at another address (a chaos proxy)."""
        return replace(self, host=host, port=port)
