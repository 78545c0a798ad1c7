"""Write the AWS SNS and Google Pub/Sub push vectors:
``python -m tests.vectors.generate_asymmetric`` (from the repository root, in the venv).

Every key and certificate here was made for these tests: the RSA private keys below are fixed
so that rerunning changes no file (the self-signed certificates are built from them with a
fixed serial, names and validity, and PKCS#1 v1.5 signatures carry no randomness). SNS
messages are signed with ``cryptography`` directly over a string to sign built here, Pub/Sub
tokens with google-auth's ``jwt.encode``, the provider SDK's own signer: never with the
adapters under test. Only ``aws-sns/`` and ``gcp-pubsub/`` are rewritten.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.google_oracle import google_encode

HERE = Path(__file__).resolve().parent
FOLDERS = ("aws-sns", "gcp-pubsub")
Json = dict[str, Any]

NOW = 1767225600  # 2026-01-01T00:00:00Z

SNS_KEY_PEM = b"""\
-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCfL7THbgEKp5sd
UklvfuAhff+WQB3kCPu6BU/mYTVh7IlAlw1a8iV7QTYAHZxz1ZgIuXCoobLJmM4M
CkNo6kOgqk5//QBs/sGDXwFntdNQSM/RM6ioa9SzfAOadwQuJygQpuHFk5CMH0jT
2o5P1gVdd37c2HFLBQ7DggkfxF5CuuChN4POUKhv/xbcGs83QPet6Vw5hfr7ScAm
pEW3nz0hvp8z0KxNnaQOIIarWfDNqbpXv+LijihgPkG7MBxnIKY5rK0G3SCvqt5U
fHi32vtWgt+BhUE7Q021d62MJsQdV6Keym88gwpSAmGalHDq/aMRhL6NzAMjZDlM
KJoC0wrNAgMBAAECggEAIkjhE67SlJvioZ8OZ/AYj74WZSLsDSgOJ1NrkP/QwoVy
TjH6U2MhxXkXC1FVV/Fh7EccR4WD/z1k61zuhdMmu5zSiWhRRihcP1If+FlF6N21
vKX2pkeLKRkFoagOg241h9iZebc9g6BdTBufWPyMbUQGU8ReKj0tn9gK5QejEZXd
Qaec9SaM4qk3/VYPJ+IU+qRPzsB+Jp7ov5TIjB8jypoILFcVJWRu8MExHdeHgJ4w
vdgtONluQrVnolEB+ucyOWTqmetixPy74AO48jGCCCxRnanZqwFEGWvHV6U0Yikb
fuk8KOT9WtpF+Wof0866jt20UCkMipYLEpXOMgZhFQKBgQDNI8IIwTvgMtnAKmPM
ciE+HMZ4Rnf6bbz9IKtFrEKtM7DBqMYmkCIVDG2hMcwKVBmy7W5iiS6ufZYPJpnB
cdGEF+6ZuLofAI/DQCW5YhFYasXE0Vryt0BD3tDkb/cQbroMONqY61m+rIPtlOV9
OoPmTuElyQ69oNo3qu6BKpLJAwKBgQDGp0jaaxfBhkDN0wf7f4wO3ndPC7JzHuDf
j8i3xW6Xer53hGqjZztig4mMBhouguP1kXDXJqs/2GXPmF3DaMhSF78gnt0TtIUG
3I68eJVz89bmBPbUIbGe6PQkntC4IxlSkQQ4uX/Nnf35yUlKh36cB+YCnfA0cyqq
8WS9kMzL7wKBgApRIhEOptQ/unPPrfU6SDG3gMPLx3zwx/BzFCoM382WK+2Rb2XB
GfW1Ck5xErHySNiW2FZcT9y2tDVO26y+7KqYCYfxomqsvI41S7BnHjg0Jn4fiVNr
o+/F5PuYJfTNnM3Ajj3imEDerEPmmSQTLU8H6Ird8b/XtyHVlukoGvnBAoGAJr3H
EnmiN2akSr+mJeEZAmlWYT8JvTO/bToQTe6eA8K3VH2pglaGmU7Hy1wBTSLPrDuC
AyOScDAWoua3Gn3b206wQn9Y5BfnfZAT8iOeGe/q8A71yCcOCcyqmF20nMSTkquf
ZCShDQuL1WPw/CzyfyF3NPlyN/hh0Nak6+dKWVcCgYBMqBaGP53EoboivMNZk9xp
LBvS2/cecmZu+8QKqUm7YByTe/NEeBoTrsI3W5tQlssWM1Mt37L1g/0mJ7vt3VR/
U+C0Q8cz1CziBq6/PTGN/UlPZc94aygRf0wtwNa22LzcGldtDs72osB4lBISXbku
VS1m5h6A7QMGMeXh0EaIWA==
-----END PRIVATE KEY-----
"""

SNS_OTHER_KEY_PEM = b"""\
-----BEGIN PRIVATE KEY-----
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQCzfbQAB1v1SE+4
74eYszWC1ZrdLI3ln1iunfOyNkkQTHXen0/xCuZFZr3hYMlzDNDIbIyhzywVJ4ah
8A3xYO5BZrnyGk5N0NMtK804DZMh/Nv51sGC0psBEvF0PC8jME4ex7gsM4dhYGm6
OGxhmuYqrbatMM/26AoElWLQmVCrrgbLv2eYniNfAnC0zdHX1nMVKl5JRZMwLqEJ
NPhvH5d5VmGanShejDHzbpo2zbIB+p7QovJJRlYsIoCDbsomP0OUCCwdiP+WJ1fF
HNAsD+vafX/lXRF6+pO+PDNpn738SUvfDcPlZZpy4rscuCzlmgFPmCC834quDozK
NAnSeVKHAgMBAAECggEAKvPC1lrse5bxVP0lArqn7IY3SAQ4dKGcNDUiMxxggaD6
d+rB05nbHvKGL9/cdUa007F+Od582xcZVbk/bOrYORhfGPuIj4CQeHfJ5UcCVZjP
/0qQBkFlzGz/EOSyFwahOyZqAVHXbMsIogKMlRLfT4lAdNOAgMJoW05wViDKODrG
9dXJLvW7TpcamIqc81L0AePDrjE6e8EhQYSS0+8nNC0/ZpfUCwyaqbKdlZ4NiGYZ
8fZv8RZfxx9RINuGNrlXpva9NNciXcWwIkhX3IBkkRfVO8Jh7bow5LRK7uWK8Mo0
mvdqaKP1ptnrNE5OH8VTSY/DpLYxvrBrm8nLrF/S4QKBgQDpqqPimmBFfOjc/5UY
tyMhUK4ga2H3e9/2EKuqwmTXuNPVl0iPbWCrhS9ZwPiG0MQxMRgM2rGEOaxsDtyM
1hcjzFp+yoW+yBM3XMuSGoMAL3f+gepNlF580KEVE8oGWfkvbepKB+O35u7HNgP2
awQH9o++zITnGwVw2MzPjYqocQKBgQDEpX6WAZsNfkq5RhrPhkQq/FTYDvFCh6Lt
2oU3iCpVZkynaAJua+2EZtC822983gB5Ru7QOCM6S2fsZRYEZ9loEkUfcrULWOy1
BCpblXSt4EMOP/N/KUGZSeENy+1KfYSAtr3CPgm5PDhYzw8xRTvNdLuT3Up81z+X
gf1H+mhmdwKBgQCOGX7GvJkVSQwX8boLKLxNc1IhVwxhw8yESMkM9GD9K2Jvvyua
RasHQ9xy2b6JxgW54KA+mPRhc+1eXX9UipHR7GGQP7ssNWIyRdVqyYKnJzby6LDD
cxovD3UWa01tpWO7qz1Svg+G9AJ71WZ9gcEW0qPCJYAhRzZ81OtgwTP0kQKBgQC4
FUxo1Fv3x6/fvLbAaipKKyipkWNcKmjlTFjE4Vzv0PIVDJKqF7Ki7TSedrTpKVE8
NqC8nrCrk4dXjlGMEkM8302B4PmGA9qioaGdVk2Br5xWLJufAFn+S2C4b5xUzSdK
7sa4nSaxFqSQzlSkhPE0pgAqrU9bioxnIjKePNWahQKBgQChHCbYHaPznBJJDobd
aZ1yuoLdnQrDqhdmM6Wh6rDAyazk5RRbILseRqKxc5LNipEG/PWPbufOs64bVEqo
rN0PZbYnZ9uSNj1HKeSm4sI8td2AbSOCd+YoLA/RYdL5dQ+pCarHvNl19QbqDqI9
o64jEj++sQggFz4jXhu99SPtkg==
-----END PRIVATE KEY-----
"""

PUBSUB_KEY_PEM = b"""\
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCz60Fv5mwEAy6Y
vUtDyySqOGmhMR3PMEr4YsYLpR4F6lOmKM/6yVxZzxH4Nz85JJWYLskU4o7rJsIt
UR1jhtKbuc9hgPM4nQzQ5BA4TTd5Lw5tUXn4oDrPLV7yYwjj7VEVoYFvy1um//pk
qecaTj+RlXJ3cMoIoOzdLyJ3m09gMFyLJoFRHX3P6KvO11Jc1qEi8xmlfdasIU08
Ttna6nS5TGOsmoUoKNqNALJBKP48vkV5huTv40hm+2OiV1+T3z5ocPSDVbiTNZb6
0GoDXmkvAs8tTELdS2HlS8Cl1nx2MmVQQSG0+Aq5OSp81IvYid3ZGczEH1op1RNJ
eeTQ7BXHAgMBAAECggEACXw3ZeA0V3j0VJL0fn1mtPE42hwCtoWCwb6NDjOuWpfp
CgxwV6y5QC1qKXd+c9yOG9sp3SMUSs2Kp0ljZcDsOIaDTuBsjZuYSLtFS+zbXOdk
r60kdc/fkLIlt8pW9kpeaQyZefggsqHWkn2YAj2qQZE9WwA7B6Js2BgNsg60IvAM
ITz2Z3p66E0NysLFhar3G5vr10luWDoXz0t/DpPM+0ZHLUXAYm7SbGlCiUzSntk8
5eiJtcvmV4EpA2eWoJX0XFZpoZuIHutAvkhX9aZg5Cyfc9OpFwEaTx7hxVNpXOgt
kEO3Sn1jhYw6gTtcUdH5pEMZBCiEp+LhZZWXYUJq9QKBgQDw5JdkmUbL3IA/DW9Q
ccTqks4KkD/ijRFxawwRcm8P37Yw6sMrJyKsOwxuINM3S1Vw2Fj2U5tiQN9sv86F
zOk7yYTZYzcs+MrFVO6QPLhXt6nTwvOYFvQv8UI9sEr2XptpoutdiucaI25nvHdU
inZsBEL76ZvVMvtbpUr61Ho76wKBgQC/M8JqwQjtwBMA4hJcP6NINzrV7jYcbsEw
dlSGAP5svve9xmHTrzWG7K+UYFCo8YPnfHyJeU+ZjwP9BkxuEvAz/6h/XM+2rTb5
DtyWg9apBYL/9yCMDPQqnga/Ei9IspNSrEhENxlDkINIWeGF3Or7SNz3V6Ek8LQJ
FBpkgvYilQKBgQCUttqLvWCKfE8kHdwpkoLZudW/ibwW1bX+CfMCVl4gM6DbZCMm
4dsy7qVG27bpfPV7W+TX9VeI+bm0/li2G4Glakw8lFa8yb8MwdkhbIr1hCow1Drk
Gs+XRV76jHpKzK8vMOgS8KypY1RGcIBOzcg7+QmNUXPl07p/onS+kyv/DwKBgD+6
rM6QUL2OC8d7kssUmwPzBLVRlM+dSt8wUbPomOT+Me0bNngsKhcyxMMb50aoWWLK
52ea+6EfPiET/F2kClQKnsr00Hb+/Re+kF/Kyb3EjIlsgXisyKV7zpvZH9GHU/t2
WRADnXQbsuZmrvjDTb875gq7Nobtg9SS0sk1rXyRAoGBALYehtUp1AilkACvZd91
pJX8HrVhdR0ozHZZgFRsmPV1L5K4vb/orKXqc530+9WnT+ApKdy3SDMYWuvoD0ce
vJpqbxUPPPWQw8YZ6od1EOBXpGrnm7dbDp0MKeBEMM/vcdCapUEegj+jxhZc2jbv
zANwRN8oYE1x/aJgcVDQ/zjg
-----END PRIVATE KEY-----
"""

PUBSUB_OTHER_KEY_PEM = b"""\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC20HkLUI8czLYN
/qPpNCYtYhLAp0tAcM8oY1AcCpIhrs1HPjBH1uhC+SCFpqSFS57hy729Z+sWgh/w
DKbHkLU3VnlhNYDVmIvXpD0R8BsjI+o4RcAsAloC4hnblEM8+GVLWvleVFwyR+tU
s1u3tSd704mkCVPIJKseer2ZH/MfCdMiYFtkwlJTJPZnKShqgRkctrAU4OluPy+X
vL0WRpJ8IIf2TxJg5qetOGLjEnrJyRR6aJFk26FO3Lh5q1VwdXMhN5BptjC7kvPb
sSZuSctF93FjQYF5optrqQ5aOdZlrY0q3lVEyCXhcZdfvXum0PmCYWD5IznbxYa5
YklyaelvAgMBAAECggEAAXxDJ4ThjM3bAtUZVtk+ICtGVLtnQKBKBp179qZdVpm5
gEUwljzYSUcF7SAUASNCqLoDkijof5fSE5y+tCtoVYlF1jTdlZ62MCvc9SraxZfS
nN9wNstUGObmZ+LWAwZPqGOWWB5eW2g7MMZ+TclSh06KNUOAI0WtAEPmC3r3ej6S
I6r3rWlASkvFUqcn6ynmlHHIEWs6XLZ6/SqDsx6MnQn5I8/pYD4Q6pqL/WzdX43d
VKd8g9Sp/4BWUs91Tfymy63BHwLJcFazj4Y/gkYkEO4ztvdlQQqnbwpnIKp57h3C
h02aorsl4lFXg1jkwYlTEpclAcONkiklzsz6zzYJIQKBgQD6C0UcG02wjcpXqDhJ
4qu/+gQjfDa6/HOhTQVRkFi8dnShvTef3UhN9LdiaIVVctS15LkXD8fcvQNJut1U
ZQYEFCKVqOgrpGpSef1bc3wfCS9Gj6atYXtcDj800tO905kleOZrgVCteb66NA9X
R31zWOrArC5La4vpCkWDm8tO4QKBgQC7Kz8jOKnmA9KCqJid9M92S6DBYfULI0Sb
rrYK0+5x+8ZBMCxFAlMJWojjpaYAXF5uMzgrk7qru0XtHKf4LVlsfRKsBdY3gkx+
qLR/fbxxT6SFm4tWpgTiuglg08nOQAUxGYGtgjBDifa7L8++uiZH8hKVSZANlZ5Z
M6lW7vjSTwKBgQD04cS1WigkGTlpz94QvmXmhj03Y5dWWZgFCSGEWBIPwRNIs7+e
WWFOt7RCNIsgvG2GFpMO+u2KSbLGqrPIy4ewxud4GwwGceePDtoKjnepDZ23RUi/
1RCzf2B3o2KsLmd2Q4mnD+arfuhEBGhh2ioKpbKDMB3Gz3UermiWFCZxAQKBgC5G
S+7eVIsMyOAK5OiwnRZHLnCBUn81cgH3mQRmT16Y+/Qj/93z7Cm024FE9BzEuYgP
W8TSWmWZAHnWCuU9+Qzsg1BKhSLmMRljhnS61ntBUJDD2xhKJY0Up7rrwcofY+k2
wCvwsxQPqROwh3FFPq+s9tE4BciGBEdTkXtvy87bAoGARLxlV/CR3o7Qa1k//BMw
IDOR3cZPKeXBC/fBc8tTFSPZzVSqz8y+vCAyhrYcB2jn4FqmNvG+z/28QuzkixjF
FlLX4qKPKyZXM7rC681yCq5X0GoboJu8YOOt/y953BJKcg18odpSeBzHmFYuq6FP
Jqb4cEogHC2LKKX2OaBQ+iQ=
-----END PRIVATE KEY-----
"""


def private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def certificate(key: rsa.RSAPrivateKey, common_name: str) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x5E5)
        .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2030, 1, 1, tzinfo=UTC))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def iso(seconds: int, millis: int = 0) -> str:
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{millis:03d}Z"


def valid(key_id: str, scheme: str, delivery_id: str | None, **extra: Any) -> Json:
    return {"valid": True, "key_id": key_id, "scheme": scheme, "delivery_id": delivery_id, **extra}


def invalid(reason: str) -> Json:
    return {"valid": False, "reason": reason}


class Writer:
    def __init__(self) -> None:
        self.stems: set[str] = set()

    def write(self, folder: str, stem: str, vector: Json) -> None:
        if stem in self.stems:
            raise SystemExit(f"duplicate vector name {stem}")
        self.stems.add(stem)
        path = HERE / folder / f"{stem}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(vector, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------- AWS SNS
SNS_KEY = private_key(SNS_KEY_PEM)
SNS_OTHER_KEY = private_key(SNS_OTHER_KEY_PEM)
SNS_CERT = certificate(SNS_KEY, "sns.amazonaws.com (test)")
SNS_OTHER_CERT = certificate(SNS_OTHER_KEY, "someone else (test)")
SNS_TOPIC = "arn:aws:sns:us-east-1:123456789012:render-jobs"
SNS_OTHER_TOPIC = "arn:aws:sns:us-east-1:210987654321:not-ours"
SNS_CERT_NAME = "SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8"
SNS_CERT_URL = f"https://sns.us-east-1.amazonaws.com/{SNS_CERT_NAME}.pem"
SNS_KEY_ID = f"us-east-1:{SNS_CERT_NAME}"
SNS_MESSAGE_ID = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
SNS_SIGNED_AT = NOW - 20
SNS_TOKEN = "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb"
SNS_SUBSCRIBE_URL = (
    "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={SNS_TOPIC}&Token={SNS_TOKEN}"
)
SNS_UNSUBSCRIBE_URL = (
    "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
    f"{SNS_TOPIC}:c9135db0-26c4-47ec-8998-413945fb5a96"
)
SNS_JOB = '{"job_id": "job_7Hq2", "status": "succeeded", "output": "s3://renders/job_7Hq2.mp4"}'
SNS_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SNS_CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)


def sns_string_to_sign(message: Json) -> bytes:
    """AWS's recipe: ``name\\nvalue\\n`` for each signed field present, in this order."""
    fields = (
        SNS_NOTIFICATION_FIELDS if message["Type"] == "Notification" else SNS_CONFIRMATION_FIELDS
    )
    return "".join(f"{f}\n{message[f]}\n" for f in fields if f in message).encode()


