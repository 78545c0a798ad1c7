"""The poll contract: one GET (or two) to the provider's status API, one answer.

Pollers never see an HTTP library: the reconciler lends them ``get`` (``HttpGet``), so they are
tested against any local server, and a network failure stays the reconciler's to count. A poller
never turns an answer it cannot read into a terminal event: garbage, a 5xx, a 404 after the
provider's retention are all ``retry`` states, and only the reconciler's deadline ends the job.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from adapters.base import Adapter, Normalized, Passthrough, Verified
from adapters.errors import NormalizationError, VerificationError

#: The ``delivery.scheme`` of an event that came from polling.
POLL_SCHEME = "poll"

#: Largest body read from a status API (a result with many outputs is still well below it).
MAX_REPLY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes


#: ``await get(url, headers)``: raises ``OSError`` or ``TimeoutError`` when it gets no answer.
HttpGet = Callable[[str, Mapping[str, str]], Awaitable[HttpReply]]


@dataclass(frozen=True, slots=True)
class PollRequest:
    """What an expectation says about the job."""

    job_id: str
    status_url: str | None = None
    response_url: str | None = None


class PollState(StrEnum):
    """What the provider said; the value is the ``result`` label of the polls metric."""

    TERMINAL = "terminal"  # succeeded, failed or canceled: publish it
    RUNNING = "running"  # queued or running: poll again later
    NOT_FOUND = "not_found"  # 404: not visible yet, or dropped after the provider's retention
    RATE_LIMITED = "rate_limited"  # 429: wait at least Retry-After
    HTTP_ERROR = "http_error"  # another 4xx or a 5xx
    GARBAGE = "garbage"  # a 2xx whose body is not what the provider sends


@dataclass(frozen=True, slots=True)
class PollAnswer:
    state: PollState
    facts: Normalized | None = None
    #: The provider's body behind ``facts`` (the event's ``raw``).
    payload: Any = None
    retry_after_seconds: float | None = None
    detail: str = field(default="")


class StatusPoller(abc.ABC):
    """Polls one provider's status API with the source's API key."""

    provider: ClassVar[str]
    default_base_url: ClassVar[str]
    #: Results are deleted this long after the job ends (fal, Replicate: about an hour).
    retention_seconds: ClassVar[float | None] = None

    def __init__(self, adapter: Adapter, api_key: str, base_url: str | None) -> None:
        self.adapter = adapter
        self._api_key = api_key
        self.base_url = (base_url or self.default_base_url).rstrip("/")

    def __repr__(self) -> str:  # the API key never reaches a repr
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    @classmethod
    def check(cls, request: PollRequest) -> str | None:
        """Why this job cannot be polled (the expectation is refused), or ``None``."""
        return None

    @abc.abstractmethod
    async def poll(self, request: PollRequest, get: HttpGet, now: float) -> PollAnswer:
        """Ask about the job once."""

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}

    def verified(self, job_id: str) -> Verified:
        """What stands in for a signature: the provider's API answered over TLS, with our key."""
        return Verified(
            scheme=POLL_SCHEME,
            key_id=f"{self.provider}-api",
            delivery_id=None,
            bound={"request_id": job_id},
        )


def classify(reply: HttpReply) -> PollAnswer | Any:
    """A non-2xx reply as its answer, or the parsed JSON of a 2xx; ``GARBAGE`` when unreadable."""
    if reply.status == 429:
        return PollAnswer(
            PollState.RATE_LIMITED,
            retry_after_seconds=retry_after(reply.headers.get("retry-after")),
            detail="429",
        )
    if reply.status in (404, 410):
        return PollAnswer(PollState.NOT_FOUND, detail=str(reply.status))
    if not 200 <= reply.status < 300:
        return PollAnswer(PollState.HTTP_ERROR, detail=str(reply.status))
    return parse(reply.body)


def parse(body: bytes) -> Any:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return PollAnswer(PollState.GARBAGE, detail="not JSON")
    if not isinstance(payload, dict):
        return PollAnswer(PollState.GARBAGE, detail="not a JSON object")
    return payload


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (the delay form; a date is ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return min(max(seconds, 0.0), 3600.0) if seconds == seconds else None  # NaN: ignored


def normalized(
    normalize: Callable[[], Normalized | Passthrough], payload: Any, job_id: str
) -> PollAnswer:
    """Run the adapter's own normalization; an answer it refuses, or about another job, is
    garbage (never a terminal event)."""
    try:
        facts = normalize()
    except (NormalizationError, VerificationError) as exc:
        return PollAnswer(PollState.GARBAGE, detail=exc.reason)
    if isinstance(facts, Passthrough):
        return PollAnswer(PollState.GARBAGE, detail="not a job")
    if facts.job_id != job_id:
        return PollAnswer(PollState.GARBAGE, detail="answer is about another job")
    state = PollState.TERMINAL if facts.status.terminal else PollState.RUNNING
    return PollAnswer(state, facts, payload)
