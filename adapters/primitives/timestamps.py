"""Signed timestamps and the replay window."""

from __future__ import annotations

import re

from adapters.errors import VerificationError

# Implementations disagree on "+123", "0x1", "1.5" or " 12 ": accept digits only. Twelve digits
# reach the year 33658, so any longer value is garbage, not a timestamp.
_DIGITS = re.compile(r"[0-9]{1,12}")


def parse_unix_seconds(text: str, header: str) -> int:
    if not _DIGITS.fullmatch(text):
        raise VerificationError("malformed_header", f"{header} is not Unix seconds")
    return int(text)


def check_window(signed_at: int, now: float, tolerance_seconds: int) -> None:
    """Refuse a timestamp more than ``tolerance_seconds`` away from ``now``, in either direction.

    The boundary itself is accepted (300 s old passes, 301 s fails), as in the reference
    Standard Webhooks libraries.
    """
    if abs(now - signed_at) > tolerance_seconds:
        direction = "old" if signed_at < now else "far in the future"
        raise VerificationError("timestamp_out_of_window", f"signed timestamp is too {direction}")
