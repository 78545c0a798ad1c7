"""Endpoint handshakes: what a sender asks before (or besides) delivering events.

Two families. *Probes* arrive unsigned and carry nothing but the URL: a ``GET ?challenge=X``
(Dropbox, Onfleet, Strava) or a bare ``OPTIONS``/``HEAD``/``GET`` (HeyGen, InstantAPI); they are
answered before any body is read. *Signed handshakes* are ordinary deliveries whose body asks for
an answer: Slack's ``url_verification``, Zoom's ``endpoint.url_validation``, SNS's
``SubscriptionConfirmation``; they are answered only after the signature holds. None of them
produces an event.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson

from adapters.base import Fetcher, Reply, RequestMeta, Verified
from adapters.declarative.config import (
    FetchUrlHandshake,
    Handshake,
    HmacChallengeHandshake,
    JsonEchoHandshake,
    ProbeHandshake,
    QueryEchoHandshake,
)
from adapters.declarative.hmac_scheme import digest, encode_signature
from adapters.declarative.mapping import compile_expression, search
from adapters.declarative.tokens import TokenSet
from adapters.errors import ConfigError, NormalizationError, TemporaryError, VerificationError

#: A challenge we echo is short printable text: anything else is not a sender's challenge.
_CHALLENGE = re.compile(r"[\x21-\x7e]{1,512}")
_NOSNIFF = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def _json_reply(kind: str, body: Mapping[str, Any]) -> Reply:
    return Reply(kind, 200, orjson.dumps(body), "application/json", _NOSNIFF)


def _text_reply(kind: str, text: str) -> Reply:
    return Reply(kind, 200, text.encode(), "text/plain", _NOSNIFF)


def _challenge(value: Any, what: str) -> str:
    if not isinstance(value, str) or not _CHALLENGE.fullmatch(value):
        raise VerificationError("malformed_handshake", f"{what} is not a short printable token")
    return value


def _truthy(expr: Any, payload: Any, where: str) -> bool:
    try:
        return bool(search(expr, payload, where))
    except NormalizationError:
        return False  # not a handshake; normalizing it decides what it is


class Handshakes:
    """The compiled handshakes of one source."""

    def __init__(
        self,
        configs: Sequence[Handshake],
        *,
        tokens: TokenSet | None,
        hmac_key: Callable[[str], bytes | None],
        fetcher: Fetcher | None,
    ) -> None:
        self.probes: list[QueryEchoHandshake | ProbeHandshake] = []
        self.signed: list[JsonEchoHandshake | HmacChallengeHandshake | FetchUrlHandshake] = []
        for c in configs:
            if isinstance(c, QueryEchoHandshake | ProbeHandshake):
                self.probes.append(c)
            else:
                self.signed.append(c)
        self._tokens = tokens
        self._hmac_key = hmac_key
        self._fetcher = fetcher
        self._when = {
            id(c): compile_expression(c.when, f"handshakes[{c.kind}].when") for c in self.signed
        }
        self._field: dict[int, Any] = {}
        for c in self.signed:
            field = (
                c.field
                if isinstance(c, JsonEchoHandshake)
                else c.token
                if isinstance(c, HmacChallengeHandshake)
                else c.url
            )
            self._field[id(c)] = compile_expression(field, f"handshakes[{c.kind}]")
        self._require = {
            id(c): compile_expression(c.require, "handshakes[fetch_url].require")
            for c in self.signed
            if isinstance(c, FetchUrlHandshake) and c.require
        }
        for c in self.probes:
            if isinstance(c, QueryEchoHandshake) and c.verify_param and tokens is None:
                raise ConfigError(
                    "invalid_handshake", "query_echo verify_param needs a secret to compare"
                )
        if any(isinstance(c, FetchUrlHandshake) for c in self.signed) and fetcher is None:
            raise ConfigError("no_fetcher", "a fetch_url handshake needs an HTTP client")

    # -- unsigned probes -------------------------------------------------------------------

    def probe(self, request: RequestMeta) -> Reply | None:
        for config in self.probes:
            if request.method not in config.methods:
                continue
            if isinstance(config, ProbeHandshake):
                if request.query:
                    continue  # a probe carries no data; anything else is not one
                return Reply("probe", config.status, b"", None, _NOSNIFF)
            value = request.query.get(config.param)
            if value is None:
                continue
            if config.verify_param is not None:
                assert self._tokens is not None  # checked at compile time
                try:
                    self._tokens.match(
                        request.query.get(config.verify_param), missing="missing_token"
                    )
                except VerificationError:
                    return Reply("query_echo", 403, orjson.dumps({"error": "token_mismatch"}),
                                 "application/json", _NOSNIFF)  # fmt: skip
            try:
                challenge = _challenge(value, f"query parameter {config.param}")
            except VerificationError as exc:
                return Reply("query_echo", 400, orjson.dumps({"error": exc.reason}),
                             "application/json", _NOSNIFF)  # fmt: skip
            if config.respond == "json":
                return _json_reply("query_echo", {config.json_key or config.param: challenge})
            return _text_reply("query_echo", challenge)
        return None

    # -- signed handshakes -----------------------------------------------------------------

    async def answer(self, payload: Any, verified: Verified) -> Reply | None:
        for config in self.signed:
            assert isinstance(
                config, JsonEchoHandshake | HmacChallengeHandshake | FetchUrlHandshake
            )
            if not _truthy(self._when[id(config)], payload, "handshake.when"):
                continue
            value = search(self._field[id(config)], payload, f"handshakes[{config.kind}]")
            if isinstance(config, JsonEchoHandshake):
                challenge = _challenge(value, config.field)
                if config.respond == "text":
                    return _text_reply("json_echo", challenge)
                return _json_reply("json_echo", {config.json_key: challenge})
            if isinstance(config, HmacChallengeHandshake):
                token = _challenge(value, config.token)
                key = self._hmac_key(verified.key_id)
                if key is None:
                    raise VerificationError("malformed_handshake", "no secret to answer with")
                signed = encode_signature(
                    digest(config.algorithm, key, token.encode()), config.encoding
                )
                return _json_reply(
                    "hmac_challenge", {config.token_key: token, config.hash_key: signed}
                )
            return await self._fetch(config, value, payload)
        return None

    async def _fetch(self, config: FetchUrlHandshake, url: Any, payload: Any) -> Reply:
        if config.require is not None:
            required = search(self._require[id(config)], payload, "handshake.require")
            if not isinstance(required, str) or required not in config.allowed_values:
                raise VerificationError("handshake_not_allowed", "value not in allowed_values")
        if not isinstance(url, str) or not url_allowed(url, config.allowed_hosts):
            raise VerificationError("handshake_not_allowed", "confirmation URL host not allowed")
        assert self._fetcher is not None  # checked at compile time
        try:
            await self._fetcher(url)
        except Exception as exc:  # noqa: BLE001 - any failure: the sender retries the handshake
            raise TemporaryError("handshake_fetch_failed", type(exc).__name__) from None
        return _json_reply("fetch_url", {"confirmed": True})


def url_allowed(url: str, host_patterns: Sequence[str]) -> bool:
    """An ``https`` URL with no userinfo, no explicit port, whose host matches a pattern."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host or parts.username or parts.password or port:
        return False
    if "@" in parts.netloc or "\\" in url:
        return False
    return any(host_matches(host, pattern) for pattern in host_patterns)


_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def host_matches(host: str, pattern: str) -> bool:
    """``*`` stands for exactly one DNS label: ``sns.*.amazonaws.com`` matches
    ``sns.us-east-1.amazonaws.com`` but not ``sns.bucket.s3.amazonaws.com``, a host anyone can
    serve files from."""
    labels = host.lower().split(".")
    wanted = pattern.lower().split(".")
    if len(labels) != len(wanted):
        return False
    for label, want in zip(labels, wanted, strict=True):
        if want == "*":
            if not _LABEL.fullmatch(label):
                return False
        elif label != want:
            return False
    return True
