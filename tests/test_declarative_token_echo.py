"""A token scheme's secret echoed back inside the body is never published with the event.

PiAPI repeats ``webhook_config.secret`` in every body; a Deepgram ``callback_secret`` comes back
at ``metadata.extra.callback_secret``. ``GenericAdapter.parse`` replaces every string equal to a
configured token before the payload reaches the event.
"""

from __future__ import annotations

import json
from typing import Any

from multidict import CIMultiDict

from adapters.base import NO_REQUEST
from adapters.declarative.adapter import GenericAdapter
from adapters.declarative.tokens import REDACTED, redact_tokens, token_needles
from tests.helpers_adapters import make_adapter

TOKEN = "tok_echoed_0123456789"


def _token_source(**scheme: Any) -> GenericAdapter:
    adapter = make_adapter(
        "generic",
        secrets=[("current", TOKEN), ("old", "tok_old_9876543210")],
        options={"scheme": {"auth": "static_header", "header": "x-webhook-secret", **scheme}},
    )
    assert isinstance(adapter, GenericAdapter)
    return adapter


def test_redact_replaces_exact_strings_only_and_copies() -> None:
    payload = {
        "secret": TOKEN,
        "list": [TOKEN, "prefix-" + TOKEN, 7, None],
        "nested": {"deeper": [{"again": TOKEN}]},
        TOKEN: "keys are kept",
    }
    before = json.dumps(payload, sort_keys=True)
    redacted = redact_tokens(payload, frozenset({TOKEN}))
    assert redacted == {
        "secret": REDACTED,
        "list": [REDACTED, "prefix-" + TOKEN, 7, None],
        "nested": {"deeper": [{"again": REDACTED}]},
        TOKEN: "keys are kept",
    }
    assert json.dumps(payload, sort_keys=True) == before  # the input is not changed
    assert redact_tokens(TOKEN, frozenset({TOKEN})) == REDACTED
    assert redact_tokens(42, frozenset({TOKEN})) == 42


def test_redact_survives_nesting_deeper_than_the_stack() -> None:
    node: Any = TOKEN
    for _ in range(5000):
        node = [node]
    out = redact_tokens(node, frozenset({TOKEN}))
    for _ in range(5000):
        out = out[0]
    assert out == REDACTED


def test_needles_include_the_json_escaped_form() -> None:
    needles = token_needles(['t\u00f6k"en'])
    assert 't\u00f6k"en'.encode() in needles
    assert b't\\u00f6k\\"en' in needles


async def test_parse_redacts_an_echoed_token_from_the_published_payload() -> None:
    adapter = _token_source()
    raw = json.dumps(
        {"data": {"task_id": "t1", "config": {"webhook_config": {"secret": TOKEN}}}}
    ).encode()
    verified = await adapter.verify(raw, CIMultiDict({"x-webhook-secret": TOKEN}), 0)
    assert verified.key_id == "current"
    payload = adapter.parse(raw, NO_REQUEST)
    assert payload["data"]["config"]["webhook_config"]["secret"] == REDACTED
    assert TOKEN not in json.dumps(payload)


def test_parse_redacts_an_escaped_echo() -> None:
    token = "tok/\u00e9cho"
    adapter = make_adapter(
        "generic",
        secrets=[("current", token)],
        options={"scheme": {"auth": "body_token", "body_path": "secret"}},
    )
    raw = json.dumps({"secret": token, "job": "j"}).encode()  # ensure_ascii: \u00e9
    assert token.encode() not in raw
    assert adapter.parse(raw, NO_REQUEST) == {"secret": REDACTED, "job": "j"}


def test_a_body_without_the_token_is_returned_as_parsed() -> None:
    adapter = _token_source()
    raw = json.dumps({"note": "prefix-" + TOKEN}).encode()
    assert adapter.parse(raw, NO_REQUEST) == {"note": "prefix-" + TOKEN}


def test_hmac_sources_do_not_redact() -> None:
    secret = "shared-hmac-secret-0123"
    adapter = make_adapter(
        "generic",
        secrets=[("k", secret)],
        options={"scheme": {"auth": "hmac", "header": "X-Sig"}},
    )
    raw = json.dumps({"value": secret}).encode()
    assert adapter.parse(raw, NO_REQUEST) == {"value": secret}
