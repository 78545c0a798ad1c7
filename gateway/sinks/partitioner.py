"""The Kafka partitioner: the same partition for a key as the Java client and aiokafka.

aiokafka's default partitioner hashes every key with a byte-by-byte pure-Python murmur2 that
cost about 11 µs per record here, as much as the whole HMAC verification several times over.
This is the same function over 4-byte words unpacked at once (a few µs), so every key still
lands on the partition the Java client, librdkafka's ``murmur2_random`` and aiokafka choose:
one job's events stay together, across gateway versions and next to other producers.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = struct.Struct("<I").iter_unpack


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), as an unsigned int."""
    length = len(data)
    h = _SEED ^ length
    tail = length & ~3
    for (k,) in _WORDS(data[:tail]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length - tail
    if extra:
        if extra == 3:
            h ^= data[tail + 2] << 16
        if extra >= 2:
            h ^= data[tail + 1] << 8
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


class KeyPartitioner:
    """aiokafka's ``DefaultPartitioner`` contract: a key's partition by murmur2, a keyless
    record on a random available partition."""

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            # Spreading load, not a secret: any generator does.
            return random.choice(available or all_partitions)  # noqa: S311
        return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
