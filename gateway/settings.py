"""Gateway settings: a YAML file, overridden by ``WEBHOOK_GATEWAY_*`` environment variables.

Nested keys use ``__`` in variable names, e.g. ``WEBHOOK_GATEWAY_SINK__KIND=kafka`` or
``WEBHOOK_GATEWAY_SINK__KAFKA__BOOTSTRAP_SERVERS=kafka:9092``. Secrets are named references to
an environment variable or a file; inline values are accepted only in ``mode: development``.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from adapters import ConfigError, NamedKey, NamedSecret, SourceSpec, adapter_class
from adapters.testing_keys import TEST_PUBLIC_KEYS
from gateway.client_address import parse_networks

ENV_PREFIX = "WEBHOOK_GATEWAY_"
_yaml_data: ContextVar[dict[str, Any] | None] = ContextVar("_yaml_data", default=None)


def _valid_cidrs(value: tuple[str, ...]) -> tuple[str, ...]:
    for cidr in value:
        try:
            parse_networks([cidr])
        except ValueError:
            raise ValueError(f"{cidr!r} is not an IP address or CIDR network") from None
    return value


CIDRList = Annotated[tuple[str, ...], AfterValidator(_valid_cidrs)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Strict):
    """A named secret: exactly one of ``env``, ``file`` or (development only) ``value``."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    env: str | None = None
    file: Path | None = None
    value: SecretStr | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        given = [x for x in (self.env, self.file, self.value) if x is not None]
        if len(given) != 1:
            raise ValueError(f"secret {self.id!r}: set exactly one of env, file, value")
        return self

    def resolve(self, *, allow_inline: bool) -> str:
        if self.env is not None:
            text = os.environ.get(self.env)
            if not text:
                raise ConfigError("missing_secret", f"secret {self.id!r}: ${self.env} is not set")
            try:
                # Python hands over environment bytes that are not UTF-8 as lone surrogates,
                # which would fail every signature check later, delivery after delivery.
                text.encode()
            except UnicodeEncodeError:
                raise ConfigError(
                    "invalid_secret", f"secret {self.id!r}: ${self.env} is not UTF-8 text"
                ) from None
            return text.strip()
        if self.file is not None:
            try:
                return self.file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    "missing_secret", f"secret {self.id!r}: cannot read {self.file}: {exc.strerror}"
                ) from None
            except UnicodeDecodeError:
                raise ConfigError(
                    "invalid_secret", f"secret {self.id!r}: {self.file} is not UTF-8 text"
                ) from None
        if not allow_inline:
            raise ConfigError(
                "inline_secret", f"secret {self.id!r}: inline values are for mode: development"
            )
        assert self.value is not None  # guaranteed by _exactly_one
        return self.value.get_secret_value()


class PublicKeyRef(_Strict):
    """A public verification key; not secret, so it may be written inline."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    value: str = Field(min_length=1)


class SourceReconcileConfig(_Strict):
    """Polling this source's provider for jobs whose webhook did not come (docs/reconcile.md)."""

    enabled: bool = True
    #: The provider API key the status API wants (never logged).
    api_key: SecretRef
    #: The provider's API root (default: the provider's public one); tests point it at a fake.
    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")


