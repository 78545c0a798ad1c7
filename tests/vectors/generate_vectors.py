"""Regenerate the vector files in this folder:
``python tests/vectors/generate_vectors.py OFFICIAL_VECTORS.json``.

The official vectors are copied from a ``vectors.json`` of the providers' published
known-answer vectors (Standard Webhooks, OpenAI, fal, Stripe, GitHub, ElevenLabs); the
negative and derived cases are computed here with ``hmac``/``hashlib``/PyNaCl directly, never
with the adapters under test. Tests read only the JSON files, so nothing outside the repository
is needed at test time. The output is deterministic: rerunning changes no file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

HERE = Path(__file__).resolve().parent

Json = dict[str, Any]

# --------------------------------------------------------------------------- Standard Webhooks
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TS = 1614265330
SW_BODY = '{"test": 2432232314}'
SW_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SW_OTHER_SECRET = (
    "whsec_" + base64.b64encode(hashlib.sha256(b"tests: wrong secret").digest()).decode()
)
SW_OLD_SECRET_1 = (
    "whsec_" + base64.b64encode(hashlib.sha256(b"tests: old secret 1").digest()).decode()
)
SW_OLD_SECRET_2 = (
    "whsec_" + base64.b64encode(hashlib.sha256(b"tests: old secret 2").digest()).decode()
)
V1A_SEED = "whsk_lRrbb82NG1TRxRFM2OKjQCGgRuWcFaYZuXFI8r9rVYk="
V1A_PUBLIC = "whpk_dnKQbuc3/Wh5dP6nyPWLNoye+77d8l+AIGIrs6MrW3g="
V1A_OTHER = SigningKey(hashlib.sha256(b"tests: unknown v1a key").digest())

# ------------------------------------------------------------------------------------------ fal
FAL_SEED_HEX = "369c671cdb8a0e57146979cdcb6206a944763a287290147d7539380170ee3c5a"
FAL_KEY = SigningKey(bytes.fromhex(FAL_SEED_HEX))
FAL_OTHER_KEY = SigningKey(hashlib.sha256(b"tests: unknown fal key").digest())
FAL_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"
FAL_REQUEST_ID = "5057fca7-2eb3-468f-b95d-cefe92b0b9d4"
FAL_USER_ID = "user_test_123"
FAL_TS = 1752019770

# -------------------------------------------------------------------------- HMAC body providers
HMAC_SECRET = "whs-abstrakt-test-secret"
HMAC_OTHER_SECRET = "whs-some-other-secret"
HMAC_NOW = 1736678100  # 2025-01-12T10:35:00Z, five minutes after the older Abstrakt sample


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def x_of(key: SigningKey) -> str:
    return base64.urlsafe_b64encode(bytes(key.verify_key)).decode().rstrip("=")


def sw_key(secret: str, *, raw_utf8: bool = False) -> bytes:
    if secret.startswith("whsec_"):
        text = secret.removeprefix("whsec_")
    elif raw_utf8:
        return secret.encode()
    else:
        text = secret
    return base64.b64decode(text + "=" * (-len(text) % 4))


def sw_v1(secret: str, msg_id: str, ts: str, body: str, *, raw_utf8: bool = False) -> str:
    content = f"{msg_id}.{ts}.{body}".encode()
    return "v1," + b64(
        hmac.new(sw_key(secret, raw_utf8=raw_utf8), content, hashlib.sha256).digest()
    )


def sw_v1a(key: SigningKey, msg_id: str, ts: str, body: str) -> str:
    return "v1a," + b64(key.sign(f"{msg_id}.{ts}.{body}".encode()).signature)


def v1a_key() -> SigningKey:
    return SigningKey(base64.b64decode(V1A_SEED.removeprefix("whsk_")))


def fal_sig(key: SigningKey, request_id: str, user_id: str, ts: str, body: str) -> str:
    digest = hashlib.sha256(body.encode()).hexdigest()
    return key.sign(f"{request_id}\n{user_id}\n{ts}\n{digest}".encode()).signature.hex()


def hmac_hex(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()


def secrets(*pairs: tuple[str, str]) -> list[Json]:
    return [{"id": i, "value": v} for i, v in pairs]


def valid(key_id: str, scheme: str, delivery_id: str | None, **extra: Any) -> Json:
    return {"valid": True, "key_id": key_id, "scheme": scheme, "delivery_id": delivery_id, **extra}


def invalid(reason: str) -> Json:
    return {"valid": False, "reason": reason}


class Writer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.stems: set[str] = set()

    def write(self, folder: str, stem: str, vector: Json) -> None:
        if stem in self.stems:
            raise SystemExit(f"duplicate vector name {stem}")
        self.stems.add(stem)
        path = self.root / folder / f"{stem}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(vector, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------ Standard Webhooks set
def sw_vector(
    provider: str,
    description: str,
    origin: str,
    *,
    secrets_: list[Json],
    headers: list[list[str]],
    expected: Json,
    body: str = SW_BODY,
    now: int = SW_TS,
    public_keys: list[Json] | None = None,
) -> Json:
    return {
        "provider": provider,
        "description": description,
        "origin": origin,
        "source": {
            "secrets": secrets_,
            "public_keys": public_keys or [],
            "options": {},
            "tolerance_seconds": 300,
        },
        "headers": headers,
        "body": body,
        "now": now,
        "expected": expected,
    }


def sw_headers(
    sig: str = SW_SIG, msg_id: str = SW_ID, ts: str = str(SW_TS), prefix: str = "webhook"
) -> list[list[str]]:
    return [[f"{prefix}-id", msg_id], [f"{prefix}-timestamp", ts], [f"{prefix}-signature", sig]]


def standard_webhooks(w: Writer, official: Json) -> None:
    folder = "standard-webhooks"
    p = "standard-webhooks"
    ok = valid("primary", "standard-webhooks-v1", SW_ID)
    reasons = {
        "tampered-last-char": "signature_mismatch",
        "wrong-version": "unsupported_signature_version",
        "garbage-sig": "signature_mismatch",
        "too-old": "timestamp_out_of_window",
        "too-new": "timestamp_out_of_window",
    }
    for v in official["standard_webhooks"]:
        exp = ok if v["valid"] else invalid(reasons[v["name"]])
        w.write(
            folder,
            "sw-" + v["name"] if v["name"].startswith("official") else f"sw-official-{v['name']}",
            sw_vector(
                p,
                f"official Standard Webhooks vector {v['name']!r}",
                f"official: {v['source']}",
                secrets_=secrets(("primary", v["secret"])),
                headers=sw_headers(v["signature"], v["id"], v["ts"]),
                body=v["body"],
                now=v["now"],
                expected=exp,
            ),
        )
    syn = official["standard_webhooks_v1a_synthetic"]
    assert syn["whpk"] == V1A_PUBLIC
    assert syn["whsk_seed"] == V1A_SEED
    v1a_ok = valid("v1a-key", "standard-webhooks-v1a", SW_ID)
    w.write(
        folder,
        "sw-v1a-synthetic",
        sw_vector(
            p,
            "synthetic v1a (Ed25519) vector, public key only",
            "synthetic: research notes (no official v1a vector exists)",
            secrets_=[],
            public_keys=[{"id": "v1a-key", "value": syn["whpk"]}],
            headers=sw_headers(syn["signature"], syn["id"], syn["ts"]),
            body=syn["body"],
            now=syn["now"],
            expected=v1a_ok,
        ),
    )
    w.write(
        folder,
        "sw-v1a-synthetic-with-secret-too",
        sw_vector(
            p,
            "v1a signature accepted when the source has both an HMAC secret and a public key",
            "synthetic",
            secrets_=secrets(("primary", syn["secret"])),
            public_keys=[{"id": "v1a-key", "value": syn["whpk"]}],
            headers=sw_headers(syn["signature"], syn["id"], syn["ts"]),
            body=syn["body"],
            now=syn["now"],
            expected=v1a_ok,
        ),
    )
    assert sw_v1a(v1a_key(), SW_ID, str(SW_TS), SW_BODY) == syn["signature"]

    good = secrets(("primary", SW_SECRET))
    derived = "derived from the official vector"

    def neg(stem: str, description: str, expected: Json, **kw: Any) -> None:
        kw.setdefault("secrets_", good)
        kw.setdefault("headers", sw_headers())
        w.write(folder, stem, sw_vector(p, description, derived, expected=expected, **kw))

    neg(
        "sw-body-altered",
        "official #9: one extra space in the body",
        invalid("signature_mismatch"),
        body='{"test":  2432232314}',
    )
    neg(
        "sw-wrong-secret",
        "another secret",
        invalid("signature_mismatch"),
        secrets_=secrets(("other", SW_OTHER_SECRET)),
    )
    neg("sw-boundary-old-300", "exactly 300 s old is accepted", ok, now=SW_TS + 300)
    neg("sw-boundary-future-300", "exactly 300 s in the future is accepted", ok, now=SW_TS - 300)
    neg("sw-stale-301", "301 s old", invalid("timestamp_out_of_window"), now=SW_TS + 301)
    neg("sw-future-301", "301 s ahead", invalid("timestamp_out_of_window"), now=SW_TS - 301)
    for index, name in enumerate(("id", "timestamp", "signature")):
        headers = sw_headers()
        del headers[index]
        neg(
            f"sw-missing-{name}",
            f"no webhook-{name} header",
            invalid("missing_header"),
            headers=headers,
        )
    for index, (name, other) in enumerate(
        (("id", "msg_other"), ("timestamp", str(SW_TS + 1)), ("signature", "v1,AAAA"))
    ):
        headers = sw_headers()
        neg(
            f"sw-duplicate-{name}-different",
            f"webhook-{name} twice with different values",
            invalid("duplicate_header"),
            headers=[*headers, [headers[index][0], other]],
        )
        neg(
            f"sw-duplicate-{name}-identical",
            f"webhook-{name} twice with the same value",
            ok,
            headers=[*headers, list(headers[index])],
        )
    neg(
        "sw-duplicate-across-alias-different",
        "webhook-id and svix-id disagree",
        invalid("duplicate_header"),
        headers=[*sw_headers(), ["svix-id", "msg_other"]],
    )
    neg(
        "sw-duplicate-across-alias-identical",
        "webhook-id and svix-id agree",
        ok,
        headers=[*sw_headers(), ["svix-id", SW_ID]],
    )
    for stem, ts in (
        ("letters", "12a"),
        ("plus-sign", "+123"),
        ("blank", " "),
        ("float", "1614265330.5"),
        ("plus-sign-real", "+1614265330"),
        ("thirteen-digits", "1614265330000"),
    ):
        neg(
            f"sw-timestamp-{stem}",
            f"webhook-timestamp {ts!r}",
            invalid("malformed_header"),
            headers=sw_headers(ts=ts),
        )
    neg(
        "sw-timestamp-leading-zero",
        "'01614265330' is digits, so it parses, but the signed text differs from the official one",
        invalid("signature_mismatch"),
        headers=sw_headers(ts="0" + str(SW_TS)),
    )
    neg(
        "sw-signature-not-base64",
        "v1 entry that is not base64",
        invalid("signature_mismatch"),
        headers=sw_headers("v1,@@not*base64@@"),
    )
    neg(
        "sw-signature-no-comma",
        "an entry without a version: nothing to check",
        invalid("malformed_header"),
        headers=sw_headers("g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    )
    neg(
        "sw-signature-empty",
        "empty webhook-signature",
        invalid("malformed_header"),
        headers=sw_headers(""),
    )
    neg(
        "sw-v2-prefix",
        "the right bytes under version v2",
        invalid("unsupported_signature_version"),
        headers=sw_headers("v2," + SW_SIG.removeprefix("v1,")),
    )
    neg(
        "sw-v1a-without-public-key",
        "a v1a signature when only an HMAC secret is configured",
        invalid("unsupported_signature_version"),
        headers=sw_headers(syn["signature"]),
    )
    neg(
        "sw-v1-without-secret",
        "a v1 signature when only a public key is configured",
        invalid("unsupported_signature_version"),
        secrets_=[],
        public_keys=[{"id": "v1a-key", "value": V1A_PUBLIC}],
    )
    neg(
        "sw-v1a-unknown-key",
        "v1a signed by a key that is not configured",
        invalid("signature_mismatch"),
        secrets_=[],
        public_keys=[{"id": "v1a-key", "value": V1A_PUBLIC}],
        headers=sw_headers(sw_v1a(V1A_OTHER, SW_ID, str(SW_TS), SW_BODY)),
    )
    neg(
        "sw-v1a-body-altered",
        "v1a with one extra space in the body",
        invalid("signature_mismatch"),
        secrets_=[],
        public_keys=[{"id": "v1a-key", "value": V1A_PUBLIC}],
        headers=sw_headers(syn["signature"]),
        body='{"test":  2432232314}',
    )
    neg(
        "sw-v1a-not-base64",
        "v1a entry that is not base64",
        invalid("signature_mismatch"),
        secrets_=[],
        public_keys=[{"id": "v1a-key", "value": V1A_PUBLIC}],
        headers=sw_headers("v1a,%%%%"),
    )
    neg(
        "sw-v1a-short-signature",
        "v1a entry of 32 bytes instead of 64",
        invalid("signature_mismatch"),
        secrets_=[],
        public_keys=[{"id": "v1a-key", "value": V1A_PUBLIC}],
        headers=sw_headers("v1a," + b64(bytes(32))),
    )
    neg(
        "sw-rotation-good-secret-last",
        "three secrets configured, the matching one last: key_id names it",
        valid("current", "standard-webhooks-v1", SW_ID),
        secrets_=secrets(
            ("old-1", SW_OLD_SECRET_1), ("old-2", SW_OLD_SECRET_2), ("current", SW_SECRET)
        ),
    )
    neg(
        "sw-unpadded-bare-secret",
        "the official secret without whsec_ (base64, as the reference libraries read it)",
        ok,
        secrets_=secrets(("primary", SW_SECRET.removeprefix("whsec_"))),
    )
    neg(
        "sw-svix-aliases",
        "svix-id / svix-timestamp / svix-signature",
        ok,
        headers=sw_headers(prefix="svix"),
    )
    neg(
        "sw-mixed-case-names",
        "header names as in the Java library test",
        ok,
        headers=[
            ["Webhook-Id", SW_ID],
            ["WEBHOOK-TIMESTAMP", str(SW_TS)],
            ["webhook-SIGNATURE", SW_SIG],
        ],
    )
    neg(
        "sw-extra-whitespace-between-entries",
        "entries separated by several spaces and a tab",
        ok,
        headers=sw_headers("v2,AAAA  \t" + SW_SIG),
    )
    dotted = "msg.with.dots"
    neg(
        "sw-id-with-dot",
        "a correctly signed webhook-id containing '.' is refused (spec §signed content)",
        invalid("malformed_header"),
        headers=sw_headers(sw_v1(SW_SECRET, dotted, str(SW_TS), SW_BODY), msg_id=dotted),
    )
    neg(
        "sw-signature-for-other-id",
        "the official signature presented with another webhook-id",
        invalid("signature_mismatch"),
        headers=sw_headers(msg_id="msg_other"),
    )

    # Replicate signs exactly like Standard Webhooks (replicate-python uses the same vectors).
    replicate_body = json.dumps(
        {
            "id": "ufawqhfynnddngldkgtslldrkq",
            "status": "succeeded",
            "output": ["https://replicate.delivery/pbxt/out-0.png"],
            "created_at": "2022-04-26T22:13:06.224088Z",
            "completed_at": "2022-04-26T22:13:08.224088Z",
            "error": None,
            "metrics": {"predict_time": 1.5},
        }
    )
    rep_ts = 1651011200
    rep_sig = sw_v1(SW_SECRET, "msg_replicate_1", str(rep_ts), replicate_body)
    rep_headers = sw_headers(rep_sig, "msg_replicate_1", str(rep_ts))
    for v in official["standard_webhooks"][:1]:
        w.write(
            "replicate",
            "replicate-official-valid",
            sw_vector(
                "replicate",
                "official Standard Webhooks vector through the replicate adapter",
                "official: replicate-python tests/test_webhooks.py (the Standard Webhooks vectors)",
                secrets_=secrets(("primary", v["secret"])),
                headers=sw_headers(v["signature"], v["id"], v["ts"]),
                body=v["body"],
                now=v["now"],
                expected=ok,
            ),
        )
    rep_ok = valid("primary", "standard-webhooks-v1", "msg_replicate_1")
    rep_ok["normalize"] = {"job_id": "ufawqhfynnddngldkgtslldrkq", "status": "succeeded"}
    for stem, description, now, exp in (
        ("replicate-prediction-succeeded", "a signed prediction body", rep_ts, rep_ok),
        ("replicate-stale-301", "301 s old", rep_ts + 301, invalid("timestamp_out_of_window")),
    ):
        w.write(
            "replicate",
            stem,
            sw_vector(
                "replicate",
                description,
                "derived",
                secrets_=good,
                headers=rep_headers,
                body=replicate_body,
                now=now,
                expected=exp,
            ),
        )
    w.write(
        "replicate",
        "replicate-tampered-body",
        sw_vector(
            "replicate",
            "prediction body with succeeded changed to failed",
            "derived",
            secrets_=good,
            headers=rep_headers,
            body=replicate_body.replace("succeeded", "failed"),
            now=rep_ts,
            expected=invalid("signature_mismatch"),
        ),
    )


# ----------------------------------------------------------------------------------- OpenAI
def openai(w: Writer, official: Json) -> None:
    folder = "openai"
    first, raw = official["openai"]
    ok = valid("primary", "standard-webhooks-v1", first["id"])
    ok["normalize"] = {"job_id": "resp_123", "status": "succeeded"}
    w.write(
        folder,
        "openai-official-valid",
        sw_vector(
            "openai",
            "official OpenAI SDK vector (response.completed)",
            f"official: {first['source']}",
            secrets_=secrets(("primary", first["secret"])),
            headers=sw_headers(first["signature"], first["id"], first["ts"]),
            body=first["body"],
            now=first["now"],
            expected=ok,
        ),
    )
    w.write(
        folder,
        "openai-raw-utf8-secret",
        sw_vector(
            "openai",
            "secret without whsec_ is raw UTF-8 (OpenAI SDK rule); body holds non-ASCII",
            f"official (computed): {raw['source']}",
            secrets_=secrets(("primary", raw["secret"])),
            headers=sw_headers(raw["signature"], raw["id"], raw["ts"]),
            body=raw["body"],
            now=raw["now"],
            expected=valid("primary", "standard-webhooks-v1", raw["id"]),
        ),
    )
    assert (
        sw_v1(raw["secret"], raw["id"], raw["ts"], raw["body"], raw_utf8=True) == raw["signature"]
    )
    cases: tuple[tuple[str, str, dict[str, Any]], ...] = (
        (
            "openai-invalid-secret",
            "SDK test: another secret",
            {"secrets_": secrets(("primary", "whsec_" + b64(b"invalid_secret")))},
        ),
        ("openai-stale-400", "SDK test: 400 s old", {"now": int(first["now"]) + 400}),
        ("openai-future-400", "SDK test: 400 s ahead", {"now": int(first["now"]) - 400}),
    )
    for stem, description, kw in cases:
        kw.setdefault("secrets_", secrets(("primary", first["secret"])))
        kw.setdefault("now", first["now"])
        w.write(
            folder,
            stem,
            sw_vector(
                "openai",
                description,
                "derived from openai-python tests/lib/test_webhooks.py",
                headers=sw_headers(first["signature"], first["id"], first["ts"]),
                body=first["body"],
                expected=invalid(
                    "signature_mismatch" if "secret" in stem else "timestamp_out_of_window"
                ),
                **kw,
            ),
        )


# -------------------------------------------------------------------------------------- fal
def fal(w: Writer, official: Json) -> None:
    folder = "fal"
    syn = official["fal_synthetic"]
    body: str = syn["body"]
    assert x_of(FAL_KEY) == syn["jwks"]["keys"][0]["x"]
    assert (
        fal_sig(FAL_KEY, FAL_REQUEST_ID, FAL_USER_ID, str(FAL_TS), body)
        == syn["headers"]["X-Fal-Webhook-Signature"]
    )
    static = [{"id": "test-key-1", "value": syn["jwks"]["keys"][0]["x"]}]
    ok = valid("test-key-1", "ed25519-jwks", FAL_REQUEST_ID)
    ok_norm = {**ok, "normalize": {"job_id": FAL_REQUEST_ID, "status": "succeeded"}}

    def headers(
        sig: str | None = None,
        request_id: str = FAL_REQUEST_ID,
        user_id: str = FAL_USER_ID,
        ts: str = str(FAL_TS),
    ) -> list[list[str]]:
        return [
            ["X-Fal-Webhook-Request-Id", request_id],
            ["X-Fal-Webhook-User-Id", user_id],
            ["X-Fal-Webhook-Timestamp", ts],
            ["X-Fal-Webhook-Signature", sig or syn["headers"]["X-Fal-Webhook-Signature"]],
        ]

    def vec(
        stem: str,
        description: str,
        expected: Json,
        *,
        origin: str = "derived from the synthetic fal vector",
        hdrs: list[list[str]] | None = None,
        body_: str = body,
        now: int = FAL_TS,
        options: Json | None = None,
        jwks: list[Json] | None = None,
        public_keys: list[Json] | None = None,
    ) -> None:
        source: Json = {
            "secrets": [],
            "public_keys": static if public_keys is None and jwks is None else (public_keys or []),
            "options": dict(options or {}),
            "tolerance_seconds": 300,
        }
        vector: Json = {"provider": "fal", "description": description, "origin": origin}
        if jwks is not None:
            source["options"]["jwks_urls"] = [FAL_JWKS_URL]
            source["options"]["jwks_min_refresh_seconds"] = 0
            vector["jwks"] = {FAL_JWKS_URL: {"keys": jwks}}
        vector |= {
            "source": source,
            "headers": hdrs or headers(),
            "body": body_,
            "now": now,
            "expected": expected,
        }
        w.write(folder, stem, vector)

    origin = "synthetic: research notes (fal's private key is unknown; body is a real fal body)"
    vec(
        "fal-synthetic-static-key",
        "synthetic vector, key configured statically",
        ok_norm,
        origin=origin,
    )
    vec(
        "fal-synthetic-jwks",
        "synthetic vector, key served from a JWKS",
        ok_norm,
        origin=origin,
        jwks=syn["jwks"]["keys"],
    )
    wrong_jwk = {"kty": "OKP", "crv": "Ed25519", "x": x_of(FAL_OTHER_KEY), "kid": "wrong-key"}
    vec(
        "fal-jwks-wrong-key-first",
        "a JWKS whose first key does not match",
        ok,
        jwks=[wrong_jwk, *syn["jwks"]["keys"]],
    )
    vec(
        "fal-static-keys-wrong-key-first",
        "two static keys, the matching one last: key_id names it",
        ok,
        public_keys=[{"id": "wrong-key", "value": x_of(FAL_OTHER_KEY)}, *static],
    )
    vec(
        "fal-jwks-unknown-key",
        "a JWKS with no matching key (refetched once, then refused)",
        invalid("signature_mismatch"),
        jwks=[wrong_jwk],
    )
    vec(
        "fal-unknown-key",
        "signed by a key that is not configured",
        invalid("signature_mismatch"),
        hdrs=headers(fal_sig(FAL_OTHER_KEY, FAL_REQUEST_ID, FAL_USER_ID, str(FAL_TS), body)),
    )
    vec(
        "fal-uppercase-hex-signature",
        "the signature in upper-case hex",
        ok,
        hdrs=headers(syn["headers"]["X-Fal-Webhook-Signature"].upper()),
    )
    vec(
        "fal-body-tampered",
        "one byte of the body changed",
        invalid("signature_mismatch"),
        body_=body.replace('"prompt": "dog"', '"prompt": "cat"'),
    )
    vec(
        "fal-user-id-changed",
        "user id header 'other' (the signature covers the original one)",
        invalid("signature_mismatch"),
        hdrs=headers(user_id="other"),
    )
    vec(
        "fal-user-id-option-mismatch",
        "correctly signed delivery for another fal account than the configured user_id",
        invalid("user_id_mismatch"),
        options={"user_id": "user_mine"},
    )
    vec(
        "fal-user-id-option-match",
        "correctly signed delivery for the configured user_id",
        ok,
        options={"user_id": FAL_USER_ID},
    )
    vec("fal-stale-301", "301 s old", invalid("timestamp_out_of_window"), now=FAL_TS + 301)
    vec("fal-future-301", "301 s ahead", invalid("timestamp_out_of_window"), now=FAL_TS - 301)
    vec("fal-boundary-old-300", "exactly 300 s old", ok, now=FAL_TS + 300)
    vec("fal-boundary-future-300", "exactly 300 s ahead", ok, now=FAL_TS - 300)
    names = ("request-id", "user-id", "timestamp", "signature")
    for index, name in enumerate(names):
        hdrs = headers()
        del hdrs[index]
        vec(
            f"fal-missing-{name}",
            f"no X-Fal-Webhook-{name} header",
            invalid("missing_header"),
            hdrs=hdrs,
        )
    for index, name in enumerate(names):
        hdrs = headers()
        other = hdrs[index][1][:-1] + ("0" if hdrs[index][1][-1] != "0" else "1")
        vec(
            f"fal-duplicate-{name}-different",
            f"X-Fal-Webhook-{name} twice with different values",
            invalid("duplicate_header"),
            hdrs=[*hdrs, [hdrs[index][0], other]],
        )
        vec(
            f"fal-duplicate-{name}-identical",
            f"X-Fal-Webhook-{name} twice with the same value",
            ok,
            hdrs=[*hdrs, list(hdrs[index])],
        )
    for stem, ts in (
        ("letters", "12a"),
        ("plus-sign", "+123"),
        ("blank", " "),
        ("float", "1752019770.5"),
    ):
        vec(
            f"fal-timestamp-{stem}",
            f"X-Fal-Webhook-Timestamp {ts!r}",
            invalid("malformed_header"),
            hdrs=headers(ts=ts),
        )
    vec(
        "fal-signature-not-hex",
        "signature with non-hex characters",
        invalid("malformed_header"),
        hdrs=headers("zz" * 64),
    )
    vec(
        "fal-signature-short",
        "signature of 32 bytes",
        invalid("malformed_header"),
        hdrs=headers(syn["headers"]["X-Fal-Webhook-Signature"][:64]),
    )
    vec(
        "fal-signature-odd-length",
        "signature of 127 hex digits",
        invalid("malformed_header"),
        hdrs=headers(syn["headers"]["X-Fal-Webhook-Signature"][:-1]),
    )
    vec(
        "fal-lowercase-header-names",
        "all header names in lower case",
        ok,
        hdrs=[[k.lower(), v] for k, v in headers()],
    )
    other_id = "00000000-0000-0000-0000-000000000000"
    vec(
        "fal-body-request-id-mismatch",
        "signed headers name another request than the body: normalize refuses it",
        {
            "valid": True,
            "key_id": "test-key-1",
            "scheme": "ed25519-jwks",
            "delivery_id": other_id,
            "normalize": {"error": "VerificationError", "reason": "request_id_mismatch"},
        },
        hdrs=headers(
            fal_sig(FAL_KEY, other_id, FAL_USER_ID, str(FAL_TS), body), request_id=other_id
        ),
    )


# ------------------------------------------------------------------------ Abstrakt / InstantAPI
ABSTRAKT_OLDER = json.dumps(
    {
        "request_id": "abc123",
        "status": "completed",
        "result": {
            "items": [{"url": "https://cdn.abstrakt.one/abc123.mp4", "content_type": "video/mp4"}]
        },
        "metrics": {"inference_time": 45.2, "queue_time": 2.1},
        "timestamp": "2025-01-12T10:30:00Z",
    }
)
ABSTRAKT_V1 = json.dumps(
    {
        "job_id": "job_abc123xyz",
        "status": "succeeded",
        "output": {
            "type": "image",
            "items": [{"type": "image", "url": "https://cdn.abstrakt.one/outputs/abc123.png"}],
        },
        "credits_used": 1,
        "completed_at": "2025-01-12T10:30:45Z",
    }
)
INSTANTAPI_COMPLETED = json.dumps(
    {
        "event_type": "task.completed",
        "task_id": "task_9f8e7d",
        "status": "completed",
        "result": {"summary": "A short summary."},
        "usage": {"cost": 0.002},
        "completed_at": "2025-01-12T10:31:00Z",
    }
)


def hmac_body(w: Writer, provider: str, header: str, body: str, job_id: str, short: str) -> None:
    sig = hmac_hex(HMAC_SECRET, body)
    ok = valid("primary", "hmac-sha256-hex", None)

    def vec(
        stem: str,
        description: str,
        expected: Json,
        *,
        hdrs: list[list[str]] | None = None,
        body_: str = body,
        secrets_: list[Json] | None = None,
        now: int = HMAC_NOW,
        options: Json | None = None,
    ) -> None:
        w.write(
            provider,
            f"{short}-{stem}",
            {
                "provider": provider,
                "description": description,
                "origin": "derived: HMAC-SHA256 hex of the raw body, per the provider docs",
                "source": {
                    "secrets": secrets_ or secrets(("primary", HMAC_SECRET)),
                    "public_keys": [],
                    "options": options or {},
                    "tolerance_seconds": 300,
                },
                "headers": hdrs if hdrs is not None else [[header, sig]],
                "body": body_,
                "now": now,
                "expected": expected,
            },
        )

    vec(
        "valid",
        "a signed sample payload",
        {**ok, "normalize": {"job_id": job_id, "status": "succeeded"}},
    )
    vec(
        "wrong-secret",
        "another secret",
        invalid("signature_mismatch"),
        secrets_=secrets(("p", HMAC_OTHER_SECRET)),
    )
    vec(
        "tampered-body",
        "body with one more space",
        invalid("signature_mismatch"),
        body_=body.replace(": ", ":  ", 1),
    )
    vec(
        "sha256-prefix",
        "GitHub-style 'sha256=' prefix",
        invalid("malformed_header"),
        hdrs=[[header, "sha256=" + sig]],
    )
    vec("odd-length-hex", "63 hex digits", invalid("malformed_header"), hdrs=[[header, sig[:-1]]])
    vec(
        "short-hex",
        "62 hex digits (31 bytes)",
        invalid("malformed_header"),
        hdrs=[[header, sig[:-2]]],
    )
    vec("non-hex", "64 characters, not hex", invalid("malformed_header"), hdrs=[[header, "g" * 64]])
    vec("uppercase-hex", "upper-case hex is the same bytes", ok, hdrs=[[header, sig.upper()]])
    vec("missing-header", "no signature header", invalid("missing_header"), hdrs=[])
    vec("empty-header", "empty signature header", invalid("malformed_header"), hdrs=[[header, ""]])
    vec(
        "duplicate-different",
        "signature header twice, different values",
        invalid("duplicate_header"),
        hdrs=[[header, sig], [header, "0" * 64]],
    )
    vec(
        "duplicate-identical",
        "signature header twice, same value",
        ok,
        hdrs=[[header, sig], [header, sig]],
    )
    vec("lowercase-header-name", "header name in lower case", ok, hdrs=[[header.lower(), sig]])
    vec(
        "rotation-good-secret-last",
        "matching secret configured last: key_id names it",
        valid("current", "hmac-sha256-hex", None),
        secrets_=secrets(
            ("old", HMAC_OTHER_SECRET), ("older", "yet-another"), ("current", HMAC_SECRET)
        ),
    )
    vec(
        "body-timestamp-too-old",
        "authentic, but the body's own timestamp is older than max_age_seconds",
        {**ok, "normalize": {"error": "VerificationError", "reason": "timestamp_out_of_window"}},
        now=HMAC_NOW + 2 * 24 * 3600,
    )
    vec(
        "body-timestamp-max-age-option",
        "max_age_seconds=600: 15 minutes old is refused",
        {**ok, "normalize": {"error": "VerificationError", "reason": "timestamp_out_of_window"}},
        now=HMAC_NOW + 900,
        options={"max_age_seconds": 600},
    )


# Generic sources configured the way each of these senders signs: the engine must reproduce the
# official outcomes with configuration alone.
GENERIC_SCHEMES: dict[str, Json] = {
    "stripe": {
        "auth": "hmac",
        "header": "Stripe-Signature",
        "signature_format": {"signature_key": "v1", "timestamp_key": "t"},
        "signed_content": "{timestamp}.{body}",
        "timestamp": {"source": "signature_header"},
        "delivery_id": {"path": "id"},
    },
    "github": {"auth": "hmac", "header": "X-Hub-Signature-256", "prefix": "sha256="},
    "elevenlabs": {
        "auth": "hmac",
        "header": "ElevenLabs-Signature",
        "signature_format": {"signature_key": "v0", "timestamp_key": "t"},
        "signed_content": "{timestamp}.{body}",
        "timestamp": {"source": "signature_header", "max_age_seconds": 1800},
    },
}
SIGNATURE_HEADERS = {
    "stripe": "Stripe-Signature",
    "github": "X-Hub-Signature-256",
    "elevenlabs": "ElevenLabs-Signature",
}


def generic(w: Writer, official: Json) -> None:
    for provider, header in SIGNATURE_HEADERS.items():
        for v in official[provider]:
            expected: Json = {"valid": v["valid"]}
            if not v["valid"]:
                expected["reason"] = (
                    "timestamp_out_of_window"
                    if "old" in v["name"]
                    else "unsupported_signature_version"
                )
            w.write(
                "generic",
                f"generic-{provider}-{v['name']}",
                {
                    "provider": "generic",
                    "description": f"official/derived {provider} vector {v['name']!r} "
                    f"through a generic source configured like {provider}",
                    "origin": v.get("source", "research notes"),
                    "source": {
                        "secrets": secrets(("primary", v["secret"])),
                        "public_keys": [],
                        "options": {"scheme": GENERIC_SCHEMES[provider]},
                    },
                    "headers": [[header, v["header"]]],
                    "body": v["body"],
                    "now": v.get("now"),
                    "expected": expected,
                },
            )


def github(w: Writer, official: Json) -> None:
    for v in official["github"]:
        w.write(
            "github",
            f"github-{v['name']}",
            {
                "provider": "github",
                "description": f"official GitHub vector {v['name']!r} through the preset",
                "origin": v.get("source", "research notes"),
                "source": {"secrets": secrets(("primary", v["secret"])), "public_keys": []},
                "headers": [
                    ["X-Hub-Signature-256", v["header"]],
                    ["X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"],
                ],
                "body": v["body"],
                "now": v.get("now"),
                "expected": {
                    "valid": v["valid"],
                    "key_id": "primary",
                    "scheme": "github-sha256",
                    "delivery_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
                },
            },
        )


# ------------------------------------------------------------------------------ AI job presets
JOB_NOW = 1767225600  # 2026-01-01T00:00:00Z
JOB_SECRET = "wsec_tests_job_secret_0123456789"
JOB_OTHER_SECRET = "wsec_tests_some_other_secret_99"
JOB_OLD_SECRET = "wsec_tests_old_secret_01234567"


def preset_vector(
    w: Writer,
    provider: str,
    stem: str,
    description: str,
    origin: str,
    *,
    secrets_: list[Json],
    headers: list[list[str]],
    body: str,
    expected: Json,
    now: int = JOB_NOW,
    options: Json | None = None,
    request: Json | None = None,
    allow_unauthenticated: bool = False,
) -> None:
    vector: Json = {
        "provider": provider,
        "description": description,
        "origin": origin,
        "source": {"secrets": secrets_, "public_keys": [], "options": options or {}},
        "headers": headers,
        "body": body,
        "now": now,
        "expected": expected,
    }
    if request is not None:
        vector["request"] = request
    if allow_unauthenticated:
        vector["source"]["allow_unauthenticated"] = True
    w.write(provider, stem, vector)


def hmac_b64(secret: str, message: str) -> str:
    return b64(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest())


def job_body(document: Json) -> str:
    return json.dumps(document, separators=(", ", ": "))


def elevenlabs_header(secret: str, ts: int, body: str, *extra: str) -> str:
    digest = hmac.new(secret.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
    return ",".join((f"t={ts}", f"v0={digest}", *extra))


def elevenlabs(w: Writer, official: Json) -> None:
    p = "elevenlabs"
    scheme = "elevenlabs-v0"
    for v in official["elevenlabs"]:
        preset_vector(
            w,
            p,
            f"elevenlabs-official-{v['name']}",
            "the research notes' ElevenLabs vector (checked with elevenlabs construct_event) "
            "through the preset",
            v["source"],
            secrets_=secrets(("primary", v["secret"])),
            headers=[["ElevenLabs-Signature", v["header"]]],
            body=v["body"],
            now=v["now"],
            expected=valid(
                "primary",
                scheme,
                None,
                normalize={"job_id": "conv_1", "status": "succeeded"},
            ),
        )
    body = job_body(
        {
            "type": "post_call_transcription",
            "event_timestamp": JOB_NOW,
            "data": {"agent_id": "agent_1", "conversation_id": "conv_el_1", "status": "done"},
        }
    )
    good = secrets(("primary", JOB_SECRET))
    origin = "derived: HMAC-SHA256 hex over {t}.{body}, as ElevenLabs documents and its SDK checks"
    ok = valid("primary", scheme, None, normalize={"job_id": "conv_el_1", "status": "succeeded"})

    def vec(stem: str, description: str, expected: Json, **kw: Any) -> None:
        kw.setdefault("secrets_", good)
        kw.setdefault("body", body)
        kw.setdefault(
            "headers", [["ElevenLabs-Signature", elevenlabs_header(JOB_SECRET, JOB_NOW, body)]]
        )
        preset_vector(w, p, f"elevenlabs-{stem}", description, origin, expected=expected, **kw)

    vec("valid", "post_call_transcription, status done", ok)
    vec(
        "tampered-body",
        "one byte of the body changed after signing",
        invalid("signature_mismatch"),
        body=body.replace("done", "dona"),
    )
    vec(
        "wrong-secret",
        "signed with another secret",
        invalid("signature_mismatch"),
        secrets_=secrets(("primary", JOB_OTHER_SECRET)),
    )
    vec(
        "boundary-old-1800",
        "exactly 30 minutes old: accepted (the SDK's window)",
        ok,
        now=JOB_NOW + 1800,
    )
    vec(
        "stale-1801",
        "30 minutes and one second old",
        invalid("timestamp_out_of_window"),
        now=JOB_NOW + 1801,
    )
    vec(
        "future-301",
        "301 s ahead: refused here, though the SDK accepts any future timestamp",
        invalid("timestamp_out_of_window"),
        now=JOB_NOW - 301,
    )
    vec(
        "rotation-good-secret-last",
        "two configured secrets, the delivery signed with the second",
        valid("current", scheme, None),
        secrets_=secrets(("old", JOB_OLD_SECRET), ("current", JOB_SECRET)),
    )
    vec(
        "two-v0-good-first",
        "two v0 pairs, the valid one first: accepted (the SDK reads only the last v0)",
        ok,
        headers=[
            ["ElevenLabs-Signature", elevenlabs_header(JOB_SECRET, JOB_NOW, body, "v0=" + "0" * 64)]
        ],
    )
    vec("missing-header", "no ElevenLabs-Signature", invalid("missing_header"), headers=[])
    vec(
        "no-timestamp",
        "a v0 pair but no t",
        invalid("missing_header"),
        headers=[["ElevenLabs-Signature", "v0=" + hmac_hex(JOB_SECRET, body)]],
    )
    vec(
        "v0-not-hex",
        "the v0 value is not hex: in a header of pairs, an unreadable entry is not a match",
        invalid("signature_mismatch"),
        headers=[["ElevenLabs-Signature", f"t={JOB_NOW},v0=zz{'0' * 62}"]],
    )
    vec(
        "v1-only",
        "a signature under an unknown key only",
        invalid("unsupported_signature_version"),
        headers=[["ElevenLabs-Signature", f"t={JOB_NOW},v1={hmac_hex(JOB_SECRET, body)}"]],
    )
    failure = job_body(
        {
            "type": "call_initiation_failure",
            "event_timestamp": JOB_NOW,
            "data": {
                "agent_id": "agent_1",
                "conversation_id": "conv_el_2",
                "failure_reason": "busy",
            },
        }
    )
    vec(
        "call-initiation-failure",
        "a call that never started is a failed job",
        valid("primary", scheme, None, normalize={"job_id": "conv_el_2", "status": "failed"}),
        body=failure,
        headers=[["ElevenLabs-Signature", elevenlabs_header(JOB_SECRET, JOB_NOW, failure)]],
    )


def token_set(
    w: Writer,
    provider: str,
    *,
    header: str,
    prefix: str,
    body: str,
    job_id: str,
    status: str,
    origin: str,
    malformed: tuple[str, str] | None = None,
) -> None:
    """Vectors for a static header token: the token, not the body, is what is checked."""
    ok = valid("primary", "static-header", None, normalize={"job_id": job_id, "status": status})
    good = secrets(("primary", JOB_SECRET))

    def vec(stem: str, description: str, expected: Json, **kw: Any) -> None:
        kw.setdefault("secrets_", good)
        kw.setdefault("body", body)
        kw.setdefault("headers", [[header, prefix + JOB_SECRET]])
        preset_vector(
            w, provider, f"{provider}-{stem}", description, origin, expected=expected, **kw
        )

    vec("valid", f"the configured token in {header}", ok)
    vec(
        "body-changed-still-valid",
        "the body is not covered by anything: a changed body with the right token is accepted",
        valid("primary", "static-header", None),
        body=body.replace(job_id, job_id + "-x"),
    )
    vec(
        "wrong-token",
        "another token",
        invalid("token_mismatch"),
        headers=[[header, prefix + JOB_OTHER_SECRET]],
    )
    vec(
        "rotation-good-token-last",
        "two tokens configured, the second sent",
        valid("current", "static-header", None),
        secrets_=secrets(("old", JOB_OLD_SECRET), ("current", JOB_SECRET)),
    )
    vec("missing-header", f"no {header}", invalid("missing_header"), headers=[])
    vec(
        "duplicate-header",
        f"{header} twice with different values",
        invalid("duplicate_header"),
        headers=[[header, prefix + JOB_SECRET], [header, prefix + JOB_OTHER_SECRET]],
    )
    if malformed is not None:
        vec(
            "malformed-header",
            malformed[0],
            invalid("malformed_header"),
            headers=[[header, malformed[1]]],
        )


def assemblyai(w: Writer) -> None:
    body = job_body({"transcript_id": "5552493-16d8-42d8-8feb-c2a16b56f6e8", "status": "completed"})
    origin = "derived: the documented webhook body {transcript_id, status}"
    token_set(
        w,
        "assemblyai",
        header="X-AssemblyAI-Webhook-Token",
        prefix="",
        body=body,
        job_id="5552493-16d8-42d8-8feb-c2a16b56f6e8",
        status="succeeded",
        origin=origin,
        malformed=("an empty header value", " "),
    )
    preset_vector(
        w,
        "assemblyai",
        "assemblyai-custom-header-name",
        "the header name chosen with webhook_auth_header_name, set with scheme.header",
        origin,
        secrets_=secrets(("primary", JOB_SECRET)),
        options={"scheme": {"header": "X-My-Transcripts"}},
        headers=[["X-My-Transcripts", JOB_SECRET]],
        body=job_body({"transcript_id": "t_err", "status": "error"}),
        expected=valid(
            "primary", "static-header", None, normalize={"job_id": "t_err", "status": "failed"}
        ),
    )


def leonardo(w: Writer) -> None:
    body = job_body(
        {
            "type": "image_generation.complete",
            "object": "generation",
            "timestamp": JOB_NOW * 1000,
            "api_version": "v1",
            "data": {
                "object": {
                    "id": "f0c1a3a8-3d44-4c1e-9a36-1b4e1c2d3e4f",
                    "status": "COMPLETE",
                    "images": [
                        {
                            "id": "img_1",
                            "url": "https://cdn.leonardo.ai/users/u/generations/g/0.jpg",
                        }
                    ],
                }
            },
        }
    )
    token_set(
        w,
        "leonardo",
        header="Authorization",
        prefix="Bearer ",
        body=body,
        job_id="f0c1a3a8-3d44-4c1e-9a36-1b4e1c2d3e4f",
        status="succeeded",
        origin="derived: the documented image_generation.complete body, bearer callback key",
        malformed=("a token without the Bearer scheme", "Token " + JOB_SECRET),
    )


def piapi(w: Writer, provider: str) -> None:
    body = job_body(
        {
            "timestamp": 1724511853,
            "data": {
                "task_id": "58cb41b7-556d-46c0-b82e-1e116aa1a31a",
                "model": "luma",
                "task_type": "video_generation",
                "status": "completed",
                "config": {
                    "webhook_config": {
                        "endpoint": "https://webhook.site/xxxxx",
                        "secret": JOB_SECRET,
                    }
                },
                "output": {"video": {"url": "https://storage.cdn-luma.com/dream_machine/v.mp4"}},
                "error": {"code": 0, "raw_message": "", "message": "", "detail": None},
            },
        }
    )
    token_set(
        w,
        provider,
        header="x-webhook-secret",
        prefix="",
        body=body,
        job_id="58cb41b7-556d-46c0-b82e-1e116aa1a31a",
        status="succeeded",
        origin="provider's published example (piapi.ai unified webhook), secret replaced",
        malformed=("an empty header value", " "),
    )


def deepgram(w: Writer) -> None:
    p = "deepgram"
    body = job_body(
        {
            "metadata": {
                "request_id": "a847f427-4ad5-4d67-9b95-db801e58251c",
                "created": "2026-01-01T00:00:00.000Z",
                "duration": 25.9,
                "channels": 1,
            },
            "results": {
                "channels": [{"alternatives": [{"transcript": "hello", "confidence": 0.99}]}]
            },
        }
    )
    creds = "dg-user:" + JOB_SECRET
    good = secrets(("primary", creds))
    origin = (
        "derived: the documented pre-recorded response, Basic credentials from the callback URL"
    )
    ok = valid(
        "primary",
        "basic",
        None,
        normalize={"job_id": "a847f427-4ad5-4d67-9b95-db801e58251c", "status": "succeeded"},
    )

    def vec(stem: str, description: str, expected: Json, **kw: Any) -> None:
        kw.setdefault("secrets_", good)
        kw.setdefault("body", body)
        kw.setdefault("headers", [["Authorization", "Basic " + b64(creds.encode())]])
        preset_vector(
            w, p, f"deepgram-{stem}", description, kw.pop("origin", origin), expected=expected, **kw
        )

    vec("valid", "user:password from https://user:password@host/... in the callback URL", ok)
    vec(
        "wrong-password",
        "another password",
        invalid("token_mismatch"),
        headers=[["Authorization", "Basic " + b64(b"dg-user:" + JOB_OTHER_SECRET.encode())]],
    )
    vec(
        "rotation-good-credentials-last",
        "two credentials configured, the second sent",
        valid("current", "basic", None),
        secrets_=secrets(("old", "dg-user:" + JOB_OLD_SECRET), ("current", creds)),
    )
    vec("missing-authorization", "no Authorization header", invalid("missing_header"), headers=[])
    vec(
        "not-basic",
        "a bearer token instead of Basic",
        invalid("malformed_header"),
        headers=[["Authorization", "Bearer " + JOB_SECRET]],
    )
    vec(
        "basic-not-base64",
        "Basic credentials that are not base64",
        invalid("malformed_header"),
        headers=[["Authorization", "Basic !!!"]],
    )
    vec(
        "old-dg-token-refused",
        "only the retired dg-token header",
        invalid("missing_header"),
        headers=[["dg-token", "key-identifier"]],
    )
    failure = job_body(
        {
            "err_code": "Bad Request",
            "err_msg": "Bad Request: failed to process audio",
            "request_id": "b2f0e1c4-5d6e-4f70-8a9b-0c1d2e3f4a5b",
        }
    )
    vec(
        "error-body",
        "an error body (Deepgram's REST error shape) is a failed job",
        valid(
            "primary",
            "basic",
            None,
            normalize={"job_id": "b2f0e1c4-5d6e-4f70-8a9b-0c1d2e3f4a5b", "status": "failed"},
        ),
        body=failure,
        origin="derived (unconfirmed shape): Deepgram's REST error body",
    )
    with_secret = job_body(
        {
            "metadata": {
                "request_id": "c3d4e5f6-0718-4293-a4b5-c6d7e8f90a1b",
                "extra": {"callback_secret": JOB_SECRET},
            },
            "results": {"channels": []},
        }
    )
    override = {"scheme": {"auth": "body_token", "body_path": "metadata.extra.callback_secret"}}
    vec(
        "callback-secret-in-body",
        "extra=callback_secret:X, returned at metadata.extra.callback_secret",
        valid(
            "primary",
            "body-token",
            None,
            normalize={"job_id": "c3d4e5f6-0718-4293-a4b5-c6d7e8f90a1b", "status": "succeeded"},
        ),
        secrets_=good_token(),
        options=override,
        body=with_secret,
        headers=[],
    )
    vec(
        "callback-secret-wrong",
        "another callback_secret",
        invalid("token_mismatch"),
        secrets_=secrets(("primary", JOB_OTHER_SECRET)),
        options=override,
        body=with_secret,
        headers=[],
    )
    vec(
        "callback-secret-missing",
        "no callback_secret in the body",
        invalid("missing_token"),
        secrets_=good_token(),
        options=override,
        body=body,
        headers=[],
    )


def good_token() -> list[Json]:
    return secrets(("primary", JOB_SECRET))


def path_token_set(
    w: Writer, provider: str, *, body: str, job_id: str, status: str, origin: str
) -> None:
    ok = valid("primary", "path-token", None, normalize={"job_id": job_id, "status": status})

    def vec(stem: str, description: str, expected: Json, **kw: Any) -> None:
        kw.setdefault("secrets_", good_token())
        kw.setdefault("body", body)
        kw.setdefault("request", {"path_token": JOB_SECRET})
        preset_vector(
            w,
            provider,
            f"{provider}-{stem}",
            description,
            origin,
            headers=[],
            expected=expected,
            **kw,
        )

    vec("valid", "POST /webhooks/<source>/<token> with the configured token", ok)
    vec(
        "wrong-token",
        "another token in the path",
        invalid("token_mismatch"),
        request={"path_token": JOB_OTHER_SECRET},
    )
    vec(
        "rotation-good-token-last",
        "two tokens configured, the second in the path",
        valid("current", "path-token", None),
        secrets_=secrets(("old", JOB_OLD_SECRET), ("current", JOB_SECRET)),
    )
    vec(
        "missing-token",
        "POST /webhooks/<source> without a token",
        invalid("missing_token"),
        request={},
    )
    vec(
        "body-changed-still-valid",
        "nothing covers the body: re-fetch the job before trusting it",
        valid("primary", "path-token", None),
        body=body.replace(job_id, job_id + "-x"),
    )


def luma(w: Writer) -> None:
    body = job_body(
        {
            "id": "7d52f1d2-4f6a-4b8e-9c1d-2e3f4a5b6c7d",
            "generation_type": "video",
            "state": "completed",
            "failure_reason": None,
            "created_at": "2026-01-01T00:00:00.000Z",
            "assets": {"video": "https://storage.cdn-luma.com/dream_machine/v.mp4"},
        }
    )
    origin = "derived: the documented Generation object"
    path_token_set(
        w,
        "luma",
        body=body,
        job_id="7d52f1d2-4f6a-4b8e-9c1d-2e3f4a5b6c7d",
        status="succeeded",
        origin=origin,
    )
    dreaming = body.replace('"completed"', '"dreaming"')
    preset_vector(
        w,
        "luma",
        "luma-dreaming",
        "state dreaming is a running job",
        origin,
        secrets_=good_token(),
        headers=[],
        body=dreaming,
        request={"path_token": JOB_SECRET},
        expected=valid(
            "primary",
            "path-token",
            None,
            normalize={"job_id": "7d52f1d2-4f6a-4b8e-9c1d-2e3f4a5b6c7d", "status": "running"},
        ),
    )
    preset_vector(
        w,
        "luma",
        "luma-unauthenticated-override",
        "scheme.auth none (allow_unauthenticated in production): accepted with no token",
        origin,
        secrets_=[],
        headers=[],
        body=body,
        options={"scheme": {"auth": "none"}},
        allow_unauthenticated=True,
        expected=valid("none", "none", None),
    )


def runpod(w: Writer) -> None:
    body = job_body(
        {
            "delayTime": 2342,
            "executionTime": 11580,
            "id": "sync-1b3c5d7e-9f0a-4b2c",
            "output": {"text": "done"},
            "status": "COMPLETED",
            "workerId": "w1",
        }
    )
    path_token_set(
        w,
        "runpod",
        body=body,
        job_id="sync-1b3c5d7e-9f0a-4b2c",
        status="succeeded",
        origin="derived: the documented /status/{id} result",
    )
    cancelled = body.replace("COMPLETED", "CANCELLED")
    preset_vector(
        w,
        "runpod",
        "runpod-cancelled",
        "CANCELLED is a canceled job",
        "derived: the documented /status/{id} result",
        secrets_=good_token(),
        headers=[],
        body=cancelled,
        request={"path_token": JOB_SECRET},
        expected=valid(
            "primary",
            "path-token",
            None,
            normalize={"job_id": "sync-1b3c5d7e-9f0a-4b2c", "status": "canceled"},
        ),
    )


def baseten(w: Writer) -> None:
    p = "baseten"
    scheme = "baseten-v1"
    body = job_body(
        {
            "request_id": "9876543210abcdef1234567890fedcba",
            "model_id": "my_model_id",
            "deployment_id": "my_deployment_id",
            "type": "async_request_completed",
            "time": "2026-01-01T00:00:00.000000Z",
            "data": {"my_model_output": "hello world"},
            "errors": [],
        }
    )
    request_id = "0192f4a7-9c1d-7e3f-8a5b-6c7d8e9f0a1b"
    good = good_token()
    origin = "derived: HMAC-SHA256 hex of the async predict result, v1= prefix (docs.baseten.co)"
    ok = valid(
        "primary",
        scheme,
        request_id,
        normalize={"job_id": "9876543210abcdef1234567890fedcba", "status": "succeeded"},
    )

    def hdrs(sig: str) -> list[list[str]]:
        return [["X-BASETEN-SIGNATURE", sig], ["X-BASETEN-REQUEST-ID", request_id]]

    def vec(stem: str, description: str, expected: Json, **kw: Any) -> None:
        kw.setdefault("secrets_", good)
        kw.setdefault("body", body)
        kw.setdefault("headers", hdrs("v1=" + hmac_hex(JOB_SECRET, kw["body"])))
        preset_vector(w, p, f"baseten-{stem}", description, origin, expected=expected, **kw)

    vec("valid", "one v1 signature, result time now", ok)
    vec(
        "tampered-body",
        "the body changed after signing",
        invalid("signature_mismatch"),
        headers=hdrs("v1=" + hmac_hex(JOB_SECRET, body)),
        body=body.replace("hello", "jello"),
    )
    vec(
        "wrong-secret",
        "signed with another secret",
        invalid("signature_mismatch"),
        secrets_=secrets(("primary", JOB_OTHER_SECRET)),
    )
    vec(
        "rotation-two-signatures",
        "during a rotation: v1=new,v1=old, only the old one configured",
        valid("old", scheme, request_id),
        secrets_=secrets(("old", JOB_OLD_SECRET)),
        headers=hdrs(f"v1={hmac_hex(JOB_SECRET, body)},v1={hmac_hex(JOB_OLD_SECRET, body)}"),
    )
    vec(
        "stale-301",
        "the signed result time is 301 s old",
        invalid("timestamp_out_of_window"),
        now=JOB_NOW + 301,
    )
    vec(
        "future-301",
        "the signed result time is 301 s ahead",
        invalid("timestamp_out_of_window"),
        now=JOB_NOW - 301,
    )
    vec(
        "missing-signature",
        "no X-BASETEN-SIGNATURE",
        invalid("missing_header"),
        headers=[["X-BASETEN-REQUEST-ID", request_id]],
    )
    vec(
        "missing-request-id",
        "no X-BASETEN-REQUEST-ID",
        invalid("missing_header"),
        headers=[["X-BASETEN-SIGNATURE", "v1=" + hmac_hex(JOB_SECRET, body)]],
    )
    vec(
        "no-v1-prefix",
        "a bare hex signature without v1=",
        invalid("malformed_header"),
        headers=hdrs(hmac_hex(JOB_SECRET, body)),
    )
    vec(
        "signature-not-hex",
        "v1= followed by something that is not hex: an unreadable entry is not a match",
        invalid("signature_mismatch"),
        headers=hdrs("v1=" + "x" * 64),
    )
    failed = body.replace(
        '"errors": []', '"errors": [{"code": "MODEL_PREDICT_ERROR", "message": "boom"}]'
    )
    vec(
        "errors-is-failed",
        "a result with errors is a failed job",
        valid(
            "primary",
            scheme,
            request_id,
            normalize={"job_id": "9876543210abcdef1234567890fedcba", "status": "failed"},
        ),
        body=failed,
    )


def kie(w: Writer) -> None:
    p = "kie"
    scheme = "kie-task-timestamp"
    task = "ee603959-debb-48d1-98c4-a6d1c717eba6"
    body = job_body(
        {
            "code": 200,
            "msg": "success",
            "data": {
                "task_id": task,
                "callbackType": "complete",
                "video_url": "https://tempfile.aiquickdraw.com/v.mp4",
            },
        }
    )
    good = good_token()
    origin = (
        "derived: base64(HMAC-SHA256(taskId + '.' + timestamp)), per docs.kie.ai webhook "
        "verification"
    )
    ok = valid("primary", scheme, None, normalize={"job_id": task, "status": "succeeded"})

    def hdrs(sig: str, ts: str = str(JOB_NOW)) -> list[list[str]]:
        return [["X-Webhook-Timestamp", ts], ["X-Webhook-Signature", sig]]

    def vec(stem: str, description: str, expected: Json, **kw: Any) -> None:
        kw.setdefault("secrets_", good)
        kw.setdefault("body", body)
        kw.setdefault("headers", hdrs(hmac_b64(JOB_SECRET, f"{task}.{JOB_NOW}")))
        preset_vector(w, p, f"kie-{stem}", description, origin, expected=expected, **kw)

    vec("valid", "data.task_id and the timestamp header, signed", ok)
    vec(
        "body-changed-still-valid",
        "the body is NOT covered: the same signature with a different body is accepted",
        valid("primary", scheme, None, normalize={"job_id": task, "status": "failed"}),
        body=body.replace('"code": 200', '"code": 500'),
    )
    vec(
        "other-task-id",
        "the body names another task",
        invalid("signature_mismatch"),
        body=body.replace(task, "ffffffff-debb-48d1-98c4-a6d1c717eba6"),
    )
    vec(
        "wrong-secret",
        "signed with another key",
        invalid("signature_mismatch"),
        secrets_=secrets(("primary", JOB_OTHER_SECRET)),
    )
    vec(
        "rotation-good-secret-last",
        "two keys configured, signed with the second",
        valid("current", scheme, None),
        secrets_=secrets(("old", JOB_OLD_SECRET), ("current", JOB_SECRET)),
    )
    vec(
        "stale-301",
        "the timestamp is 301 s old",
        invalid("timestamp_out_of_window"),
        now=JOB_NOW + 301,
    )
    vec(
        "future-301",
        "the timestamp is 301 s ahead",
        invalid("timestamp_out_of_window"),
        now=JOB_NOW - 301,
    )
    vec(
        "missing-timestamp",
        "no X-Webhook-Timestamp",
        invalid("missing_header"),
        headers=[["X-Webhook-Signature", hmac_b64(JOB_SECRET, f"{task}.{JOB_NOW}")]],
    )
    vec(
        "signature-not-base64",
        "a hex signature instead of base64",
        invalid("malformed_header"),
        headers=hdrs(hmac_hex(JOB_SECRET, f"{task}.{JOB_NOW}")),
    )
    vec(
        "timestamp-milliseconds",
        "a millisecond timestamp is not the documented seconds: 13 digits are not seconds",
        invalid("malformed_header"),
        headers=hdrs(hmac_b64(JOB_SECRET, f"{task}.{JOB_NOW * 1000}"), str(JOB_NOW * 1000)),
    )
    vec(
        "no-task-id",
        "a body without data.task_id cannot be checked",
        invalid("malformed_body"),
        body=job_body({"code": 200, "msg": "success", "data": {}}),
    )
    market = job_body(
        {
            "code": 200,
            "msg": "ok",
            "data": {
                "taskId": "task_google_1765172332800",
                "state": "fail",
                "failCode": "500",
                "failMsg": "Internal error",
            },
        }
    )
    vec(
        "market-task-failed",
        "a Market task (data.taskId, data.state fail)",
        valid(
            "primary",
            scheme,
            None,
            normalize={"job_id": "task_google_1765172332800", "status": "failed"},
        ),
        body=market,
        headers=hdrs(hmac_b64(JOB_SECRET, f"task_google_1765172332800.{JOB_NOW}")),
    )


def standard_webhooks_preset(
    w: Writer, official: Json, provider: str, job_body_: str, job_id: str
) -> None:
    """The official Standard Webhooks vectors and derived ones through a preset of the engine."""
    scheme = "standard-webhooks-v1"
    reasons = {
        "tampered-last-char": "signature_mismatch",
        "wrong-version": "unsupported_signature_version",
        "garbage-sig": "signature_mismatch",  # as the code adapter: unreadable entries do not match
        "too-old": "timestamp_out_of_window",
        "too-new": "timestamp_out_of_window",
    }
    for v in official["standard_webhooks"]:
        if v["name"].startswith("unpadded"):
            continue
        expected = (
            valid("primary", scheme, v["id"], normalize={"passthrough": True, "event_type": None})
            if v["valid"]
            else invalid(reasons[v["name"]])
        )
        preset_vector(
            w,
            provider,
            f"{provider}-sw-{v['name'].removeprefix('official-')}",
            f"official Standard Webhooks vector {v['name']!r} through the {provider} preset "
            "(not a job: published as a passthrough)",
            f"official: {v['source']}",
            secrets_=secrets(("primary", v["secret"])),
            headers=sw_headers(v["signature"], v["id"], v["ts"]),
            body=v["body"],
            now=v["now"],
            expected=expected,
        )
    msg_id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f1W"
    origin = "derived: Standard Webhooks v1 over {id}.{timestamp}.{body}"
    ok = valid("primary", scheme, msg_id, normalize={"job_id": job_id, "status": "succeeded"})

    def vec(stem: str, description: str, expected: Json, **kw: Any) -> None:
        kw.setdefault("secrets_", secrets(("primary", SW_SECRET)))
        kw.setdefault("body", job_body_)
        kw.setdefault(
            "headers",
            sw_headers(sw_v1(SW_SECRET, msg_id, str(JOB_NOW), job_body_), msg_id, str(JOB_NOW)),
        )
        preset_vector(
            w, provider, f"{provider}-{stem}", description, origin, expected=expected, **kw
        )

    vec("job-valid", "a job event", ok)
    vec(
        "job-tampered",
        "the body changed after signing",
        invalid("signature_mismatch"),
        body=job_body_.replace(job_id, job_id + "x"),
    )
    vec(
        "job-wrong-secret",
        "signed with another secret",
        invalid("signature_mismatch"),
        secrets_=secrets(("primary", SW_OTHER_SECRET)),
    )
    vec(
        "job-rotation",
        "two signatures, old and new, only the new one configured second",
        valid("new", scheme, msg_id),
        secrets_=secrets(("old", SW_OLD_SECRET_1), ("new", SW_SECRET)),
        headers=sw_headers(
            sw_v1(SW_OLD_SECRET_2, msg_id, str(JOB_NOW), job_body_)
            + " "
            + sw_v1(SW_SECRET, msg_id, str(JOB_NOW), job_body_),
            msg_id,
            str(JOB_NOW),
        ),
    )
    vec("job-stale-301", "301 s old", invalid("timestamp_out_of_window"), now=JOB_NOW + 301)
    vec("job-future-301", "301 s ahead", invalid("timestamp_out_of_window"), now=JOB_NOW - 301)
    vec(
        "job-missing-id",
        "no webhook-id",
        invalid("missing_header"),
        headers=sw_headers(sw_v1(SW_SECRET, msg_id, str(JOB_NOW), job_body_), msg_id, str(JOB_NOW))[
            1:
        ],
    )
    vec(
        "job-signature-no-comma",
        "v1 without its comma",
        invalid("malformed_header"),
        headers=sw_headers(
            "v1" + sw_v1(SW_SECRET, msg_id, str(JOB_NOW), job_body_)[3:], msg_id, str(JOB_NOW)
        ),
    )


def anthropic(w: Writer, official: Json) -> None:
    body = job_body(
        {
            "id": "wevt_011CPqv",
            "type": "event",
            "created_at": "2026-01-01T00:00:00Z",
            "data": {
                "id": "drun_011CPqvTn",
                "type": "deployment_run.succeeded",
                "organization_id": "org_1",
                "workspace_id": "wrkspc_1",
            },
        }
    )
    standard_webhooks_preset(w, official, "anthropic", body, "drun_011CPqvTn")


def parallel(w: Writer, official: Json) -> None:
    body = job_body(
        {
            "timestamp": "2026-01-01T00:00:00Z",
            "type": "task_run.status",
            "data": {
                "run_id": "trun_9907962f83aa4d9d98fd7f4bf745d654",
                "status": "completed",
                "is_active": False,
                "warnings": None,
                "error": None,
                "processor": "core",
            },
        }
    )
    standard_webhooks_preset(w, official, "parallel", body, "trun_9907962f83aa4d9d98fd7f4bf745d654")


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: generate_vectors.py OFFICIAL_VECTORS.json")
    source = Path(sys.argv[1])
    official = json.loads(source.read_text(encoding="utf-8"))
    for child in HERE.iterdir():
        # The SNS and Pub/Sub folders are written by generate_asymmetric.py (RSA, google-auth).
        if child.is_dir() and child.name not in ("aws-sns", "gcp-pubsub"):
            shutil.rmtree(child)
    w = Writer(HERE)
    standard_webhooks(w, official)
    openai(w, official)
    fal(w, official)
    hmac_body(w, "abstrakt", "X-Abstrakt-Signature", ABSTRAKT_OLDER, "abc123", "abstrakt")
    hmac_body(w, "abstrakt", "X-Abstrakt-Signature", ABSTRAKT_V1, "job_abc123xyz", "abstrakt-v1")
    hmac_body(
        w, "instantapi", "X-InstantAPI-Signature", INSTANTAPI_COMPLETED, "task_9f8e7d", "instantapi"
    )
    generic(w, official)
    github(w, official)
    elevenlabs(w, official)
    assemblyai(w)
    deepgram(w)
    leonardo(w)
    piapi(w, "piapi")
    piapi(w, "goapi")
    luma(w)
    baseten(w)
    runpod(w)
    kie(w)
    anthropic(w, official)
    parallel(w, official)
    print(f"wrote {len(w.stems)} vectors")


if __name__ == "__main__":
    main()
