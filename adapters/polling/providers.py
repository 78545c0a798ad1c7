"""One status poller per provider with a status API.

* fal: the queue's ``status_url`` (202 until done, then 200 ``{"status": "COMPLETED"}``), then
  its ``response_url``; the result is wrapped as fal's webhook body (``{request_id, status:
  OK|ERROR, payload}``) and normalized by the fal adapter.
* Replicate: ``GET /v1/predictions/{id}``, the same prediction object as the webhook body.
* OpenAI: ``GET /v1/responses/{id}``, ``/v1/batches/{id}``, ``/v1/fine_tuning/jobs/{id}`` by the
  id's prefix; a terminal status becomes the webhook's thin event (``{type, data: {id}}``).
* Abstrakt: ``GET /v1/jobs/{id}``, the same body as the webhook (mapped by the adapter's own
  ``map_payload``; the webhook's age check guards against replays, which a poll is not).
"""

from __future__ import annotations

from typing import Any, ClassVar

from adapters.base import Adapter
from adapters.errors import ConfigError
from adapters.polling.base import (
    HttpGet,
    PollAnswer,
    PollRequest,
    PollState,
    StatusPoller,
    classify,
    normalized,
    parse,
)
from adapters.primitives.payload import opt_str
from adapters.providers.abstrakt import AbstraktAdapter


class FalPoller(StatusPoller):
    provider: ClassVar[str] = "fal"
    default_base_url: ClassVar[str] = "https://queue.fal.run"
    retention_seconds: ClassVar[float | None] = 3600.0

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self._api_key}", "Accept": "application/json"}

    @classmethod
    def check(cls, request: PollRequest) -> str | None:
        if request.status_url is None or request.response_url is None:
            return "fal needs the status_url and response_url of the submit answer"
        return None

    async def poll(self, request: PollRequest, get: HttpGet, now: float) -> PollAnswer:
        assert request.status_url is not None
        assert request.response_url is not None
        headers = self.auth_headers()
        status = await get(request.status_url, headers)
        if status.status == 202:
            return PollAnswer(PollState.RUNNING, detail="202")
        answer = classify(status)
        if isinstance(answer, PollAnswer):
            return answer
        if answer.get("status") != "COMPLETED":
            return PollAnswer(PollState.RUNNING, detail=str(answer.get("status"))[:32])
        result = await get(request.response_url, headers)
        if result.status == 202:
            return PollAnswer(PollState.RUNNING, detail="202")
        if result.status in (400, 422):  # the request failed: fal answers its error detail
            body = parse(result.body)
            if isinstance(body, PollAnswer):
                return body
            webhook = {"request_id": request.job_id, "status": "ERROR", "payload": body}
            webhook["error"] = opt_str(body.get("error")) or f"fal answered {result.status}"
        else:
            body = classify(result)
            if isinstance(body, PollAnswer):
                return body
            webhook = {"request_id": request.job_id, "status": "OK", "payload": body}
        verified = self.verified(request.job_id)
        return normalized(
            lambda: self.adapter.normalize(webhook, verified, now), webhook, request.job_id
        )


class ReplicatePoller(StatusPoller):
    provider: ClassVar[str] = "replicate"
    default_base_url: ClassVar[str] = "https://api.replicate.com"
    retention_seconds: ClassVar[float | None] = 3600.0

    async def poll(self, request: PollRequest, get: HttpGet, now: float) -> PollAnswer:
        reply = await get(f"{self.base_url}/v1/predictions/{request.job_id}", self.auth_headers())
        body = classify(reply)
        if isinstance(body, PollAnswer):
            return body
        verified = self.verified(request.job_id)
        return normalized(lambda: self.adapter.normalize(body, verified, now), body, request.job_id)


# id prefix -> (path, webhook event family, terminal status -> webhook outcome)
_OPENAI: dict[str, tuple[str, str, dict[str, str]]] = {
    "resp_": (
        "/v1/responses/",
        "response.",
        {"completed": "completed", "failed": "failed", "cancelled": "cancelled",
         "incomplete": "incomplete"},
    ),
    "batch_": (
        "/v1/batches/",
        "batch.",
        {"completed": "completed", "failed": "failed", "expired": "expired",
         "cancelled": "cancelled"},
    ),
    "ftjob_": (
        "/v1/fine_tuning/jobs/",
        "fine_tuning.job.",
        {"succeeded": "succeeded", "failed": "failed", "cancelled": "cancelled"},
    ),
}  # fmt: skip


class OpenAIPoller(StatusPoller):
    provider: ClassVar[str] = "openai"
    default_base_url: ClassVar[str] = "https://api.openai.com"

    @classmethod
    def check(cls, request: PollRequest) -> str | None:
        if not request.job_id.startswith(tuple(_OPENAI)):
            return "OpenAI jobs are polled by id: resp_, batch_ or ftjob_"
        return None

    async def poll(self, request: PollRequest, get: HttpGet, now: float) -> PollAnswer:
        prefix = next(p for p in _OPENAI if request.job_id.startswith(p))
        path, family, outcomes = _OPENAI[prefix]
        reply = await get(f"{self.base_url}{path}{request.job_id}", self.auth_headers())
        body = classify(reply)
        if isinstance(body, PollAnswer):
            return body
        status = body.get("status")
        if not isinstance(status, str):
            return PollAnswer(PollState.GARBAGE, detail="no status")
        if status not in outcomes:
            return PollAnswer(PollState.RUNNING, detail=status[:32])
        event = {
            "object": "event",
            "type": family + outcomes[status],
            "created_at": _int_or_none(body.get("completed_at"))
            or _int_or_none(body.get("finished_at")),
            "data": {"id": body.get("id")},
        }
        verified = self.verified(request.job_id)
        return normalized(
            lambda: self.adapter.normalize(event, verified, now), body, request.job_id
        )


class AbstraktPoller(StatusPoller):
    provider: ClassVar[str] = "abstrakt"
    default_base_url: ClassVar[str] = "https://api.abstrakt.one"

    async def poll(self, request: PollRequest, get: HttpGet, now: float) -> PollAnswer:
        reply = await get(f"{self.base_url}/v1/jobs/{request.job_id}", self.auth_headers())
        body = classify(reply)
        if isinstance(body, PollAnswer):
            return body
        adapter = self.adapter
        assert isinstance(adapter, AbstraktAdapter)  # poller_for pairs them
        return normalized(lambda: adapter.map_payload(body), body, request.job_id)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


POLLERS: dict[str, type[StatusPoller]] = {
    poller.provider: poller for poller in (FalPoller, ReplicatePoller, OpenAIPoller, AbstraktPoller)
}


def poller_for(adapter: Adapter, api_key: str, base_url: str | None) -> StatusPoller:
    """The poller of the adapter's provider; ``ConfigError`` when it has no status API."""
    poller = POLLERS.get(adapter.provider)
    if poller is None or (poller is AbstraktPoller and not isinstance(adapter, AbstraktAdapter)):
        raise ConfigError(
            "reconcile_unsupported",
            f"provider {adapter.provider!r} has no status API: its jobs cannot be reconciled "
            f"(polling is available for {', '.join(sorted(POLLERS))})",
        )
    return poller(adapter, api_key, base_url)
