"""The canonical events: the contract between the gateway and every Kafka consumer.

This package depends on nothing else in the repository, so a downstream service can vendor or
import it alone (``pip install webhook-gateway`` and ``from schemas import JobEvent``).
"""

from schemas.dead_letter import DeadLetter
from schemas.job_event import (
    SCHEMA_VERSION,
    Delivery,
    JobError,
    JobEvent,
    JobMetrics,
    JobStatus,
    Output,
    OutputKind,
)
from schemas.job_expectation import EXPECTATION_SCHEMA_VERSION, JobExpectation
from schemas.webhook_event import WEBHOOK_SCHEMA_VERSION, WebhookEvent

__all__ = [
    "EXPECTATION_SCHEMA_VERSION",
    "SCHEMA_VERSION",
    "WEBHOOK_SCHEMA_VERSION",
    "DeadLetter",
    "Delivery",
    "JobError",
    "JobEvent",
    "JobExpectation",
    "JobMetrics",
    "JobStatus",
    "Output",
    "OutputKind",
    "WebhookEvent",
]
