"""Who the client is: the TCP peer, or what trusted proxies say, never what a caller claims."""

from __future__ import annotations

import ipaddress

import pytest
from multidict import CIMultiDict

from gateway.client_address import ClientAddressResolver, parse_address, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        ("198.51.100.9", [("X-Forwarded-For", "203.0.113.1")], "198.51.100.9"),  # untrusted peer
        ("10.0.0.2", [("X-Forwarded-For", "203.0.113.1")], "203.0.113.1"),
        ("10.0.0.2", [("X-Forwarded-For", "1.1.1.1, 203.0.113.1, 10.0.0.5")], "203.0.113.1"),
        ("10.0.0.2", [("X-Forwarded-For", "1.1.1.1"), ("X-Forwarded-For", "203.0.113.1")],
         "203.0.113.1"),
        ("10.0.0.2", [], "10.0.0.2"),  # a trusted proxy with nothing to say is the client
        ("10.0.0.2", [("X-Forwarded-For", "10.0.0.9")], "10.0.0.9"),
        ("10.0.0.2", [("X-Forwarded-For", "not-an-ip")], None),
        ("10.0.0.2", [("X-Forwarded-For", "203.0.113.1:4711")], "203.0.113.1"),
        ("fd00::1", [("Forwarded", 'for="[2001:db8::7]:80", for=10.0.0.3')], "2001:db8::7"),
        ("10.0.0.2", [("Forwarded", "for=_hidden")], None),
        ("10.0.0.2", [("Forwarded", "proto=https;for=203.0.113.2"),
                      ("X-Forwarded-For", "198.51.100.1")], "203.0.113.2"),  # Forwarded wins
        ("::ffff:10.0.0.2", [("X-Forwarded-For", "203.0.113.1")], "203.0.113.1"),
        (None, [], None),
    ],
)  # fmt: skip
def test_resolve(peer: str | None, headers: list[tuple[str, str]], client: str | None) -> None:
    found = ClientAddressResolver(PROXIES).resolve(peer, CIMultiDict(headers))
    assert found == (ipaddress.ip_address(client) if client else None)


def test_without_trusted_proxies_headers_are_ignored() -> None:
    headers = CIMultiDict([("X-Forwarded-For", "203.0.113.1")])
    assert ClientAddressResolver(()).resolve("10.0.0.2", headers) == ipaddress.ip_address(
        "10.0.0.2"
    )


@pytest.mark.parametrize("text", ["", "garbage", "1.2.3.4.5", "[::1", "300.1.1.1"])
def test_unparseable_addresses(text: str) -> None:
    assert parse_address(text) is None
