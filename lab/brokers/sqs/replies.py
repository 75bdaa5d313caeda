"""Request-reply on SQS: a standard reply queue per requester (queues.reply_queue), made by
provision and deleted by teardown.

A responder sends each reply to its requester's queue, SendMessageBatch of up to ten per
requester, before it deletes the requests. The reply's body is the request's header (run,
requester, sequence): the correlation id the requester matches it by.

The requester long-polls its queue (WaitTimeSeconds) on a thread of its own and deletes
what it read once it has handed it over. The thread is there because SQS waits in whole
seconds: a receive that held the requester for a second would keep it from sending on
schedule and from timing out a request at the moment it expires, while the thread hands
a reply over the moment ReceiveMessage returns it.
"""

import queue
import threading

from lab.brokers.contract import BrokerError, ReplyReceiver, ReplySender, RunSpec
from lab.brokers.sqs import queues
from lab.brokers.sqs.client import ERRORS, broker_error, make_client
from lab.brokers.sqs.clients import queue_url

# Long enough that an idle requester costs one call a second, short enough that closing
# (which waits for the receive in progress) takes at most that.
WAIT_S = 1


class SqsReplySender(ReplySender):
    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.client = make_client(spec.endpoint)
        self.urls: dict[int, str] = {}

    def _url(self, requester: int) -> str:
        url = self.urls.get(requester)
        if url is None:
            name = queues.reply_queue(self.spec, requester)
            url = self.urls[requester] = queue_url(self.client, name)
        return url

    def send(self, replies: list[tuple[int, bytes]]) -> None:
        by_requester: dict[int, list[bytes]] = {}
        for requester, reply in replies:
            by_requester.setdefault(requester, []).append(reply)
        for requester, bodies in by_requester.items():
            url = self._url(requester)
            for i in range(0, len(bodies), queues.BATCH):
                chunk = bodies[i : i + queues.BATCH]
                entries = [
                    {"Id": str(j), "MessageBody": queues.body(b)} for j, b in enumerate(chunk)
                ]
                try:
                    answer = self.client.send_message_batch(QueueUrl=url, Entries=entries)
                except ERRORS as exc:
                    raise broker_error("SendMessageBatch of replies", exc) from exc
                failed = answer.get("Failed", [])
                if failed:
                    why = f"{failed[0].get('Code')}: {failed[0].get('Message')}"
                    raise BrokerError(f"sqs: {len(failed)} replies not stored: {why}")

    def close(self) -> None:
        self.client.close()


class SqsReplyReceiver(ReplyReceiver):
    def __init__(self, spec: RunSpec, producer_id: int) -> None:
        self.client = make_client(spec.endpoint, read_timeout=WAIT_S + 10)
        self.url = queue_url(self.client, queues.reply_queue(spec, producer_id))
        # Batches of replies from the thread, or the error that ended it.
        self._got: queue.SimpleQueue[list[bytes] | BrokerError] = queue.SimpleQueue()
        self._error: BrokerError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._poll, name=f"sqs-replies-{producer_id}", daemon=True
        )
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                answer = self.client.receive_message(
                    QueueUrl=self.url, MaxNumberOfMessages=queues.BATCH, WaitTimeSeconds=WAIT_S
                )
                found = answer.get("Messages", [])
                if not found:
                    continue
                self._got.put([queues.payload(m["Body"]) for m in found])
                entries = [
                    {"Id": str(j), "ReceiptHandle": m["ReceiptHandle"]} for j, m in enumerate(found)
                ]
                self.client.delete_message_batch(QueueUrl=self.url, Entries=entries)
            except ERRORS as exc:
                if not self._stop.is_set():
                    self._got.put(broker_error("reading replies", exc))
                return

    def receive(self, timeout: float) -> list[bytes]:
        if self._error is not None:
            raise self._error
        try:
            item = self._got.get(timeout=timeout) if timeout > 0 else self._got.get_nowait()
        except queue.Empty:
            return []
        out: list[bytes] = []
        while True:
            if isinstance(item, BrokerError):
                if not out:
                    raise item
                self._error = item  # the replies before it first
                return out
            out += item
            try:
                item = self._got.get_nowait()
            except queue.Empty:
                return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(WAIT_S + 1)
        self.client.close()
