"""``POST /expectations`` on the admin listener: register a job expectation over HTTP.

Authenticated with a bearer token (``reconcile.admin_token``, compared in constant time);
the body is a ``JobExpectation``. 202 ``added``, 200 ``already_open`` / ``already_ended``,
401 without the token, 413 over 64 KiB, 415 not JSON, 422 a malformed or unpollable
expectation, 503 + Retry-After when Redis fails.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from redis.exceptions import RedisError

from gateway.errors import ExpectationRefused
from gateway.logs import get_logger
from gateway.metrics import Metrics
from gateway.reconcile.register import Registrar, parse_expectation

log = get_logger("gateway.reconcile")

MAX_BODY_BYTES = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.Response]]


def expectations_handler(
    registrar: Registrar,
    token: str,
    metrics: Metrics,
    *,
    retry_after_seconds: int,
    clock: Callable[[], float] = time.time,
) -> Handler:
    expected = f"Bearer {token}".encode()

    def answer(status: int, result: str, **extra: str) -> web.Response:
        metrics.child(metrics.expectations_registered, "http", result).inc()
        key = "result" if status < 400 else "error"
        return web.json_response({key: result, **extra}, status=status)

    async def handle(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            log.warning("expectation_unauthorized")
            return answer(401, "unauthorized")
        if request.content_type != "application/json":
            return answer(415, "unsupported_media_type")
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return answer(413, "body_too_large")
        raw = await request.content.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            return answer(413, "body_too_large")
        try:
            expectation = parse_expectation(raw)
            result = await registrar.register(expectation, clock())
        except ExpectationRefused as exc:
            log.info("expectation_refused", reason=exc.reason)
            return answer(422, exc.reason, detail=exc.args[0][:500])
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("expectation_store_failed", error=type(exc).__name__)
            response = answer(503, "store_unavailable")
            response.headers["Retry-After"] = str(retry_after_seconds)
            return response
        log.info("expectation_registered", source=expectation.source, result=result)
        return answer(202 if result == "added" else 200, result, key=expectation.key)

    return handle
