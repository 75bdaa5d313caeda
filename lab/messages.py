"""The lab's message: a fixed header that makes every message identifiable, plus padding.

    magic "BL" | flags u8 | run tag u32 | producer u16 | seq u64 | intended send ns u64 | padding

The intended send time is the open-loop schedule's time (time.monotonic_ns, one clock
for every process on the host), not the moment the client got round to sending.
"""

import struct
import zlib
from typing import NamedTuple

_HEADER = struct.Struct("<2sBIHQQ")
HEADER_SIZE = _HEADER.size  # 25 bytes
MAGIC = b"BL"
FLAG_POISON = 1
_PAD = b"." * (8 * 2**20)


# A message's identity as one number, as workers report it and Probe.dropped carries it:
# producer << 40 | seq (a trillion messages per producer, 65,536 producers).
PRODUCER_SHIFT = 40
SEQ_MASK = (1 << PRODUCER_SHIFT) - 1


def pack(producer: int, seq: int) -> int:
    return producer << PRODUCER_SHIFT | seq


def unpack(ident: int) -> tuple[int, int]:
    return ident >> PRODUCER_SHIFT, ident & SEQ_MASK


class Header(NamedTuple):
    run_tag: int
    producer: int
    seq: int
    intended_ns: int
    poison: bool


def run_tag(run_id: str) -> int:
    """32 bits that tell this run's messages from those of another run on the same broker."""
    return zlib.crc32(run_id.encode())


def encode(tag: int, producer: int, seq: int, intended_ns: int, poison: bool, size: int) -> bytes:
    head = _HEADER.pack(MAGIC, FLAG_POISON if poison else 0, tag, producer, seq, intended_ns)
    return head + _PAD[: max(0, size - HEADER_SIZE)]


def decode(payload: bytes) -> Header | None:
    """The header, or None when the payload is not a lab message."""
    if len(payload) < HEADER_SIZE or payload[:2] != MAGIC:
        return None
    _, flags, tag, producer, seq, intended = _HEADER.unpack_from(payload)
    return Header(tag, producer, seq, intended, bool(flags & FLAG_POISON))
