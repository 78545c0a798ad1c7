"""The gateway's partitioner puts every key where aiokafka's default (and the Java client) do."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from gateway.sinks.partitioner import KeyPartitioner, murmur2


def test_known_java_client_values() -> None:
    # From the Java client's UtilsTest.testMurmur2 (signed ints there; unsigned here).
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for key, signed in cases.items():
        assert murmur2(key) == signed & 0xFFFFFFFF, key


@given(st.binary(max_size=300))
def test_murmur2_equals_aiokafka(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


@given(st.binary(max_size=120), st.integers(min_value=1, max_value=64))
def test_partition_of_a_key_equals_the_default_partitioner(key: bytes, partitions: int) -> None:
    every = list(range(partitions))
    assert KeyPartitioner()(key, every, every) == DefaultPartitioner()(key, every, every)


def test_a_keyless_record_goes_to_an_available_partition() -> None:
    partitioner = KeyPartitioner()
    assert {partitioner(None, [0, 1, 2, 3], [2]) for _ in range(20)} == {2}
    assert {partitioner(None, [0, 1], []) for _ in range(50)} <= {0, 1}