class SourceConfig(BaseModel):
    """One endpoint, ``POST /webhooks/{name}``. Unknown keys are the provider's own options."""

    model_config = ConfigDict(extra="allow", frozen=True)

    provider: str
    secrets: tuple[SecretRef, ...] = ()
    public_keys: tuple[PublicKeyRef, ...] = ()
    tolerance_seconds: int = Field(default=300, ge=1, le=3600)
    #: Kafka topic for this source's events (default: the sink's topic for its kind of event).
    topic: str | None = None
    #: The URL the provider calls, as it would sign it (``{url}`` in a signed-content template;
    #: Twilio and Square sign it). Behind an ingress the Host header cannot rebuild it.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    #: Accept a scheme that proves nothing (``auth: none``) in production. Startup and
    #: ``check-config`` still warn about it.
    allow_unauthenticated: bool = False
    #: Client addresses allowed to deliver to this source (CIDR, IPv4 or IPv6); empty: any.
    allowed_ips: CIDRList = ()
    #: Missed-webhook reconciliation by polling the provider's status API.
    reconcile: SourceReconcileConfig | None = None

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ListenConfig(_Strict):
    host: str = "0.0.0.0"  # noqa: S104 - a gateway listens on all interfaces by design
    port: int = Field(default=8080, ge=0, le=65535)
    #: Peers (CIDR) whose ``X-Forwarded-For`` / ``Forwarded`` headers are believed, e.g. the
    #: ingress controller's pod network. Empty: the TCP peer is the client.
    trusted_proxies: CIDRList = ()


class AdminConfig(_Strict):
    host: str = "0.0.0.0"  # noqa: S104
    port: int = Field(default=9102, ge=0, le=65535)


class LimitsConfig(_Strict):
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_in_flight: int = Field(default=1000, ge=1)
    #: Open connections at most; past it the oldest that has not sent a request is closed.
    #: Unset: max_in_flight + the listen backlog (1,024), e.g. 2,024 (docs/floods.md).
    max_connections: int | None = Field(default=None, ge=1)
    #: Seconds a connection may take to send a request's headers (also the idle keep-alive).
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    #: Seconds a client may take to send its whole body.
    body_timeout_seconds: float = Field(default=10.0, gt=0)
    #: Seconds allowed for the sink to durably accept one event before answering 503.
    publish_timeout_seconds: float = Field(default=5.0, gt=0)
    retry_after_seconds: int = Field(default=5, ge=1)
    shutdown_grace_seconds: float = Field(default=20.0, gt=0)
    #: After SIGTERM, keep serving this long with /readyz false, so load balancers stop sending
    #: before the listener closes (Kubernetes: a few seconds; a bare host: 0).
    drain_delay_seconds: float = Field(default=0.0, ge=0)
    #: Failed verifications a client may have in a burst before it is answered 429 (0: no
    #: budget). Keyed by client address (``listen.trusted_proxies`` applies), IPv6 by /64.
    failure_budget_burst: int = Field(default=20, ge=0)
    #: How fast a client's budget refills, in failures per second.
    failure_budget_per_second: float = Field(default=1.0, gt=0)
    #: Clients tracked at once (about 200 bytes each); past it the least recent is forgotten.
    failure_budget_max_clients: int = Field(default=10_000, ge=1)


class RedisTlsConfig(_Strict):
    """TLS to Redis (also implied by a ``rediss://`` URL). Certificates are secret references:
    the CA's PEM text may come from any of them; the client certificate and key must be files,
    which is how TLS libraries load them."""

    enabled: bool = False
    ca: SecretRef | None = None
    client_cert: SecretRef | None = None
    client_key: SecretRef | None = None
    check_hostname: bool = True

    @model_validator(mode="after")
    def _files(self) -> RedisTlsConfig:
        for name in ("client_cert", "client_key"):
            ref = getattr(self, name)
            if ref is not None and ref.file is None:
                raise ValueError(f"dedupe.redis.tls.{name}: give a file (TLS loads it from disk)")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("dedupe.redis.tls: set both client_cert and client_key, or neither")
        return self


class RedisSentinelConfig(_Strict):
    """A Sentinel-managed Redis: the sentinels to ask and the name of the monitored master."""

    hosts: tuple[str, ...] = Field(min_length=1)
    service_name: str = Field(min_length=1)
    #: The sentinels' own password, when they require one (the master's is ``redis.password``).
    password: SecretRef | None = None

    @model_validator(mode="after")
    def _hosts(self) -> RedisSentinelConfig:
        for host in self.hosts:
            name, sep, port = host.rpartition(":")
            if not sep or not name or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"dedupe.redis.sentinel.hosts: {host!r} is not host:port")
        return self