def sns_signed(
    message: Json, *, version: str = "2", key: rsa.RSAPrivateKey = SNS_KEY, cert_url: str = ""
) -> Json:
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(sns_string_to_sign(message), padding.PKCS1v15(), digest)
    return {
        **message,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
        "SigningCertURL": cert_url or SNS_CERT_URL,
    }


def sns_notification(**fields: Any) -> Json:
    message: Json = {
        "Type": "Notification",
        "MessageId": SNS_MESSAGE_ID,
        "TopicArn": SNS_TOPIC,
        "Subject": "render finished",
        "Message": SNS_JOB,
        "Timestamp": iso(SNS_SIGNED_AT, 417),
    }
    message.update(fields)
    return {k: v for k, v in message.items() if v is not None}


def sns_confirmation(kind: str = "SubscriptionConfirmation", **fields: Any) -> Json:
    verb = "subscribe" if kind == "SubscriptionConfirmation" else "deactivate a subscription"
    message: Json = {
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": SNS_TOKEN,
        "TopicArn": SNS_TOPIC,
        "Message": f"You have chosen to {verb} to the topic {SNS_TOPIC}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": SNS_SUBSCRIBE_URL,
        "Timestamp": iso(SNS_SIGNED_AT, 5),
    }
    message.update(fields)
    return message


