"""Signed timestamps in any of the forms senders use, and a replay window with two sides.

Seconds or milliseconds, Unix digits or RFC 3339 text. The past and the future tolerance are
separate: a sender's clock may run a little ahead, but a delivery may legitimately be retried
for longer than that (ElevenLabs: 30 minutes).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from adapters.errors import VerificationError

# Twelve digits of seconds reach the year 33658 (fifteen of milliseconds): longer is garbage.
_DIGITS = {"seconds": re.compile(r"[0-9]{1,12}"), "milliseconds": re.compile(r"[0-9]{1,15}")}


def parse_timestamp(
    value: Any, *, unit: Literal["seconds", "milliseconds"], fmt: Literal["unix", "rfc3339"]
) -> float:
    """Unix seconds from a header or body value; ``VerificationError`` when it is not one."""
    if fmt == "rfc3339":
        if not isinstance(value, str) or len(value) > 64:
            raise VerificationError("malformed_header", "timestamp is not RFC 3339 text")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise VerificationError("malformed_header", "timestamp is not RFC 3339") from None
        if parsed.tzinfo is None:
            raise VerificationError("malformed_header", "timestamp has no time zone")
        return parsed.timestamp()
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**15:
        number = value
    elif isinstance(value, str) and _DIGITS[unit].fullmatch(value):
        number = int(value)
    else:
        # Implementations disagree on "+1", "1.5", " 1 ", "0x1": digits only.
        raise VerificationError("malformed_header", "timestamp is not Unix digits")
    return number / 1000 if unit == "milliseconds" else float(number)


def check_window(signed_at: float, now: float, *, past: int, future: int) -> None:
    """Refuse a timestamp older than ``past`` or further ahead than ``future`` seconds.

    The boundaries themselves are accepted, as in the reference Standard Webhooks libraries.
    """
    if now - signed_at > past:
        raise VerificationError("timestamp_out_of_window", "signed timestamp is too old")
    if signed_at - now > future:
        raise VerificationError("timestamp_out_of_window", "signed timestamp is in the future")


def format_timestamp(
    now: int, *, unit: Literal["seconds", "milliseconds"], fmt: Literal["unix", "rfc3339"]
) -> str:
    """How a sender would write ``now`` (used by ``send``)."""
    if fmt == "rfc3339":
        return datetime.fromtimestamp(now, tz=UTC).isoformat().replace("+00:00", "Z")
    return str(now * 1000 if unit == "milliseconds" else now)
