"""Local test keys for public-key schemes, so ``webhook-gateway send`` can sign like fal or a
Standard Webhooks ``v1a`` sender does.

These private keys are published in this repository and are for development only. The gateway
refuses to trust their public halves when ``mode: production``.
"""

from __future__ import annotations

import base64
import hashlib

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
