"""``webhook-gateway``: serve, send signed samples, tail events, export the schema, check config."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote, urlencode

from adapters import AdapterServices, ConfigError, build_adapter
from adapters.examples import names as example_names
from adapters.examples import render as render_example
from adapters.examples import render_text as render_example_text
from gateway.settings import Settings, load_settings

CONFIG_ENV = "WEBHOOK_GATEWAY_CONFIG"
DEFAULT_CONFIG = "deploy/gateway.example.yaml"
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
PROVIDER_DOCS = Path(__file__).resolve().parent.parent / "docs" / "providers.md"
CHART_SCHEMA = (
    Path(__file__).resolve().parent.parent / "helm" / "webhook-gateway" / "values.schema.json"
)


def _config_path(args: argparse.Namespace) -> str | None:
    path: str | None = args.config or os.environ.get(CONFIG_ENV)
    if path is None and Path(DEFAULT_CONFIG).is_file():
        path = DEFAULT_CONFIG
    return path


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(_config_path(args))


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.logs import configure_logging, resolved_format
    from gateway.server import run

    settings = _settings(args)
    configure_logging(settings.logging.level, resolved_format(settings))
    settings.source_specs()  # fail fast, before binding ports, on a secret that is missing
    return run(settings, workers=args.workers)


async def _no_fetch(url: str) -> bytes:
    raise ConfigError("offline", f"check-config does not fetch {url}")


def cmd_reconcile(args: argparse.Namespace) -> int:
    from gateway.reconcile.commands import run_reconcile

    return run_reconcile(_settings(args))


def cmd_expect(args: argparse.Namespace) -> int:
    from gateway.reconcile.commands import run_expect

    return run_expect(_settings(args), args)


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    specs = settings.source_specs()
    # JWKS URLs are fetched by `serve` at startup; here a fetcher only has to exist.
    offline = AdapterServices(fetcher=_no_fetch)
    from gateway.app import check_replay_window

    adapters = {}
    for name, spec in specs.items():
        adapters[name] = build_adapter(spec, offline)  # compiles options, decodes keys
        check_replay_window(settings, name, adapters[name])
    from gateway.dedupe.factory import check_dedupe

    dedupe = check_dedupe(settings)  # resolves the Redis secrets; connects nothing
    from gateway.reconcile.commands import check_lines

    reconcile = check_lines(settings, adapters)  # a source no status API can reconcile: exit 2
    print(f"ok: {len(specs)} source(s), sink {settings.sink.kind}, mode {settings.mode}")
    print(f"  dedupe: {dedupe}")
    for line in reconcile:
        print(f"  {line}")
    for name, spec in sorted(specs.items()):
        keys = [s.id for s in spec.secrets] + [k.id for k in spec.public_keys]
        print(f"  /webhooks/{name}: provider {spec.provider}, keys {', '.join(keys) or '-'}")
        for warning in adapters[name].warnings():
            print(f"    warning: {warning}")
    _report_fd_limit(settings)
    return 0


def _example_body(
    provider: str, configured: Mapping[str, Path], name: str, *, job_id: str, now: int
) -> bytes:
    """A source's own example file if it configures examples, else the provider's shipped one."""
    if not configured:
        return render_example(provider, name, job_id=job_id, now=now)
    if name not in configured:
        raise KeyError(f"no example {name!r}; known: {', '.join(sorted(configured))}")
    template = configured[name].read_text(encoding="utf-8")
    return render_example_text(template, job_id=job_id, now=now)


def _report_fd_limit(settings: Settings) -> None:
    """A warning, not a failure: the limit where check-config runs may not be the server's."""
    from gateway import fd_limit

    cap_warning = fd_limit.cap_below_in_flight(settings.limits)
    if cap_warning is not None:
        print(f"warning: {cap_warning}")
    state = fd_limit.current(settings.limits)
    if state.enough:
        print(f"  {state.describe()}: enough")
    elif state.raisable:
        print(f"  {state.describe()}: serve raises the soft limit to {state.needed}")
    else:
        print(
            f"warning: {state.describe()}: raise it or lower limits.max_in_flight "
            "or limits.max_connections"
        )


