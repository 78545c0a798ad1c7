"""The client-address parser (``gateway.client_address``) on fuzzed peers, ``Forwarded`` and
``X-Forwarded-For`` headers, and trusted-proxy lists.

Invariants: ``resolve`` and ``parse_address`` never raise; ``resolve`` returns ``None`` or an
address; without trusted proxies (or from an untrusted peer) the headers are ignored; the
address returned is never a trusted proxy unless every hop was one. ``parse_networks`` raises
only ``ValueError`` (the settings turn it into a configuration error).
"""

from __future__ import annotations

import contextlib
import ipaddress

from multidict import CIMultiDict, CIMultiDictProxy

from fuzz.reader import Reader
from gateway.client_address import (
    ClientAddressResolver,
    in_networks,
    parse_address,
    parse_networks,
)

_PROXIES = (
    (),
    ("127.0.0.0/8",),
    ("127.0.0.1", "::1"),
    ("10.0.0.0/8", "fd00::/8"),
    ("0.0.0.0/0", "::/0"),
)
_RESOLVERS = tuple(ClientAddressResolver(parse_networks(p)) for p in _PROXIES)
_NETWORKS = tuple(parse_networks(p) for p in _PROXIES)
_HEADER_NAMES = ("X-Forwarded-For", "Forwarded", "x-forwarded-for", "forwarded")


def one_input(data: bytes) -> None:
    r = Reader(data)
    choice = r.byte() % len(_PROXIES)
    peer = r.text(64) if r.byte() % 8 else None
    headers: CIMultiDict[str] = CIMultiDict()
    for _ in range(r.byte() % 5):
        headers.add(_HEADER_NAMES[r.byte() % len(_HEADER_NAMES)], r.text(256))
    proxy = CIMultiDictProxy(headers)
    resolved = _RESOLVERS[choice].resolve(peer, proxy)
    direct = parse_address(peer)
    if resolved is not None and not isinstance(
        resolved, ipaddress.IPv4Address | ipaddress.IPv6Address
    ):
        raise AssertionError(f"resolve returned {type(resolved).__name__}")
    trusted = _NETWORKS[choice]
    untrusted_peer = direct is None or not trusted or not in_networks(direct, trusted)
    if untrusted_peer and resolved != direct:
        raise AssertionError("forwarding headers believed from an untrusted peer")
    with contextlib.suppress(ValueError):
        parse_networks([r.text(64)])
