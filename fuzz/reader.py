"""A tiny deterministic decoder of fuzzer bytes into structured values, and its encoder.

libFuzzer hands a target one byte string. Reading it through :class:`Reader` turns it into
flags, numbers, byte strings and header texts; :class:`Writer` produces the bytes that decode
to chosen values, so the seed corpus (``fuzz/seeds.py``) can hold meaningful inputs, such as
correctly signed deliveries, that random mutation would take hours to find. A reader past the
end of its input returns zeros and empty strings: every byte string is a valid input.
"""

from __future__ import annotations


class Reader:
    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def byte(self) -> int:
        if self._pos >= len(self._data):
            return 0
        value = self._data[self._pos]
        self._pos += 1
        return value

    def number(self) -> int:
        """Two bytes, big-endian: 0 to 65535."""
        return (self.byte() << 8) | self.byte()

    def signed(self) -> int:
        """Two bytes as a signed offset: -32768 to 32767."""
        value = self.number()
        return value - 65536 if value >= 32768 else value

    def blob(self, limit: int) -> bytes:
        """A length-prefixed byte string of at most ``limit`` bytes."""
        size = min(self.number(), limit)
        chunk = self._data[self._pos : self._pos + size]
        self._pos += len(chunk)
        return chunk

    def text(self, limit: int) -> str:
        """A string decoded as aiohttp decodes header bytes: UTF-8 with surrogateescape."""
        return self.blob(limit).decode("utf-8", "surrogateescape")

    def rest(self) -> bytes:
        chunk = self._data[self._pos :]
        self._pos = len(self._data)
        return chunk


class Writer:
    """Builds the bytes a :class:`Reader` decodes back to the values written."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def byte(self, value: int) -> Writer:
        self._parts.append(bytes([value & 0xFF]))
        return self

    def number(self, value: int) -> Writer:
        self._parts.append((value & 0xFFFF).to_bytes(2, "big"))
        return self

    def signed(self, value: int) -> Writer:
        return self.number(value + 65536 if value < 0 else value)

    def blob(self, value: bytes) -> Writer:
        self.number(len(value))
        self._parts.append(value)
        return self

    def text(self, value: str) -> Writer:
        return self.blob(value.encode("utf-8", "surrogateescape"))

    def rest(self, value: bytes) -> Writer:
        self._parts.append(value)
        return self

    def getvalue(self) -> bytes:
        return b"".join(self._parts)
