"""The declarative engine's scheme parser and template renderer (``adapters/declarative/``).

``scheme_input``: a ``scheme`` block, built from the input's choices and strings, or the
input itself read as a YAML options block, compiled into a ``GenericAdapter`` the way a
source is at startup; a scheme that compiles then signs a fuzzed body and verifies fuzzed
headers. Invariant: compiling raises only ``ConfigError``; signing and verifying only the
gateway's own errors.

``template_input``: a signed-content template compiled with some of its tokens available,
then rendered for a fuzzed delivery. Invariant: ``ConfigError`` on compiling and
``VerificationError`` on rendering, nothing else; a template without tokens renders to its
own text, ``{body}`` to the exact body.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import yaml
from multidict import CIMultiDict, CIMultiDictProxy

from adapters import ConfigError, GatewayError, NamedSecret, SourceSpec
from adapters.base import RequestMeta
from adapters.declarative.adapter import GenericAdapter
from adapters.declarative.template import RenderContext, compile_template
from adapters.errors import VerificationError
from fuzz.reader import Reader

NOW = 1_800_000_000
_AUTH = ("hmac", "static_header", "basic", "query_token", "path_token", "body_token", "none")
_ALGORITHMS = ("sha1", "sha256", "sha512")
_ENCODINGS = ("hex", "base64", "base64url")
_SECRET_ENCODINGS = ("raw", "base64", "hex")
_TEMPLATES = (
    "{body}",
    "{timestamp}.{body}",
    "{id}.{timestamp}.{body}",
    "v0:{timestamp}:{body}",
    "{url}{body}",
    "{json:data.id}.{timestamp}",
    "{header:X-Sig-Ts}{body}",
    "{form_sorted}",
    "{method}{url}{body_sha256}",
)
_SIMPLE = ("body", "timestamp", "id", "url", "method", "body_sha256", "form_sorted")
_HEADER_NAMES = ("X-Signature", "Webhook-Signature", "X-Sig-Ts", "X-Id", "Authorization")
_SECRETS = ("fuzz-secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "00ff00ff", "")
_LOOP = asyncio.new_event_loop()


def _choose(r: Reader, options: tuple[str, ...]) -> str:
    pick = r.byte()
    return options[pick % len(options)] if pick < 240 else r.text(64)


def _valid_text(r: Reader, limit: int) -> str:
    return r.blob(limit).decode("utf-8", "replace")


def _choose_text(r: Reader, options: tuple[str, ...]) -> str:
    pick = r.byte()
    return options[pick % len(options)] if pick < 240 else r.blob(64).decode("utf-8", "replace")


def _scheme(r: Reader, flags: int) -> dict[str, Any]:
    scheme: dict[str, Any] = {"auth": _choose(r, _AUTH)}
    if flags & 16:
        scheme["algorithm"] = _choose(r, _ALGORITHMS)
        scheme["encoding"] = _choose(r, _ENCODINGS)
    if flags & 32:
        scheme["header"] = _choose(r, _HEADER_NAMES)
    if flags & 64:
        scheme["signature_format"] = {
            "pair_separator": _choose(r, (",", ";", " ")),
            "kv_separator": _choose(r, ("=", ",", ":")),
            "signature_key": _choose(r, ("v1", "v0", "sig")),
            "timestamp_key": _choose(r, ("t", "ts")) if r.byte() & 1 else None,
        }
    scheme["signed_content"] = _choose(r, _TEMPLATES)
    extra = r.byte()
    if extra & 1:
        scheme["prefix"] = _choose(r, ("sha256=", "v0=", ""))
    if extra & 2:
        scheme["secret_encoding"] = _choose(r, _SECRET_ENCODINGS)
    if extra & 4:
        source = _choose(r, ("signature_header", "header", "body"))
        timestamp: dict[str, Any] = {"source": source}
        if source == "header":
            timestamp["header"] = _choose(r, _HEADER_NAMES)
        elif source == "body":
            timestamp["path"] = _choose(r, ("created", "data.ts", "["))
        timestamp["unit"] = _choose(r, ("seconds", "milliseconds"))
        timestamp["format"] = _choose(r, ("unix", "rfc3339"))
        scheme["timestamp"] = timestamp
    if extra & 8:
        if extra & 16:
            scheme["delivery_id"] = {"header": _choose(r, _HEADER_NAMES)}
        else:
            scheme["delivery_id"] = {"path": _choose(r, ("id", "data.id", "a[0]"))}
    if extra & 32:
        scheme["token_prefix"] = _choose(r, ("Bearer ", ""))
        scheme["query_param"] = _choose(r, ("token", "key"))
        scheme["body_path"] = _choose(r, ("token", "auth.token"))
    return scheme


def _run(coro: Any) -> Any:
    return _LOOP.run_until_complete(coro)


def scheme_input(data: bytes) -> None:
    r = Reader(data)
    flags = r.byte()
    if flags & 1:
        try:  # YAML itself is not under test here (the settings loader target covers it)
            options = yaml.safe_load(r.blob(4096))
        except Exception:  # noqa: BLE001
            return
        if not isinstance(options, dict):
            return
    else:
        options = {"scheme": _scheme(r, flags)}
    spec = SourceSpec(
        name="fuzz",
        provider="generic",
        # Any secret the settings can hand over: text (they refuse what is not UTF-8).
        secrets=(NamedSecret("k", _choose_text(r, _SECRETS)),),
        options=options,
        public_url="https://gateway.example/webhooks/fuzz" if flags & 2 else None,
        production=bool(flags & 4),
        allow_unauthenticated=bool(flags & 8),
    )
    try:
        adapter = GenericAdapter(spec)
    except ConfigError:
        return
    adapter.warnings()
    body = r.blob(2048)
    headers: CIMultiDict[str] = CIMultiDict()
    with contextlib.suppress(GatewayError):
        headers.extend(adapter.sign(body, NOW, delivery_id=r.blob(40).decode("utf-8", "replace")))
    for _ in range(r.byte() % 4):
        headers.add(_choose(r, _HEADER_NAMES), r.text(256))
    path_token, query = adapter.url_credentials()
    if r.byte() & 1:
        path_token, query = r.text(64), {"token": r.text(64)}
    request = RequestMeta(
        query=query,
        query_string="&".join(f"{k}={v}" for k, v in query.items()),
        path_token=path_token,
        url=spec.public_url,
    )
    proxy = CIMultiDictProxy(headers)
    try:
        verified = _run(adapter.verify(body, proxy, float(NOW + r.signed()), request))
        payload = adapter.parse(body, request)
        adapter.normalize(payload, verified, float(NOW))
    except GatewayError:
        return


def template_input(data: bytes) -> None:
    r = Reader(data)
    mask = r.number()
    available = tuple(name for i, name in enumerate(_SIMPLE) if mask & (1 << i))
    text = r.text(512)
    try:
        template = compile_template(text, available=available)
    except ConfigError:
        return
    headers: CIMultiDict[str] = CIMultiDict()
    for _ in range(r.byte() % 4):
        headers.add(_choose(r, _HEADER_NAMES), r.text(128))
    raw = r.blob(2048)
    # What the HTTP layer can hand over: aiohttp refuses URL bytes outside ASCII, and the
    # timestamp and id come through require_header (which refuses lone surrogates) or JSON.
    ctx = RenderContext(
        raw,
        CIMultiDictProxy(headers),
        method=_valid_text(r, 8) or "POST",
        url=_valid_text(r, 128) if mask & 0x100 else None,
        timestamp=_valid_text(r, 24) if mask & 0x200 else None,
        delivery_id=_valid_text(r, 64) if mask & 0x400 else None,
    )
    try:
        rendered = template.render(ctx)
    except VerificationError:
        rendered = None
    if rendered is not None:
        if not isinstance(rendered, bytes):
            raise AssertionError("a template rendered something other than bytes")
        if not template.tokens and rendered != text.replace("{{", "{").replace("}}", "}").encode():
            raise AssertionError("a template without tokens did not render to its text")
        if text == "{body}" and rendered != raw:
            raise AssertionError("{body} did not render the exact body")
    with contextlib.suppress(VerificationError):
        template.check_id(r.text(64))
