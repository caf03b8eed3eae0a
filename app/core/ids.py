"""Time-ordered identifiers (UUID version 7, RFC 9562 §5.7): ordering by id is ordering by creation,
which keeps keyset pagination and chunked batch work index-friendly."""

import os
import time
import uuid


def new_id() -> str:
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 68) & 0xFFF) << 64  # rand_a (12 bits)
    value |= 0b10 << 62  # RFC 9562 variant
    value |= rand & ((1 << 62) - 1)  # rand_b
    return str(uuid.UUID(int=value))
