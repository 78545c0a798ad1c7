"""Who is calling: the peer address, or the client a trusted proxy says it forwarded.

``X-Forwarded-For`` and ``Forwarded`` are believed only when the connection comes from a
configured trusted proxy, and then only as far as the chain stays inside trusted proxies: the
client is the right-most address that is not one of ours. Anything else would let a caller
pick the address an allowlist checks by sending a header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from multidict import MultiMapping

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR texts to networks; a bare address is a /32 or /128. Raises ``ValueError``."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


def parse_address(text: str | None) -> IPAddress | None:
    if not text:
        return None
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def in_networks(addr: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(addr.version == net.version and addr in net for net in networks)


def _forwarded_for(headers: MultiMapping[str]) -> list[str]:
    """Addresses in hop order (client first) from ``Forwarded`` or else ``X-Forwarded-For``."""
    forwarded = headers.getall("Forwarded", ())
    if forwarded:
        hops: list[str] = []
        for value in forwarded:
            for element in value.split(","):
                for pair in element.split(";"):
                    name, _, val = pair.strip().partition("=")
                    if name.strip().lower() == "for":
                        hops.append(val.strip().strip('"'))
        return hops
    hops = []
    for value in headers.getall("X-Forwarded-For", ()):
        hops.extend(part.strip() for part in value.split(","))
    return hops


class ClientAddressResolver:
    def __init__(self, trusted_proxies: Sequence[IPNetwork]) -> None:
        self._trusted = tuple(trusted_proxies)

    @property
    def trusts_proxies(self) -> bool:
        return bool(self._trusted)

    def resolve(self, peer: str | None, headers: MultiMapping[str]) -> IPAddress | None:
        """The client's address, or ``None`` when it cannot be known (a malformed hop)."""
        addr = parse_address(peer)
        if addr is None or not self._trusted or not in_networks(addr, self._trusted):
            return addr
        for hop in reversed(_forwarded_for(headers)):
            hop_addr = parse_address(hop)
            if hop_addr is None:
                return None  # "unknown", an obfuscated id or garbage: we cannot say who it is
            if not in_networks(hop_addr, self._trusted):
                return hop_addr
            addr = hop_addr
        return addr
