"""The AI job presets checked against the providers' own packages, both ways where they can.

* ElevenLabs (``elevenlabs``): ``webhooks.construct_event`` verifies what our ``sign`` sends. It
  is laxer than we are (any future timestamp, only the last ``v0``): those cases are pinned.
* Anthropic (``anthropic[webhooks]``): ``beta.webhooks.unwrap`` verifies what our ``sign``
  sends; ``standardwebhooks`` signs what we verify.
* Parallel.ai: no SDK verifier, so ``standardwebhooks`` signs and verifies.

The SDKs read the wall clock, so these tests sign at the current time. Clients are built with
a dummy key and never reach the network.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import anthropic
import pytest
import standardwebhooks
from elevenlabs import ElevenLabs
from elevenlabs.errors import BadRequestError
from multidict import CIMultiDict

from adapters import Adapter, VerificationError, build_adapter
from adapters.examples import render
from tests.helpers_adapters import SW_SECRET, make_spec

EL_SECRET = "wsec_tests_oracle_0123456789abcdef"


def elevenlabs_adapter() -> Adapter:
    return build_adapter(make_spec("elevenlabs", secrets=[("primary", EL_SECRET)]))


def el_sdk() -> Any:
    return ElevenLabs(api_key="offline-test-key").webhooks


def el_sig(ts: int, body: bytes) -> str:
    return hmac.new(EL_SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()


def now() -> int:
    return int(time.time())


# ------------------------------------------------------------------------------- ElevenLabs
@pytest.mark.parametrize("example", ["succeeded", "failed", "speech-to-text"])
def test_elevenlabs_sdk_verifies_what_we_sign(example: str) -> None:
    ts = now()
    raw = render("elevenlabs", example, job_id="conv_oracle", now=ts)
    header = elevenlabs_adapter().sign(raw, ts, delivery_id="unused")["ElevenLabs-Signature"]
    event = el_sdk().construct_event(raw.decode(), header, EL_SECRET)
    assert event["data"].get("conversation_id", event["data"].get("request_id")) == "conv_oracle"
    with pytest.raises(BadRequestError):
        el_sdk().construct_event(raw.decode() + " ", header, EL_SECRET)


async def test_we_verify_what_the_sdk_accepts() -> None:
    ts = now()
    raw = render("elevenlabs", "succeeded", job_id="conv_2", now=ts)
    header = f"t={ts},v0={el_sig(ts, raw)}"
    el_sdk().construct_event(raw.decode(), header, EL_SECRET)  # the SDK's verdict: valid
    verified = await elevenlabs_adapter().verify(
        raw, CIMultiDict({"ElevenLabs-Signature": header}), ts
    )
    assert verified.key_id == "primary"
    assert verified.signed_at == ts


async def test_stricter_than_the_sdk_a_future_timestamp_is_refused() -> None:
    ts = now() + 3600  # an hour ahead: the SDK only bounds the past
    raw = render("elevenlabs", "succeeded", job_id="conv_3", now=ts)
    header = f"t={ts},v0={el_sig(ts, raw)}"
    el_sdk().construct_event(raw.decode(), header, EL_SECRET)
    with pytest.raises(VerificationError) as caught:
        await elevenlabs_adapter().verify(raw, CIMultiDict({"ElevenLabs-Signature": header}), now())
    assert caught.value.reason == "timestamp_out_of_window"


async def test_any_v0_counts_where_the_sdk_reads_only_the_last() -> None:
    ts = now()
    raw = render("elevenlabs", "succeeded", job_id="conv_4", now=ts)
    header = f"t={ts},v0={el_sig(ts, raw)},v0={'0' * 64}"  # the valid one first
    with pytest.raises(BadRequestError):
        el_sdk().construct_event(raw.decode(), header, EL_SECRET)
    verified = await elevenlabs_adapter().verify(
        raw, CIMultiDict({"ElevenLabs-Signature": header}), ts
    )
    assert verified.key_id == "primary"


async def test_both_refuse_a_delivery_older_than_thirty_minutes() -> None:
    ts = now() - 1860
    raw = render("elevenlabs", "succeeded", job_id="conv_5", now=ts)
    header = f"t={ts},v0={el_sig(ts, raw)}"
    with pytest.raises(BadRequestError):
        el_sdk().construct_event(raw.decode(), header, EL_SECRET)
    with pytest.raises(VerificationError) as caught:
        await elevenlabs_adapter().verify(raw, CIMultiDict({"ElevenLabs-Signature": header}), now())
    assert caught.value.reason == "timestamp_out_of_window"


# ------------------------------------------------------------------ Standard Webhooks presets
def sw_adapter(name: str) -> Adapter:
    return build_adapter(make_spec(name, secrets=[("primary", SW_SECRET)]))


def sw_library_headers(msg_id: str, ts: int, raw: bytes) -> dict[str, str]:
    signature = standardwebhooks.Webhook(SW_SECRET).sign(
        msg_id, datetime.fromtimestamp(ts, tz=UTC), raw.decode()
    )
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


@pytest.mark.parametrize("name", ["anthropic", "parallel"])
@pytest.mark.parametrize("example", ["succeeded", "failed"])
async def test_we_verify_what_standardwebhooks_signs(name: str, example: str) -> None:
    ts = now()
    raw = render(name, example, job_id="run_1", now=ts)
    headers = sw_library_headers("msg_oracle_1", ts, raw)
    verified = await sw_adapter(name).verify(raw, CIMultiDict(headers), ts)
    assert (verified.key_id, verified.delivery_id) == ("primary", "msg_oracle_1")
    with pytest.raises(VerificationError) as caught:
        await sw_adapter(name).verify(raw + b"\n", CIMultiDict(headers), ts)
    assert caught.value.reason == "signature_mismatch"


@pytest.mark.parametrize("example", ["succeeded", "failed", "session-created"])
def test_anthropic_sdk_unwraps_what_we_sign(example: str) -> None:
    ts = now()
    raw = render("anthropic", example, job_id="drun_1", now=ts)
    headers = sw_adapter("anthropic").sign(raw, ts, delivery_id="msg_oracle_2")
    client = anthropic.Anthropic(api_key="offline-test-key")
    event = client.beta.webhooks.unwrap(raw.decode(), headers=headers, key=SW_SECRET)
    assert event.type == "event"
    assert event.data.type in (
        "deployment_run.succeeded",
        "deployment_run.failed",
        "session.created",
    )
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        client.beta.webhooks.unwrap(raw.decode() + " ", headers=headers, key=SW_SECRET)


def test_standardwebhooks_verifies_what_we_sign_for_parallel() -> None:
    ts = now()
    raw = render("parallel", "succeeded", job_id="trun_1", now=ts)
    headers = sw_adapter("parallel").sign(raw, ts, delivery_id="msg_oracle_3")
    payload = standardwebhooks.Webhook(SW_SECRET).verify(raw.decode(), headers)
    assert payload["data"]["run_id"] == "trun_1"
