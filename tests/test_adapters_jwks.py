"""``Ed25519KeySet``: static keys plus JWKS documents, cached, refetched once, rate-limited."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from nacl.signing import SigningKey

from adapters import ConfigError, NamedKey, TemporaryError
from adapters.primitives.jwks import (
    MAX_AGE_LIMIT_SECONDS,
    Ed25519KeySet,
    KeyMatch,
    ed25519_key_from_text,
    parse_jwks,
)
from tests.helpers_adapters import (
    FAL_KEY,
    FAL_X,
    FakeClock,
    FakeFetcher,
    jwk,
    jwks_bytes,
    signing_key,
)

URL = "https://keys.example/.well-known/jwks.json"
OLD = signing_key("tests: jwks old key")
NEW = signing_key("tests: jwks new key")
MESSAGE = b"request\nuser\n1752019770\ndigest"


def sig(key: SigningKey, message: bytes = MESSAGE) -> bytes:
    return key.sign(message).signature


def keyset(
    fetcher: FakeFetcher | None,
    clock: FakeClock,
    *,
    static: tuple[NamedKey, ...] = (),
    urls: tuple[str, ...] = (URL,),
    min_refresh: float = 60.0,
    max_age: int = MAX_AGE_LIMIT_SECONDS,
    reports: list[str] | None = None,
) -> Ed25519KeySet:
    return Ed25519KeySet(
        static,
        urls,
        fetcher,
        max_age_seconds=max_age,
        min_refresh_seconds=min_refresh,
        clock=clock,
        on_refresh=reports.append if reports is not None else None,
    )


# ------------------------------------------------------------------------------ configuration
def test_static_keys_need_no_fetcher() -> None:
    keys = keyset(None, FakeClock(), static=(NamedKey("k1", FAL_X),), urls=())
    assert keys.loaded()
    assert not keys.uses_jwks


async def test_static_key_verifies() -> None:
    keys = keyset(None, FakeClock(), static=(NamedKey("k1", FAL_X),), urls=())
    assert await keys.verify(MESSAGE, sig(FAL_KEY)) == KeyMatch("k1")
    assert await keys.verify(MESSAGE, sig(OLD)) is None


@pytest.mark.parametrize(
    ("static", "urls", "fetcher", "reason"),
    [
        ((), (URL,), None, "no_fetcher"),
        ((), (), None, "no_keys"),
        ((NamedKey("bad", "not a key"),), (), None, "invalid_public_key"),
        (
            (NamedKey("short", base64.b64encode(bytes(31)).decode()),),
            (),
            None,
            "invalid_public_key",
        ),
    ],
)
def test_configuration_errors(
    static: tuple[NamedKey, ...], urls: tuple[str, ...], fetcher: FakeFetcher | None, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        keyset(fetcher, FakeClock(), static=static, urls=urls)
    assert caught.value.reason == reason


# ------------------------------------------------------------------------------- key encodings
def test_key_text_encodings() -> None:
    raw = bytes(FAL_KEY.verify_key)
    for text in (
        FAL_X,  # base64url without padding (a standard JWK x)
        FAL_X + "=",  # padded, as fal's sample expects
        base64.b64encode(raw).decode(),  # standard alphabet
        raw.hex(),
        raw.hex().upper(),
    ):
        key = ed25519_key_from_text(text)
        assert key is not None, text
        assert bytes(key) == raw
    for junk in ("", "x", "!!!!", base64.b64encode(bytes(33)).decode(), "ab" * 31):
        assert ed25519_key_from_text(junk) is None, junk


def test_parse_jwks_skips_unusable_keys() -> None:
    doc = {
        "keys": [
            {"kty": "RSA", "n": "...", "e": "AQAB", "kid": "rsa"},
            {"kty": "OKP", "crv": "X25519", "x": FAL_X, "kid": "x25519"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "no-x"},
            {"kty": "OKP", "crv": "Ed25519", "x": "short", "kid": "bad-x"},
            "not an object",
            {"x": FAL_X},  # kty/crv default to OKP/Ed25519; no kid -> positional name
            jwk(NEW, "new"),
        ]
    }
    parsed = parse_jwks(json.dumps(doc).encode())
    assert [kid for kid, _ in parsed] == ["jwks[5]", "new"]


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b'{"keys": {}}', b'{"keys": null}', b"\xff", b'"keys"']
)
def test_parse_jwks_of_garbage_is_empty(body: bytes) -> None:
    assert parse_jwks(body) == ()


# --------------------------------------------------------------------------------- JWKS cache
async def test_jwks_is_cached() -> None:
    fetcher = FakeFetcher().serve(URL, jwks_bytes(jwk(OLD, "old")))
    keys = keyset(fetcher, FakeClock())
    assert not keys.loaded()
    for _ in range(3):
        assert await keys.verify(MESSAGE, sig(OLD)) == KeyMatch("old")
    assert fetcher.calls == [URL]
    assert keys.loaded()


async def test_unknown_signature_refetches_once_and_finds_a_rotated_key() -> None:
    clock = FakeClock()
    fetcher = FakeFetcher().serve(
        URL, jwks_bytes(jwk(OLD, "old")), jwks_bytes(jwk(OLD, "old"), jwk(NEW, "new"))
    )
    keys = keyset(fetcher, clock)
    assert await keys.verify(MESSAGE, sig(OLD)) == KeyMatch("old")
    clock.advance(61)
    assert await keys.verify(MESSAGE, sig(NEW)) == KeyMatch("new")
    assert len(fetcher.calls) == 2
    assert await keys.verify(MESSAGE, sig(NEW)) == KeyMatch("new")  # now cached
    assert len(fetcher.calls) == 2


async def test_refetch_is_rate_limited() -> None:
    clock = FakeClock()
    fetcher = FakeFetcher().serve(URL, jwks_bytes(jwk(OLD, "old")))
    keys = keyset(fetcher, clock, min_refresh=60)
    assert await keys.verify(MESSAGE, sig(OLD)) is not None
    clock.advance(61)
    assert await keys.verify(MESSAGE, sig(NEW)) is None  # one refetch, still unknown
    assert len(fetcher.calls) == 2
    clock.advance(30)
    assert await keys.verify(MESSAGE, sig(NEW)) is None  # within min_refresh: no refetch
    assert len(fetcher.calls) == 2
    clock.advance(31)
    assert await keys.verify(MESSAGE, sig(NEW)) is None  # allowed again
    assert len(fetcher.calls) == 3


async def test_force_refresh_ignores_the_rate_limit() -> None:
    fetcher = FakeFetcher().serve(URL, jwks_bytes(jwk(OLD, "old")))
    keys = keyset(fetcher, FakeClock(tick=0.001))
    assert await keys.refresh(force=True)
    assert await keys.refresh() is False
    assert await keys.refresh(force=True)
    assert len(fetcher.calls) == 2


async def test_concurrent_first_verifies_share_one_fetch() -> None:
    fetcher = FakeFetcher(gate=asyncio.Event()).serve(URL, jwks_bytes(jwk(OLD, "old")))
    keys = keyset(fetcher, FakeClock(tick=0.001))
    tasks = [asyncio.create_task(keys.verify(MESSAGE, sig(OLD))) for _ in range(5)]
    await asyncio.sleep(0)
    assert fetcher.gate is not None
    fetcher.gate.set()
    assert await asyncio.gather(*tasks) == [KeyMatch("old")] * 5
    assert fetcher.calls == [URL]


async def test_concurrent_deliveries_during_a_rotation_all_see_the_new_key() -> None:
    """Two deliveries signed with a new key arrive together; one refetch serves both.

    BUG (adapters/primitives/jwks.py, ``refresh``): the second caller waits on the lock while
    the first fetches, then compares ``_last_attempt >= attempt_started``. With a real
    monotonic clock ``attempt_started`` was read *after* the first caller stamped
    ``_last_attempt``, so the check fails, the rate limit answers ``False`` and ``verify``
    never retries with the key set that was just installed: the second delivery is refused.
    """
    clock = FakeClock(tick=0.001)  # every reading advances, like time.monotonic
    fetcher = FakeFetcher().serve(
        URL, jwks_bytes(jwk(OLD, "old")), jwks_bytes(jwk(OLD, "old"), jwk(NEW, "new"))
    )
    keys = keyset(fetcher, clock)
    assert await keys.refresh(force=True)
    clock.advance(120)
    fetcher.gate = asyncio.Event()
    first = asyncio.create_task(keys.verify(MESSAGE, sig(NEW)))
    second = asyncio.create_task(keys.verify(MESSAGE, sig(NEW)))
    await asyncio.sleep(0)
    fetcher.gate.set()
    assert await first == KeyMatch("new")
    assert await second == KeyMatch("new")
    assert len(fetcher.calls) == 2


# ------------------------------------------------------------------------- failures and expiry
@pytest.mark.parametrize(
    "broken",
    [
        b"<html>502</html>",
        b'{"keys": []}',
        jwks_bytes({"kty": "RSA", "n": "x", "e": "AQAB"}),
        ConnectionError("down"),
    ],
    ids=["not-json", "empty", "no-usable-key", "fetch-error"],
)
async def test_broken_jwks_does_not_replace_a_good_set(broken: bytes | Exception) -> None:
    clock = FakeClock()
    reports: list[str] = []
    fetcher = FakeFetcher().serve(URL, jwks_bytes(jwk(OLD, "old")), broken)
    keys = keyset(fetcher, clock, reports=reports)
    assert await keys.verify(MESSAGE, sig(OLD)) == KeyMatch("old")
    clock.advance(61)
    assert await keys.refresh() is False
    assert await keys.verify(MESSAGE, sig(OLD)) == KeyMatch("old")
    assert reports == ["ok", "error" if isinstance(broken, Exception) else "empty"]


async def test_fetch_failure_with_no_keys_is_temporary() -> None:
    reports: list[str] = []
    fetcher = FakeFetcher().serve(URL, ConnectionError("down"))
    keys = keyset(fetcher, FakeClock(), reports=reports)
    with pytest.raises(TemporaryError) as caught:
        await keys.verify(MESSAGE, sig(OLD))
    assert caught.value.reason == "keys_unavailable"
    assert caught.value.status == 503
    assert reports == ["error"]
    assert not keys.loaded()


async def test_fetch_failure_with_static_keys_is_a_mismatch_not_an_outage() -> None:
    fetcher = FakeFetcher().serve(URL, ConnectionError("down"))
    keys = keyset(fetcher, FakeClock(), static=(NamedKey("static", FAL_X),))
    assert await keys.verify(MESSAGE, sig(FAL_KEY)) == KeyMatch("static")
    assert await keys.verify(MESSAGE, sig(OLD)) is None


async def test_one_failing_url_does_not_hide_the_other() -> None:
    other = "https://rest.fal.ai/.well-known/jwks.json"
    fetcher = (
        FakeFetcher().serve(URL, ConnectionError("down")).serve(other, jwks_bytes(jwk(NEW, "n")))
    )
    keys = keyset(fetcher, FakeClock(), urls=(URL, other))
    assert await keys.verify(MESSAGE, sig(NEW)) == KeyMatch("n")
    assert sorted(fetcher.calls) == sorted([URL, other])


async def test_keys_from_several_urls_are_merged() -> None:
    other = "https://rest.fal.ai/.well-known/jwks.json"
    fetcher = (
        FakeFetcher().serve(URL, jwks_bytes(jwk(OLD, "a"))).serve(other, jwks_bytes(jwk(NEW, "b")))
    )
    keys = keyset(fetcher, FakeClock(), urls=(URL, other))
    assert await keys.verify(MESSAGE, sig(OLD)) == KeyMatch("a")
    assert await keys.verify(MESSAGE, sig(NEW)) == KeyMatch("b")
    assert len(fetcher.calls) == 2


@pytest.mark.parametrize("configured", [3600, 48 * 3600])
async def test_fetched_keys_expire_after_max_age_capped_at_24h(configured: int) -> None:
    clock = FakeClock()
    fetcher = FakeFetcher().serve(URL, jwks_bytes(jwk(OLD, "old")), ConnectionError("down"))
    keys = keyset(fetcher, clock, max_age=configured)
    assert await keys.verify(MESSAGE, sig(OLD)) == KeyMatch("old")
    limit = min(configured, MAX_AGE_LIMIT_SECONDS)
    clock.advance(limit)
    assert keys.loaded()
    clock.advance(1)
    assert not keys.loaded()
    with pytest.raises(TemporaryError):
        await keys.verify(MESSAGE, sig(OLD))


async def test_expired_set_is_refetched_before_use() -> None:
    clock = FakeClock()
    fetcher = FakeFetcher().serve(URL, jwks_bytes(jwk(OLD, "old")), jwks_bytes(jwk(NEW, "new")))
    keys = keyset(fetcher, clock, max_age=600)
    assert await keys.verify(MESSAGE, sig(OLD)) == KeyMatch("old")
    clock.advance(601)
    assert await keys.verify(MESSAGE, sig(NEW)) == KeyMatch("new")
    assert len(fetcher.calls) == 2
