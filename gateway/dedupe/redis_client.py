"""The redis-py asyncio client for the shared dedupe store, from ``dedupe.redis`` settings.

Secrets (the URL, passwords, the CA) are resolved here, so ``check-config`` and startup fail on
a missing one; nothing connects until the first command. No error message quotes the URL: it
may carry a password.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from adapters import ConfigError
from gateway.settings import RedisDedupeConfig, RedisTlsConfig

_SCHEMES = ("redis", "rediss", "unix")


def describe(config: RedisDedupeConfig) -> str:
    """What ``check-config`` prints: the topology and where, never a credential."""
    if config.sentinel is not None:
        hosts = ", ".join(config.sentinel.hosts)
        return f"redis sentinel {config.sentinel.service_name} via {hosts}, db {config.db}"
    return f"redis standalone (url from secret {config.url.id if config.url else '?'})"


class Connection(NamedTuple):
    """The client the store talks to, and the Sentinel clients behind it (closed with it)."""

    client: Redis
    sentinels: tuple[Redis, ...] = ()

    async def close(self) -> None:
        await self.client.aclose()
        for sentinel in self.sentinels:
            await sentinel.aclose()


def build_client(config: RedisDedupeConfig, *, allow_inline: bool) -> Connection:
    """A client whose every call gives up after ``timeout_seconds`` (the store adds its own
    deadline on top): one immediate retry on a broken connection, so the first command after
    a Redis restart does not fail on the stale pooled socket."""
    timeout = config.timeout_seconds
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 1),
        "client_name": "webhook-gateway",
    }
    if config.username is not None:
        common["username"] = config.username
    if config.password is not None:
        common["password"] = config.password.resolve(allow_inline=allow_inline)
    tls = _tls_options(config.tls, allow_inline=allow_inline)
    if config.sentinel is not None:
        sentinel_options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            **tls,
        }
        if config.sentinel.password is not None:
            sentinel_options["password"] = config.sentinel.password.resolve(
                allow_inline=allow_inline
            )
        hosts = [_host_port(host) for host in config.sentinel.hosts]
        # redis-py leaves Sentinel's constructor unannotated.
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            hosts, sentinel_kwargs=sentinel_options, **common, **tls
        )
        master: Redis = sentinel.master_for(config.sentinel.service_name, db=config.db)
        return Connection(master, tuple(sentinel.sentinels))
    if config.url is None:  # guaranteed by the settings' validator
        raise ConfigError("redis_url_missing", "dedupe.redis.url is not set")
    url = config.url.resolve(allow_inline=allow_inline)
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES or (parts.scheme != "unix" and not parts.hostname):
        raise ConfigError(
            "redis_url_invalid",
            f"dedupe.redis.url (secret {config.url.id!r}): expected redis://host:port/db, "
            "rediss://... (TLS) or unix:///path",
        )
    if tls and parts.scheme == "redis":
        url = urlunsplit(parts._replace(scheme="rediss"))  # tls.enabled on a redis:// URL
    if tls and parts.scheme == "unix":
        raise ConfigError("redis_tls_unix", "dedupe.redis.tls: TLS over a unix socket")
    client: Redis = Redis.from_url(url, **common, **(_without_ssl_flag(tls)))
    return Connection(client)


def _tls_options(tls: RedisTlsConfig, *, allow_inline: bool) -> dict[str, Any]:
    if not (tls.enabled or tls.ca or tls.client_cert):
        return {}
    options: dict[str, Any] = {"ssl": True, "ssl_check_hostname": tls.check_hostname}
    if tls.ca is not None:
        options["ssl_ca_data"] = tls.ca.resolve(allow_inline=allow_inline)
    if tls.client_cert is not None and tls.client_key is not None:
        # Read now so a missing file fails check-config; the TLS library reads the paths.
        tls.client_cert.resolve(allow_inline=allow_inline)
        tls.client_key.resolve(allow_inline=allow_inline)
        options["ssl_certfile"] = str(tls.client_cert.file)
        options["ssl_keyfile"] = str(tls.client_key.file)
    return options


def _without_ssl_flag(tls: dict[str, Any]) -> dict[str, Any]:
    """``from_url`` picks the TLS connection from the ``rediss`` scheme, not from ``ssl=``."""
    return {k: v for k, v in tls.items() if k != "ssl"}


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)
