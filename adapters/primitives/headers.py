"""Header access that is case-insensitive, alias-aware and strict about duplicates."""

from __future__ import annotations

from collections.abc import Iterable

from multidict import MultiMapping

from adapters.errors import VerificationError

Headers = MultiMapping[str]


def require_header(headers: Headers, names: Iterable[str]) -> str:
    """Return the single value of a signing header, looked up under any of ``names``.

    Header names are case-insensitive here (aiohttp's ``CIMultiDict``). A header that appears
    twice with different values is refused: a proxy that duplicates a signing header is broken,
    and an attacker who can add one must not get to pick which copy we check.
    """
    values: list[str] = []
    for name in names:
        values.extend(headers.getall(name, ()))
    if not values:
        raise VerificationError("missing_header", f"{'/'.join(names)} is required")
    first = values[0]
    if any(v != first for v in values[1:]):
        raise VerificationError(
            "duplicate_header", f"{'/'.join(names)} appears with several values"
        )
    value = first.strip()
    if not value:
        raise VerificationError("malformed_header", f"{'/'.join(names)} is empty")
    try:
        # aiohttp decodes header bytes with errors="surrogateescape": bytes that were not UTF-8
        # arrive as lone surrogates, which every later .encode() would choke on.
        value.encode()
    except UnicodeEncodeError:
        raise VerificationError(
            "malformed_header", f"{'/'.join(names)} is not valid UTF-8"
        ) from None
    return value


def optional_header(headers: Headers, names: Iterable[str]) -> str | None:
    try:
        return require_header(headers, names)
    except VerificationError as exc:
        if exc.reason == "missing_header":
            return None
        raise
