"""AI job presets: senders whose webhooks report the state of one job, mapped into the canonical
lifecycle (``queued | running | succeeded | failed | canceled``).

Each preset is data for the declarative engine. Where a fact about a sender is not confirmed by
its own documentation or SDK, its row (``info``) says so. HeyGen and Sync.so are left out: their
signature details are unconfirmed (see ``docs/configuration-presets.md``).
"""

from __future__ import annotations

from typing import Any

from adapters.base import ProviderInfo
from adapters.presets.base import Preset

#: Standard Webhooks ``v1`` expressed in the engine: ``webhook-signature: v1,<b64> v1,<b64>``
#: over ``{webhook-id}.{webhook-timestamp}.{body}``, key = base64 after ``whsec_``.
STANDARD_WEBHOOKS_SCHEME: dict[str, Any] = {
    "auth": "hmac",
    "name": "standard-webhooks-v1",
    "header": "webhook-signature",
    "encoding": "base64",
    "signature_format": {"pair_separator": " ", "kv_separator": ",", "signature_key": "v1"},
    "signed_content": "{id}.{timestamp}.{body}",
    "secret_prefix": "whsec_",
    "secret_encoding": "base64",
    "timestamp": {"source": "header", "header": "webhook-timestamp"},
    "delivery_id": {"header": "webhook-id"},
}
_SW_HEADERS = "`webhook-id`, `webhook-timestamp`, `webhook-signature`"

ELEVENLABS = Preset(
    name="elevenlabs",
    info=ProviderInfo(
        title="ElevenLabs",
        kind="job",
        scheme="HMAC-SHA256 hex over `{t}.{body}`: `t=<ts>,v0=<hex>` (`elevenlabs-v0`)",
        headers="`ElevenLabs-Signature`",
        delivery_id="none sent (unconfirmed): source + job + status + sha256(body)",
        replay_window="30 min in the past (as the SDK), `tolerance_seconds` (300 s) ahead",
        retries="off by default; auto-disabled after 10 or more consecutive failures with no "
        "success for over 7 days",
        oracle="`elevenlabs` 2.78.0 `webhooks.construct_event` (verifies our signatures; ours "
        "verifies its format)",
        notes="stricter than the SDK, which accepts any future timestamp, reads only the last "
        "`v0` and compares with `!=`: we refuse more than `tolerance_seconds` ahead, accept any "
        "`v0` (rotation) and compare in constant time. `post_call_transcription` (`data.status` "
        "done/failed), `post_call_audio`, `call_initiation_failure`, "
        "`speech_to_text_transcription`",
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "elevenlabs-v0",
            "header": "ElevenLabs-Signature",
            "signature_format": {"signature_key": "v0", "timestamp_key": "t"},
            "signed_content": "{timestamp}.{body}",
            "timestamp": {"source": "signature_header", "max_age_seconds": 1800},
        },
        "mapping": {
            "kind": "job",
            "job_id": "data.conversation_id || data.request_id || data.transcription_id",
            # A transcription says how the call ended in data.status; the other types are
            # their own outcome.
            "status": "type == 'post_call_transcription' && data.status || type",
            "status_map": {
                "done": "succeeded",
                "failed": "failed",
                "post_call_transcription": "succeeded",
                "post_call_audio": "succeeded",
                "call_initiation_failure": "failed",
                "speech_to_text_transcription": "succeeded",
            },
            "event_type": "type",
            "error": "data.failure_reason",
            "occurred_at": "event_timestamp",
        },
    },
)

ASSEMBLYAI = Preset(
    name="assemblyai",
    info=ProviderInfo(
        title="AssemblyAI",
        kind="job",
        scheme="static header token of your choice (`webhook_auth_header_name`/`_value`), "
        "constant-time compare; the body is not signed",
        headers="`X-AssemblyAI-Webhook-Token` by default (the name is yours: `scheme.header`)",
        delivery_id="none sent: source + job + status + sha256(body)",
        replay_window="none signed: dedupe only",
        retries="up to 10 attempts until a 2xx within 10 s; any 4xx stops retries",
        oracle="vectors from the documented body `{transcript_id, status}`",
        notes="fixed sender IPs: US `44.238.19.20`, EU `54.220.25.36` (set "
        "`allowed_ips: [44.238.19.20/32]`); the body carries no result: fetch the transcript "
        "by id",
    ),
    options={
        "scheme": {"auth": "static_header", "header": "X-AssemblyAI-Webhook-Token"},
        "mapping": {
            "kind": "job",
            "job_id": "transcript_id",
            "status": "status",
            "status_map": {"completed": "succeeded", "error": "failed"},
        },
    },
)

