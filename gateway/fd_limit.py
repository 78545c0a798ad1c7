"""Whether the process may open as many file descriptors as its limits can make it hold.

The gateway keeps at most ``limits.max_connections`` connections open (``connection_cap.py``;
by default ``max_in_flight`` plus the listen backlog, so a burst of that many more connections
can still be answered 503 by the overload guard), and the event loop accepts a whole accept
queue (the listen backlog) at once before the oldest idle ones are closed; the listeners, the
log files, the sink's connections and the JWKS client need a few more. Past ``RLIMIT_NOFILE``
the kernel refuses ``accept()`` and new connections are dropped, which looks like a slow or
unreachable gateway rather than a misconfigured one: so the gateway says so at startup, and
``check-config`` says so before deployment.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass

from gateway.settings import LimitsConfig

#: The public listener's accept queue (``server.py`` binds with it).
LISTEN_BACKLOG = 1024
#: Listeners, log and event files, Kafka connections, the JWKS client, stdio, with room.
RESERVED = 64


@dataclass(frozen=True, slots=True)
class FdLimit:
    soft: int
    hard: int
    needed: int

    @property
    def enough(self) -> bool:
        return _at_least(self.soft, self.needed)

    @property
    def raisable(self) -> bool:
        """The soft limit is too low but the hard limit allows enough."""
        return not self.enough and _at_least(self.hard, self.needed)

    def describe(self) -> str:
        return (
            f"file descriptor limit {_text(self.soft)} (hard {_text(self.hard)}); "
            f"limits.max_connections and the listen backlog need {self.needed}"
        )


def _text(limit: int) -> str:
    return "unlimited" if limit == resource.RLIM_INFINITY else str(limit)


def _at_least(limit: int, needed: int) -> bool:
    return limit == resource.RLIM_INFINITY or limit >= needed


def max_connections(limits: LimitsConfig) -> int:
    """The open-connection bound: ``limits.max_connections``, by default ``max_in_flight``
    plus the listen backlog."""
    if limits.max_connections is not None:
        return limits.max_connections
    return limits.max_in_flight + LISTEN_BACKLOG


def cap_below_in_flight(limits: LimitsConfig) -> str | None:
    """What is wrong when the connection cap is not above ``max_in_flight``, else ``None``.

    Not refused (a small cap has its uses in tests and behind a proxy that pools connections),
    but said: past the cap, a sender's new connection is closed while requests under way hold
    the others, where a 503 with Retry-After would have told it when to come back.
    """
    cap = max_connections(limits)
    if cap > limits.max_in_flight:
        return None
    return (
        f"limits.max_connections ({cap}) is not above limits.max_in_flight "
        f"({limits.max_in_flight}): under load new connections are closed instead of being "
        "answered 503 with Retry-After"
    )


def needed(limits: LimitsConfig) -> int:
    return max_connections(limits) + LISTEN_BACKLOG + RESERVED


def current(limits: LimitsConfig) -> FdLimit:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return FdLimit(soft, hard, needed(limits))


def raise_soft_limit(limits: LimitsConfig) -> FdLimit:
    """Raise the soft limit to what is needed when the hard limit allows it (as Go's runtime
    and most servers do); return the limit in force afterwards."""
    state = current(limits)
    if state.raisable:
        resource.setrlimit(resource.RLIMIT_NOFILE, (state.needed, state.hard))
        state = current(limits)
    return state
