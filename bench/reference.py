"""The hand-written reference: what a careful user writes instead of the gateway.

aiohttp; the signature checked on the raw body; ``await producer.send_and_wait(...)`` on an
aiokafka producer with ``acks=all``, idempotence, zstd and ``linger_ms=1``; then 200. No
normalization, no dedupe, no metrics, no logs. Two handlers, written the straightforward way:

* HMAC (``/webhooks/abstrakt``, ``/webhooks/instantapi``): HMAC-SHA256 hex of the raw body,
  compared in constant time with the provider's signature header;
* fal (``/webhooks/fal``): Ed25519 with PyNaCl over ``request_id\\nuser_id\\nts\\nsha256(body)``,
  the timestamp within five minutes.

The secrets and the fal public key are the example config's, so the benchmark's pre-signed
requests are accepted by the gateway and by this app alike. Run as its own process::

    python -m bench.reference --port 8098 --bootstrap 127.0.0.1:9092 --topic bench.reference
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import time
from collections.abc import AsyncIterator

from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from bench.deliveries import EXAMPLE_CONFIG
from gateway.settings import load_settings

OK = b'{"received":true}'
FAL_TOLERANCE_SECONDS = 300
PRODUCER = web.AppKey("producer", AIOKafkaProducer)
TOPIC = web.AppKey("topic", str)
HMAC_SOURCES = {"abstrakt": "X-Abstrakt-Signature", "instantapi": "X-InstantAPI-Signature"}


def _example_keys() -> tuple[dict[str, tuple[str, bytes]], VerifyKey]:
    specs = load_settings(EXAMPLE_CONFIG).source_specs()
    hmac_keys = {
        source: (header, specs[source].secrets[0].value.encode())
        for source, header in HMAC_SOURCES.items()
    }
    x = specs["fal"].public_keys[0].value
    fal_key = VerifyKey(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))
    return hmac_keys, fal_key


def create_app(bootstrap: str, topic: str) -> web.Application:
    hmac_keys, fal_key = _example_keys()

    async def hmac_handler(request: web.Request) -> web.Response:
        header, secret = hmac_keys[request.match_info["source"]]
        body = await request.read()
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get(header, "")):
            return web.Response(status=401)
        await request.app[PRODUCER].send_and_wait(request.app[TOPIC], body)
        return web.Response(body=OK, content_type="application/json")

    async def fal_handler(request: web.Request) -> web.Response:
        body = await request.read()
        h = request.headers
        try:
            timestamp = h["X-Fal-Webhook-Timestamp"]
            if abs(time.time() - int(timestamp)) > FAL_TOLERANCE_SECONDS:
                return web.Response(status=401)
            message = "\n".join(
                (
                    h["X-Fal-Webhook-Request-Id"],
                    h["X-Fal-Webhook-User-Id"],
                    timestamp,
                    hashlib.sha256(body).hexdigest(),
                )
            ).encode()
            fal_key.verify(message, bytes.fromhex(h["X-Fal-Webhook-Signature"]))
        except (KeyError, ValueError, BadSignatureError):
            return web.Response(status=401)
        await request.app[PRODUCER].send_and_wait(request.app[TOPIC], body)
        return web.Response(body=OK, content_type="application/json")

    async def producer(app: web.Application) -> AsyncIterator[None]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(topic, 3, 1)])
        finally:
            await admin.close()
        app[PRODUCER] = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            compression_type="zstd",
            linger_ms=1,
        )
        await app[PRODUCER].start()
        yield
        await app[PRODUCER].stop()

    app = web.Application(client_max_size=1024 * 1024)
    app[TOPIC] = topic
    app.cleanup_ctx.append(producer)
    app.router.add_post("/webhooks/fal", fal_handler)
    app.router.add_post("/webhooks/{source:abstrakt|instantapi}", hmac_handler)
    return app


async def serve(host: str, port: int, bootstrap: str, topic: str) -> None:
    runner = web.AppRunner(create_app(bootstrap, topic), access_log=None)
    await runner.setup()  # the producer is connected before the port opens
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    print(f"reference listening on http://{host}:{port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    args = parser.parse_args()
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner, contextlib.suppress(KeyboardInterrupt):
        runner.run(serve(args.host, args.port, args.bootstrap, args.topic))


if __name__ == "__main__":
    main()