def sns_headers(message: Json) -> list[list[str]]:
    return [
        ["x-amz-sns-message-type", str(message.get("Type"))],
        ["x-amz-sns-message-id", str(message.get("MessageId"))],
        ["x-amz-sns-topic-arn", str(message.get("TopicArn"))],
        ["Content-Type", "text/plain; charset=UTF-8"],
        ["User-Agent", "Amazon Simple Notification Service Agent"],
    ]


def sns(
    w: Writer,
    stem: str,
    description: str,
    message: Json | None,
    expected: Json,
    *,
    body: str | None = None,
    headers: list[list[str]] | None = None,
    options: Json | None = None,
    fetch: Json | None = None,
    now: int = NOW,
) -> None:
    if body is None:
        assert message is not None
        body = json.dumps(message, indent=2, ensure_ascii=False)
    w.write(
        "aws-sns",
        f"sns-{stem}",
        {
            "provider": "aws-sns",
            "description": description,
            "origin": "synthetic: self-signed test certificate, signed with cryptography (the "
            "private key of AWS's certificate is unknown; field set and order as AWS documents)",
            "fetch": fetch if fetch is not None else {SNS_CERT_URL: SNS_CERT},
            "source": {
                "secrets": [],
                "public_keys": [],
                "options": {"topic_arns": [SNS_TOPIC], **(options or {})},
                "tolerance_seconds": 300,
            },
            "headers": headers if headers is not None else sns_headers(message or {}),
            "body": body,
            "now": now,
            "expected": expected,
        },
    )