class RedisDedupeConfig(_Strict):
    """The shared dedupe store: one Redis (or Valkey) for every replica of a deployment."""

    #: ``standalone`` (``url``), ``sentinel`` (``sentinel``). ``cluster`` is refused: see
    #: docs/dedupe.md.
    topology: Literal["standalone", "sentinel", "cluster"] = "standalone"
    #: ``redis://host:6379/0``, ``rediss://`` for TLS, or ``unix:///path``; a secret reference,
    #: since a URL may carry credentials. Standalone only.
    url: SecretRef | None = None
    username: str | None = None
    password: SecretRef | None = None
    #: Sentinel topology: which sentinels, which master; ``db`` picks the database there.
    sentinel: RedisSentinelConfig | None = None
    db: int = Field(default=0, ge=0)
    tls: RedisTlsConfig = RedisTlsConfig()
    #: Every key is ``<key_prefix>:dedupe:<event_id>``: one prefix per deployment sharing a Redis.
    key_prefix: str = Field(default="webhook-gateway", pattern=r"^[A-Za-z0-9_.:{}-]{1,64}$")
    #: Deadline of one Redis call; past it the store counts as failing (``on_store_error``).
    timeout_seconds: float = Field(default=0.25, gt=0, le=5)
    #: How long an owner's claim lives: longer than the publish deadline, so a live owner never
    #: loses it, and short, so the claim of a process that died expires soon.
    claim_ttl_seconds: float = Field(default=15.0, gt=0, le=3600)
    #: After a failure, Redis is left alone this long before one request tries it again.
    retry_interval_seconds: float = Field(default=1.0, gt=0, le=300)

    @model_validator(mode="after")
    def _topology(self) -> RedisDedupeConfig:
        if self.topology == "cluster":
            raise ValueError(
                "Redis Cluster is not supported: use a standalone Redis (url) or one managed by "
                "Sentinel (sentinel); see docs/dedupe.md"
            )
        if self.topology == "standalone" and (self.url is None or self.sentinel is not None):
            raise ValueError("dedupe.redis: topology standalone needs url (and no sentinel)")
        if self.topology == "sentinel" and (self.sentinel is None or self.url is not None):
            raise ValueError("dedupe.redis: topology sentinel needs sentinel (and no url)")
        return self


class DedupeConfig(_Strict):
    #: ``memory``: per process. ``redis``: shared by every replica, the memory store in front.
    kind: Literal["memory", "redis"] = "memory"
    #: The in-memory store (alone, or the first level in front of Redis).
    max_entries: int = Field(default=200_000, ge=1)
    ttl_seconds: int = Field(default=3600, ge=1)
    #: Redis slow or down: ``publish`` the delivery anyway (at-least-once holds; consumers dedupe
    #: by event_id) or ``reject`` it with 503 + Retry-After.
    on_store_error: Literal["publish", "reject"] = "publish"
    redis: RedisDedupeConfig | None = None

    @model_validator(mode="after")
    def _redis(self) -> DedupeConfig:
        if self.kind == "redis" and self.redis is None:
            raise ValueError("dedupe.kind redis needs dedupe.redis (url, or sentinel)")
        return self


class LocalSinkConfig(_Strict):
    directory: Path = Path("var/events")
    #: fsync before answering 2xx. Turning it off trades durability for speed: tests only.
    fsync: bool = True
    # Rotation and retention, per file (events, webhook events, dead letters); ``null`` turns
    # one off. The defaults bound each file's history to about 1 GiB and a week: docs/local-log.md.
    #: Start a new segment once the active file holds this many bytes.
    rotate_bytes: int | None = Field(default=64 * 1024 * 1024, ge=1024)
    #: Start a new segment before writing to an active file whose first record is this old.
    rotate_seconds: float | None = Field(default=86_400.0, gt=0)
    #: Delete the oldest rotated segments while together they hold more than this.
    retain_bytes: int | None = Field(default=1024 * 1024 * 1024, ge=0)
    #: Delete rotated segments whose last record is older than this.
    retain_seconds: float | None = Field(default=7 * 86_400.0, gt=0)


