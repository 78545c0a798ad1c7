"""Bytes per dedupe key in a real redis-server: ``python -m bench.dedupe_sizing``.

Writes ``--keys`` committed ids exactly as the gateway does (``<prefix>:dedupe:evt_<32 hex>``,
value ``c``, a TTL) into a fresh ``redis-server`` on a free port, then reports what
``MEMORY USAGE`` says for a sample of keys and how much ``used_memory`` grew per key (which
also counts the keyspace's hash tables and the expiry index). docs/dedupe.md uses the figures
for sizing: bytes per key x deliveries per TTL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench.procs import RedisProcess


async def measure(port: int, keys: int, prefix: str) -> dict[str, Any]:
    client = Redis(host="127.0.0.1", port=port)
    try:
        before = int((await client.info("memory"))["used_memory"])
        for start in range(0, keys, 1000):
            async with client.pipeline(transaction=False) as pipe:
                for i in range(start, min(keys, start + 1000)):
                    pipe.set(f"{prefix}:dedupe:evt_{i:032x}", b"c", px=3_600_000)
                await pipe.execute()
        after = int((await client.info("memory"))["used_memory"])
        step = max(1, keys // 1000)
        sample = [
            int(await client.memory_usage(f"{prefix}:dedupe:evt_{i:032x}") or 0)
            for i in range(0, keys, step)
        ]
        claim_key = f"{prefix}:dedupe:evt_{'f' * 32}"
        await client.set(claim_key, b"0123456789abcdef", px=15_000)
        info = await client.info("server")
        return {
            "redis_version": info["redis_version"],
            "keys": keys,
            "key_example": f"{prefix}:dedupe:evt_{0:032x}",
            "memory_usage_committed_bytes": statistics.median(sample),
            "memory_usage_claim_bytes": int(await client.memory_usage(claim_key) or 0),
            "used_memory_growth_per_key_bytes": (after - before) / keys,
        }
    finally:
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--prefix", default="webhook-gateway")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dedupe-sizing-") as directory:
        try:
            redis = RedisProcess(Path(directory))
        except RuntimeError as exc:
            print(exc, flush=True)
            return 2
        try:
            result = asyncio.run(measure(redis.port, args.keys, args.prefix))
        finally:
            redis.stop()
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