def passthrough(event_type: str | None) -> Json:
    return {"passthrough": True, "event_type": event_type}


def aws_sns(w: Writer) -> None:
    v2 = sns_signed(sns_notification())
    ok = valid(SNS_KEY_ID, "aws-sns-v2", SNS_MESSAGE_ID, normalize=passthrough("Notification"))
    sns(w, "v2-valid", "Notification, SignatureVersion 2 (SHA256)", v2, ok)
    sns(
        w,
        "v1-valid",
        "Notification, SignatureVersion 1 (SHA1)",
        sns_signed(sns_notification(), version="1"),
        {**ok, "scheme": "aws-sns-v1"},
    )
    sns(
        w,
        "no-subject-valid",
        "Notification without Subject: the field is left out of the string to sign",
        sns_signed(sns_notification(Subject=None)),
        ok,
    )
    escaped = sns_notification(Message='line one\nline "two"\tü ☃', Subject="déjà vu")
    sns(w, "escapes-valid", "escaped characters are signed decoded", sns_signed(escaped), ok)
    sns(
        w,
        "event-type-attribute",
        "event_type_attribute names a MessageAttributes entry: its Value is the event type",
        sns_signed(sns_notification())
        | {"MessageAttributes": {"kind": {"Type": "String", "Value": "render.finished"}}},
        {**ok, "normalize": passthrough("render.finished")},
        options={"event_type_attribute": "kind"},
    )
    sns(
        w,
        "boundary-old-300",
        "Timestamp exactly 300 s old is accepted",
        v2,
        ok,
        now=SNS_SIGNED_AT + 300,
    )
    sns(
        w,
        "stale-301",
        "Timestamp 301 s old",
        v2,
        invalid("timestamp_out_of_window"),
        now=SNS_SIGNED_AT + 301,
    )
    sns(
        w,
        "future-301",
        "Timestamp 301 s ahead",
        v2,
        invalid("timestamp_out_of_window"),
        now=SNS_SIGNED_AT - 301,
    )
    sns(
        w,
        "tampered-message",
        "Message changed after signing",
        v2 | {"Message": SNS_JOB.replace("succeeded", "failed")},
        invalid("signature_mismatch"),
    )
    sns(
        w,
        "added-subject",
        "a Subject added to a message signed without one",
        sns_signed(sns_notification(Subject=None)) | {"Subject": "added"},
        invalid("signature_mismatch"),
    )
    sns(
        w,
        "version-downgrade",
        "signed with SHA256, relabelled SignatureVersion 1",
        v2 | {"SignatureVersion": "1"},
        invalid("signature_mismatch"),
    )
    sns(
        w,
        "wrong-key",
        "signed with a key other than the certificate's",
        sns_signed(sns_notification(), key=SNS_OTHER_KEY),
        invalid("signature_mismatch"),
    )
    sns(
        w,
        "wrong-certificate",
        "the certificate URL serves another key's certificate",
        v2,
        invalid("signature_mismatch"),
        fetch={SNS_CERT_URL: SNS_OTHER_CERT},
    )
    sns(
        w,
        "not-a-certificate",
        "the certificate URL serves something that is not a certificate",
        v2,
        invalid("invalid_certificate"),
        fetch={SNS_CERT_URL: "<html>hello</html>"},
    )
    bad_urls = {
        "http": SNS_CERT_URL.replace("https://", "http://"),
        "other-host": f"https://sns.us-east-1.amazonaws.com.evil.example/{SNS_CERT_NAME}.pem",
        "lookalike-host": f"https://sns.us-east-1.amazonaws.co/{SNS_CERT_NAME}.pem",
        "not-sns-host": f"https://s3.us-east-1.amazonaws.com/{SNS_CERT_NAME}.pem",
        "userinfo": f"https://sns.us-east-1.amazonaws.com@evil.example/{SNS_CERT_NAME}.pem",
        "userinfo-on-sns": f"https://user@sns.us-east-1.amazonaws.com/{SNS_CERT_NAME}.pem",
        "port": f"https://sns.us-east-1.amazonaws.com:8443/{SNS_CERT_NAME}.pem",
        "default-port": f"https://sns.us-east-1.amazonaws.com:443/{SNS_CERT_NAME}.pem",
        "trailing-dot": f"https://sns.us-east-1.amazonaws.com./{SNS_CERT_NAME}.pem",
        "upper-case-host": f"https://SNS.us-east-1.amazonaws.com/{SNS_CERT_NAME}.pem",
        "no-region": f"https://sns.amazonaws.com/{SNS_CERT_NAME}.pem",
        "other-path": "https://sns.us-east-1.amazonaws.com/evil.pem",
        "query": f"{SNS_CERT_URL}?x=1",
        "fragment": f"{SNS_CERT_URL}#x",
        "backslash": f"https://sns.us-east-1.amazonaws.com\\@evil.example/{SNS_CERT_NAME}.pem",
        "china-suffix-wrong-region": f"https://sns.us-east-1.amazonaws.com.cn/{SNS_CERT_NAME}.pem",
    }
    for name, url in bad_urls.items():
        sns(
            w,
            f"cert-url-{name}",
            f"SigningCertURL refused before any fetch: {name}",
            sns_signed(sns_notification(), cert_url=url),
            invalid("bad_certificate_url"),
            fetch={url: SNS_CERT},
        )
    china_url = f"https://sns.cn-north-1.amazonaws.com.cn/{SNS_CERT_NAME}.pem"
    sns(
        w,
        "cert-url-china-valid",
        "the China partition's SNS host",
        sns_signed(sns_notification(), cert_url=china_url),
        {**ok, "key_id": f"cn-north-1:{SNS_CERT_NAME}"},
        fetch={china_url: SNS_CERT},
    )
    confirmation = sns_signed(sns_confirmation())
    sns(
        w,
        "subscription-confirmation-valid",
        "SubscriptionConfirmation for an allowed topic verifies (the handshake then GETs it)",
        confirmation,
        valid(SNS_KEY_ID, "aws-sns-v2", "165545c9-2a5c-472c-8df2-7ff2be2b3b1b"),
    )
    sns(
        w,
        "subscription-confirmation-unknown-topic",
        "SubscriptionConfirmation for a topic not in topic_arns: refused, nothing fetched",
        sns_signed(sns_confirmation(TopicArn=SNS_OTHER_TOPIC)),
        invalid("topic_not_allowed"),
        fetch={},
    )
    sns(
        w,
        "notification-unknown-topic",
        "Notification from a topic not in topic_arns",
        sns_signed(sns_notification(TopicArn=SNS_OTHER_TOPIC)),
        invalid("topic_not_allowed"),
        fetch={},
    )
    sns(
        w,
        "subscription-confirmation-tampered-url",
        "SubscribeURL changed after signing",
        confirmation | {"SubscribeURL": SNS_SUBSCRIBE_URL + "&x=1"},
        invalid("signature_mismatch"),
    )
    sns(
        w,
        "unsubscribe-confirmation-valid",
        "UnsubscribeConfirmation is verified and passed through",
        sns_signed(sns_confirmation("UnsubscribeConfirmation")),
        valid(
            SNS_KEY_ID,
            "aws-sns-v2",
            "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            normalize=passthrough("UnsubscribeConfirmation"),
        ),
    )
    sns(
        w,
        "message-type-header-mismatch",
        "x-amz-sns-message-type disagrees with the signed Type",
        v2,
        invalid("message_type_mismatch"),
        headers=[["x-amz-sns-message-type", "SubscriptionConfirmation"]],
    )
    sns(w, "no-headers-valid", "the unsigned SNS headers are optional", v2, ok, headers=[])
    sns(
        w,
        "malformed-not-json",
        "body is not JSON",
        None,
        invalid("malformed_message"),
        body="Type=Notification",
    )
    sns(
        w,
        "malformed-array",
        "body is a JSON array",
        None,
        invalid("malformed_message"),
        body="[1, 2]",
    )
    repeated = json.dumps(v2, indent=2)[:-2] + ',\n  "Message": "other"\n}'
    sns(
        w,
        "malformed-repeated-key",
        "a field appears twice",
        None,
        invalid("malformed_message"),
        body=repeated,
    )
    sns(
        w,
        "malformed-signature",
        "Signature is not base64",
        v2 | {"Signature": "not base64!"},
        invalid("malformed_message"),
    )
    sns(
        w,
        "malformed-missing-message-id",
        "a signed field is missing",
        {k: v for k, v in v2.items() if k != "MessageId"},
        invalid("malformed_message"),
    )
    sns(
        w,
        "malformed-number-field",
        "a signed field is a number",
        v2 | {"Message": 42},
        invalid("malformed_message"),
    )
    sns(
        w,
        "malformed-timestamp",
        "Timestamp is not ISO 8601 UTC",
        sns_signed(sns_notification(Timestamp=str(SNS_SIGNED_AT))),
        invalid("malformed_message"),
    )
    sns(
        w,
        "malformed-type",
        "Type is not an SNS message type",
        v2 | {"Type": "Notice"},
        invalid("malformed_message"),
    )
    sns(
        w,
        "unsupported-signature-version",
        "SignatureVersion 3 does not exist",
        v2 | {"SignatureVersion": "3"},
        invalid("unsupported_signature_version"),
    )


