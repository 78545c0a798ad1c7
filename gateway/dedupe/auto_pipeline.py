"""One Redis round trip for all the commands issued during one event-loop turn.

Concurrent deliveries each send one or two small commands to Redis; through redis-py one at a
time, each costs a pool checkout, a write and a read (about 55-80 us of CPU here), as much as
verifying the delivery. Queued and sent as one pipeline per loop turn, four cost about what
1.5 do alone and sixteen what four do (measured, see docs/dedupe.md): under load, batches form
by themselves; alone, a command goes out at the next turn, with no added wait.

Every batch is under one deadline, pool checkout included: a hung Redis fails each caller with
``TimeoutError`` after ``timeout`` seconds at most.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError


class AutoPipeline:
    def __init__(self, client: Redis, timeout: float) -> None:
        self._client = client
        self._timeout = timeout
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._scheduled = False
        self._sending: set[asyncio.Task[None]] = set()

    def call(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command; the future holds its reply, or the error (a Redis error, an
        ``OSError``, ``TimeoutError``)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((args, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    async def script(self, sha: str, source: str, keys: list[str], args: list[Any]) -> Any:
        """``EVALSHA``, loading the script when the server does not know it (a restarted or a
        failed-over Redis), then retrying once."""
        try:
            return await self.call("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            async with asyncio.timeout(self._timeout):
                await self._client.script_load(source)
            return await self.call("EVALSHA", sha, len(keys), *keys, *args)

    async def close(self) -> None:
        """Let the batches on their way finish (each is bounded by its deadline)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                if len(batch) == 1:  # a pipeline object costs more than it saves for one
                    try:
                        command = self._client.execute_command  # unannotated in redis-py
                        replies = [await command(*batch[0][0])]  # type: ignore[no-untyped-call]
                    except ResponseError as exc:  # the command's own error, as in a pipeline
                        replies = [exc]
                else:
                    async with self._client.pipeline(transaction=False) as pipe:
                        for args, _ in batch:
                            pipe.execute_command(*args)
                        replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # noqa: BLE001 - every caller gets the batch's failure
            for _, future in batch:
                if not future.done():  # a caller that gave up cancelled its future
                    future.set_exception(exc)
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
