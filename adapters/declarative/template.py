"""Signed-content templates: which bytes a sender's signature covers, as data.

A template is literals and tokens, compiled once::

    {timestamp}.{body}          Stripe, ElevenLabs, Mux
    v0:{timestamp}:{body}       Slack, Zoom
    {id}.{timestamp}.{body}     Standard Webhooks
    {url}{body}                 Square
    {json:data.task_id}.{timestamp}   Kie.ai (the body itself is not covered)

Tokens: ``{body}`` (the exact bytes), ``{timestamp}`` (the signed timestamp exactly as it was
sent), ``{id}`` (the delivery id), ``{url}`` (the configured public URL plus the received query
string), ``{method}``, ``{body_sha256}`` (lower-case hex), ``{json:<JMESPath>}`` (a string or
integer read from the body), ``{header:<name>}`` (a named header's value) and ``{form_sorted}``
(a form body's names and values, names sorted, concatenated: Twilio). ``{{`` and ``}}`` are
literal braces. A template reads nothing else: only the body, the configured URL and the headers
it names.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import jmespath
from jmespath.parser import ParsedResult

from adapters.errors import ConfigError, VerificationError
from adapters.primitives.headers import Headers, require_header
from adapters.primitives.payload import parse_json

_TOKEN = re.compile(r"\{\{|\}\}|\{([a-z_0-9]+)(?::([^{}]+))?\}|[{}]")
_SIMPLE = frozenset({"body", "timestamp", "id", "url", "method", "body_sha256", "form_sorted"})


@dataclass(slots=True)
class RenderContext:
    """What one delivery offers a template; the parsed body is computed at most once."""

    raw: bytes
    headers: Headers
    method: str = "POST"
    url: str | None = None
    timestamp: str | None = None
    delivery_id: str | None = None
    #: The signed URL carries the body's hash (``scheme.body_sha256_param``): ``{form_sorted}``
    #: is then empty, as the body is not a form.
    body_in_url: bool = False
    _json: Any = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    def json(self) -> Any:
        if not self._parsed:
            try:
                self._json = parse_json(self.raw)
            except Exception:  # noqa: BLE001 - any parse failure: the body has no such field
                self._json = None
            self._parsed = True
        return self._json


Part = bytes | Callable[[RenderContext], bytes]


def _scalar_text(value: Any, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value).encode()
    raise VerificationError("malformed_body", f"{what} is missing or not a string")


def _json_part(expr: ParsedResult, text: str) -> Callable[[RenderContext], bytes]:
    def part(ctx: RenderContext) -> bytes:
        try:
            value = expr.search(ctx.json())
        except Exception:  # noqa: BLE001 - a hostile body must not escape as a stray error
            value = None
        return _scalar_text(value, f"body field {text}")

    return part


def _header_part(name: str) -> Callable[[RenderContext], bytes]:
    def part(ctx: RenderContext) -> bytes:
        return require_header(ctx.headers, (name,)).encode()

    return part


def _form_sorted(ctx: RenderContext) -> bytes:
    if ctx.body_in_url:
        return b""
    try:
        pairs = parse_qsl(ctx.raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise VerificationError("malformed_body", "body is not a UTF-8 form") from None
    # Twilio: each name followed by its value, names sorted (values of one name in order sent).
    ordered = sorted(pairs, key=lambda pair: pair[0])
    return "".join(name + value for name, value in ordered).encode()


def _required(value: str | None, token: str) -> bytes:
    if value is None:
        raise VerificationError("missing_header", f"{{{token}}} has no value in this delivery")
    return value.encode()


_SIMPLE_PARTS: dict[str, Callable[[RenderContext], bytes]] = {
    "body": lambda ctx: ctx.raw,
    "timestamp": lambda ctx: _required(ctx.timestamp, "timestamp"),
    "id": lambda ctx: _required(ctx.delivery_id, "id"),
    "url": lambda ctx: _required(ctx.url, "url"),
    "method": lambda ctx: ctx.method.encode(),
    "body_sha256": lambda ctx: hashlib.sha256(ctx.raw).hexdigest().encode(),
    "form_sorted": _form_sorted,
}


@dataclass(frozen=True, slots=True)
class Template:
    text: str
    parts: tuple[Part, ...]
    tokens: frozenset[str]
    #: Literals that follow ``{id}``: an id containing one could trade characters with the
    #: next field (``a.b`` + ``.1.`` = ``a`` + ``.b.1.``), so such an id is refused.
    id_separators: tuple[str, ...] = ()

    def check_id(self, delivery_id: str) -> None:
        if any(sep in delivery_id for sep in self.id_separators):
            raise VerificationError(
                "malformed_header", "the delivery id contains a separator of the signed content"
            )

    def render(self, ctx: RenderContext) -> bytes:
        if len(self.parts) == 1 and self.parts[0] is _SIMPLE_PARTS["body"]:
            return ctx.raw  # the common case: the body alone, no copy
        return b"".join(p if isinstance(p, bytes) else p(ctx) for p in self.parts)


def compile_template(text: str, *, available: Sequence[str] = tuple(_SIMPLE)) -> Template:
    """Compile ``text``; raises ``ConfigError`` naming the first unknown or unusable token.

    ``available`` lists the simple tokens this source can fill (``{url}`` needs a configured
    ``public_url``, ``{timestamp}`` a timestamp source, ``{id}`` a delivery id source).
    """
    parts: list[Part] = []
    tokens: set[str] = set()
    literal: list[str] = []
    position = 0

    def flush() -> None:
        text = "".join(literal)
        if text:
            try:
                parts.append(text.encode())
            except UnicodeEncodeError:  # a lone surrogate (found by fuzz/): not text at all
                raise ConfigError("invalid_template", "the template is not valid text") from None
        literal.clear()

    for match in _TOKEN.finditer(text):
        literal.append(text[position : match.start()])
        position = match.end()
        whole = match.group(0)
        if whole in ("{{", "}}"):
            literal.append(whole[0])
            continue
        name, argument = match.group(1), match.group(2)
        if name is None:
            raise ConfigError(
                "invalid_template", f"unbalanced brace at {match.start()} in {text!r}"
            )
        flush()
        if name in _SIMPLE and argument is None:
            if name not in available:
                raise ConfigError(
                    "invalid_template", f"{{{name}}} cannot be filled for this source: {_why(name)}"
                )
            parts.append(_SIMPLE_PARTS[name])
        elif name == "json" and argument:
            try:
                parts.append(_json_part(jmespath.compile(argument), argument))
            except jmespath.exceptions.JMESPathError as exc:
                raise ConfigError(
                    "invalid_expression", f"{{json:{argument}}} does not compile: {exc}"
                ) from None
        elif name == "header" and argument:
            parts.append(_header_part(argument.strip()))
        else:
            known = ", ".join(sorted(f"{{{t}}}" for t in _SIMPLE)) + ", {json:...}, {header:...}"
            raise ConfigError("invalid_template", f"unknown token {whole} (known: {known})")
        tokens.add(name)
    literal.append(text[position:])
    flush()
    separators = tuple(
        part.decode()
        for before, part in itertools.pairwise(parts)
        if before is _SIMPLE_PARTS["id"] and isinstance(part, bytes)
    )
    return Template(text, tuple(parts), frozenset(tokens), separators)


def _why(name: str) -> str:
    return {
        "url": "set the source's public_url",
        "timestamp": "configure scheme.timestamp",
        "id": "configure scheme.delivery_id",
    }.get(name, "not available")
