"""Fake provider status APIs: small aiohttp apps on 127.0.0.1 answering like the real ones.

Each knows a set of jobs and how each behaves: running for so many polls then done, never
done, dropped after retention (404), rate limited (429 + Retry-After), failing (503), or
answering garbage. Every poll is counted, and so is the most polls of one job at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

API_KEY = "test-provider-key-5f2c"
FAL_APP = "fal-ai/flux/dev"


@dataclass
class FakeJob:
    #: Polls answered "still running" before the job is done; ``None``: never done.
    done_after: int | None = 0
    failed: bool = False
    gone: bool = False  # 404, as after the provider's retention
    rate_limited: int = 0  # the first polls answered 429 + Retry-After
    retry_after: str = "1"
    errors: int = 0  # the first polls (after those) answered 503
    garbage: int = 0  # the first polls (after those) answered 200 with an HTML page
    delay: float = 0.0  # each poll takes this long
    polls: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    unauthorized: int = 0


class FakeApi:
    """One provider's API (``provider``: fal, replicate, openai, abstrakt)."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.jobs: dict[str, FakeJob] = {}
        self.app = web.Application()
        routes: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
            "replicate": self._replicate,
            "openai": self._openai,
            "abstrakt": self._abstrakt,
        }
        if provider == "fal":
            self.app.router.add_get(f"/{FAL_APP}/requests/{{id}}/status", self._fal_status)
            self.app.router.add_get(f"/{FAL_APP}/requests/{{id}}", self._fal_result)
        elif provider == "replicate":
            self.app.router.add_get("/v1/predictions/{id}", routes["replicate"])
        elif provider == "openai":
            for path in ("/v1/responses/{id}", "/v1/batches/{id}", "/v1/fine_tuning/jobs/{id}"):
                self.app.router.add_get(path, routes["openai"])
        else:
            self.app.router.add_get("/v1/jobs/{id}", routes["abstrakt"])
        self.base_url = ""

    def status_url(self, job_id: str) -> str:
        return f"{self.base_url}/{FAL_APP}/requests/{job_id}/status"

    def response_url(self, job_id: str) -> str:
        return f"{self.base_url}/{FAL_APP}/requests/{job_id}"

    @property
    def polls(self) -> int:
        return sum(job.polls for job in self.jobs.values())

    async def _poll(
        self, request: web.Request, answer: Callable[[str, bool, FakeJob], web.StreamResponse]
    ) -> web.StreamResponse:
        expected = f"Key {API_KEY}" if self.provider == "fal" else f"Bearer {API_KEY}"
        job_id = request.match_info["id"]
        job = self.jobs.get(job_id)
        if request.headers.get("Authorization") != expected:
            if job is not None:
                job.unauthorized += 1
            return web.json_response({"detail": "Unauthorized"}, status=401)
        if job is None:
            return web.json_response({"detail": "Not found."}, status=404)
        job.polls += 1
        job.in_flight += 1
        job.max_in_flight = max(job.max_in_flight, job.in_flight)
        try:
            if job.delay:
                await asyncio.sleep(job.delay)
            if job.gone:
                return web.json_response({"detail": "Not found."}, status=404)
            if job.rate_limited:
                job.rate_limited -= 1
                return web.json_response(
                    {"detail": "Too many requests"},
                    status=429,
                    headers={"Retry-After": job.retry_after},
                )
            if job.errors:
                job.errors -= 1
                return web.json_response({"detail": "upstream"}, status=503)
            if job.garbage:
                job.garbage -= 1
                return web.Response(text="<html>maintenance</html>", content_type="text/html")
            done = job.done_after is not None and job.polls > job.done_after
            return answer(job_id, done, job)
        finally:
            job.in_flight -= 1

    async def _replicate(self, request: web.Request) -> web.StreamResponse:
        def answer(job_id: str, done: bool, job: FakeJob) -> web.StreamResponse:
            body: dict[str, Any] = {
                "id": job_id,
                "model": "black-forest-labs/flux-schnell",
                "status": "processing",
                "created_at": "2026-12-01T10:00:00.000Z",
                "started_at": "2026-12-01T10:00:02.000Z",
                "output": None,
                "error": None,
                "urls": {"get": f"https://api.replicate.com/v1/predictions/{job_id}"},
            }
            if done:
                body["completed_at"] = "2026-12-01T10:00:09.000Z"
                body["metrics"] = {"predict_time": 6.5, "total_time": 9.0}
                if job.failed:
                    body.update(status="failed", error="CUDA out of memory")
                else:
                    body.update(
                        status="succeeded", output=[f"https://replicate.delivery/{job_id}.webp"]
                    )
            return web.json_response(body)

        return await self._poll(request, answer)

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        def answer(job_id: str, done: bool, job: FakeJob) -> web.StreamResponse:
            if job_id.startswith("resp_"):
                obj, running, final = "response", "in_progress", "completed"
            elif job_id.startswith("batch_"):
                obj, running, final = "batch", "in_progress", "completed"
            else:
                obj, running, final = "fine_tuning.job", "running", "succeeded"
            status = ("failed" if job.failed else final) if done else running
            body = {"id": job_id, "object": obj, "status": status, "created_at": 1764583200}
            if done:
                body["completed_at" if obj != "fine_tuning.job" else "finished_at"] = 1764583260
            return web.json_response(body)

        return await self._poll(request, answer)

    async def _abstrakt(self, request: web.Request) -> web.StreamResponse:
        def answer(job_id: str, done: bool, job: FakeJob) -> web.StreamResponse:
            if not done:
                return web.json_response({"job_id": job_id, "status": "processing"})
            if job.failed:
                return web.json_response({
                    "job_id": job_id,
                    "status": "failed",
                    "error": {"code": "content_policy", "message": "refused"},
                    "completed_at": "2026-12-01T10:00:09Z",
                })  # fmt: skip
            return web.json_response({
                "job_id": job_id,
                "status": "succeeded",
                "output": {"type": "image", "items": [
                    {"type": "image", "url": f"https://cdn.abstrakt.one/outputs/{job_id}.png"}]},
                "credits_used": 2,
                "completed_at": "2026-12-01T10:00:09Z",
            })  # fmt: skip

        return await self._poll(request, answer)

    async def _fal_status(self, request: web.Request) -> web.StreamResponse:
        def answer(job_id: str, done: bool, job: FakeJob) -> web.StreamResponse:
            if not done:
                return web.json_response({"status": "IN_PROGRESS", "queue_position": 0}, status=202)
            return web.json_response(
                {"status": "COMPLETED", "response_url": self.response_url(job_id)}
            )

        return await self._poll(request, answer)

    async def _fal_result(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["id"])
        if request.headers.get("Authorization") != f"Key {API_KEY}" or job is None:
            return web.json_response({"detail": "Not found."}, status=404)
        if job.failed:
            return web.json_response(
                {"detail": [{"type": "value_error", "msg": "image too large", "loc": ["body"]}]},
                status=422,
            )
        return web.json_response({
            "images": [{"url": f"https://v3.fal.media/files/{request.match_info['id']}.png",
                        "content_type": "image/png", "width": 1024, "height": 768}],
            "timings": {"inference": 1.25},
            "seed": 42,
        })  # fmt: skip


@asynccontextmanager
async def serving(*apis: FakeApi) -> AsyncIterator[tuple[FakeApi, ...]]:
    """Each fake on its own 127.0.0.1 port; ``base_url`` set."""
    servers = []
    try:
        for api in apis:
            server = TestServer(api.app, host="127.0.0.1")
            await server.start_server()
            servers.append(server)
            api.base_url = str(server.make_url("")).rstrip("/")
        yield apis
    finally:
        for server in servers:
            await server.close()
