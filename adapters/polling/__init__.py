"""Polling a provider's status API for a job whose webhook did not come.

A :class:`StatusPoller` (``base.py``) asks the provider about one job and turns the answer into
job facts with the same adapter code that normalizes the provider's webhook; ``providers.py``
holds one per provider with a status API. Providers without one (InstantAPI, the passthrough
presets) have no poller, and ``check-config`` refuses reconciliation for their sources.
"""

from adapters.polling.base import (
    HttpGet,
    HttpReply,
    PollAnswer,
    PollRequest,
    PollState,
    StatusPoller,
)
from adapters.polling.providers import POLLERS, poller_for

__all__ = [
    "POLLERS",
    "HttpGet",
    "HttpReply",
    "PollAnswer",
    "PollRequest",
    "PollState",
    "StatusPoller",
    "poller_for",
]