DEEPGRAM = Preset(
    name="deepgram",
    info=ProviderInfo(
        title="Deepgram",
        kind="job",
        scheme="HTTP Basic credentials embedded in the callback URL (`https://user:pass@host/...`)"
        "; or, overridden, `metadata.extra.callback_secret` in the body (`body_token`)",
        headers="`Authorization: Basic`",
        delivery_id="none sent: source + job + status + sha256(body)",
        replay_window="none signed: dedupe only",
        retries="up to 10 more attempts, 30 s apart, until a 2xx",
        oracle="vectors from the documented pre-recorded response shape",
        notes="the old `dg-token` header is gone (changelog 2026-10-27). Secret: `user:password`."
        " Failed callbacks assumed to carry Deepgram's error body `{err_code, err_msg, "
        "request_id}` (unconfirmed)",
    ),
    options={
        "scheme": {"auth": "basic"},
        "mapping": {
            "kind": "job",
            "job_id": "metadata.request_id || request_id",
            "status": "(results && 'completed') || (err_code && 'error')",
            "status_map": {"completed": "succeeded", "error": "failed"},
            "error_code": "err_code",
            "error_message": "err_msg",
            "occurred_at": "metadata.created",
        },
    },
)

LEONARDO = Preset(
    name="leonardo",
    info=ProviderInfo(
        title="Leonardo.Ai",
        kind="job",
        scheme="bearer token (the webhook callback API key of the production API key)",
        headers="`Authorization: Bearer <key>`",
        delivery_id="none sent: source + job + status + sha256(body)",
        replay_window="none signed: dedupe only",
        retries="not documented",
        oracle="vectors shaped like the documented `image_generation.complete` body",
        notes="whether a failed generation is called back is not documented; `data.object.status`"
        " FAILED maps to failed if it is",
    ),
    options={
        "scheme": {"auth": "static_header", "header": "Authorization", "token_prefix": "Bearer "},
        "mapping": {
            "kind": "job",
            "job_id": "data.object.id",
            "status": "data.object.status",
            "status_map": {"PENDING": "running", "COMPLETE": "succeeded", "FAILED": "failed"},
            "event_type": "type",
            "outputs": ["data.object.images"],
        },
    },
)

_PIAPI_OPTIONS: dict[str, Any] = {
    "scheme": {"auth": "static_header", "header": "x-webhook-secret"},
    "mapping": {
        "kind": "job",
        "job_id": "data.task_id",
        "status": "data.status",
        "status_map": {
            "pending": "queued",
            "staged": "queued",
            "processing": "running",
            "completed": "succeeded",
            "failed": "failed",
        },
        "event_type": "data.task_type",
        "outputs": ["data.output"],
        # Every task carries an error object; only a failed one's means anything.
        "error": "data.status == 'failed' && data.error || `null`",
    },
}


def _piapi_info(title: str) -> ProviderInfo:
    return ProviderInfo(
        title=title,
        kind="job",
        scheme="static `x-webhook-secret` header: the secret you set in `webhook_config` echoed "
        "back; the body is not signed",
        headers="`x-webhook-secret`",
        delivery_id="none sent: source + job + status + sha256(body)",
        replay_window="none signed: dedupe only (body `timestamp` is unsigned)",
        retries="not documented",
        oracle="vectors from the published unified-webhook example",
        notes="the body echoes the secret in `data.config.webhook_config.secret`: the gateway "
        "removes it from the published event",
    )


PIAPI = Preset(name="piapi", info=_piapi_info("PiAPI"), options=_PIAPI_OPTIONS)
GOAPI = Preset(
    name="goapi", info=_piapi_info("GoAPI (PiAPI's unified API)"), options=_PIAPI_OPTIONS
)

_LUMA_STATES = {
    "queued": "queued",
    "dreaming": "running",
    "completed": "succeeded",
    "failed": "failed",
}

