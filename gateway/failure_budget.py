"""A per-client budget of failed verifications, so forgeries cannot buy the gateway's CPU.

Refusing a forged delivery costs a signature check (fal's Ed25519: about 56 µs), and a client
can send them as fast as the network allows. Each client gets a token bucket: ``burst``
failures at once, refilled at ``refill_per_second``; a client with an empty bucket is answered
429 with ``Retry-After`` before its body is read or anything is verified. Clients are keyed by
the address :class:`~gateway.client_address.ClientAddressResolver` resolves (behind a trusted
proxy, the forwarded client), IPv6 clients by their /64: one subscriber usually holds a whole
/64, and keying single addresses would let one attacker rotate through 2**64 fresh budgets.

The table is bounded: at ``max_clients`` the least recently charged client is forgotten (it
gets a full bucket back, which is the safe direction to be wrong in), and a client whose
bucket has refilled is dropped. While no client owes anything the table is empty and checking
a request costs one ``len()``: the happy path never resolves an address for this. Without
``listen.trusted_proxies``, private and loopback peers are not charged: they are most likely
an unconfigured proxy, behind which one forger would get every sender refused.

Why 429 and not closing the connection: measured with ``bench/forgery_flood.py``, a refused
forgery answered 429 on a kept-alive connection costs the gateway less CPU than one whose
connection is closed, because the closing variant makes the flooder reconnect, and an accept
plus a new protocol object cost more than a small response; and a 429 tells a well-meaning
sender with a broken key (or one sharing a NAT with the attacker) when to retry.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from gateway.client_address import IPAddress

ClientKey = IPAddress | ipaddress.IPv6Network | str
#: The one budget shared by clients whose address could not be resolved.
UNRESOLVED = "unresolved"


def budget_key(address: IPAddress | None, *, behind_trusted_proxies: bool) -> ClientKey | None:
    """The budget a client draws from, or ``None`` when it is not charged at all.

    A private or loopback peer with no trusted proxies configured is most likely a proxy or
    load balancer the gateway was not told about: every sender behind it would share one
    budget, and one forger could get them all refused. Such peers are not charged (configure
    ``listen.trusted_proxies`` and the clients behind them are).
    """
    if (
        not behind_trusted_proxies
        and address is not None
        and (address.is_private or address.is_loopback)
    ):
        return None
    return client_key(address)


def client_key(address: IPAddress | None) -> ClientKey:
    """The budget a client draws from: its IPv4 address, its IPv6 /64, or the one shared
    budget of clients whose address could not be resolved."""
    if address is None:
        return UNRESOLVED
    if isinstance(address, ipaddress.IPv6Address):
        return ipaddress.IPv6Network((int(address) >> 64 << 64, 64))
    return address


class FailureBudget:
    def __init__(
        self,
        burst: int,
        refill_per_second: float,
        max_clients: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.refill = refill_per_second
        self.max_clients = max_clients
        self._clock = clock
        #: key -> [tokens, last update]; most recently charged last.
        self._table: OrderedDict[ClientKey, list[float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.burst > 0

    def __len__(self) -> int:
        return len(self._table)

    def _tokens(self, key: ClientKey, now: float) -> float | None:
        entry = self._table.get(key)
        if entry is None:
            return None
        tokens = min(float(self.burst), entry[0] + (now - entry[1]) * self.refill)
        if tokens >= self.burst:
            del self._table[key]  # paid back: forget it, so the table holds only debtors
            return None
        entry[0], entry[1] = tokens, now
        return tokens

    def retry_after(self, key: ClientKey) -> int | None:
        """Seconds until this client may try again, or ``None`` when it is within budget."""
        tokens = self._tokens(key, self._clock())
        if tokens is None or tokens >= 1.0:
            return None
        return max(1, math.ceil((1.0 - tokens) / self.refill))

    def charge(self, key: ClientKey) -> bool:
        """Count one failed verification against this client; ``True`` when this failure
        spent its last token (the moment worth one log line)."""
        if not self.enabled:
            return False
        now = self._clock()
        tokens = self._tokens(key, now)
        if tokens is None:
            tokens = float(self.burst)
        entry = self._table.get(key)
        if entry is None:
            self._table[key] = [tokens - 1.0, now]
            while len(self._table) > self.max_clients:
                self._table.popitem(last=False)
        else:
            entry[0] = tokens - 1.0
            self._table.move_to_end(key)
        return tokens >= 1.0 > tokens - 1.0
