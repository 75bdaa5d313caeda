"""Request-reply on Redis: a reply stream per requester, `<stream>.reply-<requester>`.

A responder XADDs each reply to its requester's stream, a batch in one pipeline, before
it XACKs the requests; the requester XREADs its own stream with BLOCK, no group (nobody
else reads it). Replies live as long as the run: teardown deletes the streams.
"""

import redis

from lab.brokers.contract import BrokerError, ReplyReceiver, ReplySender, RunSpec
from lab.brokers.redis.producer import FIELD, entry_payload, stream_entries


class RedisReplySender(ReplySender):
    def __init__(self, client: redis.Redis, spec: RunSpec) -> None:
        self.client = client
        self.spec = spec

    def send(self, replies: list[tuple[int, bytes]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for requester, reply in replies:
            pipe.xadd(self.spec.reply_to(requester), {FIELD: reply})
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise BrokerError(f"redis: XADD of replies failed: {exc}") from exc

    def close(self) -> None:
        self.client.close()


class RedisReplyReceiver(ReplyReceiver):
    def __init__(self, client: redis.Redis, stream: str) -> None:
        self.client = client
        self.stream = stream
        self.last = "0-0"  # the stream is the run's: every entry in it is a reply to us

    def receive(self, timeout: float) -> list[bytes]:
        ms = int(timeout * 1000)
        try:
            # BLOCK 0 would wait forever: a zero wait is a read that does not block.
            found = self.client.xread({self.stream: self.last}, count=500, block=ms or None)
        except redis.RedisError as exc:
            raise BrokerError(f"redis: XREAD of replies failed: {exc}") from exc
        out = []
        for entry_id, fields in stream_entries(found):
            self.last = entry_id
            flat = [x for kv in fields.items() for x in kv] if isinstance(fields, dict) else fields
            payload = entry_payload(flat)
            if payload is not None:
                out.append(payload)
        return out

    def close(self) -> None:
        self.client.close()
