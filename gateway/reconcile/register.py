"""Validate and store a job expectation: the one path for the topic, the endpoint and the CLI."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import ValidationError

from adapters.polling import PollRequest
from gateway.errors import ExpectationRefused
from gateway.reconcile.store import ExpectationStore
from gateway.settings import describe_validation_error
from schemas import JobExpectation


def parse_expectation(raw: bytes | str) -> JobExpectation:
    """The record as a ``JobExpectation``; ``ExpectationRefused`` says what is wrong (never
    quoting the input)."""
    try:
        return JobExpectation.model_validate_json(raw)
    except ValidationError as exc:
        reason = "invalid_json" if _json_error(exc) else "invalid_expectation"
        raise ExpectationRefused(reason, describe_validation_error(exc)) from None


def _json_error(exc: ValidationError) -> bool:
    return any(err["type"] == "json_invalid" for err in exc.errors(include_url=False))


class Registrar:
    """Refuses an expectation for a source that is not configured for reconciliation, or that
    its provider's poller cannot follow (e.g. fal without its status and result URLs)."""

    def __init__(
        self, store: ExpectationStore, checks: Mapping[str, Callable[[PollRequest], str | None]]
    ) -> None:
        self.store = store
        self._checks = checks  # source -> its poller's check

    def check(self, expectation: JobExpectation) -> None:
        check = self._checks.get(expectation.source)
        if check is None:
            raise ExpectationRefused(
                "source_not_reconciled",
                f"source {expectation.source!r} is not configured with reconcile",
            )
        problem = check(
            PollRequest(expectation.job_id, expectation.status_url, expectation.response_url)
        )
        if problem is not None:
            raise ExpectationRefused("unpollable_job", problem)

    async def register(self, expectation: JobExpectation, now: float) -> str:
        """``added``, ``already_open`` or ``already_ended``; raises ``ExpectationRefused`` or
        a store error."""
        self.check(expectation)
        return await self.store.add(expectation, now)