# ------------------------------------------------------------------------------ Pub/Sub push
PUBSUB_KEY = private_key(PUBSUB_KEY_PEM)
PUBSUB_OTHER_KEY = private_key(PUBSUB_OTHER_KEY_PEM)
PUBSUB_KID = "6f7254101f56e41cf35c9926de84a2d552b4c6f1"
PUBSUB_CERT = certificate(PUBSUB_KEY, "google test signer")
CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"
AUDIENCE = "https://hooks.example.com/webhooks/pubsub"
EMAIL = "push-invoker@render-prod.iam.gserviceaccount.com"
PUBSUB_MESSAGE_ID = "2070443601311540"
PUBSUB_ISSUED = NOW - 600


def claims(**changes: Any) -> Json:
    base: Json = {
        "aud": AUDIENCE,
        "azp": "113774264463038321964",
        "email": EMAIL,
        "email_verified": True,
        "exp": PUBSUB_ISSUED + 3600,
        "iat": PUBSUB_ISSUED,
        "iss": "https://accounts.google.com",
        "sub": "113774264463038321964",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def google_token(payload: Json, *, key_pem: bytes = PUBSUB_KEY_PEM, kid: str = PUBSUB_KID) -> str:
    """Signed by google-auth, the way Google's own libraries sign tokens."""
    return google_encode(key_pem, kid, payload)


def raw_token(header: Json, payload: Json, signature: bytes) -> str:
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(payload).encode())
    return f"{head}.{body}.{b64url(signature)}"


