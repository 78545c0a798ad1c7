"""Google Cloud Pub/Sub push subscriptions with authentication: an OIDC ID token (RS256 JWT)
in ``Authorization: Bearer``, signed by Google for the subscription's service account.

Checked, in this order: the token's header (``alg`` exactly ``RS256``, a ``kid``), the RS256
signature with Google's key of that id (fetched from ``certs_url``, cached and refreshed like
a JWKS), and only then the claims: ``iss`` (``accounts.google.com`` or
``https://accounts.google.com``), ``aud`` (``audience``, default the source's ``public_url``),
``exp``/``iat``/``nbf`` against the clock with ``tolerance_seconds`` of skew,
``email_verified`` true and ``email`` among ``service_account_emails``.

The token authenticates the sender, not the body: Pub/Sub does not sign the message, and one
token may accompany many deliveries for up to an hour. Delivery id: ``message.messageId``;
events are published as passthrough ``WebhookEvent`` s, ``event_type`` the message attribute
``event_type_attribute`` (default ``eventType``, the attribute Cloud Storage notifications set),
``occurred_at`` the message's ``publishTime``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from typing import Any, ClassVar

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from pydantic import Field

from adapters.base import (
    NO_REQUEST,
    Adapter,
    AdapterOptions,
    AdapterServices,
    Passthrough,
    ProviderInfo,
    RequestMeta,
    SourceSpec,
    Verified,
)
from adapters.errors import ConfigError, NormalizationError, VerificationError
from adapters.primitives.headers import Headers, require_header
from adapters.primitives.jwt import Token, claims_of, split_token
from adapters.primitives.payload import dig, opt_datetime, parse_json
from adapters.primitives.rsa_keys import RSAPublicKey, pkcs1v15_verify, rsa_key_from_pem
from adapters.primitives.rsa_keyset import RsaKeySet
from adapters.testing_keys import PUBSUB_TEST_KEY_ID, is_test_rsa_key, pubsub_test_private_key

SCHEME = "google-oidc-rs256"
H_AUTHORIZATION = "authorization"
#: The certificates ``google-auth`` verifies Google ID tokens with (key id → PEM X.509).
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
#: What Pub/Sub's tokens live for; ``send`` signs tokens that live as long.
TOKEN_LIFETIME_SECONDS = 3600


class PubSubOptions(AdapterOptions):
    #: The push subscription's service account(s): tokens for any other account are refused.
    #: (Anyone can get a Google-signed token with any audience for an account of their own.)
    service_account_emails: tuple[str, ...] = Field(min_length=1)
    #: The ``aud`` the subscription was given; default the source's ``public_url`` (Pub/Sub's
    #: own default is the push endpoint URL).
    audience: str | None = None
    #: Where Google's signing keys are published (v1 PEM map or JWKS); ``null``: only the
    #: static ``public_keys``.
    certs_url: str | None = Field(default=GOOGLE_CERTS_URL, pattern=r"^https://\S+$")
    certs_max_age_seconds: int = Field(default=6 * 3600, ge=60, le=24 * 3600)
    certs_min_refresh_seconds: float = Field(default=60.0, ge=0)
    #: The message attribute that names the event type; ``null``: none.
    event_type_attribute: str | None = "eventType"


class PubSubAdapter(Adapter):
    provider: ClassVar[str] = "gcp-pubsub"
    info: ClassVar[ProviderInfo | None] = ProviderInfo(
        title="Google Cloud Pub/Sub push",
        kind="passthrough",
        scheme="OIDC JWT (RS256) in `Authorization: Bearer`, Google's certificates; `aud`, `iss`, "
        "`email` (allowlist), `email_verified`, `exp`",
        headers="`Authorization`",
        delivery_id="body `message.messageId`",
        replay_window="token `exp`/`iat`, skew ±`tolerance_seconds`",
        retries="the subscription's retry policy",
        oracle="google-auth 2.63.0 (`google.auth.jwt.encode`/`decode`), both ways",
        notes="the body is not covered by the token (Google's design); "
        "docs/providers-asymmetric.md",
    )
    Options = PubSubOptions
    sensitive_headers = frozenset({H_AUTHORIZATION})
    may_pass_through = True

    def __init__(self, spec: SourceSpec, services: AdapterServices | None = None) -> None:
        super().__init__(spec, services)
        opts: PubSubOptions = self.options  # type: ignore[assignment]
        self.opts = opts
        audience = opts.audience or spec.public_url
        if not audience:
            raise ConfigError(
                "no_audience", f"source {spec.name!r}: set audience or public_url (the push URL)"
            )
        self.audience = audience
        self.emails = frozenset(opts.service_account_emails)
        static: dict[str, RSAPublicKey] = {}
        for named in spec.public_keys:
            key = rsa_key_from_pem(named.value.encode())
            if key is None:
                raise ConfigError(
                    "invalid_public_key", f"key {named.id!r} is not an RSA certificate or key"
                )
            if spec.production and is_test_rsa_key(key):
                raise ConfigError(
                    "test_key_in_production",
                    f"source {spec.name!r}: key {named.id!r} is the published local test key",
                )
            static[named.id] = key
        if not static and opts.certs_url is None:
            raise ConfigError("no_keys", f"source {spec.name!r}: set certs_url or public_keys")
        self.keys = RsaKeySet(
            static,
            opts.certs_url,
            self.services.fetcher,
            max_age_seconds=opts.certs_max_age_seconds,
            min_refresh_seconds=opts.certs_min_refresh_seconds,
            clock=time.monotonic,
            on_refresh=self.services.on_key_refresh,
        )
        self._refresher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.keys.uses_url:
            await self.keys.refresh(force=True)
            self._refresher = asyncio.create_task(self._keep_fresh(), name="pubsub-keys")

    async def _keep_fresh(self) -> None:
        # Readiness follows the key set; without this, a source that gets no delivery for
        # certs_max_age_seconds would turn unready and, unready, never get one to refresh it.
        while True:
            await asyncio.sleep(self.keys.refresh_delay())
            await self.keys.refresh(force=True)

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None

    def ready(self) -> bool:
        return self.keys.loaded()

    async def verify(
        self, raw: bytes, headers: Headers, now: float, request: RequestMeta = NO_REQUEST
    ) -> Verified:
        token = split_token(_bearer(require_header(headers, (H_AUTHORIZATION,))))
        kid = _key_id(token)
        key = await self.keys.key_for(kid)
        if key is None:
            raise VerificationError("unknown_key", "no Google key has the token's kid")
        if not pkcs1v15_verify(key, token.signature, token.signing_input, hashes.SHA256()):
            raise VerificationError("signature_mismatch", "the token's signature does not verify")
        claims = claims_of(token)  # only now: the signature holds
        issued_at = self._check_claims(claims, now)
        return Verified(
            scheme=SCHEME,
            key_id=kid,
            delivery_id=_message_id(raw),
            signed_at=issued_at,
            bound={"email": claims["email"]},
        )

    def _check_claims(self, claims: dict[str, Any], now: float) -> int:
        if claims.get("iss") not in ISSUERS:
            raise VerificationError("issuer_mismatch", "iss is not accounts.google.com")
        if claims.get("aud") != self.audience:
            raise VerificationError("audience_mismatch", "aud is not this endpoint's audience")
        skew = self.spec.tolerance_seconds
        expires, issued = _seconds(claims, "exp"), _seconds(claims, "iat")
        if expires is None or issued is None:
            raise VerificationError("malformed_token", "exp and iat must be numbers")
        if now > expires + skew:
            raise VerificationError("token_expired", "the token's exp has passed")
        not_before = _seconds(claims, "nbf") if "nbf" in claims else issued
        if not_before is None:
            raise VerificationError("malformed_token", "nbf must be a number")
        if max(issued, not_before) > now + skew:
            raise VerificationError("token_not_yet_valid", "the token is issued in the future")
        if claims.get("email_verified") is not True:
            raise VerificationError("email_not_verified", "email_verified is not true")
        if claims.get("email") not in self.emails:
            raise VerificationError("email_not_allowed", "email is not a configured account")
        return int(issued)

    def normalize(self, payload: Any, verified: Verified, now: float) -> Passthrough:
        message = dig(payload, "message")
        if not isinstance(message, dict) or _message_id_of(message) is None:
            raise NormalizationError("unexpected_shape", "not a Pub/Sub push body")
        event_type: str | None = None
        name = self.opts.event_type_attribute
        if name is not None:
            value = dig(message, "attributes", name)
            if isinstance(value, str) and value:
                event_type = value[:256]
        published = message.get("publishTime", message.get("publish_time"))
        return Passthrough(event_type=event_type, occurred_at=opt_datetime(published))

    def sign(self, raw: bytes, now: int, *, delivery_id: str) -> dict[str, str]:
        """A bearer token signed with the local test key for the first configured account
        (the message id is the body's own, so ``delivery_id`` is not used)."""
        claims = {
            "aud": self.audience,
            "azp": "100000000000000000000",
            "email": self.opts.service_account_emails[0],
            "email_verified": True,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "iat": now,
            "iss": "https://accounts.google.com",
            "sub": "100000000000000000000",
        }
        return {"Authorization": "Bearer " + sign_token(claims, PUBSUB_TEST_KEY_ID)}


def sign_token(claims: dict[str, Any], kid: str) -> str:
    """An RS256 JWT over ``claims`` with the local test key."""
    header = _b64url(orjson.dumps({"alg": "RS256", "kid": kid, "typ": "JWT"}))
    signing_input = f"{header}.{_b64url(orjson.dumps(claims))}".encode()
    signature = pubsub_test_private_key().sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode()}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _bearer(value: str) -> str:
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise VerificationError("malformed_header", "Authorization is not a bearer token")
    return token


def _key_id(token: Token) -> str:
    alg = token.header.get("alg")
    if alg != "RS256":  # never "none", never HS256 with a public key as the secret
        raise VerificationError("unsupported_algorithm", "the token's alg is not RS256")
    if "crit" in token.header:
        raise VerificationError("unsupported_algorithm", "the token names critical extensions")
    kid = token.header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 256:
        raise VerificationError("malformed_header", "the token has no kid")
    return kid


def _seconds(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _message_id_of(message: dict[str, Any]) -> str | None:
    value = message.get("messageId", message.get("message_id"))
    if isinstance(value, str) and value and len(value) <= 256:
        return value
    return None


def _message_id(raw: bytes) -> str | None:
    try:
        message = dig(parse_json(raw), "message")
    except NormalizationError:
        return None  # not JSON: normalizing dead-letters it
    return _message_id_of(message) if isinstance(message, dict) else None
