"""Property tests of the passthrough presets: whatever arrives, only the gateway's own answers.

``verify`` returns ``Verified`` or raises ``VerificationError``; a delivery that verifies parses
(or raises ``NormalizationError``), may be a handshake, and normalizes to a ``Passthrough``
whose ``WebhookEvent`` validates against the JSON Schema (or raises ``NormalizationError``).
Two kinds of input: arbitrary headers, bodies, queries and Content-Types; and deliveries signed
correctly by the preset itself, so that hostile bodies reach the body-reading paths (delivery
ids, body timestamps, JMESPath mappings, form parsing, handshakes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import string
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from adapters import NormalizationError, VerificationError
from adapters.base import Passthrough
from adapters.declarative.adapter import FORM, GenericAdapter
from tests.presets_support import NOW, PASSTHROUGH, preset, request_for, webhook_event
from tests.test_properties_adapters import (
    PROPERTY_SETTINGS,
    bodies,
    json_values,
    name_variants,
    to_headers,
    value_for,
)

SETTINGS = settings(PROPERTY_SETTINGS, max_examples=60)
content_types = st.sampled_from(["application/json", FORM, FORM + "; charset=utf-8", None])
queries = st.one_of(
    st.just(""),
    st.text(string.ascii_letters + string.digits + "=&%", max_size=60),
    st.builds(lambda v: "bodySHA256=" + v, st.text(string.hexdigits, max_size=70)),
    # aiohttp refuses a request line that is not ASCII; %-escapes decode to any code point
    # but a lone surrogate (U+FFFD for invalid UTF-8)
    st.builds(lambda v: "bodySHA256=" + v, st.text(st.characters(exclude_categories=["Cs"]))),
    st.text(string.printable, max_size=60),
)
forms = st.dictionaries(
    st.text(string.ascii_letters, min_size=1, max_size=8), st.text(max_size=12), max_size=5
).map(lambda d: "&".join(f"{k}={v}" for k, v in d.items()).encode())
# Shapes that reach each mapping: the senders' own keys with arbitrary values.
keyed = st.dictionaries(
    st.sampled_from(
        ["id", "type", "event", "event_id", "event_type", "created", "created_at", "createdAt",
         "timestamp", "event_time", "event_ts", "topic", "action", "status", "occurred_at",
         "modified", "challenge", "payload", "command", "webhookTimestamp"]
    ),
    json_values,
    max_size=6,
)  # fmt: skip
ids = st.text(string.ascii_letters, min_size=1, max_size=20)
hostile_bodies = st.one_of(bodies, forms, keyed.map(lambda d: json.dumps(d).encode()))


@cache
def adapter_for(provider: str) -> GenericAdapter:
    return preset(provider)


def names_of(adapter: GenericAdapter) -> list[str]:
    scheme = adapter.scheme
    names = [*scheme.headers]
    if scheme.timestamp is not None:
        names.extend(scheme.timestamp.headers)
    if scheme.delivery_id is not None:
        names.extend(scheme.delivery_id.headers)
    return names


async def check(
    adapter: GenericAdapter, raw: bytes, headers: CIMultiDict[str], query: str, ctype: str | None
) -> None:
    request = dataclasses.replace(request_for(adapter, raw, query), content_type=ctype)
    try:
        verified = await adapter.verify(raw, headers, NOW, request)
    except VerificationError:
        return
    try:
        payload = adapter.parse(raw, request)
        if adapter.has_handshake:
            try:
                reply = await adapter.handshake(payload, verified, request)
            except VerificationError:
                return
            if reply is not None:
                assert 200 <= reply.status < 300
                return
        facts = adapter.normalize(payload, verified, NOW)
    except NormalizationError:
        return
    assert isinstance(facts, Passthrough)
    webhook_event(facts, verified, provider=adapter.provider, raw=raw, payload=payload)


@pytest.mark.parametrize("provider", PASSTHROUGH)
@SETTINGS
@given(data=st.data(), raw=hostile_bodies, query=queries, ctype=content_types)
def test_forged_deliveries_get_only_gateway_answers(
    provider: str, data: st.DataObject, raw: bytes, query: str, ctype: str | None
) -> None:
    adapter = adapter_for(provider)
    pairs = [
        (data.draw(name_variants(name)), data.draw(value_for(name)))
        for name in names_of(adapter)
        if data.draw(st.booleans())
    ]
    asyncio.run(check(adapter, raw, to_headers(pairs), query, ctype))


@pytest.mark.parametrize("provider", PASSTHROUGH)
@SETTINGS
@given(raw=hostile_bodies, ctype=content_types, delivery_id=ids)
def test_signed_hostile_bodies_get_only_gateway_answers(
    provider: str, raw: bytes, ctype: str | None, delivery_id: str
) -> None:
    adapter = adapter_for(provider)
    try:
        signed = adapter.sign(raw, NOW, delivery_id=delivery_id)
    except VerificationError:
        return  # a body timestamp or id ``sign`` needs is not there: nothing a sender would send
    asyncio.run(check(adapter, raw, CIMultiDict(signed), "", ctype))