def pubsub_body(**message: Any) -> str:
    data = base64.b64encode(b'{"job_id": "job_7Hq2", "status": "succeeded"}').decode()
    fields: Json = {
        "attributes": {"eventType": "job.succeeded", "origin": "render-farm"},
        "data": data,
        "messageId": PUBSUB_MESSAGE_ID,
        "message_id": PUBSUB_MESSAGE_ID,
        "publishTime": "2025-12-31T23:49:59.875Z",
        "publish_time": "2025-12-31T23:49:59.875Z",
    }
    fields.update(message)
    body = {"message": fields, "subscription": "projects/render-prod/subscriptions/jobs-push"}
    return json.dumps(body)


def pubsub(
    w: Writer,
    stem: str,
    description: str,
    token: str | None,
    expected: Json,
    *,
    origin: str = "",
    authorization: str | None = None,
    options: Json | None = None,
    public_url: str | None = None,
    fetch: Json | None = None,
    body: str | None = None,
    now: int = NOW,
) -> None:
    source_options: Json = {
        "service_account_emails": [EMAIL],
        "audience": AUDIENCE,
        "certs_min_refresh_seconds": 0,
    }
    source_options.update(options or {})
    source_options = {k: v for k, v in source_options.items() if v is not None}
    headers = [["Content-Type", "application/json"]]
    if authorization is not None:
        headers.append(["Authorization", authorization])
    elif token is not None:
        headers.append(["Authorization", f"Bearer {token}"])
    source: Json = {
        "secrets": [],
        "public_keys": [],
        "options": source_options,
        "tolerance_seconds": 300,
    }
    if public_url is not None:
        source["public_url"] = public_url
    w.write(
        "gcp-pubsub",
        f"pubsub-{stem}",
        {
            "provider": "gcp-pubsub",
            "description": description,
            "origin": origin
            or "synthetic: google-auth 2.63.0 jwt.encode with a test-made key and "
            "self-signed certificate (Google's private keys are unknown)",
            "fetch": fetch
            if fetch is not None
            else {CERTS_URL: json.dumps({PUBSUB_KID: PUBSUB_CERT})},
            "source": source,
            "headers": headers,
            "body": body if body is not None else pubsub_body(),
            "now": now,
            "expected": expected,
        },
    )


