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


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: generate_vectors.py OFFICIAL_VECTORS.json")
    source = Path(sys.argv[1])
    official = json.loads(source.read_text(encoding="utf-8"))
    for child in HERE.iterdir():
        if child.is_dir():
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
    print(f"wrote {len(w.stems)} vectors")


if __name__ == "__main__":
    main()