def cmd_send(args: argparse.Namespace) -> int:
    import aiohttp

    settings = _settings(args)
    specs = settings.source_specs()
    if args.source not in specs:
        raise ConfigError("unknown_source", f"{args.source!r} is not configured")
    spec = specs[args.source]
    adapter = build_adapter(spec)
    now = int(time.time())
    job_id = args.job_id or uuid.uuid4().hex[:20]
    if args.body is not None:
        raw = Path(args.body).read_bytes()
    else:
        configured = adapter.examples()
        shipped = example_names(spec.provider)
        # Job providers ship "succeeded"; a passthrough sender names its samples by event.
        default = "succeeded" if "succeeded" in shipped or not shipped else shipped[0]
        example = args.example or (default if not configured else sorted(configured)[0])
        try:
            raw = _example_body(spec.provider, configured, example, job_id=job_id, now=now)
        except KeyError as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"error: cannot read the example: {exc.strerror}", file=sys.stderr)
            return 2
    delivery_id = args.delivery_id or (
        job_id if spec.provider == "fal" else f"msg_{uuid.uuid4().hex}"
    )
    raw, signed_headers = adapter.sign_delivery(raw, now, delivery_id=delivery_id)
    # A source that takes forms and JSON (``body_format: auto``) gets a JSON body as JSON.
    form = "application/x-www-form-urlencoded" in adapter.extra_content_types and (
        raw.lstrip()[:1] not in (b"{", b"[")
    )
    headers = {
        "Content-Type": "application/x-www-form-urlencoded" if form else "application/json",
        **signed_headers,
    }
    wildcard = settings.listen.host in ("0.0.0.0", "::")  # noqa: S104 - a comparison, not a bind
    host = "127.0.0.1" if wildcard else settings.listen.host
    url = args.url or f"http://{host}:{settings.listen.port}"
    if "/webhooks/" not in url:
        url = url.rstrip("/") + f"/webhooks/{args.source}"
    path_token, query = adapter.url_credentials()
    if path_token is not None:
        url = url.rstrip("/") + "/" + quote(path_token, safe="")
    if query:
        url += ("&" if "?" in url else "?") + urlencode(query)

    async def post() -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                url, data=raw, headers=headers, timeout=aiohttp.ClientTimeout(total=30)
            ) as response,
        ):
            return response.status, await response.text()

    try:
        status, text = asyncio.run(post())
    except OSError as exc:
        print(f"error: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    print(f"{status} {text}")
    return 0 if 200 <= status < 300 else 1


def cmd_examples(args: argparse.Namespace) -> int:
    from adapters import ADAPTERS

    for provider in sorted(ADAPTERS):
        print(f"{provider}: {', '.join(example_names(provider))}")
    return 0


def cmd_events_tail(args: argparse.Namespace) -> int:
    from gateway.sinks.local_log import DEAD_LETTERS_FILE, EVENTS_FILE, WEBHOOK_EVENTS_FILE
    from gateway.tail import tail, tail_kafka

    settings = _settings(args)
    if settings.sink.kind == "kafka" and args.directory is None:
        kafka = settings.sink.kafka
        topic = args.topic or kafka.topic
        if args.dead_letters:
            topic = kafka.dead_letter_topic
        elif args.webhook_events:
            topic = kafka.webhook_topic
        return asyncio.run(
            tail_kafka(
                kafka.bootstrap_servers,
                topic,
                lines=args.lines,
                follow=args.follow,
                pretty=args.pretty,
            )
        )
    directory = Path(args.directory or settings.sink.local.directory)
    name = EVENTS_FILE
    if args.dead_letters:
        name = DEAD_LETTERS_FILE
    elif args.webhook_events:
        name = WEBHOOK_EVENTS_FILE
    return tail(directory, name, lines=args.lines, follow=args.follow, pretty=args.pretty)


def cmd_replay(args: argparse.Namespace) -> int:
    from gateway.replay import replay_configured

    settings = _settings(args)
    report = asyncio.run(
        replay_configured(
            settings,
            source_filter=args.source,
            reason_filter=args.reason,
            dry_run=args.dry_run,
        )
    )
    prefix = "dry run: would have " if args.dry_run else ""
    print(prefix + report.summary())
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from gateway.schema_export import check_schemas, write_schemas

    out = Path(args.out) if args.out else SCHEMA_DIR
    if args.check:
        drift = check_schemas(out)
        for name in drift:
            print(f"drift: {out / name} differs from the model; run `webhook-gateway schema`")
        return 1 if drift else 0
    for path in write_schemas(out):
        print(f"wrote {path}")
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from gateway import provider_docs

    out = Path(args.out) if args.out else PROVIDER_DOCS
    chart = Path(args.chart) if args.chart else CHART_SCHEMA
    if args.check:
        drift = [p for p, bad in ((out, provider_docs.drifted(out)),
                                  (chart, provider_docs.chart_drifted(chart))) if bad]  # fmt: skip
        for path in drift:
            print(f"drift: {path} differs from the registry; run `webhook-gateway docs`")
        return 1 if drift else 0
    provider_docs.write(out)
    provider_docs.write_chart(chart)
    print(f"wrote {out} and the provider names in {chart}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="webhook-gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--config", "-c", help=f"YAML settings (default: ${CONFIG_ENV} or {DEFAULT_CONFIG})"
        )
        return p

    p = with_config(sub.add_parser("serve", help="run the gateway"))
    p.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEBHOOK_GATEWAY_WORKERS", "1")),
        help="processes sharing the public port (SO_REUSEPORT); admin ports count up from "
        "admin.port (default: $WEBHOOK_GATEWAY_WORKERS or 1)",
    )
    p.set_defaults(func=cmd_serve)

    p = with_config(sub.add_parser("reconcile", help="run the reconciler (docs/reconcile.md)"))
    p.set_defaults(func=cmd_reconcile)

    p = with_config(sub.add_parser("expect", help="register a job expectation"))
    p.add_argument("source", help="configured source name")
    p.add_argument("job_id", help="the provider's job id")
    p.add_argument("--poll-after", type=float, default=300.0, help="seconds (default 300)")
    p.add_argument("--max-wait", type=float, default=3600.0, help="seconds (default 3600)")
    p.add_argument("--submitted-at", type=float, help="Unix seconds (default: now)")
    p.add_argument("--status-url", help="the provider's status URL (fal: required)")
    p.add_argument("--response-url", help="the provider's result URL (fal: required)")
    p.set_defaults(func=cmd_expect)

    p = with_config(sub.add_parser("check-config", help="validate settings and secrets"))
    p.set_defaults(func=cmd_check_config)

    p = with_config(sub.add_parser("send", help="POST a correctly signed sample delivery"))
    p.add_argument("source", help="configured source name")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--example", "-e", help="example name (see `examples`); default succeeded")
    group.add_argument("--body", "-b", help="file whose exact bytes are sent")
    p.add_argument("--url", "-u", help="gateway base URL or full webhook URL")
    p.add_argument("--job-id", help="job id to put in the example (default: random)")
    p.add_argument("--delivery-id", help="delivery id to sign (default: random)")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("examples", help="list the sample deliveries per provider")
    p.set_defaults(func=cmd_examples)

    events = sub.add_parser("events", help="read the local event log")
    events_sub = events.add_subparsers(dest="events_command", required=True)
    p = with_config(
        events_sub.add_parser(
            "tail", help="print the latest events (local log, or the Kafka topic if sink is kafka)"
        )
    )
    p.add_argument("-n", "--lines", type=int, default=10)
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--dead-letters", action="store_true", help="read dead letters instead")
    which.add_argument(
        "--webhook-events",
        action="store_true",
        help="read the passthrough webhook events instead (sink.kafka.webhook_topic on Kafka)",
    )
    p.add_argument("--pretty", action="store_true", help="indent each event")
    p.add_argument("--directory", help="local log directory (default: from the settings)")
    p.add_argument(
        "--topic", help="Kafka topic, when the sink is Kafka (default: sink.kafka.topic)"
    )
    p.set_defaults(func=cmd_events_tail)

    dead = sub.add_parser("dead-letters", help="work with dead-letter records")
    dead_sub = dead.add_subparsers(dest="dead_command", required=True)
    p = with_config(
        dead_sub.add_parser(
            "replay",
            help="publish dead letters that now normalize (after an upgrade) as job events",
        )
    )
    p.add_argument("--source", help="only this source")
    p.add_argument("--reason", help="only dead letters with this reason")
    p.add_argument("--dry-run", action="store_true", help="report, publish nothing")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("schema", help="write (or --check) the JSON Schema files")
    p.add_argument("--out", help=f"directory (default: {SCHEMA_DIR.name}/ in the source tree)")
    p.add_argument("--check", action="store_true", help="exit 1 if the files differ")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser(
        "docs", help="write (or --check) docs/providers.md and the chart's provider names"
    )
    p.add_argument("--out", help="file (default: docs/providers.md in the source tree)")
    p.add_argument("--chart", help="the chart's values.schema.json (default: in the source tree)")
    p.add_argument("--check", action="store_true", help="exit 1 if the file differs")
    p.set_defaults(func=cmd_docs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func is not cmd_serve:
        # Tools print their results on stdout; the library's own warnings go to stderr.
        from gateway.logs import configure_logging

        configure_logging("warning", "console", stream=sys.stderr)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