LUMA = Preset(
    name="luma",
    info=ProviderInfo(
        title="Luma (Dream Machine)",
        kind="job",
        scheme="none from Luma: an unguessable path token, `POST /webhooks/<source>/<token>`",
        headers="none",
        delivery_id="none sent: source + job + status + sha256(body)",
        replay_window="none signed: dedupe only",
        retries="3 retries 100 ms apart, 5 s timeout",
        oracle="vectors shaped like the documented Generation object",
        notes="Luma signs nothing: re-fetch the generation by id before trusting it. Without a "
        "token: `scheme: {auth: none}` plus `allow_unauthenticated: true`",
    ),
    options={
        "scheme": {"auth": "path_token"},
        "mapping": {
            "kind": "job",
            "job_id": "id",
            "status": "state",
            "status_map": _LUMA_STATES,
            "event_type": "state",
            "outputs": ["assets.video", "assets.image"],
            "error": "failure_reason",
            "occurred_at": "created_at",
        },
    },
)

BASETEN = Preset(
    name="baseten",
    info=ProviderInfo(
        title="Baseten (async inference)",
        kind="job",
        scheme="HMAC-SHA256 hex of the body, `v1=<hex>[,v1=<hex>]` (`baseten-v1`)",
        headers="`X-BASETEN-SIGNATURE`, `X-BASETEN-REQUEST-ID`",
        delivery_id="`X-BASETEN-REQUEST-ID` (reused across retries of one delivery)",
        replay_window="the signed body's `time` (RFC 3339): ±`tolerance_seconds` (300 s)",
        retries="2 attempts about 2 s apart, 10 s timeout",
        oracle="vectors from the documented async predict result",
        notes="during a secret rotation both secrets sign: one `v1=` pair each, any may match. "
        "Success or failure from `errors` (empty: succeeded)",
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "baseten-v1",
            "header": "X-BASETEN-SIGNATURE",
            "signature_format": {"signature_key": "v1"},
            "timestamp": {"source": "body", "path": "time", "format": "rfc3339"},
            "delivery_id": {"header": "X-BASETEN-REQUEST-ID"},
        },
        "mapping": {
            "kind": "job",
            "job_id": "request_id",
            "status": "length(errors || `[]`) > `0` && 'failed' || 'succeeded'",
            "status_map": {"succeeded": "succeeded", "failed": "failed"},
            "event_type": "type",
            "error": "errors[0]",
            "occurred_at": "time",
        },
    },
)

RUNPOD = Preset(
    name="runpod",
    info=ProviderInfo(
        title="RunPod (serverless)",
        kind="job",
        scheme="none from RunPod: an unguessable path token, `POST /webhooks/<source>/<token>`",
        headers="none",
        delivery_id="none sent: source + job + status + sha256(body)",
        replay_window="none signed: dedupe only",
        retries="2 more tries 10 s apart",
        oracle="vectors shaped like the documented `/status/{id}` result",
        notes="nothing documented to authenticate the call: the token in the URL is all there is",
    ),
    options={
        "scheme": {"auth": "path_token"},
        "mapping": {
            "kind": "job",
            "job_id": "id",
            "status": "status",
            "status_map": {
                "IN_QUEUE": "queued",
                "IN_PROGRESS": "running",
                "COMPLETED": "succeeded",
                "FAILED": "failed",
                "TIMED_OUT": "failed",
                "CANCELLED": "canceled",
            },
            "outputs": ["output"],
            "error": "error",
        },
    },
)

