"""Verified passthrough presets: senders whose events are not jobs (published as WebhookEvent)."""

from __future__ import annotations

from adapters.base import ProviderInfo
from adapters.presets.base import Preset

GITHUB = Preset(
    name="github",
    info=ProviderInfo(
        title="GitHub",
        kind="passthrough",
        scheme="HMAC-SHA256 hex of the body, `sha256=` prefix",
        headers="`X-Hub-Signature-256`, `X-GitHub-Delivery`, `X-GitHub-Event`",
        delivery_id="`X-GitHub-Delivery`",
        replay_window="none signed: dedupe by delivery id",
        retries="no automatic retry; 10 s timeout",
        oracle="official vector (docs.github.com)",
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "github-sha256",
            "header": "X-Hub-Signature-256",
            "prefix": "sha256=",
            "delivery_id": {"header": "X-GitHub-Delivery"},
        },
        "mapping": {"kind": "passthrough"},
    },
)

PRESETS = (GITHUB,)
