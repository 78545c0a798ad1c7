"""Event ids are a stored contract: the same delivery must keep its id across versions.

The ids below are pinned; any faster way of computing them (a joined hash was measured and
did not pay) must agree with them and with the incremental form on any parts Hypothesis
comes up with.
"""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from gateway import event_id as ids


def _incremental(*parts: str | bytes) -> str:
    h = hashlib.sha256(b"v1")
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(4, "big"))
        h.update(data)
    return "evt_" + h.hexdigest()[:32]


def test_pinned_ids_do_not_change() -> None:
    assert ids.from_delivery("a", "b") == "evt_3430fd988478263ebbb7031f11bde3fa"
    assert (
        ids.from_content("s", "j", "succeeded", b"x" * 32) == "evt_a65cdc691e3b8bc9fc2c6167895e6f12"
    )
    assert ids.from_body("s", b"y" * 32) == "evt_01fe2ca359f432db19ab11d956051196"
    assert ids.from_passthrough("s", b"z") == "evt_58a5b0d3bc6bea129b855432cc6a82f3"


def test_parts_are_length_prefixed() -> None:
    assert ids.from_delivery("ab", "c") != ids.from_delivery("a", "bc")


@given(st.text(), st.text(), st.text(), st.binary(max_size=64))
def test_every_kind_of_id_equals_the_incremental_hash(
    source: str, job: str, status: str, digest: bytes
) -> None:
    assert ids.from_delivery(source, job) == _incremental(b"delivery", source, job)
    assert ids.from_content(source, job, status, digest) == _incremental(
        b"content", source, job, status, digest
    )
    assert ids.from_body(source, digest) == _incremental(b"body", source, digest)
    assert ids.from_passthrough(source, digest) == _incremental(b"passthrough", source, digest)
