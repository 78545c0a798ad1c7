"""The fuzz targets by name: each is ``one_input(data: bytes) -> None``.

A target raises only when its invariant breaks. Importing this package builds every target
(adapters from the example configuration), so the harness imports it inside atheris'
instrumentation context.
"""

from __future__ import annotations

from collections.abc import Callable

from fuzz.targets import addresses, declarative, deliveries, headers, payload, settings_loader

Target = Callable[[bytes], None]

TARGETS: dict[str, Target] = {
    **{f"adapter_{name.replace('-', '_')}": t for name, t in deliveries.TARGETS.items()},
    "parse_json": payload.one_input,
    "headers": headers.one_input,
    "standard_webhooks_header": headers.standard_webhooks_input,
    "client_address": addresses.one_input,
    "settings_loader": settings_loader.one_input,
    "declarative_scheme": declarative.scheme_input,
    "declarative_template": declarative.template_input,
}