def gcp_pubsub(w: Writer) -> None:
    token = google_token(claims())
    ok = valid(
        PUBSUB_KID, "google-oidc-rs256", PUBSUB_MESSAGE_ID, normalize=passthrough("job.succeeded")
    )
    pubsub(w, "valid", "a push with a Google-style ID token", token, ok)
    numbers = PUBSUB_KEY.public_key().public_numbers()
    jwks = {
        "keys": [
            {
                "kty": "RSA",
                "alg": "RS256",
                "use": "sig",
                "kid": PUBSUB_KID,
                "n": b64url(numbers.n.to_bytes(256, "big")),
                "e": b64url(numbers.e.to_bytes(3, "big")),
            }
        ]
    }
    pubsub(
        w,
        "valid-jwks",
        "keys from Google's JWKS form (oauth2/v3/certs)",
        token,
        ok,
        options={"certs_url": JWKS_URL},
        fetch={JWKS_URL: json.dumps(jwks)},
    )
    pubsub(
        w,
        "audience-from-public-url",
        "no audience option: the source's public_url is the audience",
        token,
        ok,
        options={"audience": None},
        public_url=AUDIENCE,
    )
    pubsub(
        w,
        "issuer-without-scheme",
        "iss accounts.google.com (without https://) is Google's too",
        google_token(claims(iss="accounts.google.com")),
        ok,
    )
    pubsub(
        w,
        "no-event-type",
        "no eventType attribute: no event type",
        token,
        {**ok, "normalize": passthrough(None)},
        body=pubsub_body(attributes={"origin": "render-farm"}),
    )
    pubsub(
        w,
        "event-type-attribute-option",
        "event_type_attribute names another attribute",
        token,
        {**ok, "normalize": passthrough("render-farm")},
        options={"event_type_attribute": "origin"},
    )
    pubsub(
        w,
        "not-a-push-body",
        "authentic token, but the body is no Pub/Sub push: dead letter",
        token,
        {
            **valid(PUBSUB_KID, "google-oidc-rs256", None),
            "normalize": {"error": "NormalizationError", "reason": "unexpected_shape"},
        },
        body='{"hello": "world"}',
    )
    pubsub(
        w,
        "wrong-audience",
        "aud is another endpoint",
        google_token(claims(aud="https://other.example.com/push")),
        invalid("audience_mismatch"),
    )
    pubsub(
        w,
        "wrong-issuer",
        "iss is not Google",
        google_token(claims(iss="https://evil.example.com")),
        invalid("issuer_mismatch"),
    )
    pubsub(
        w,
        "email-unverified",
        "email_verified false",
        google_token(claims(email_verified=False)),
        invalid("email_not_verified"),
    )
    pubsub(
        w,
        "email-verified-string",
        "email_verified is the string 'true'",
        google_token(claims(email_verified="true")),
        invalid("email_not_verified"),
    )
    pubsub(
        w,
        "email-not-allowed",
        "a token for another service account",
        google_token(claims(email="someone@other-project.iam.gserviceaccount.com")),
        invalid("email_not_allowed"),
    )
    pubsub(
        w,
        "boundary-expired-300",
        "exp passed 300 s ago: inside the clock-skew tolerance",
        token,
        ok,
        now=PUBSUB_ISSUED + 3600 + 300,
    )
    pubsub(
        w,
        "expired",
        "exp passed 301 s ago",
        token,
        invalid("token_expired"),
        now=PUBSUB_ISSUED + 3600 + 301,
    )
    pubsub(
        w,
        "issued-in-future",
        "iat 301 s ahead of the clock",
        token,
        invalid("token_not_yet_valid"),
        now=PUBSUB_ISSUED - 301,
    )
    pubsub(
        w,
        "not-before-in-future",
        "nbf 301 s ahead of the clock",
        google_token(claims(nbf=NOW + 301)),
        invalid("token_not_yet_valid"),
    )
    pubsub(
        w, "missing-exp", "no exp claim", google_token(claims(exp=None)), invalid("malformed_token")
    )
    head = {"alg": "none", "typ": "JWT", "kid": PUBSUB_KID}
    pubsub(
        w,
        "alg-none",
        "alg none with an empty signature",
        raw_token(head, claims(), b""),
        invalid("malformed_header"),
    )
    pubsub(
        w,
        "alg-none-signed",
        "alg none with a signature segment",
        raw_token(head, claims(), b"x"),
        invalid("unsupported_algorithm"),
    )
    hs_head = {"alg": "HS256", "typ": "JWT", "kid": PUBSUB_KID}
    hs_input = raw_token(hs_head, claims(), b"").rsplit(".", 1)[0]
    hs_sig = hmac.new(PUBSUB_CERT.encode(), hs_input.encode(), hashlib.sha256).digest()
    pubsub(
        w,
        "alg-hs256",
        "HS256 keyed with the public certificate (algorithm confusion)",
        f"{hs_input}.{b64url(hs_sig)}",
        invalid("unsupported_algorithm"),
    )
    pubsub(
        w,
        "alg-rs512",
        "RS512 is not what Google signs with",
        google_token(claims()).replace(
            b64url(json.dumps({"typ": "JWT", "alg": "RS256", "kid": PUBSUB_KID}).encode()),
            b64url(json.dumps({"typ": "JWT", "alg": "RS512", "kid": PUBSUB_KID}).encode()),
        ),
        invalid("unsupported_algorithm"),
    )
    pubsub(
        w,
        "unknown-kid",
        "a kid Google does not publish, even after a refetch",
        google_token(claims(), kid="0000000000000000000000000000000000000000"),
        invalid("unknown_key"),
    )
    pubsub(
        w,
        "no-kid",
        "no kid in the header",
        raw_token({"alg": "RS256", "typ": "JWT"}, claims(), b"x"),
        invalid("malformed_header"),
    )
    signed_head, _, signature = token.split(".")
    forged = b64url(json.dumps(claims(email="attacker@evil.iam.gserviceaccount.com")).encode())
    pubsub(
        w,
        "tampered-claims",
        "claims changed after signing",
        f"{signed_head}.{forged}.{signature}",
        invalid("signature_mismatch"),
    )
    pubsub(
        w,
        "wrong-key",
        "signed by another key under Google's kid",
        google_token(claims(), key_pem=PUBSUB_OTHER_KEY_PEM),
        invalid("signature_mismatch"),
    )
    pubsub(w, "missing-authorization", "no Authorization header", None, invalid("missing_header"))
    pubsub(
        w,
        "basic-scheme",
        "Authorization is Basic",
        None,
        invalid("malformed_header"),
        authorization="Basic dXNlcjpwYXNz",
    )
    pubsub(
        w,
        "two-segments",
        "not a compact JWT",
        None,
        invalid("malformed_header"),
        authorization="Bearer abc.def",
    )
    pubsub(
        w,
        "header-not-json",
        "the token's header is not JSON",
        None,
        invalid("malformed_header"),
        authorization=f"Bearer {b64url(b'nope')}.{b64url(b'{}')}.{b64url(b'x')}",
    )
    garbage = (
        raw_token({"alg": "RS256", "kid": PUBSUB_KID}, {}, b"").rsplit(".", 2)[0]
        + "."
        + b64url(b"not json")
    )
    garbage_sig = PUBSUB_KEY.sign(garbage.encode(), padding.PKCS1v15(), hashes.SHA256())
    pubsub(
        w,
        "claims-not-json",
        "signed, but the claims are not JSON",
        f"{garbage}.{b64url(garbage_sig)}",
        invalid("malformed_token"),
    )


def main() -> None:
    for folder in FOLDERS:
        shutil.rmtree(HERE / folder, ignore_errors=True)
    w = Writer()
    aws_sns(w)
    gcp_pubsub(w)
    print(f"wrote {len(w.stems)} vectors")


if __name__ == "__main__":
    main()
