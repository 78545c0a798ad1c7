"""Hold thousands of idle and trickling connections against a gateway, from its own process.

``python -m bench.connection_flood PORT [--idle 5000] [--trickling 1000] [--within 30]``

Opens ``--idle`` connections that send nothing and ``--trickling`` ones that send a request's
headers one byte a second, then waits until the gateway has closed them all (or ``--within``
seconds have passed) and prints one JSON line: how many were opened, how many the gateway
closed, and how long after the first was opened the last was closed. Run apart from the
client whose latency is measured, so that client's event loop is not the flood's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import time


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        raise SystemExit(f"the hard file descriptor limit ({hard}) is below {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))


#: (when the connection was established, when the peer closed it or ``None`` if it never did),
#: on the ``time.monotonic`` clock, which on Linux other processes share.
Timeline = tuple[float, float | None]


async def idle_until_closed(port: int, deadline: float) -> Timeline:
    """Connect, send nothing, until the peer closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    connected = time.monotonic()
    try:
        await asyncio.wait_for(reader.read(1), max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        return connected, None
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
    return connected, time.monotonic()


async def trickle_until_closed(port: int, deadline: float) -> Timeline:
    """Send a request's headers one byte a second, until the peer hangs up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    connected = time.monotonic()
    writer.write(b"POST /webhooks/abstrakt HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
    try:
        while time.monotonic() < deadline:
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                    return connected, time.monotonic()
            writer.write(b"a")
    except (ConnectionError, OSError):
        return connected, time.monotonic()
    finally:
        writer.close()
    return connected, None


async def flood(port: int, idle: int, trickling: int, within: float) -> dict[str, float]:
    started = time.monotonic()
    deadline = started + within
    tasks: list[asyncio.Task[Timeline]] = []
    for batch in range(0, idle, 500):  # batches, within the listen backlog
        for _ in range(min(500, idle - batch)):
            tasks.append(asyncio.create_task(idle_until_closed(port, deadline)))
        await asyncio.sleep(0.05)
    trickle_tasks = [
        asyncio.create_task(trickle_until_closed(port, deadline)) for _ in range(trickling)
    ]
    idle_times = await asyncio.gather(*tasks)
    trickle_times = await asyncio.gather(*trickle_tasks)
    idle_closed = [closed for _, closed in idle_times if closed is not None]
    trickle_closed = [closed for _, closed in trickle_times if closed is not None]
    last = max(idle_closed + trickle_closed, default=started)
    return {
        "idle": idle,
        "trickling": trickling,
        "idle_closed": len(idle_closed),
        "trickling_closed": len(trickle_closed),
        "closed_after_seconds": round(last - started, 2),
        # When the last of each kind was established (monotonic clock), for bench/flood_phases.
        "idle_connected_at": max((c for c, _ in idle_times), default=started),
        "trickling_connected_at": max((c for c, _ in trickle_times), default=started),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.connection_flood", description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--trickling", type=int, default=1000)
    parser.add_argument("--within", type=float, default=30.0)
    args = parser.parse_args(argv)
    raise_fd_limit(args.idle + args.trickling + 256)
    print(json.dumps(asyncio.run(flood(args.port, args.idle, args.trickling, args.within))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
