"""AWS SNS HTTP(S) subscriptions: RSA over the canonical message string, the key from an X.509
certificate that only an ``https://sns.<region>.amazonaws.com`` URL may serve.

SNS signs inside the body: the JSON message carries ``Signature``, ``SignatureVersion`` (``1``:
SHA1, ``2``: SHA256) and ``SigningCertURL``, so this adapter reads the body to verify it; it
parses it strictly (UTF-8 JSON object, no repeated key, every signed field a string) and builds
the string to sign from the decoded values, as AWS documents::

    Notification                    Message, MessageId, Subject (if present), Timestamp,
                                    TopicArn, Type
    SubscriptionConfirmation,       Message, MessageId, SubscribeURL, Timestamp, Token,
    UnsubscribeConfirmation         TopicArn, Type

each as ``"Name\\nvalue\\n"``. Before any certificate is fetched, the message must be recent
(``Timestamp`` within ``tolerance_seconds``), its ``SigningCertURL`` an SNS certificate URL and
its ``TopicArn`` one of the source's ``topic_arns``, so a forger cannot make the gateway fetch
anything for a topic it does not subscribe to.

A ``SubscriptionConfirmation`` is answered by GETting its (signed, SNS-host) ``SubscribeURL``;
notifications and ``UnsubscribeConfirmation`` messages are published as passthrough events
whose ``event_type`` is the message ``Type`` (or a message attribute, see
``event_type_attribute``), delivery id ``MessageId``.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import Field, StringConstraints

from adapters.base import (
    NO_REQUEST,
    Adapter,
    AdapterOptions,
    AdapterServices,
    Passthrough,
    ProviderInfo,
    Reply,
    RequestMeta,
    SourceSpec,
    Verified,
)
from adapters.errors import ConfigError, NormalizationError, TemporaryError, VerificationError
from adapters.primitives.cert_cache import CertificateCache
from adapters.primitives.encoding import b64decode_strict
from adapters.primitives.headers import Headers, optional_header
from adapters.primitives.payload import dig
from adapters.primitives.rsa_keys import RSAPublicKey, pkcs1v15_verify, rsa_key_from_pem
from adapters.primitives.timestamps import check_window
from adapters.testing_keys import SNS_TEST_CERT_URL, sns_test_private_key

H_MESSAGE_TYPE = "x-amz-sns-message-type"
CONTENT_TYPE = "text/plain; charset=UTF-8"

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

_CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
SIGNED_FIELDS: dict[str, tuple[str, ...]] = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: _CONFIRMATION_FIELDS,
    UNSUBSCRIBE_CONFIRMATION: _CONFIRMATION_FIELDS,
}
_OPTIONAL_FIELDS = frozenset({"Subject"})
#: The order SNS writes a message's fields in (``send`` mimics it; verification ignores it).
_AWS_ORDER = (
    "Type",
    "MessageId",
    "Token",
    "TopicArn",
    "Subject",
    "Message",
    "SubscribeURL",
    "Timestamp",
    "SignatureVersion",
    "Signature",
    "SigningCertURL",
    "UnsubscribeURL",
    "MessageAttributes",
)

#: SignatureVersion → (scheme name on the event, hash).
VERSIONS: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "1": ("aws-sns-v1", hashes.SHA1),
    "2": ("aws-sns-v2", hashes.SHA256),
}

_REGION = r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}"
# Compared with the URL's whole authority: no userinfo, no port, no trailing dot, lower case.
_HOST = re.compile(rf"sns\.(?P<region>{_REGION})\.amazonaws\.com(?P<china>\.cn)?")
_CERT_PATH = re.compile(r"/SimpleNotificationService-[A-Za-z0-9]{1,128}\.pem")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z")
_MAX_URL_CHARS = 2048

TopicArn = Annotated[
    str,
    StringConstraints(
        pattern=rf"^arn:aws(?:-cn|-us-gov)?:sns:{_REGION}:[0-9]{{12}}:[A-Za-z0-9_-]{{1,256}}(?:\.fifo)?$"
    ),
]


def sns_url_region(url: str, *, certificate: bool) -> str | None:
    """The region of an SNS URL we may fetch, or ``None``.

    ``certificate=True``: a ``SigningCertURL`` (``/SimpleNotificationService-….pem``, no query);
    otherwise a ``SubscribeURL`` (``/?Action=ConfirmSubscription&…``). Always ``https``, on
    ``sns.<region>.amazonaws.com`` (``.amazonaws.com.cn`` for the ``cn-`` regions), with no
    user, password, port, fragment, whitespace or backslash anywhere in the text.
    """
    if (
        len(url) > _MAX_URL_CHARS
        or not url.isascii()
        or not url.startswith("https://")
        or any(c.isspace() or c == "\\" or not c.isprintable() for c in url)
    ):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    match = _HOST.fullmatch(parts.netloc)
    if match is None or parts.fragment or "#" in url:
        return None
    region = match["region"]
    if (match["china"] is not None) != region.startswith("cn-"):
        return None
    if certificate:
        ok = _CERT_PATH.fullmatch(parts.path) is not None and not parts.query and "?" not in url
    else:
        ok = parts.path == "/" and parse_qs(parts.query).get("Action") == ["ConfirmSubscription"]
    return region if ok else None


class SnsOptions(AdapterOptions):
    #: The topics this endpoint subscribes to: messages (confirmations included) from any other
    #: topic are refused before anything is fetched.
    topic_arns: tuple[TopicArn, ...] = Field(min_length=1)
    #: A ``MessageAttributes`` name whose string value becomes ``event_type`` (default: the
    #: message ``Type``).
    event_type_attribute: str | None = None
    certificate_max_age_seconds: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)
    certificate_cache_entries: int = Field(default=64, ge=1, le=4096)
    #: After a failed certificate fetch, seconds before that URL is fetched again (SNS retries
    #: 20 s apart by default).
    certificate_retry_seconds: float = Field(default=10.0, ge=0, le=3600)
    #: Development only: trust this certificate for every (well-formed) ``SigningCertURL``
    #: instead of fetching it, so ``webhook-gateway send`` or a local SNS emulator works offline.
    certificate_pem: str | None = None


class SnsAdapter(Adapter):
    provider: ClassVar[str] = "aws-sns"
    info: ClassVar[ProviderInfo | None] = ProviderInfo(
        title="AWS SNS (HTTPS subscription)",
        kind="passthrough",
        scheme="RSA over the canonical string, SignatureVersion 1 (SHA1) and 2 (SHA256), base64; "
        "certificate only from https://sns.<region>.amazonaws.com",
        headers="`x-amz-sns-message-type`; the signature is in the body",
        delivery_id="body `MessageId`",
        replay_window="body `Timestamp`, ±`tolerance_seconds`",
        retries="3 retries 20 s apart (default delivery policy)",
        oracle="messages signed with a certificate made by the test (cryptography)",
        notes="`SubscriptionConfirmation` confirmed only for `topic_arns`; "
        "docs/providers-asymmetric.md",
    )
    Options = SnsOptions
    has_handshake = True
    may_pass_through = True
    extra_content_types = frozenset({"text/plain"})

    def __init__(self, spec: SourceSpec, services: AdapterServices | None = None) -> None:
        super().__init__(spec, services)
        opts: SnsOptions = self.options  # type: ignore[assignment]
        self.opts = opts
        self.topics = frozenset(opts.topic_arns)
        self.pinned: RSAPublicKey | None = None
        if opts.certificate_pem is not None:
            if spec.production:
                raise ConfigError(
                    "development_only_option",
                    f"source {spec.name!r}: certificate_pem is for mode: development",
                )
            self.pinned = rsa_key_from_pem(opts.certificate_pem.encode())
            if self.pinned is None:
                raise ConfigError(
                    "invalid_public_key",
                    f"source {spec.name!r}: certificate_pem is not an RSA certificate",
                )
        self.certificates = CertificateCache(
            self.services.fetcher,
            max_entries=opts.certificate_cache_entries,
            max_age_seconds=opts.certificate_max_age_seconds,
            retry_seconds=opts.certificate_retry_seconds,
            clock=time.monotonic,
            on_refresh=self.services.on_key_refresh,
        )

    async def close(self) -> None:
        await self.certificates.close()

    def warnings(self) -> list[str]:
        if self.pinned is not None:
            return ["certificate_pem is set: SNS signing certificates are not fetched"]
        return []

    async def verify(
        self, raw: bytes, headers: Headers, now: float, request: RequestMeta = NO_REQUEST
    ) -> Verified:
        message = load_message(raw)
        msg_type = message.get("Type")
        if not isinstance(msg_type, str) or msg_type not in SIGNED_FIELDS:
            raise VerificationError("malformed_message", "Type is not an SNS message type")
        version = message.get("SignatureVersion")
        if not isinstance(version, str):
            raise VerificationError("malformed_message", "SignatureVersion is missing")
        if version not in VERSIONS:
            raise VerificationError(
                "unsupported_signature_version", "SignatureVersion is neither 1 nor 2"
            )
        scheme, algorithm = VERSIONS[version]
        string_to_sign = canonical_string(message, msg_type)
        signature = _signature(message)
        timestamp = parse_timestamp(message.get("Timestamp"))
        check_window(math.floor(timestamp.timestamp()), now, self.spec.tolerance_seconds)
        cert_url = message.get("SigningCertURL")
        if not isinstance(cert_url, str):
            raise VerificationError("malformed_message", "SigningCertURL is missing")
        region = sns_url_region(cert_url, certificate=True)
        if region is None:
            raise VerificationError(
                "bad_certificate_url", "SigningCertURL is not an https SNS certificate URL"
            )
        topic = message["TopicArn"]
        if topic not in self.topics:
            raise VerificationError("topic_not_allowed", "TopicArn is not in topic_arns")
        key = self.pinned if self.pinned is not None else await self.certificates.key(cert_url)
        if not pkcs1v15_verify(key, signature, string_to_sign, algorithm()):
            raise VerificationError("signature_mismatch", "the SNS signature does not verify")
        # The header is not signed; a proxy or sender that disagrees with the body is broken.
        header_type = optional_header(headers, (H_MESSAGE_TYPE,))
        if header_type is not None and header_type != msg_type:
            raise VerificationError("message_type_mismatch", f"{H_MESSAGE_TYPE} differs from Type")
        return Verified(
            scheme=scheme,
            key_id=f"{region}:{cert_url.rsplit('/', 1)[1].removesuffix('.pem')}",
            delivery_id=message["MessageId"],
            signed_at=math.floor(timestamp.timestamp()),
            bound={"type": msg_type, "topic_arn": topic},
        )

    async def handshake(
        self, payload: Any, verified: Verified, request: RequestMeta
    ) -> Reply | None:
        if verified.bound.get("type") != SUBSCRIPTION_CONFIRMATION:
            return None
        url = dig(payload, "SubscribeURL")
        if not isinstance(url, str) or sns_url_region(url, certificate=False) is None:
            raise VerificationError(
                "bad_subscribe_url", "SubscribeURL is not an https SNS confirmation URL"
            )
        fetcher = self.services.fetcher
        if fetcher is None:
            raise TemporaryError("subscribe_failed", "nothing can fetch the SubscribeURL")
        try:
            await fetcher(url)
        except Exception:  # noqa: BLE001 - SNS sends the confirmation again; so can an operator
            raise TemporaryError("subscribe_failed", "GET SubscribeURL failed") from None
        body = {"confirmed": True, "topic_arn": verified.bound.get("topic_arn")}
        return Reply(
            kind="fetch_url", status=200, body=orjson.dumps(body), content_type="application/json"
        )

    def normalize(self, payload: Any, verified: Verified, now: float) -> Passthrough:
        if not isinstance(payload, dict):
            raise NormalizationError("unexpected_shape", "SNS body is not a JSON object")
        event_type = verified.bound.get("type")
        name = self.opts.event_type_attribute
        if name is not None:
            value = dig(payload, "MessageAttributes", name, "Value")
            if isinstance(value, str) and value:
                event_type = value[:256]
        try:
            occurred_at: datetime | None = parse_timestamp(payload.get("Timestamp"))
        except VerificationError:
            occurred_at = None
        return Passthrough(event_type=event_type, occurred_at=occurred_at)

    def sign_delivery(
        self, raw: bytes, now: int, *, delivery_id: str
    ) -> tuple[bytes, dict[str, str]]:
        """The message in ``raw`` signed with the local test key (``SignatureVersion`` 2 unless
        it says 1), ``MessageId``, ``Timestamp`` and ``TopicArn`` filled in when absent."""
        try:
            message: Any = json.loads(raw)
        except ValueError as exc:
            raise ConfigError("invalid_example", "an SNS message must be a JSON object") from exc
        if not isinstance(message, dict):
            raise ConfigError("invalid_example", "an SNS message must be a JSON object")
        message.setdefault("Type", NOTIFICATION)
        message.setdefault("MessageId", delivery_id)
        message.setdefault("TopicArn", self.opts.topic_arns[0])
        message.setdefault("Timestamp", _iso(now))
        message.setdefault("SignatureVersion", "2")
        message["SigningCertURL"] = SNS_TEST_CERT_URL
        msg_type, version = message["Type"], message["SignatureVersion"]
        if msg_type not in SIGNED_FIELDS or version not in VERSIONS:
            raise ConfigError("invalid_example", "unknown SNS Type or SignatureVersion")
        message["Signature"] = sign_message(message, sns_test_private_key(), VERSIONS[version][1]())
        ordered = {name: message[name] for name in _AWS_ORDER if name in message}
        ordered.update(message)
        body = json.dumps(ordered, indent=2, ensure_ascii=False).encode()
        headers = {
            "Content-Type": CONTENT_TYPE,
            "x-amz-sns-message-type": msg_type,
            "x-amz-sns-message-id": str(message["MessageId"]),
            "x-amz-sns-topic-arn": str(message["TopicArn"]),
            "User-Agent": "Amazon Simple Notification Service Agent",
        }
        return body, headers

    def sign(self, raw: bytes, now: int, *, delivery_id: str) -> dict[str, str]:
        """The headers SNS sends with the signed form of ``raw`` (see :meth:`sign_delivery`:
        the signature itself is in the body)."""
        return self.sign_delivery(raw, now, delivery_id=delivery_id)[1]


def load_message(raw: bytes) -> dict[str, Any]:
    """The SNS message as a JSON object, refusing repeated keys (which copy would be signed?)."""

    def no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            raise ValueError("repeated key")
        return obj

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        message: Any = json.loads(
            raw.decode("utf-8"), object_pairs_hook=no_repeats, parse_constant=no_constants
        )
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise VerificationError("malformed_message", "body is not an SNS JSON message") from None
    if not isinstance(message, dict):
        raise VerificationError("malformed_message", "body is not a JSON object")
    return message


def canonical_string(message: dict[str, Any], msg_type: str) -> bytes:
    """The bytes SNS signs for a message of ``msg_type``."""
    parts: list[str] = []
    for name in SIGNED_FIELDS[msg_type]:
        value = message.get(name)
        if value is None and name in _OPTIONAL_FIELDS:
            continue
        if not isinstance(value, str):
            raise VerificationError("malformed_message", f"{name} is missing or not a string")
        parts.append(f"{name}\n{value}\n")
    try:
        return "".join(parts).encode()
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
        raise VerificationError("malformed_message", "a signed field is not valid text") from None


def sign_message(
    message: dict[str, Any], key: rsa.RSAPrivateKey, algorithm: hashes.HashAlgorithm
) -> str:
    """The base64 ``Signature`` SNS would put on ``message`` (for ``send``)."""
    signed = canonical_string(message, message["Type"])
    return base64.b64encode(key.sign(signed, padding.PKCS1v15(), algorithm)).decode()


def _signature(message: dict[str, Any]) -> bytes:
    text = message.get("Signature")
    decoded = b64decode_strict(text) if isinstance(text, str) else None
    if not decoded:
        raise VerificationError("malformed_message", "Signature is not base64")
    return decoded


def parse_timestamp(value: Any) -> datetime:
    """SNS's ``Timestamp`` (ISO 8601 in UTC, ``Z``); ``malformed_message`` otherwise."""
    if not isinstance(value, str) or _TIMESTAMP.fullmatch(value) is None:
        raise VerificationError("malformed_message", "Timestamp is not ISO 8601 UTC")
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        raise VerificationError("malformed_message", "Timestamp is not a real time") from None


def _iso(now: int) -> str:
    return datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
