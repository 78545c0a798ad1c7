"""The dedupe store's commands on one Redis connection: one write per event-loop turn, the
replies matched in order as they arrive.

Through redis-py's asyncio client a round trip cost about 80 µs of Python here (a pool
checkout, a task, a pipeline object, stream reads, its parser), and with a claim and a commit
per delivery that was most of what Redis dedupe added to a delivery (docs/dedupe.md). Here
every command queued during a loop turn leaves in one write, replies are parsed by hiredis in
``data_received`` and each resolves its caller's future there: no task, no pool, no lock.
Redis answers the commands of a connection in the order they were sent, which is what makes
one connection enough.

Every command has a deadline: past it, or when the connection breaks, every command in flight
fails (``TimeoutError`` / ``ConnectionError``) and the next one reconnects, since the order of
replies can no longer be trusted. Where to connect, TLS and credentials come from the redis-py
client the store also holds (``connection_kwargs`` of its pool; a Sentinel pool names the
current master), so both reach the same server the same way.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Callable
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import ConnectionPool, SSLConnection
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

_Pending = tuple[float, "asyncio.Future[Any]"]


def encode(args: tuple[Any, ...]) -> bytes:
    """One command in RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int):
            data = b"%d" % arg
        else:
            raise TypeError(f"a Redis argument must be bytes, str or int, not {type(arg).__name__}")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: MultiplexedConnection) -> None:
        self._owner = owner

    def data_received(self, data: bytes) -> None:
        self._owner._received(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._lost(self, exc)


class MultiplexedConnection:
    """``call`` queues a command and returns the future of its reply (bytes, int, ``None``, a
    list) or of its error (``ResponseError``, ``NoScriptError``, ``TimeoutError``, a connection
    error); nothing else is raised."""

    def __init__(self, client: Redis, timeout: float) -> None:
        self._pool: ConnectionPool = client.connection_pool
        self._timeout = timeout
        self._transport: asyncio.Transport | None = None
        self._protocol: _Protocol | None = None
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._in_flight: collections.deque[_Pending] = collections.deque()
        self._queued: list[tuple[bytes, asyncio.Future[Any]]] = []
        self._flush_scheduled = False
        self._connecting: asyncio.Task[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False

    def call(self, *args: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self._transport is not None and not self._in_flight and not self._queued:
            # Nothing on the wire: waiting for the end of the turn would batch nothing yet
            # cost a turn. Commands that follow while this one is out wait for the flush.
            self._send([encode(args)], [future])
            return future
        self._queued.append((encode(args), future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return future

    async def script(self, sha: str, source: str, keys: list[str], args: list[Any]) -> Any:
        """``EVALSHA``, loading the script when the server does not know it (a restarted or a
        failed-over Redis), then retrying once."""
        try:
            return await self.call("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.call("SCRIPT", "LOAD", source)
            return await self.call("EVALSHA", sha, len(keys), *keys, *args)

    async def close(self) -> None:
        """Wait for the commands on their way (each bounded by its deadline), then hang up."""
        waiting = [future for _, future in self._queued]
        waiting += [future for _, future in self._in_flight]
        if waiting:
            await asyncio.gather(*waiting, return_exceptions=True)
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        if self._transport is not None:
            self._transport.close()
        self._transport = self._protocol = None

    # -- writing ---------------------------------------------------------------------------
    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._queued:
            return
        if self._transport is None:
            if self._closed:
                self._fail_queued(RedisConnectionError("the connection is closed"))
            elif self._connecting is None:
                self._connecting = asyncio.get_running_loop().create_task(self._open())
            return  # sent once connected
        batch, self._queued = self._queued, []
        self._send([command for command, _ in batch], [future for _, future in batch])

    def _send(self, commands: list[bytes], futures: list[asyncio.Future[Any]]) -> None:
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        self._transport.write(b"".join(commands))
        self._in_flight.extend((deadline, future) for future in futures)
        if self._watchdog is None:
            self._watchdog = loop.call_at(deadline, self._check_deadlines)

    def _check_deadlines(self) -> None:
        self._watchdog = None
        if not self._in_flight:
            return
        oldest = self._in_flight[0][0]
        loop = asyncio.get_running_loop()
        if oldest > loop.time():
            self._watchdog = loop.call_at(oldest, self._check_deadlines)
            return
        # A reply overdue: the server is hung or the network is; nothing after it can be
        # matched any more, so the connection goes and every command on it fails.
        self._drop(TimeoutError(f"no reply from Redis within {self._timeout} s"))

    # -- connecting ------------------------------------------------------------------------
    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            # Connecting is part of the first calls' deadline: a hung server holds none longer.
            async with asyncio.timeout(self._timeout):
                protocol = _Protocol(self)
                transport = await self._connect(loop, lambda: protocol)
                self._transport, self._protocol = transport, protocol
                self._reader = hiredis.Reader(replyError=ResponseError)
                setup = self._setup_commands()
                if setup:
                    futures = [loop.create_future() for _ in setup]
                    self._send(setup, futures)
                    for future in futures:
                        await future
        except BaseException as exc:  # every queued caller gets the failure, even a cancel
            self._drop(exc if isinstance(exc, Exception) else RedisConnectionError("cancelled"))
            self._fail_queued(_as_connection_error(exc))
            if not isinstance(exc, Exception):
                raise
        finally:
            self._connecting = None
        if self._transport is not None and self._queued:
            self._flush()

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, factory: Callable[[], _Protocol]
    ) -> asyncio.Transport:
        options = self._pool.connection_kwargs
        if isinstance(self._pool, SentinelConnectionPool):
            # redis-py leaves it unannotated: the current master's (host, port).
            host, port = await self._pool.get_master_address()  # type: ignore[no-untyped-call]
        elif "path" in options:
            transport, _ = await loop.create_unix_connection(factory, options["path"])
            return transport
        else:
            host, port = options.get("host", "localhost"), int(options.get("port", 6379))
        context = (
            _tls_context(options)
            if issubclass(self._pool.connection_class, SSLConnection)
            else None
        )
        transport, _ = await loop.create_connection(
            factory, host, port, ssl=context, server_hostname=host if context else None
        )
        return transport

    def _setup_commands(self) -> list[bytes]:
        options = self._pool.connection_kwargs
        commands = []
        password, username = options.get("password"), options.get("username")
        if password is not None:
            auth = ("AUTH", username, password) if username else ("AUTH", password)
            commands.append(encode(auth))
        if options.get("db"):
            commands.append(encode(("SELECT", int(options["db"]))))
        if options.get("client_name"):
            commands.append(encode(("CLIENT", "SETNAME", options["client_name"])))
        return commands

    # -- reading ---------------------------------------------------------------------------
    def _received(self, protocol: _Protocol, data: bytes) -> None:
        if protocol is not self._protocol:
            return  # a connection already dropped
        reader = self._reader
        reader.feed(data)
        in_flight = self._in_flight
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self._drop(RedisConnectionError(f"unreadable reply from Redis: {exc}"))
                return
            if reply is False:
                return
            if not in_flight:
                self._drop(RedisConnectionError("a reply from Redis nobody asked for"))
                return
            _, future = in_flight.popleft()
            if isinstance(reply, ResponseError):
                text = str(reply)
                if text.startswith("NOSCRIPT"):
                    reply = NoScriptError(text)
                elif text.startswith("READONLY"):
                    # A failed-over master, now a replica: find the master again.
                    if not future.done():
                        future.set_exception(RedisConnectionError(text))
                    self._drop(RedisConnectionError(text))
                    return
                if not future.done():
                    future.set_exception(reply)
            elif not future.done():  # a caller that gave up cancelled its future
                future.set_result(reply)

    def _lost(self, protocol: _Protocol, exc: Exception | None) -> None:
        if protocol is self._protocol:
            self._drop(RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    def _drop(self, exc: Exception) -> None:
        """Fail everything in flight and forget the connection; the next call reconnects."""
        transport, self._transport, self._protocol = self._transport, None, None
        if transport is not None:
            transport.abort()
        in_flight, self._in_flight = self._in_flight, collections.deque()
        for _, future in in_flight:
            if not future.done():
                future.set_exception(exc)

    def _fail_queued(self, exc: Exception) -> None:
        queued, self._queued = self._queued, []
        for _, future in queued:
            if not future.done():
                future.set_exception(exc)


def _tls_context(options: dict[str, Any]) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=options.get("ssl_ca_certs"), cadata=options.get("ssl_ca_data")
    )
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    context.check_hostname = bool(options.get("ssl_check_hostname", True))
    return context


def _as_connection_error(exc: BaseException) -> Exception:
    if isinstance(exc, TimeoutError | RedisConnectionError | ResponseError):
        return exc
    if isinstance(exc, OSError | ssl.SSLError):
        return RedisConnectionError(f"cannot connect to Redis: {exc}")
    return RedisConnectionError(f"cannot connect to Redis: {type(exc).__name__}")
