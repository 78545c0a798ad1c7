"""The ceiling: the least an aiohttp service can do for a webhook, to compare the gateway with.

It reads the whole body and answers 200 with a small JSON body, nothing else: no verification,
no parsing, no Kafka, no metrics, no logs. Same aiohttp, same event loop (uvloop), same kind of
listener as the gateway, run as its own process::

    python -m bench.ceiling --port 8099
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from aiohttp import web

BODY = b'{"received":true}'


async def handle(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=BODY, content_type="application/json")


def create_app() -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_route("*", "/webhooks/{source}", handle)
    return app


async def serve(host: str, port: int) -> None:
    runner = web.AppRunner(create_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    print(f"ceiling listening on http://{host}:{port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner, contextlib.suppress(KeyboardInterrupt):
        runner.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