KIE = Preset(
    name="kie",
    info=ProviderInfo(
        title="Kie.ai",
        kind="job",
        scheme="HMAC-SHA256 base64 over `{taskId}.{timestamp}` only (`kie-task-timestamp`): "
        "**the body is not covered by the signature**",
        headers="`X-Webhook-Signature`, `X-Webhook-Timestamp`",
        delivery_id="none: source + job + status + sha256(body) (a task id may repeat)",
        replay_window="±`tolerance_seconds` (300 s) around `X-Webhook-Timestamp`",
        retries="15 s timeout; retries not documented",
        oracle="vectors from the documented signing rule (docs.kie.ai webhook verification)",
        notes="weak: anyone who captures one delivery can send any body for that task within "
        "the window; treat the body as a hint and fetch the task by id. Task id from "
        "`data.task_id` (or `data.taskId`)",
    ),
    options={
        "scheme": {
            "auth": "hmac",
            "name": "kie-task-timestamp",
            "header": "X-Webhook-Signature",
            "encoding": "base64",
            "signed_content": "{json:data.task_id || data.taskId}.{timestamp}",
            "timestamp": {"source": "header", "header": "X-Webhook-Timestamp"},
        },
        "mapping": {
            "kind": "job",
            "job_id": "data.task_id || data.taskId",
            # Market tasks say data.state; the older per-model callbacks say code (200 = done),
            # Suno adds data.callbackType for its intermediate stages.
            "status": "data.state || (code == `200` && (data.callbackType || 'complete')) "
            "|| (code && 'error')",
            "status_map": {
                "waiting": "queued",
                "queuing": "queued",
                "generating": "running",
                "text": "running",
                "first": "running",
                "success": "succeeded",
                "complete": "succeeded",
                "fail": "failed",
                "error": "failed",
            },
            "event_type": "data.callbackType || data.state",
            "outputs": ["data.info.resultUrls || data.info.result_urls || data.video_url"],
            "error_code": "data.failCode || (code != `200` && code) || `null`",
            "error_message": "data.failMsg || (code != `200` && msg) || `null`",
        },
    },
)

ANTHROPIC = Preset(
    name="anthropic",
    info=ProviderInfo(
        title="Anthropic",
        kind="job or passthrough",
        scheme="Standard Webhooks `v1` (`whsec_` + base64), expressed in the engine",
        headers=_SW_HEADERS,
        delivery_id="`webhook-id`",
        replay_window="±`tolerance_seconds` (300 s)",
        retries="not documented",
        oracle="`anthropic[webhooks]` 2.15.0 `beta.webhooks.unwrap` verifies our signatures; "
        "`standardwebhooks` 1.1.0 signs",
        notes="`deployment_run.started/succeeded/failed` are jobs (`data.id`); every other event "
        "type is published as a passthrough",
    ),
    options={
        "scheme": STANDARD_WEBHOOKS_SCHEME,
        "mapping": {
            "kind": "job",
            "when": "starts_with(data.type || '', 'deployment_run.')",
            "otherwise": "passthrough",
            "job_id": "data.id",
            "status": "data.type",
            "status_map": {
                "deployment_run.started": "running",
                "deployment_run.succeeded": "succeeded",
                "deployment_run.failed": "failed",
            },
            "event_type": "data.type",
            "occurred_at": "created_at",
        },
    },
)

PARALLEL = Preset(
    name="parallel",
    info=ProviderInfo(
        title="Parallel.ai (Task API)",
        kind="job or passthrough",
        scheme="Standard Webhooks `v1`, expressed in the engine; the secret is taken as `whsec_` "
        "+ base64 (its encoding is unconfirmed)",
        headers=_SW_HEADERS,
        delivery_id="`webhook-id`",
        replay_window="±`tolerance_seconds` (300 s)",
        retries="not documented here",
        oracle="`standardwebhooks` 1.1.0 signs and verifies (no SDK verifier)",
        notes="`task_run.status` is a job (`data.run_id`, `data.status`); other types (FindAll,"
        " Monitor) are published as passthrough",
    ),
    options={
        "scheme": STANDARD_WEBHOOKS_SCHEME,
        "mapping": {
            "kind": "job",
            "when": "type == 'task_run.status'",
            "otherwise": "passthrough",
            "job_id": "data.run_id",
            "status": "data.status",
            "status_map": {
                "queued": "queued",
                "action_required": "running",
                "running": "running",
                "cancelling": "running",
                "completed": "succeeded",
                "failed": "failed",
                "cancelled": "canceled",
            },
            "event_type": "type",
            "error": "data.error",
            "occurred_at": "timestamp",
        },
    },
)

PRESETS = (
    ELEVENLABS,
    ASSEMBLYAI,
    DEEPGRAM,
    LEONARDO,
    PIAPI,
    GOAPI,
    LUMA,
    BASETEN,
    RUNPOD,
    KIE,
    ANTHROPIC,
    PARALLEL,
)
