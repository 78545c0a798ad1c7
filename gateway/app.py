"""The aiohttp application: one ``POST /webhooks/{source}`` route per configured source.

``create_app(settings)`` builds everything from settings; state hangs on typed ``AppKey``s and
the resources (HTTP client for JWKS, sink, adapters) live in ``cleanup_ctx``, so tests build as
many independent apps as they like. The admin app (metrics, health, readiness) is separate and
listens on its own port: the public port serves webhooks only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from adapters import Adapter, AdapterServices, ConfigError, build_adapter
from adapters.base import Fetcher, Reply, RequestMeta
from gateway.client_address import ClientAddressResolver, in_networks, parse_networks
from gateway.dedupe import build_dedupe
from gateway.errors import RequestError, TooManyFailures
from gateway.failure_budget import ClientKey, FailureBudget, budget_key
from gateway.ingest import Outcome, Pipeline, Source
from gateway.logs import get_logger, request_line
from gateway.metrics import UNKNOWN_SOURCE, Metrics
from gateway.settings import Settings
from gateway.sinks.base import Sink
from gateway.sinks.factory import build_sink


@dataclass
class State:
    """Mutable runtime state that readiness and the overload guard read."""

    in_flight: int = 0
    draining: bool = False
    shutting_down: bool = False
    started: bool = False
    http: aiohttp.ClientSession | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


SETTINGS = web.AppKey("settings", Settings)
PIPELINE = web.AppKey("pipeline", Pipeline)
METRICS = web.AppKey("metrics", Metrics)
SINK = web.AppKey("sink", Sink)
STATE = web.AppKey("state", State)
CLIENTS = web.AppKey("clients", ClientAddressResolver)
#: The reconciliation parts of the edge (``reconcile.enabled`` only).
RECONCILE: web.AppKey[EdgeParts] = web.AppKey("reconcile")
BUDGET = web.AppKey("failure_budget", FailureBudget)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_JSON_TYPES = ("application/json", "text/json")
_JWKS_MAX_BYTES = 256 * 1024

if TYPE_CHECKING:  # redis is imported only when reconciliation is on
    from gateway.reconcile.build import EdgeParts

log = get_logger("gateway.http")


def create_app(
    settings: Settings,
    *,
    sink: Sink | None = None,
    metrics: Metrics | None = None,
    wall_clock: Callable[[], float] = time.time,
    fetcher: Fetcher | None = None,
) -> web.Application:
    """Build the public app. Raises ``ConfigError`` when the configuration cannot work.

    ``fetcher`` replaces the HTTP client adapters use (JWKS, certificates, confirmation URLs):
    tests point it at local servers.
    """
    app = web.Application(client_max_size=settings.limits.max_body_bytes)
    state = State()
    metrics = metrics or Metrics()
    sink = sink or build_sink(settings)

    async def fetch(url: str) -> bytes:
        if state.http is None:
            raise ConfigError("http_unavailable", "HTTP client is not started")
        async with state.http.get(url) as response:
            response.raise_for_status()
            body = await response.content.read(_JWKS_MAX_BYTES + 1)
            if len(body) > _JWKS_MAX_BYTES:
                raise ValueError("JWKS document too large")
            return body

    sources: dict[str, Source] = {}
    for name, spec in settings.source_specs().items():

        def on_refresh(result: str, _name: str = name) -> None:
            metrics.key_refreshes.labels(_name, result).inc()

        services = AdapterServices(fetcher=fetcher or fetch, on_key_refresh=on_refresh)
        adapter = build_adapter(spec, services)
        check_replay_window(settings, name, adapter)
        config = settings.sources[name]
        sources[name] = Source(
            name, adapter, config.topic, allowed_ips=parse_networks(config.allowed_ips)
        )
        if adapter.may_pass_through:
            sink.expect_passthrough()
        for warning in adapter.warnings():
            log.warning("source_config_warning", source=name, warning=warning)

    def on_store_error(operation: str, reason: str) -> None:
        metrics.child(metrics.dedupe_store_errors, operation, reason).inc()

    dedupe = build_dedupe(settings, on_store_error)
    edge = None
    if settings.reconcile.enabled:  # redis is imported only then
        from gateway.reconcile.build import build_edge

        adapters = {name: source.adapter for name, source in sources.items()}
        edge = build_edge(settings, adapters, dedupe, metrics)
        app[RECONCILE] = edge
    pipeline = Pipeline(
        sources,
        sink,
        dedupe,
        publish_timeout_seconds=settings.limits.publish_timeout_seconds,
        retry_after_seconds=settings.limits.retry_after_seconds,
        wall_clock=wall_clock,
        perf_clock=time.perf_counter,
        terminal_gate=edge.gate if edge is not None else None,
    )
    # Read at scrape time: two locked gauge updates per request showed in the profile.
    metrics.in_flight.set_function(lambda: state.in_flight)
    app[SETTINGS] = settings
    app[PIPELINE] = pipeline
    app[METRICS] = metrics
    app[SINK] = sink
    app[STATE] = state
    app[CLIENTS] = ClientAddressResolver(parse_networks(settings.listen.trusted_proxies))
    limits = settings.limits
    budget = app[BUDGET] = FailureBudget(
        limits.failure_budget_burst,
        limits.failure_budget_per_second,
        limits.failure_budget_max_clients,
    )
    metrics.failure_budget_clients.set_function(lambda: len(budget))
    app.cleanup_ctx.append(_resources)
    app.router.add_route("*", "/webhooks/{source}", handle_webhook)
    # A path token (``/webhooks/{source}/{token}``) for senders that can only put a secret in
    # the URL; only sources whose scheme asks for one accept it.
    app.router.add_route("*", "/webhooks/{source}/{token}", handle_webhook)
    return app


def check_replay_window(settings: Settings, name: str, adapter: Adapter) -> None:
    """A scheme's own window (e.g. ElevenLabs' 30 min) must fit in what dedupe remembers."""
    window = adapter.replay_window_seconds()
    if settings.dedupe.ttl_seconds < window:
        raise ConfigError(
            "replay_window_exceeds_dedupe",
            f"source {name!r}: its replay window ({window} s) is longer than "
            f"dedupe.ttl_seconds ({settings.dedupe.ttl_seconds} s): a replay could pass as new",
        )


async def _resources(app: web.Application) -> AsyncIterator[None]:
    state, sink, pipeline = app[STATE], app[SINK], app[PIPELINE]
    state.http = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=10), raise_for_status=False
    )
    await sink.start()
    await pipeline.dedupe.start()
    for source in pipeline.sources.values():
        try:
            await source.adapter.start()
        except Exception as exc:  # noqa: BLE001 - a provider's JWKS being down must not stop us
            log.warning("adapter_start_failed", source=source.name, error=type(exc).__name__)
    state.started = True
    try:
        yield
    finally:
        state.shutting_down = True
        for source in pipeline.sources.values():
            await source.adapter.close()
        await sink.close()
        await pipeline.dedupe.close()
        if RECONCILE in app:
            await app[RECONCILE].connection.close()
        await state.http.close()


def is_ready(app: web.Application) -> tuple[bool, dict[str, bool]]:
    state, sink, pipeline = app[STATE], app[SINK], app[PIPELINE]
    checks = {
        "started": state.started,
        "not_shutting_down": not (state.shutting_down or state.draining),
        "sink": sink.ready(),
    }
    for name, source in pipeline.sources.items():
        checks[f"source:{name}"] = source.adapter.ready()
    return all(checks.values()), checks


def _request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-Id")
    if given is not None and _REQUEST_ID.match(given):
        return given
    return os.urandom(16).hex()  # uuid4 without the UUID object (it showed in the profile)


async def _read_body(request: web.Request, cap: int, limit_seconds: float) -> bytes:
    """Read at most ``cap`` bytes, counting as they arrive: Content-Length can lie or be absent."""
    if request.content_length is not None and request.content_length > cap:
        raise RequestError(413, "body_too_large", f"Content-Length over {cap} bytes")
    content = request.content
    if content.is_eof():
        # The usual case: a webhook is small and arrived whole with its headers. Take it
        # without setting up a timeout (measured: see README, benchmark).
        raw = content.read_nowait()
        if len(raw) > cap:
            raise RequestError(413, "body_too_large", f"body over {cap} bytes")
        return raw
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(limit_seconds):
            while True:
                chunk = await request.content.readany()
                if not chunk:
                    break
                size += len(chunk)
                if size > cap:
                    raise RequestError(413, "body_too_large", f"body over {cap} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestError(408, "body_timeout", "body not received in time") from None
    except aiohttp.ClientPayloadError:
        raise RequestError(400, "malformed_body", "body could not be read") from None
    return b"".join(chunks)


def _request_meta(request: web.Request, source: Source) -> RequestMeta:
    query = request.rel_url.query
    query_string = request.rel_url.raw_query_string
    public_url = source.adapter.spec.public_url
    url = None
    if public_url is not None:
        url = public_url + ("?" + query_string if query_string else "")
    return RequestMeta(
        method=request.method,
        query_string=query_string,
        query={k: query[k] for k in query},
        query_all=query,
        path_token=request.match_info.get("token"),
        url=url,
        content_type=request.headers.get("Content-Type"),
    )


def _admit(
    request: web.Request,
    source: Source | None,
    state: State,
    overloaded: bool,
    clients: ClientAddressResolver,
    budget: FailureBudget,
) -> Reply | None:
    """Everything checked before a byte of the body is read: cheap refusals first.

    Returns the reply to an unsigned probe (``GET ?challenge=``, ``OPTIONS``) when the source
    answers one; raises ``RequestError`` for every refusal.
    """
    if source is None:
        raise RequestError(404, "unknown_source")
    if "token" in request.match_info and not source.adapter.accepts_path_token:
        raise RequestError(404, "unknown_source")
    if source.allowed_ips:
        client = clients.resolve(request.remote, request.headers)
        if client is None or not in_networks(client, source.allowed_ips):
            raise RequestError(403, "ip_not_allowed", "client address outside allowed_ips")
    if len(budget):  # someone owes failures: only then is the address worth resolving
        key = _budget_key(clients, request)
        wait = None if key is None else budget.retry_after(key)
        if wait is not None:
            raise TooManyFailures(wait)
    if state.shutting_down:
        raise RequestError(503, "shutting_down")
    if overloaded:
        raise RequestError(503, "overloaded")
    if request.method != "POST":
        reply = source.adapter.probe(_request_meta(request, source), request.headers)
        if reply is not None:
            return reply
        raise RequestError(405, "method_not_allowed", request.method[:16])
    ctype = request.headers.get("Content-Type")
    if ctype is not None:
        media = ctype.split(";", 1)[0].strip().lower()
        if (
            media not in _JSON_TYPES
            and not media.endswith("+json")
            and media not in source.adapter.extra_content_types
        ):
            raise RequestError(415, "unsupported_media_type", "expected application/json")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", ""):
        # Signatures cover the bytes the provider signed; we do not inflate bodies we cannot
        # verify first (and a compressed body would bypass the size cap's intent).
        raise RequestError(415, "unsupported_content_encoding", encoding[:32])
    return None


async def handle_webhook(request: web.Request) -> web.StreamResponse:
    app = request.app
    state, metrics, settings = app[STATE], app[METRICS], app[SETTINGS]
    pipeline = app[PIPELINE]
    started = time.perf_counter()
    request_id = _request_id(request)
    name = request.match_info["source"]
    source = pipeline.sources.get(name)
    label = name if source is not None else UNKNOWN_SOURCE
    provider = source.provider if source is not None else UNKNOWN_SOURCE
    headers: dict[str, str] = {"X-Request-Id": request_id}
    outcome: Outcome

    overloaded = state.in_flight >= settings.limits.max_in_flight
    state.in_flight += 1
    try:
        try:
            probe = _admit(request, source, state, overloaded, app[CLIENTS], app[BUDGET])
            assert source is not None  # _admit refused unknown sources
            if probe is not None:
                outcome = Outcome(probe.status, "handshake", probe.kind, reply=probe)
            else:
                raw = await _read_body(
                    request, settings.limits.max_body_bytes, settings.limits.body_timeout_seconds
                )
                meta = _request_meta(request, source) if source.adapter.reads_request else None
                if meta is None:
                    outcome = await pipeline.handle(source, raw, request.headers)
                else:
                    outcome = await pipeline.handle(source, raw, request.headers, meta)
        except RequestError as exc:
            outcome = Outcome(exc.status, "refused", exc.reason)
            metrics.request_errors.labels(label, exc.reason).inc()
            if exc.status == 405:
                headers["Allow"] = "POST"
            if exc.status == 503:
                outcome.retry_after = settings.limits.retry_after_seconds
            if exc.status in (408, 413):
                headers["Connection"] = "close"
            if isinstance(exc, TooManyFailures):
                # 429 on a kept-alive connection rather than closing it: measured cheaper under
                # a flood, and it says when to retry (see gateway/failure_budget.py).
                outcome.retry_after = exc.retry_after
                metrics.child(metrics.failure_budget_refusals, label).inc()
        except Exception:
            # A bug, not bad input: nothing was acknowledged, so a 503 makes the provider retry
            # (a 500 would too, but says less); the traceback goes to the log for the SRE.
            log.exception("webhook_internal_error", request_id=request_id, source=label)
            outcome = Outcome(503, "unavailable", "internal_error")
            outcome.retry_after = settings.limits.retry_after_seconds
    finally:
        state.in_flight -= 1

    if outcome.status == 401 and app[BUDGET].enabled:
        _charge(app, request)
    if outcome.retry_after is not None:
        headers["Retry-After"] = str(outcome.retry_after)
    elapsed = time.perf_counter() - started
    _record(metrics, label, provider, outcome, elapsed, app[SINK], source)
    _log(request_id, label, provider, outcome, elapsed)
    reply = outcome.reply
    if reply is not None:
        headers.update(reply.headers)
        return web.Response(
            status=reply.status,
            body=reply.body,
            content_type=reply.content_type,
            headers=headers,
        )
    return web.Response(
        status=outcome.status,
        body=orjson.dumps(outcome.body()),
        content_type="application/json",
        headers=headers,
    )


def _budget_key(clients: ClientAddressResolver, request: web.Request) -> ClientKey | None:
    return budget_key(
        clients.resolve(request.remote, request.headers),
        behind_trusted_proxies=clients.trusts_proxies,
    )


def _charge(app: web.Application, request: web.Request) -> None:
    """Count a failed verification against the client that sent it."""
    key = _budget_key(app[CLIENTS], request)
    if key is None:
        return
    if app[BUDGET].charge(key):
        log.warning(
            "client_over_failure_budget",
            client=str(key),
            burst=app[BUDGET].burst,
            refill_per_second=app[BUDGET].refill,
        )


def _record(
    metrics: Metrics,
    label: str,
    provider: str,
    outcome: Outcome,
    elapsed: float,
    sink: Sink,
    source: Source | None,
) -> None:
    stats = metrics.stats
    stats.request(label, provider, str(outcome.status), outcome.outcome, elapsed)
    if outcome.key_id is not None and outcome.status != 401:
        stats.key_match(label, outcome.key_id)
    if outcome.publish_seconds is not None:
        stats.publish_duration(sink.kind, outcome.publish_seconds)
    if outcome.outcome == "accepted":
        override = source.topic if source else None
        stats.published(label, sink.topic_for(override, passthrough=outcome.passthrough))
        return
    # The rarer outcomes: prometheus-client's own counters.
    if outcome.status == 401 and outcome.reason:
        metrics.child(metrics.verification_failures, label, outcome.reason).inc()
    elif outcome.outcome == "duplicate":
        metrics.child(metrics.duplicates, label).inc()
    elif outcome.outcome == "handshake":
        metrics.child(metrics.handshakes, label, outcome.reason or "unknown").inc()
    elif outcome.outcome == "dead_letter":
        metrics.child(metrics.dead_letters, label, outcome.reason or "unknown").inc()
        stats.published(label, sink.dead_letter_topic())
    elif outcome.outcome == "unavailable" and outcome.reason:
        if outcome.publish_seconds is not None:  # the sink was asked, and failed
            metrics.child(metrics.publish_failures, sink.kind, outcome.reason).inc()
        else:  # 503 before any publish (keys, a handshake's fetch): not the sink's fault
            metrics.child(metrics.request_errors, label, outcome.reason).inc()


def _log(request_id: str, source: str, provider: str, outcome: Outcome, elapsed: float) -> None:
    fields: dict[str, Any] = {
        "request_id": request_id,
        "source": source,
        "provider": provider,
        "delivery_id": outcome.delivery_id,
        "event_id": outcome.event_id,
        "outcome": outcome.outcome,
        "status": outcome.status,
        "duration_ms": round(elapsed * 1000, 3),
    }
    if outcome.status >= 400 or outcome.outcome == "dead_letter":
        level = logging.ERROR if outcome.status >= 500 else logging.WARNING
        fields["reason"] = outcome.reason
    else:
        level = logging.INFO
        fields["key_id"] = outcome.key_id
    if not request_line(level, "webhook", fields):
        log.log(level, "webhook", **fields)


def create_admin_app(public: web.Application) -> web.Application:
    """``/metrics``, ``/healthz`` (process alive) and ``/readyz`` (can durably accept)."""
    admin = web.Application()
    metrics = public[METRICS]

    async def metrics_handler(_: web.Request) -> web.Response:
        ready, _checks = is_ready(public)
        metrics.sink_ready.labels(public[SINK].kind).set(1 if public[SINK].ready() else 0)
        del ready
        return web.Response(
            body=generate_latest(metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ready, checks = is_ready(public)
        # A degraded dedupe store is shown, not failed: deliveries still go through.
        dedupe = {"kind": public[PIPELINE].dedupe.kind, "state": public[PIPELINE].dedupe.health()}
        return web.json_response(
            {"ready": ready, "checks": checks, "dedupe": dedupe}, status=200 if ready else 503
        )

    admin.router.add_get("/metrics", metrics_handler)
    admin.router.add_get("/healthz", healthz)
    admin.router.add_get("/readyz", readyz)
    token = public[SETTINGS].reconcile.admin_token
    if RECONCILE in public and token is not None:
        from gateway.reconcile.admin import expectations_handler

        secret = token.resolve(allow_inline=public[SETTINGS].development)
        admin.router.add_post(
            "/expectations",
            expectations_handler(
                public[RECONCILE].registrar,
                secret,
                metrics,
                retry_after_seconds=public[SETTINGS].limits.retry_after_seconds,
            ),
        )
    return admin
