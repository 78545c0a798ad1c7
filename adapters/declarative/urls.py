"""The signed URL as a sender may have written it: with or without the default port.

Twilio signs the URL it called, and depending on the product that text carries the default
port (``https://example.com:443/hook``) or not; its SDK accepts either. A source configured with
``scheme.url_port_variants`` does the same, and nothing more: no other spelling of the URL
(case, trailing slash, query order) is tried.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

_DEFAULT_PORTS = {"https": 443, "http": 80}


def port_variants(url: str) -> tuple[str, ...]:
    """``url`` without its port and with the scheme's default one (when it has no other).

    The same two spellings as Twilio's ``RequestValidator`` (``remove_port`` / ``add_port``);
    a URL that cannot be parsed is only ever tried as it is.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return (url,)
    default = _DEFAULT_PORTS.get(parts.scheme)
    if not parts.hostname or default is None:
        return (url,)
    host = parts.netloc.rpartition(":")[0] if port is not None else parts.netloc
    without = urlunsplit(parts._replace(netloc=host))
    with_port = url if port is not None else urlunsplit(parts._replace(netloc=f"{host}:{default}"))
    return (without,) if without == with_port else (without, with_port)
