"""What the SNS and Pub/Sub tests sign with: keys and self-signed certificates made here, SNS
messages signed with ``cryptography`` directly (never with the adapter), Pub/Sub tokens signed
by google-auth."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.google_oracle import google_encode


# ------------------------------------------------------------------------------------- keys
@cache
def rsa_key(label: str) -> rsa.RSAPrivateKey:
    """A fresh 2048-bit key per label and test session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@cache
def certificate_pem(label: str) -> str:
    """A self-signed certificate for ``rsa_key(label)``."""
    key = rsa_key(label)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"tests: {label}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


# ---------------------------------------------------------------------------------- AWS SNS
SNS_TOPIC = "arn:aws:sns:eu-west-1:123456789012:renders"
SNS_CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
SNS_SUBSCRIBE_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={SNS_TOPIC}&Token=2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a9886"
)
_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SIGNED["UnsubscribeConfirmation"] = _SIGNED["SubscriptionConfirmation"]


def sns_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.123Z")


def sns_message(now: float, kind: str = "Notification", **fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "Type": kind,
        "MessageId": f"msg-{kind}-{int(now)}",
        "TopicArn": SNS_TOPIC,
        "Message": '{"job_id": "j1", "status": "succeeded"}',
        "Timestamp": sns_time(now - 2),
    }
    if kind == "Notification":
        message["Subject"] = "render finished"
    else:
        message["Token"] = "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a9886"
        message["SubscribeURL"] = SNS_SUBSCRIBE_URL
    message.update(fields)
    return message


def sns_signed(
    message: dict[str, Any],
    *,
    label: str = "sns",
    version: str = "2",
    cert_url: str = SNS_CERT_URL,
) -> dict[str, Any]:
    """``message`` with the signature fields SNS adds, signed with ``rsa_key(label)``."""
    names = _SIGNED[message["Type"]]
    text = "".join(f"{n}\n{message[n]}\n" for n in names if n in message).encode()
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = rsa_key(label).sign(text, padding.PKCS1v15(), digest)
    return {
        **message,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": cert_url,
    }


def sns_body(message: dict[str, Any]) -> bytes:
    return json.dumps(message, indent=2).encode()


def sns_headers(message: dict[str, Any]) -> dict[str, str]:
    return {
        "Content-Type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": str(message["Type"]),
        "x-amz-sns-message-id": str(message["MessageId"]),
        "x-amz-sns-topic-arn": str(message["TopicArn"]),
    }


# ------------------------------------------------------------------------------- Pub/Sub push
PUBSUB_KID = "tests-google-key-1"
PUBSUB_EMAIL = "push@renders.iam.gserviceaccount.com"
PUBSUB_AUDIENCE = "https://hooks.example.com/webhooks/pubsub"
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"


def pubsub_claims(now: float, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "aud": PUBSUB_AUDIENCE,
        "azp": "113774264463038321964",
        "email": PUBSUB_EMAIL,
        "email_verified": True,
        "exp": int(now) + 3000,
        "iat": int(now) - 600,
        "iss": "https://accounts.google.com",
        "sub": "113774264463038321964",
    }
    claims.update(changes)
    return claims


def google_token(claims: dict[str, Any], *, label: str = "google", kid: str = PUBSUB_KID) -> str:
    return google_encode(private_pem(rsa_key(label)), kid, claims)


def google_certs(*labels_and_kids: tuple[str, str]) -> bytes:
    """Google's v1 certificate document: key id → PEM certificate."""
    pairs = labels_and_kids or (("google", PUBSUB_KID),)
    return json.dumps({kid: certificate_pem(label) for label, kid in pairs}).encode()


def pubsub_body(message_id: str = "2070443601311540", **attributes: str) -> bytes:
    message = {
        "attributes": attributes or {"eventType": "job.succeeded"},
        "data": base64.b64encode(b'{"job_id": "j1"}').decode(),
        "messageId": message_id,
        "message_id": message_id,
        "publishTime": "2026-01-01T00:00:00.123456789Z",
        "publish_time": "2026-01-01T00:00:00.123456789Z",
    }
    return json.dumps({"message": message, "subscription": "projects/p/subscriptions/s"}).encode()