class KafkaSinkConfig(_Strict):
    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "webhooks.job-events"
    #: Verified passthrough events (``WebhookEvent``), kept apart from job events.
    webhook_topic: str = "webhooks.events"
    dead_letter_topic: str = "webhooks.dead-letter"
    client_id: str = "webhook-gateway"
    # Measured on batches of real events: zstd 5.2x at 8 events (41 us), 11.5x at 32 (58 us);
    # lz4 3.9x / 7.6x at similar CPU; gzip 5.4x / 10.7x at up to 4x the CPU. See README.
    compression_type: Literal["gzip", "lz4", "zstd", "snappy", "none"] = "zstd"
    # 1 ms: measured (bench/, quick mode) p50/p99 at half load 3.0/7.4 ms against 5.8/11.5 ms
    # with 5 ms, same maximum throughput; under load, batches form on their own anyway.
    linger_ms: int = Field(default=1, ge=0, le=1000)
    max_request_size: int = Field(default=2 * 1024 * 1024, ge=1024)
    request_timeout_ms: int = Field(default=10_000, ge=100)
    create_topics: bool = False
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=3, ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretRef | None = None


class SinkConfig(_Strict):
    kind: Literal["local", "kafka"] = "local"
    local: LocalSinkConfig = LocalSinkConfig()
    kafka: KafkaSinkConfig = KafkaSinkConfig()


