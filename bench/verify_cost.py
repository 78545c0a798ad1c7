"""What verifying one delivery costs per scheme, as ratios to HMAC, measured in one run.

    python -m bench.verify_cost [--rounds 5] [--iterations 2000] [--json]

Each scheme verifies the same valid delivery ``iterations`` times per round (keys and
certificates already cached, so this is the steady state, not a fetch); schemes take turns
round by round and the median round is kept, because this machine is shared. Printed: the
median microseconds per verification and the ratio to ``hmac-sha256-hex`` (Abstrakt).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from multidict import CIMultiDict

from adapters import (
    Adapter,
    AdapterServices,
    NamedKey,
    NamedSecret,
    SourceSpec,
    build_adapter,
)
from adapters.testing_keys import (
    FAL_TEST_PUBLIC_X,
    PUBSUB_TEST_EMAIL,
    PUBSUB_TEST_KEY_ID,
    pubsub_test_certificate_pem,
    sns_test_certificate_pem,
)

NOW = 1_767_225_600
BODY = b'{"job_id": "job_1", "status": "completed", "timestamp": "2026-01-01T00:00:00Z"}'
Check = Callable[[], Awaitable[object]]


def _spec(provider: str, **fields: Any) -> SourceSpec:
    return dataclasses.replace(SourceSpec(name=provider, provider=provider), **fields)


def _check(adapter: Adapter, raw: bytes, headers: dict[str, str]) -> Check:
    multi = CIMultiDict(headers)

    async def run() -> object:
        return await adapter.verify(raw, multi, NOW)

    return run


def schemes() -> dict[str, Check]:
    """One ready-to-verify valid delivery per scheme, signed by each adapter's ``send`` path."""
    hmac = build_adapter(_spec("abstrakt", secrets=(NamedSecret("k", "bench-secret"),)))
    fal = build_adapter(_spec("fal", public_keys=(NamedKey("k", FAL_TEST_PUBLIC_X),)))
    sns_options = {
        "topic_arns": ["arn:aws:sns:us-east-1:123456789012:bench"],
        "certificate_pem": sns_test_certificate_pem(),
    }
    checks = {
        "hmac-sha256-hex": _check(hmac, BODY, hmac.sign(BODY, NOW, delivery_id="d")),
        "ed25519-jwks (fal)": _check(fal, BODY, fal.sign(BODY, NOW, delivery_id="d")),
    }
    for version in ("1", "2"):
        sns = build_adapter(_spec("aws-sns", options=sns_options, production=False))
        template = json.dumps({"Message": BODY.decode(), "SignatureVersion": version}).encode()
        raw, headers = sns.sign_delivery(template, NOW, delivery_id="d")
        checks[f"aws-sns-v{version}"] = _check(sns, raw, headers)
    pubsub = build_adapter(
        _spec(
            "gcp-pubsub",
            public_keys=(NamedKey(PUBSUB_TEST_KEY_ID, pubsub_test_certificate_pem()),),
            options={"service_account_emails": [PUBSUB_TEST_EMAIL], "certs_url": None},
            public_url="https://bench.example/webhooks/pubsub",
            production=False,
        ),
        AdapterServices(),
    )
    push = b'{"message": {"messageId": "1", "data": ""}, "subscription": "s"}'
    checks["google-oidc-rs256"] = _check(pubsub, push, pubsub.sign(push, NOW, delivery_id="d"))
    return checks


async def measure(rounds: int, iterations: int) -> dict[str, float]:
    checks = schemes()
    samples: dict[str, list[float]] = {name: [] for name in checks}
    for _ in range(rounds):
        for name, check in checks.items():
            started = time.perf_counter()
            for _ in range(iterations):
                await check()
            samples[name].append((time.perf_counter() - started) / iterations * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    micros = asyncio.run(measure(max(args.rounds, 1), max(args.iterations, 1)))
    base = micros["hmac-sha256-hex"]
    rows = {name: {"us": round(us, 2), "ratio": round(us / base, 2)} for name, us in micros.items()}
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'scheme':<22} {'us/verify':>10} {'x hmac':>8}")
    for name, row in rows.items():
        print(f"{name:<22} {row['us']:>10.2f} {row['ratio']:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
