"""Compiled mappings from a verified body to a job (``Normalized``) or a ``Passthrough``.

Expressions are JMESPath (the ``jmespath`` package): a specified, well-tested language with
implementations in many languages, so a mapping means the same thing in a consumer's tooling as
here, and no home-made path syntax has to be documented and fuzzed. Each expression is compiled
once, at startup; a compile error is a ``ConfigError`` naming the field. When an expression
raises on a body (a type error inside a function, runaway nesting), a required field
(``job_id``, ``status``, ``when``) makes the delivery a dead letter; an optional one (metrics,
outputs, error, times, event type) is left empty. Never a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jmespath
from jmespath.parser import ParsedResult

from adapters.base import Normalized, Passthrough
from adapters.declarative.config import JobMappingConfig, PassthroughMappingConfig
from adapters.errors import ConfigError, NormalizationError
from adapters.primitives.payload import (
    MAX_OUTPUTS,
    collect_outputs,
    dig,
    opt_datetime,
    opt_number,
    opt_str,
    walk_file_objects,
)
from schemas import JobError, JobMetrics, Output


def compile_expression(text: str, where: str) -> ParsedResult:
    try:
        return jmespath.compile(text)
    except jmespath.exceptions.JMESPathError as exc:
        raise ConfigError(
            "invalid_expression", f"{where}: {text!r} does not compile: {exc}"
        ) from None


def search(expr: ParsedResult | None, payload: Any, where: str) -> Any:
    if expr is None:
        return None
    try:
        return expr.search(payload)
    except (jmespath.exceptions.JMESPathError, RecursionError, TypeError, ValueError) as exc:
        raise NormalizationError(
            "expression_failed", f"{where} could not be evaluated: {type(exc).__name__}"
        ) from None


def optional(expr: ParsedResult | None, payload: Any) -> Any:
    """An optional field (metrics, outputs, error, times): an expression that fails on this body
    leaves the field empty rather than dead-lettering a job event over a missing metric."""
    try:
        return search(expr, payload, "")
    except NormalizationError:
        return None


def occurred_at(value: Any, unit: str) -> datetime | None:
    if unit == "milliseconds":
        number = opt_number(value)
        # As seconds through the same range checks: a number no datetime can hold is no time.
        return opt_datetime(number / 1000) if number is not None else None
    return opt_datetime(value)


def _outputs(value: Any) -> list[Output]:
    direct = list(collect_outputs(value))
    if direct:
        return direct
    return list(walk_file_objects(value))  # nested objects: anything that looks like a file


class PassthroughMapping:
    def __init__(self, config: PassthroughMappingConfig) -> None:
        self._event_type = (
            compile_expression(config.event_type, "mapping.event_type")
            if config.event_type
            else None
        )
        self._occurred = (
            compile_expression(config.occurred_at, "mapping.occurred_at")
            if config.occurred_at
            else None
        )
        self._unit = config.occurred_at_unit

    def apply(self, payload: Any) -> Passthrough:
        return Passthrough(
            event_type=opt_str(optional(self._event_type, payload)),
            occurred_at=occurred_at(optional(self._occurred, payload), self._unit),
        )


class JobMapping:
    def __init__(self, config: JobMappingConfig) -> None:
        def opt(text: str | None, where: str) -> ParsedResult | None:
            return compile_expression(text, f"mapping.{where}") if text else None

        self.config = config
        self._job_id = compile_expression(config.job_id, "mapping.job_id")
        self._status = compile_expression(config.status, "mapping.status")
        self._event_type = opt(config.event_type, "event_type")
        self._outputs = tuple(
            compile_expression(text, f"mapping.outputs[{i}]")
            for i, text in enumerate(config.outputs)
        )
        self._error = opt(config.error, "error")
        self._error_code = opt(config.error_code, "error_code")
        self._error_message = opt(config.error_message, "error_message")
        self._metrics = {
            name: compile_expression(text, f"mapping.metrics.{name}")
            for name, text in config.metrics.items()
        }
        self._occurred = opt(config.occurred_at, "occurred_at")
        self._when = opt(config.when, "when")
        self._passthrough = PassthroughMapping(
            PassthroughMappingConfig(
                kind="passthrough",
                event_type=config.event_type,
                occurred_at=config.occurred_at,
                occurred_at_unit=config.occurred_at_unit,
            )
        )

    @property
    def may_pass_through(self) -> bool:
        return self._when is not None and self.config.otherwise == "passthrough"

    def apply(self, payload: Any) -> Normalized | Passthrough:
        if self._when is not None and not search(self._when, payload, "mapping.when"):
            if self.config.otherwise == "passthrough":
                return self._passthrough.apply(payload)
            raise NormalizationError("not_a_job", "mapping.when is false for this delivery")
        job_id = opt_str(search(self._job_id, payload, "mapping.job_id"))
        if job_id is None:
            raise NormalizationError("missing_field", f"{self.config.job_id} is missing")
        status_value = search(self._status, payload, "mapping.status")
        key = opt_str(status_value)
        status = self.config.status_map.get(key) if key is not None else None
        if status is None:
            raise NormalizationError(
                "unknown_status", f"status {str(status_value)[:64]!r} is not in status_map"
            )
        event_type = opt_str(optional(self._event_type, payload))
        outputs: list[Output] = []
        for expr in self._outputs:
            outputs.extend(_outputs(optional(expr, payload)))
        return Normalized(
            job_id=job_id,
            status=status,
            provider_event_type=event_type or opt_str(status_value),
            outputs=tuple(outputs[:MAX_OUTPUTS]),
            error=self._job_error(payload),
            metrics=JobMetrics(
                **{
                    name: opt_number(optional(expr, payload))
                    for name, expr in self._metrics.items()
                }
            ),
            occurred_at=occurred_at(
                optional(self._occurred, payload), self.config.occurred_at_unit
            ),
        )

    def _job_error(self, payload: Any) -> JobError | None:
        value = optional(self._error, payload)
        code = optional(self._error_code, payload)
        message = optional(self._error_message, payload)
        if value in (None, "", {}) and code is None and message is None:
            return None
        return JobError(
            code=opt_str(code) or opt_str(dig(value, "code")),
            message=opt_str(message)
            or opt_str(dig(value, "message"))
            or (opt_str(value) if not isinstance(value, Mapping) else None),
            details=value if isinstance(value, Mapping | list) else None,
        )