class LoggingConfig(_Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    #: ``auto``: console when mode is development, JSON otherwise.
    format: Literal["auto", "json", "console"] = "auto"


class ReconcileConfig(_Strict):
    """Expected jobs and the reconciler that polls for their missing webhooks."""

    #: The edge closes expectations and claims the terminal slot per job; needs dedupe.kind
    #: redis (the slot and the expectations live there).
    enabled: bool = False
    expectations_topic: str = "webhooks.job-expectations"
    #: The reconcilers' consumer group on the expectations topic.
    consumer_group: str = "webhook-gateway-reconciler"
    #: Bearer token of ``POST /expectations`` on the admin listener (unset: no endpoint).
    admin_token: SecretRef | None = None
    #: The reconciler's own ``/metrics``, ``/healthz`` (on ``admin.host``).
    metrics_port: int = Field(default=9103, ge=0, le=65535)
    #: How often a reconciler looks for due expectations.
    tick_seconds: float = Field(default=1.0, gt=0, le=60)
    #: Due expectations taken per look, and polls in flight per instance.
    batch_size: int = Field(default=100, ge=1, le=10_000)
    concurrency: int = Field(default=32, ge=1, le=1000)
    #: An expectation taken by an instance is its own this long (a poll's deadline is shorter):
    #: an instance that dies leaves it to the others after this.
    lease_seconds: float = Field(default=60.0, gt=0, le=3600)
    #: The deadline of one call to a provider's API.
    http_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    #: Backoff between polls of a job still running: doubling from the first to the last.
    backoff_initial_seconds: float = Field(default=5.0, gt=0)
    backoff_max_seconds: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _times(self) -> ReconcileConfig:
        if self.http_timeout_seconds * 2 >= self.lease_seconds:
            raise ValueError(
                "reconcile.lease_seconds must be more than twice http_timeout_seconds, or a "
                "poll still running could be taken by another instance"
            )
        if self.backoff_initial_seconds > self.backoff_max_seconds:
            raise ValueError("reconcile.backoff_initial_seconds exceeds backoff_max_seconds")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    mode: Literal["production", "development"] = "production"
    listen: ListenConfig = ListenConfig()
    admin: AdminConfig = AdminConfig()
    limits: LimitsConfig = LimitsConfig()
    dedupe: DedupeConfig = DedupeConfig()
    sink: SinkConfig = SinkConfig()
    logging: LoggingConfig = LoggingConfig()
    reconcile: ReconcileConfig = ReconcileConfig()
    sources: dict[str, SourceConfig] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments, then the environment, then the YAML file.
        return init_settings, env_settings, _YamlSource(settings_cls)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        for name in self.sources:
            if not name or not all(c.isalnum() or c in "-_." for c in name) or len(name) > 64:
                raise ValueError(f"source name {name!r}: use letters, digits, '-', '_', '.'")
        widest = max((s.tolerance_seconds for s in self.sources.values()), default=0)
        if self.dedupe.ttl_seconds < widest:
            raise ValueError(
                f"dedupe.ttl_seconds ({self.dedupe.ttl_seconds}) must cover the widest replay "
                f"window ({widest} s), or a replayed delivery could pass as new"
            )
        redis = self.dedupe.redis
        if redis is not None and redis.claim_ttl_seconds <= self.limits.publish_timeout_seconds:
            raise ValueError(
                f"dedupe.redis.claim_ttl_seconds ({redis.claim_ttl_seconds}) must be longer "
                f"than limits.publish_timeout_seconds ({self.limits.publish_timeout_seconds}), "
                "or a claim could expire while its owner is still publishing"
            )
        if self.reconcile.enabled and self.dedupe.kind != "redis":
            raise ValueError(
                "reconcile.enabled needs dedupe.kind redis: the terminal slot per job and the "
                "expectations are shared there by the edge and the reconcilers"
            )
        return self

    @property
    def development(self) -> bool:
        return self.mode == "development"

    def source_specs(self) -> dict[str, SourceSpec]:
        """Resolve every secret and validate every source; raises ``ConfigError``."""
        specs: dict[str, SourceSpec] = {}
        for name, src in self.sources.items():
            adapter_class(src.provider)  # unknown provider -> ConfigError
            ids = [s.id for s in src.secrets] + [k.id for k in src.public_keys]
            if len(ids) != len(set(ids)):
                raise ConfigError("duplicate_key_id", f"source {name!r}: key ids must be unique")
            if not self.development:
                for key in src.public_keys:
                    if key.value in TEST_PUBLIC_KEYS:
                        raise ConfigError(
                            "test_key_in_production",
                            f"source {name!r}: key {key.id!r} is the published local test key",
                        )
            specs[name] = SourceSpec(
                name=name,
                provider=src.provider,
                secrets=tuple(
                    NamedSecret(s.id, s.resolve(allow_inline=self.development)) for s in src.secrets
                ),
                public_keys=tuple(NamedKey(k.id, k.value) for k in src.public_keys),
                tolerance_seconds=src.tolerance_seconds,
                options=src.options,
                public_url=src.public_url,
                production=not self.development,
                allow_unauthenticated=src.allow_unauthenticated,
            )
        return specs


class _YamlSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return (_yaml_data.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_yaml_data.get() or {})


def load_settings(path: Path | str | None, **overrides: Any) -> Settings:
    """Read ``path`` (YAML) and apply environment overrides; ``None`` means defaults + env."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError("config_unreadable", f"{path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError("config_invalid", f"{path}: not UTF-8 text") from None
        except yaml.YAMLError as exc:
            raise ConfigError("config_invalid", f"{path}: not valid YAML ({exc})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError("config_invalid", f"{path}: the top level must be a mapping")
        if loaded and not all(isinstance(key, str) for key in loaded):
            # They would reach pydantic-settings as keyword arguments (found by fuzz/).
            raise ConfigError("config_invalid", f"{path}: every top-level key must be a name")
        data = loaded or {}
    token = _yaml_data.set(data)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("config_invalid", describe_validation_error(exc)) from None
    finally:
        _yaml_data.reset(token)


def describe_validation_error(exc: ValidationError) -> str:
    """Locations and messages only: pydantic's own text quotes input values, maybe secrets."""
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in err["loc"]) or "(top level)"
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)
