"""Local test keys for public-key schemes, so ``webhook-gateway send`` can sign like fal, a
Standard Webhooks ``v1a`` sender, AWS SNS or Google Pub/Sub push does.

These private keys are published in this repository and are for development only. The gateway
refuses to trust their public halves when ``mode: production`` (the RSA ones: the SNS
``certificate_pem`` option is refused outside development, and a Pub/Sub source refuses the
test certificate among its ``public_keys``).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from nacl.signing import SigningKey

FAL_TEST_KEY_ID = "local-test-key"
FAL_TEST_SIGNING_KEY = SigningKey(hashlib.sha256(b"webhook-gateway fal local test key v1").digest())
FAL_TEST_PUBLIC_X = (
    base64.urlsafe_b64encode(bytes(FAL_TEST_SIGNING_KEY.verify_key)).decode().rstrip("=")
)

V1A_TEST_KEY_ID = "local-test-key"
V1A_TEST_SIGNING_KEY = SigningKey(hashlib.sha256(b"webhook-gateway v1a local test key v1").digest())
V1A_TEST_PUBLIC = "whpk_" + base64.b64encode(bytes(V1A_TEST_SIGNING_KEY.verify_key)).decode()

TEST_PUBLIC_KEYS = frozenset({FAL_TEST_PUBLIC_X, V1A_TEST_PUBLIC})


# ------------------------------------------------------------------------------ RSA (SNS, Pub/Sub)
# RSA keys cannot be derived from a seed the way Ed25519 keys are, so the PEM text is published
# here. Their certificates are built from them on first use, deterministically (fixed serial,
# names and validity; PKCS#1 v1.5 signatures carry no randomness), so every run gets the same.
SNS_TEST_CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-localtest.pem"
_SNS_TEST_PRIVATE_KEY_PEM = b"""\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCp1Z8z2PcTsEV3
3sa7mdTKBDvm+WxuEH1+Snla2/9M8fJ+scssKVMrpn0AJpHL/RLRCUqE3c6vs5M6
SgOIz//g5q5n1ox/XFFySiydIV2FcAqo/OqeCSdtSKz6cF6L65OAkkOUC7QFdyiV
8Y9kI2JB6bQPx+Ea0nXY4EFnbA7kG1p1T1yt2KH95UtqrPqmyiYCo9M69f+Ow80E
CtHgv4NnoKrWoh6ucOIHC2Gq+3pGHY5A7ps6rxIOvc1zxe6d8IUPHux569FGCVH5
Ft2UkZ6TcXKWB9q2n6nGPAI+FQcsbhdq9RWPXj7dpI5RRB5hT9ozuDyNqj+ODA6+
6AejwPJBAgMBAAECggEABzwQHtWKeuZ6oxdUmGe+aoehJJ7x6UNfESrrff0apES3
O4Hn4X72KckbEI9UDSA/9bMjX0MSm6X26tf9zA1uPT6eZdJ8JC3C029I9L2X3ggO
kDHL7cT+jrd2lOmGAYhcvXCdm9geyE/R5QdIADBIrn2d28E8O9gEyKMO7jCqdrmI
wkHlEm3rwHKdMvefpNwfkSG5A/22SOq2dVfjxlRO1RCjzS4LaOH9CTHblvmpep/V
09YJpdUL4tvmJImmso6wrX+VpiBB+Yg0XrVfEw9E/C8gX2ovP/501pf+xc2des2J
SD5UrhLuWaNmQ00cqeqqyVslbhBfWjxqUcyBJgrvQQKBgQDgUnXTb5R4AQTiXEuL
w/okZfsBjrzaAAyDemirzlvbx02nr2C0VJbvKhNYmYShZirUoCxhwjCkdg6cgAC7
9MMUwgL4VW2LNOn4P1jJ7g/s7uk9VyvOhf5SNIu6gg3N8LUxgI8ZOamKrlnUmyXe
dpy9XL+46mpH21klPXLYiiuPkQKBgQDB0Vx/YPmSyeGoY77XTzjHYf3VTFTQfrzY
snnnslPGrY3rB7mrjjKg+3ft2VgtmeJoOsdz6uqFWuYqGoJOFSPhZPMiXMJOEF9X
n9x+q0/rmb9KcnUxPijpQDrB8QpWm3orGX+NwTxDtbjpGeu6FHAnZ+gkht1C8ylW
AvPZA24/sQKBgQDSSPrjZmoLxQjLGjJHp0PK8z7GSwSGaB1S82FEDYLXGJKXazSA
V/vV39+a4u8OTjRAdpakXeIziehQlT4a9Gwb/XPDUHIMWWIrsVaOlXigZ6aGNj1+
sOWkMlX6VQiT0d5JtXZv8zoYIzFauMZbMV3lthiUREu1aM68tkn+7CfBwQKBgAQg
I7rmYomYWIBQFzjYC9paoJ+Qr2F8wSJPsj6XUicxfIrbMD2RmkxI7gWXEcRuuR4E
2kgCYRmTlMCirdFhq9DZaD97//rPaGgiE/xyQxI9xI+eHhZ9PzuvzVBhhBnR12jh
cxCeY10Bmj0D+zuLwdNk59EXOdB6ApA9IdmltAwRAoGAFeI1Ig7J7GfoWKqG+YVd
Krwp6qhhmnidP/AYm5+hQWSPaHPkpXJemAiMnavm4SbY909DcxUoRpY/IFe3gfhR
SDaNt7jjOFpmTJXGBZW/em+WdX9St8iwYH0p2j200vVYb3YmDDrj2vzN7ZyQxGUj
ctSD3ZK19QHjiVu39f3CYEE=
-----END PRIVATE KEY-----
"""

PUBSUB_TEST_KEY_ID = "local-test-key"
PUBSUB_TEST_EMAIL = "local-test@webhook-gateway.iam.gserviceaccount.com"
_PUBSUB_TEST_PRIVATE_KEY_PEM = b"""\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCf3mCrf6e9h/wW
9VlSq9+JUQBQ9bldl9trda59stYl4YFo+fW/RB81wyCwx8Gtkt9dOj1UVLOjmddR
QUybCvNM3WYSB8dTnXXaSOd11NdTwmRY6GIVroWyNbX8weoz+kxKxCedjmw+Vz1W
07xrDMagz00z6NKtvsHii/IXCqoHJNXyiLHQJWzn+2Lw+voOpbNR9sVv181FJdoi
e96uBw30WoVVGaiGa2yjiJz0+6TpaOG8zKJc6dSUgR/1Ls6jBe398s690oAILChl
SiTIItVQro+aaNqB3DbgaxWpX+e4OHvBOE45PRwA4RC81tgkLj6Sg0j01kjtV/fo
AwEoFIb5AgMBAAECggEAC7MZDQP7G85DXyTBJDaK1er1JHekg1p1MYs7uVw9+tNi
2/K1uYkmkDyBpx5UqLtqbaaw9/vOPRH++tCAvDSpcz3IAK12uMJPGSn5B8ZgpHMX
UpWzHpYWl7ZW5V1a9/HV5Sovd1gwc2wsA4TcXFM43Wo+Yqb5IBj+lHHxxh4+15CM
sKZkjFYaE2yLdfpBC7gsrDXV+iF1Ik008+jfINwLiRZ40YKIbC+LmP9y7VhBwUja
28xQB6PKB45Y4d93NktQuhRWd6njq6Tnsm1hAI4Woksm5hwhG278XRkELciJysok
/10lkMTeMzxXRIZzOluYgw9EQ6IX5fd6+z1kgzneLwKBgQDaXwC1jsKLcgjasYHS
Nfxr7w0ROY9KaPoVJsnzHAuGpNXl78Cscm2q9jNF5LGZtvH30zFtzu/T4KKwGgpW
cXe2BSXknxrTUCtn6SMj9YxQw+adh0VX5XO7R7mMI6wB3qVKHr4mmvbMzYyCf7AB
O7RVuR2QEfYA8cBuaeZslVhsfwKBgQC7aqiYreH287r0yWl2PT7RPq3XekCLRU2t
Ir1wQCOXwthmtiqvRG5/hjBBtyH2QzyKGnjCopJR3ngwjuTk6lm9c/ZHRRWrceF0
k1TNtbKlTWiURTQv/9n61NY6MInnnJHTjNoqAcMYWeawnsF94Nyb0cR7m2nNe1O8
Dfm4piSwhwKBgCpNrT1+4oFRHhX/vT6T5sqiDM4BcJjhrVDbqtPF4xW6aRWaVKET
qdssxtILc7xrjISODU1QgXVyVxH2eXo1kRNZ+/VGPVQie8Yti/kzYHNlABAUXIKi
mMD3LCLR5kiWcT7ipcOk0ZrrVwUQ52/VuSHCMs/uKtIUA0tgiJsQc4jRAoGABh9k
5KABmsy5ldein18+1x0iFsECrMoV0Isq/yjJQOL3qNtYp6MnrPjYSL1P2bi2mJhm
y4z+FLic2pFAfw384oiQSiHCpHgy8lkB0zqVXHsb6IQeQVctatlbKkl9p9hglzWp
xueJ1RjSxYBaN9+JtXlz3snj+feGc8VNHDApUK8CgYEAxmg74ZYuamBVGfKcDuOj
hmDYUfeROfEZFonwBZwcW2u+JNIPYz2B0IulN5o3mKFm1D5GgERDLTCS6Bszdg4p
Flsw85/JFMxYTO2+sx/ySzI4U1Rzrua4QnWtB4mOeMthWZLt7K9NeNu9eviwAg8x
ol9lMTbZ/y/xRncXe6UnmPU=
-----END PRIVATE KEY-----
"""


@cache
def sns_test_private_key() -> rsa.RSAPrivateKey:
    return _load_rsa(_SNS_TEST_PRIVATE_KEY_PEM)


@cache
def sns_test_certificate_pem() -> str:
    """The self-signed certificate ``certificate_pem`` pins in development for ``send``."""
    return _self_signed(sns_test_private_key(), "webhook-gateway local test (aws-sns)")


@cache
def pubsub_test_private_key() -> rsa.RSAPrivateKey:
    return _load_rsa(_PUBSUB_TEST_PRIVATE_KEY_PEM)


@cache
def pubsub_test_certificate_pem() -> str:
    """The self-signed certificate a development Pub/Sub source lists under ``public_keys``."""
    return _self_signed(pubsub_test_private_key(), "webhook-gateway local test (gcp-pubsub)")


def is_test_rsa_key(key: rsa.RSAPublicKey) -> bool:
    """Whether ``key`` is the public half of one of the published RSA test keys."""
    numbers = key.public_numbers()
    return any(
        numbers == private.public_key().public_numbers()
        for private in (sns_test_private_key(), pubsub_test_private_key())
    )


def _load_rsa(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("the RSA test key is not an RSA key")
    return key


def _self_signed(key: rsa.RSAPrivateKey, common_name: str) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2045, 1, 1, tzinfo=UTC))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()
