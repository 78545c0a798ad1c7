"""The header parsers: ``require_header`` / ``optional_header``, and the Standard Webhooks
``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature`` parser.

Invariants: only ``VerificationError`` is raised; a value returned is one header value,
stripped, non-empty and encodable; and Standard Webhooks verification succeeds only when the
input carried a genuine signature (the target inserts one when the input asks it to).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from multidict import CIMultiDict, CIMultiDictProxy

from adapters.base import NamedKey, NamedSecret
from adapters.errors import VerificationError
from adapters.primitives import standard_webhooks as sw
from adapters.primitives.headers import optional_header, require_header
from adapters.testing_keys import V1A_TEST_PUBLIC, V1A_TEST_SIGNING_KEY
from fuzz.reader import Reader

NOW = 1_800_000_000
_NAMES = ("x-signature", "X-Signature", "x-alias", "webhook-id", "svix-id")
_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
_KEYRING = sw.Keyring.build([NamedSecret("v1", _SECRET)], [NamedKey("v1a", V1A_TEST_PUBLIC)])


def one_input(data: bytes) -> None:
    r = Reader(data)
    headers: CIMultiDict[str] = CIMultiDict()
    for _ in range(r.byte() % 6):
        pick = r.byte()
        name = _NAMES[pick % len(_NAMES)] if pick < 200 else r.text(24)
        headers.add(name, r.text(256))
    wanted = tuple(_NAMES[r.byte() % len(_NAMES)] for _ in range(1 + r.byte() % 3))
    proxy = CIMultiDictProxy(headers)
    try:
        value = require_header(proxy, wanted)
    except VerificationError:
        value = None
    try:
        optional = optional_header(proxy, wanted)
    except VerificationError as exc:
        if exc.reason == "missing_header":
            raise AssertionError("optional_header raised missing_header") from exc
        optional = None
    if value is None:
        return
    if optional != value:
        raise AssertionError("optional_header and require_header disagree")
    if not value or value != value.strip():
        raise AssertionError("require_header returned an empty or unstripped value")
    value.encode()  # a lone surrogate here would break every later signature check
    present = {v.strip() for n in wanted for v in proxy.getall(n, ())}
    if value not in present:
        raise AssertionError("require_header returned a value no header carried")


def standard_webhooks_input(data: bytes) -> None:
    r = Reader(data)
    flags = r.byte()
    msg_id = r.text(128)
    ts_text = r.text(24)
    before = r.text(512)
    after = r.text(512)
    body = r.blob(4096)
    genuine = ""
    if flags & 1 and flags & 2:
        try:
            content = sw.signed_content(msg_id, ts_text, body)
        except UnicodeEncodeError:
            content = None
        if content is not None:
            if flags & 4:
                sig = V1A_TEST_SIGNING_KEY.sign(content).signature
                genuine = "v1a," + base64.b64encode(sig).decode()
            else:
                digest = hmac.new(sw.hmac_key(_SECRET), content, hashlib.sha256).digest()
                genuine = "v1," + base64.b64encode(digest).decode()
    headers: CIMultiDict[str] = CIMultiDict()
    headers.add("svix-id" if flags & 8 else "webhook-id", msg_id)
    headers.add("svix-timestamp" if flags & 16 else "webhook-timestamp", ts_text)
    headers.add("webhook-signature", before + genuine + after)
    if flags & 32:
        headers.add("webhook-signature", r.text(256))
    now = float(int(ts_text)) if ts_text.isdigit() and len(ts_text) < 13 else float(NOW)
    now += r.signed() if flags & 64 else 0
    try:
        delivered = sw.verify(body, CIMultiDictProxy(headers), now, _KEYRING, 300)
    except VerificationError:
        return
    if not genuine and not _forged_but_valid(delivered, msg_id, ts_text, body, before + after):
        raise AssertionError("verified without a genuine signature")


def _forged_but_valid(
    delivered: sw.SignedDelivery, msg_id: str, ts_text: str, body: bytes, text: str
) -> bool:
    """The fuzzer cannot forge HMAC or Ed25519, so a verification without our inserted entry
    must be one whose header text happens to contain the genuine signature already."""
    content = sw.signed_content(msg_id, ts_text, body)
    v1 = hmac.new(sw.hmac_key(_SECRET), content, hashlib.sha256).digest()
    v1a = V1A_TEST_SIGNING_KEY.sign(content).signature
    return base64.b64encode(v1).decode() in text or base64.b64encode(v1a).decode() in text
