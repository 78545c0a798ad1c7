"""Normalization of every payload shape in the reference docs, each checked as a full JobEvent.

For each case the parsed body goes through ``adapter.normalize``; the result is completed into
the ``JobEvent`` the pipeline would publish and ``event.model_dump(mode="json")`` is validated
against the JobEvent JSON Schema (Draft 2020-12).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters import Adapter, NormalizationError, Normalized, VerificationError, Verified
from adapters.primitives.payload import parse_json, parse_object
from schemas import JobStatus, OutputKind
from tests.helpers_adapters import (
    FAL_BODY,
    FAL_REQUEST_ID,
    default_adapter,
    job_event,
    make_adapter,
    validate_event,
    verified_for,
)

NOW = 1736678100.0  # 2025-01-12T10:35:00Z


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def normalize(
    adapter: Adapter,
    payload: Any,
    *,
    now: float = NOW,
    verified: Verified | None = None,
) -> tuple[Normalized, dict[str, Any]]:
    """Normalize, build the JobEvent, validate it against the schema; return both."""
    verified = verified or verified_for(adapter.provider)
    normalized = adapter.normalize(payload, verified, now)
    assert isinstance(normalized, Normalized)
    event = job_event(normalized, verified, provider=adapter.provider, raw=payload, received_at=now)
    return normalized, validate_event(event)


def body(document: Any) -> Any:
    """A document as it arrives: serialized, then parsed by the gateway's parser."""
    return parse_json(json.dumps(document).encode())


# ------------------------------------------------------------------------------------------ fal
def fal_body(status: str, payload: Any, **extra: Any) -> Any:
    return body(
        {
            "request_id": FAL_REQUEST_ID,
            "gateway_request_id": FAL_REQUEST_ID,
            "status": status,
            "payload": payload,
            **extra,
        }
    )


def test_fal_real_body_keeps_the_seed_exactly() -> None:
    payload = parse_json(FAL_BODY)
    seed = payload["payload"]["seed"]
    assert type(seed) is int
    assert seed == 17454220438242315174
    normalized, document = normalize(default_adapter("fal"), payload)
    assert normalized.job_id == FAL_REQUEST_ID
    assert normalized.status is JobStatus.SUCCEEDED
    assert normalized.provider_event_type == "OK"
    assert normalized.error is None
    assert normalized.occurred_at is None
    assert normalized.metrics.inference_seconds == pytest.approx(2.107286686077714)
    [image] = normalized.outputs
    assert image.url == "https://v3.fal.media/files/lion/O853qAknYZGU8_2QCbJwd.jpeg"
    assert (image.content_type, image.kind, image.width, image.height) == (
        "image/jpeg",
        OutputKind.IMAGE,
        1024,
        1024,
    )
    assert document["raw"]["payload"]["seed"] == 17454220438242315174
    assert '"seed": 17454220438242315174' in json.dumps(document)
    assert document["delivery"]["id"] == FAL_REQUEST_ID


@pytest.mark.parametrize(
    "number", [123456789012345678901234567890, 2**64, 2**64 + 1, -(2**70), 10**40]
)
def test_integers_beyond_64_bits_survive_exactly(number: int) -> None:
    raw = b'{"request_id": "%s", "status": "OK", "payload": {"seed": %d, "nested": [%d]}}' % (
        FAL_REQUEST_ID.encode(),
        number,
        number,
    )
    payload = parse_json(raw)
    assert payload["payload"]["seed"] == number
    assert type(payload["payload"]["seed"]) is int
    _, document = normalize(default_adapter("fal"), payload)
    assert document["raw"]["payload"]["seed"] == number
    assert document["raw"]["payload"]["nested"] == [number]
    assert str(number) in json.dumps(document)


def test_fal_docs_success_sample() -> None:
    payload = fal_body(
        "OK",
        {
            "images": [
                {
                    "url": "https://url.to/image.png",
                    "content_type": "image/png",
                    "file_name": "image.png",
                    "file_size": 1824075,
                    "width": 1024,
                    "height": 1024,
                }
            ],
            "seed": 196619188014358660,
        },
    )
    normalized, _ = normalize(default_adapter("fal"), payload)
    [image] = normalized.outputs
    assert image.file_name == "image.png"
    assert image.size_bytes == 1824075
    assert image.kind is OutputKind.IMAGE
    assert normalized.metrics.inference_seconds is None


def test_fal_error_422() -> None:
    detail = {
        "detail": [
            {"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}
        ]
    }
    payload = fal_body("ERROR", detail, error="Invalid status code: 422")
    normalized, document = normalize(default_adapter("fal"), payload)
    assert normalized.status is JobStatus.FAILED
    assert normalized.outputs == ()
    assert normalized.error is not None
    assert normalized.error.code == "value_error.missing"
    assert normalized.error.message == "Invalid status code: 422"
    assert normalized.error.details == detail
    assert document["error"]["details"] == detail


def test_fal_error_without_details() -> None:
    normalized, _ = normalize(default_adapter("fal"), fal_body("ERROR", None, error="boom"))
    assert normalized.status is JobStatus.FAILED
    assert normalized.error is not None
    assert (normalized.error.code, normalized.error.message) == (None, "boom")


def test_fal_payload_error_is_success_without_outputs() -> None:
    message = (
        "Response payload is not JSON serializable. Either return a JSON serializable object "
        "or use the queue endpoint to retrieve the response."
    )
    normalized, _ = normalize(default_adapter("fal"), fal_body("OK", None, payload_error=message))
    assert normalized.status is JobStatus.SUCCEEDED
    assert normalized.outputs == ()
    assert normalized.error is not None
    assert normalized.error.code == "payload_error"
    assert normalized.error.message == message


def test_fal_video_and_audio_outputs_are_found_anywhere() -> None:
    payload = fal_body(
        "OK",
        {
            "video": {
                "url": "https://v3.fal.media/files/x/out.mp4",
                "content_type": "video/mp4",
                "file_name": "out.mp4",
                "file_size": 4096,
            },
            "extra": {
                "audio_file": {"url": "https://v3.fal.media/files/x/voice.wav", "file_size": 9}
            },
            "frames": [{"url": "https://v3.fal.media/files/x/f.webp", "width": 64, "height": 36}],
            "prompt_url": "https://example.com/not-a-file-object",
            "timings": {"inference": 12.5},
        },
    )
    normalized, _ = normalize(default_adapter("fal"), payload)
    assert [(o.kind, o.content_type) for o in normalized.outputs] == [
        (OutputKind.VIDEO, "video/mp4"),
        (OutputKind.AUDIO, "audio/wav"),
        (OutputKind.IMAGE, "image/webp"),
    ]
    assert normalized.outputs[0].size_bytes == 4096
    assert normalized.metrics.inference_seconds == 12.5


def test_fal_failed_job_lists_no_outputs() -> None:
    payload = fal_body("ERROR", {"image": {"url": "https://x/a.png", "content_type": "image/png"}})
    normalized, _ = normalize(default_adapter("fal"), payload)
    assert normalized.outputs == ()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"request_id": FAL_REQUEST_ID, "status": "IN_PROGRESS"}, "unknown_status"),
        ({"request_id": FAL_REQUEST_ID}, "unknown_status"),
        ({"status": "OK", "payload": {}}, "missing_field"),
        ([FAL_REQUEST_ID], "unexpected_shape"),
        ("OK", "unexpected_shape"),
        (None, "unexpected_shape"),
    ],
)
def test_fal_shapes_it_cannot_map(payload: Any, reason: str) -> None:
    adapter = default_adapter("fal")
    with pytest.raises(NormalizationError) as caught:
        adapter.normalize(payload, verified_for("fal"), NOW)
    assert caught.value.reason == reason


def test_fal_body_request_id_must_match_the_signed_header() -> None:
    adapter = default_adapter("fal")
    with pytest.raises(VerificationError) as caught:
        adapter.normalize(parse_json(FAL_BODY), verified_for("fal", request_id="other"), NOW)
    assert caught.value.reason == "request_id_mismatch"


# ------------------------------------------------------------------------------------ Replicate
def prediction(**fields: Any) -> Any:
    base: dict[str, Any] = {
        "id": "ufawqhfynnddngldkgtslldrkq",
        "version": "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa",
        "created_at": "2022-04-26T22:13:06.224088Z",
        "started_at": None,
        "completed_at": None,
        "status": "starting",
        "input": {"text": "Alice"},
        "output": None,
        "error": None,
        "logs": None,
        "metrics": {},
    }
    return body(base | fields)


def test_replicate_starting_docs_example() -> None:
    normalized, _ = normalize(default_adapter("replicate"), prediction())
    assert normalized.job_id == "ufawqhfynnddngldkgtslldrkq"
    assert normalized.status is JobStatus.QUEUED
    assert normalized.provider_event_type == "starting"
    assert normalized.outputs == ()
    assert normalized.error is None
    assert normalized.occurred_at == utc("2022-04-26T22:13:06.224088+00:00")
    assert normalized.metrics.queue_seconds is None


def test_replicate_processing_has_queue_time() -> None:
    payload = prediction(status="processing", started_at="2022-04-26T22:13:08.724088Z", logs="..")
    normalized, _ = normalize(default_adapter("replicate"), payload)
    assert normalized.status is JobStatus.RUNNING
    assert normalized.metrics.queue_seconds == pytest.approx(2.5)
    assert normalized.occurred_at == utc("2022-04-26T22:13:08.724088+00:00")


def test_replicate_succeeded_single_url_with_metrics() -> None:
    payload = prediction(
        status="succeeded",
        started_at="2022-04-26T22:13:07.224088Z",
        completed_at="2022-04-26T22:13:10.224088Z",
        output="https://replicate.delivery/pbxt/abc/out-0.png",
        metrics={"predict_time": 2.75, "total_time": 4.0},
    )
    normalized, document = normalize(default_adapter("replicate"), payload)
    assert normalized.status is JobStatus.SUCCEEDED
    [image] = normalized.outputs
    assert (image.url, image.content_type, image.kind) == (
        "https://replicate.delivery/pbxt/abc/out-0.png",
        "image/png",
        OutputKind.IMAGE,
    )
    assert normalized.metrics.inference_seconds == 2.75
    assert normalized.metrics.total_seconds == 4.0
    assert normalized.metrics.queue_seconds == pytest.approx(1.0)
    assert normalized.occurred_at == utc("2022-04-26T22:13:10.224088+00:00")
    assert document["metrics"]["inference_seconds"] == 2.75


def test_replicate_succeeded_list_of_urls() -> None:
    payload = prediction(
        status="succeeded",
        output=[
            "https://replicate.delivery/pbxt/abc/out-0.webp",
            "https://replicate.delivery/pbxt/abc/out-1.mp4",
            "not a url",
        ],
    )
    normalized, _ = normalize(default_adapter("replicate"), payload)
    assert [o.kind for o in normalized.outputs] == [OutputKind.IMAGE, OutputKind.VIDEO]


def test_replicate_language_model_output_is_not_a_file() -> None:
    payload = prediction(status="succeeded", output=["Hello", ", ", "world"])
    normalized, _ = normalize(default_adapter("replicate"), payload)
    assert normalized.outputs == ()


def test_replicate_training_output_object() -> None:
    payload = prediction(
        status="succeeded",
        output={
            "version": "owner/model:1f2e3d4c5b6a",
            "weights": "https://replicate.delivery/pbxt/abc/trained_model.tar",
        },
    )
    normalized, _ = normalize(default_adapter("replicate"), payload)
    [weights] = normalized.outputs
    assert weights.file_name == "weights"
    assert weights.content_type == "application/x-tar"
    assert weights.kind is OutputKind.FILE


def test_replicate_failed_with_error_string() -> None:
    payload = prediction(
        status="failed", error="CUDA out of memory", completed_at="2022-04-26T22:14:00Z"
    )
    normalized, document = normalize(default_adapter("replicate"), payload)
    assert normalized.status is JobStatus.FAILED
    assert normalized.error is not None
    assert normalized.error.message == "CUDA out of memory"
    assert normalized.error.details is None
    assert document["error"]["message"] == "CUDA out of memory"


def test_replicate_failed_with_error_object() -> None:
    error = {"code": "E1001", "message": "bad input"}
    normalized, _ = normalize(
        default_adapter("replicate"), prediction(status="failed", error=error)
    )
    assert normalized.error is not None
    assert (normalized.error.code, normalized.error.message) == ("E1001", "bad input")
    assert normalized.error.details == error


@pytest.mark.parametrize("status", ["canceled", "aborted"])
def test_replicate_canceled_and_aborted(status: str) -> None:
    normalized, _ = normalize(default_adapter("replicate"), prediction(status=status))
    assert normalized.status is JobStatus.CANCELED
    assert normalized.provider_event_type == status


@pytest.mark.parametrize("status", ["cancelled", "queued", None, 3])
def test_replicate_unknown_status(status: Any) -> None:
    adapter = default_adapter("replicate")
    with pytest.raises(NormalizationError) as caught:
        adapter.normalize(prediction(status=status), verified_for("replicate"), NOW)
    assert caught.value.reason == "unknown_status"


# --------------------------------------------------------------------------------------- OpenAI
OPENAI_TYPES = {
    "response.completed": JobStatus.SUCCEEDED,
    "response.failed": JobStatus.FAILED,
    "response.cancelled": JobStatus.CANCELED,
    "response.incomplete": JobStatus.FAILED,
    "batch.completed": JobStatus.SUCCEEDED,
    "batch.failed": JobStatus.FAILED,
    "batch.expired": JobStatus.FAILED,
    "batch.cancelled": JobStatus.CANCELED,
    "fine_tuning.job.succeeded": JobStatus.SUCCEEDED,
    "fine_tuning.job.failed": JobStatus.FAILED,
    "fine_tuning.job.cancelled": JobStatus.CANCELED,
    "eval.run.succeeded": JobStatus.SUCCEEDED,
    "eval.run.failed": JobStatus.FAILED,
    "eval.run.canceled": JobStatus.CANCELED,
}
OPENAI_IDS = {
    "response": "resp_123",
    "batch": "batch_123",
    "fine_tuning": "ftjob_123",
    "eval": "evalrun_123",
}


def openai_event(event_type: str, data: Any = None) -> Any:
    family = event_type.split(".", 1)[0]
    return body(
        {
            "id": "evt_685c059ae3a481909bdc86819b066fb6",
            "object": "event",
            "created_at": 1750861210,
            "type": event_type,
            "data": data if data is not None else {"id": OPENAI_IDS.get(family, "x_1")},
        }
    )


@pytest.mark.parametrize(("event_type", "status"), OPENAI_TYPES.items())
def test_openai_job_events(event_type: str, status: JobStatus) -> None:
    normalized, document = normalize(default_adapter("openai"), openai_event(event_type))
    family = event_type.split(".", 1)[0]
    assert normalized.job_id == OPENAI_IDS[family]
    assert normalized.status is status
    assert normalized.provider_event_type == event_type
    assert normalized.outputs == ()
    assert normalized.occurred_at == datetime.fromtimestamp(1750861210, tz=UTC)
    if status is JobStatus.FAILED:
        assert normalized.error is not None
        assert normalized.error.code == event_type.rsplit(".", 1)[1]
    else:
        assert normalized.error is None
    assert document["status"] == status.value


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        (
            "realtime.call.incoming",
            {"call_id": "rtc_1", "sip_headers": [{"name": "From", "value": "x"}]},
        ),
        ("live.call.incoming", {"call_id": "rtc_2"}),
        ("safety_identifier.blocked", {"safety_category": "x", "safety_identifier": "u"}),
        ("response.created", {"id": "resp_1"}),
        ("batch.", {"id": "batch_1"}),
    ],
)
def test_openai_non_job_events_are_unsupported(event_type: str, data: Any) -> None:
    adapter = default_adapter("openai")
    with pytest.raises(NormalizationError) as caught:
        adapter.normalize(openai_event(event_type, data), verified_for("openai"), NOW)
    assert caught.value.reason == "unsupported_event_type"


def test_openai_event_without_data_id() -> None:
    adapter = default_adapter("openai")
    with pytest.raises(NormalizationError) as caught:
        adapter.normalize(openai_event("batch.completed", {}), verified_for("openai"), NOW)
    assert caught.value.reason == "missing_field"


# ------------------------------------------------------------------------------------- Abstrakt
ABSTRAKT_OLDER_COMPLETED = {
    "request_id": "abc123",
    "status": "completed",
    "result": {
        "items": [{"url": "https://cdn.abstrakt.one/abc123.mp4", "content_type": "video/mp4"}]
    },
    "metrics": {"inference_time": 45.2, "queue_time": 2.1},
    "timestamp": "2025-01-12T10:30:00Z",
}
ABSTRAKT_V1_SUCCEEDED = {
    "job_id": "job_abc123xyz",
    "status": "succeeded",
    "output": {
        "type": "image",
        "items": [{"type": "image", "url": "https://cdn.abstrakt.one/outputs/abc123.png"}],
    },
    "credits_used": 1,
    "completed_at": "2025-01-12T10:30:45Z",
}


def test_abstrakt_older_completed() -> None:
    normalized, _ = normalize(default_adapter("abstrakt"), body(ABSTRAKT_OLDER_COMPLETED))
    assert normalized.job_id == "abc123"
    assert normalized.status is JobStatus.SUCCEEDED
    assert normalized.provider_event_type == "completed"
    [video] = normalized.outputs
    assert (video.kind, video.content_type) == (OutputKind.VIDEO, "video/mp4")
    assert normalized.metrics.inference_seconds == 45.2
    assert normalized.metrics.queue_seconds == 2.1
    assert normalized.metrics.total_seconds == 47.3  # no float noise from 45.2 + 2.1
    assert normalized.occurred_at == utc("2025-01-12T10:30:00+00:00")
    assert normalized.error is None


def test_abstrakt_older_failed() -> None:
    payload = body(
        {
            "request_id": "abc124",
            "status": "failed",
            "error": {"message": "Model execution timed out"},
            "timestamp": "2025-01-12T10:31:00Z",
        }
    )
    normalized, _ = normalize(default_adapter("abstrakt"), payload)
    assert normalized.status is JobStatus.FAILED
    assert normalized.error is not None
    assert normalized.error.message == "Model execution timed out"
    assert normalized.error.code is None
    assert normalized.outputs == ()


def test_abstrakt_v1_succeeded() -> None:
    normalized, _ = normalize(default_adapter("abstrakt"), body(ABSTRAKT_V1_SUCCEEDED))
    assert normalized.job_id == "job_abc123xyz"
    assert normalized.status is JobStatus.SUCCEEDED
    [image] = normalized.outputs
    assert (image.kind, image.content_type) == (OutputKind.IMAGE, "image/png")
    assert normalized.metrics.credits == 1
    assert normalized.occurred_at == utc("2025-01-12T10:30:45+00:00")


def test_abstrakt_v1_failed() -> None:
    error = {"code": "PROVIDER_FAILURE", "message": "Model execution failed: invalid input image"}
    payload = body({"job_id": "job_abc123xyz", "status": "failed", "error": error})
    normalized, document = normalize(default_adapter("abstrakt"), payload)
    assert normalized.status is JobStatus.FAILED
    assert normalized.error is not None
    assert normalized.error.code == "PROVIDER_FAILURE"
    assert normalized.error.message == "Model execution failed: invalid input image"
    assert normalized.error.details == error
    assert normalized.occurred_at is None
    assert document["error"]["code"] == "PROVIDER_FAILURE"


@pytest.mark.parametrize(
    "payload", [ABSTRAKT_OLDER_COMPLETED, ABSTRAKT_V1_SUCCEEDED], ids=["older", "v1"]
)
@pytest.mark.parametrize(
    ("shift", "ok"),
    [(24 * 3600, True), (24 * 3600 + 301, False), (-300, True), (-301 - 600, False)],
    ids=["max-age", "too-old", "future-tolerance", "too-far-ahead"],
)
def test_abstrakt_body_timestamp_window(payload: dict[str, Any], shift: int, ok: bool) -> None:
    stamp = payload.get("timestamp") or payload["completed_at"]
    now = utc(stamp).timestamp() + shift
    adapter = default_adapter("abstrakt")
    if ok:
        normalize(adapter, body(payload), now=now)
        return
    with pytest.raises(VerificationError) as caught:
        adapter.normalize(body(payload), verified_for("abstrakt"), now)
    assert caught.value.reason == "timestamp_out_of_window"


def test_abstrakt_max_age_option() -> None:
    stamp = utc("2025-01-12T10:30:00+00:00").timestamp()
    strict = make_adapter("abstrakt", secrets=[("p", "s")], options={"max_age_seconds": 60})
    with pytest.raises(VerificationError):
        strict.normalize(body(ABSTRAKT_OLDER_COMPLETED), verified_for("abstrakt"), stamp + 61)
    off = make_adapter("abstrakt", secrets=[("p", "s")], options={"max_age_seconds": 0})
    normalize(off, body(ABSTRAKT_OLDER_COMPLETED), now=stamp + 10 * 365 * 24 * 3600)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"status": "completed"}, "missing_field"),
        ({"request_id": "a", "status": "weird"}, "unknown_status"),
        ({"job_id": "a"}, "unknown_status"),
        ([], "unexpected_shape"),
    ],
)
def test_abstrakt_shapes_it_cannot_map(payload: Any, reason: str) -> None:
    with pytest.raises(NormalizationError) as caught:
        default_adapter("abstrakt").normalize(payload, verified_for("abstrakt"), NOW)
    assert caught.value.reason == reason


# ----------------------------------------------------------------------------------- InstantAPI
def test_instantapi_completed_with_cost() -> None:
    payload = body(
        {
            "event_type": "task.completed",
            "task_id": "task_9f8e7d",
            "status": "completed",
            "result": {"summary": "A short summary.", "sentiment": "positive"},
            "usage": {"cost": 0.002},
            "completed_at": "2025-01-12T10:31:00Z",
        }
    )
    normalized, document = normalize(default_adapter("instantapi"), payload)
    assert normalized.job_id == "task_9f8e7d"
    assert normalized.status is JobStatus.SUCCEEDED
    assert normalized.provider_event_type == "task.completed"
    assert normalized.outputs == ()  # inline results stay in raw
    assert normalized.metrics.cost == 0.002
    assert normalized.occurred_at == utc("2025-01-12T10:31:00+00:00")
    assert document["raw"]["result"]["summary"] == "A short summary."


def test_instantapi_completed_with_files() -> None:
    payload = body(
        {
            "event_type": "task.completed",
            "task_id": "task_1",
            "result": {
                "files": ["https://cdn.instantapis.net/out/report.pdf", {"url": "https://x/a.csv"}]
            },
            "usage": {"cost": 1},
        }
    )
    normalized, _ = normalize(default_adapter("instantapi"), payload)
    assert [o.content_type for o in normalized.outputs] == ["application/pdf", "text/csv"]


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (
            {"code": "input_too_long", "message": "Input exceeds limit"},
            "input_too_long",
            "Input exceeds limit",
        ),
        ("Upstream model timed out", None, "Upstream model timed out"),
    ],
)
def test_instantapi_failed(error: Any, code: str | None, message: str) -> None:
    payload = body(
        {
            "event_type": "task.failed",
            "task_id": "task_2",
            "status": "failed",
            "result": {"error": error},
        }
    )
    normalized, _ = normalize(default_adapter("instantapi"), payload)
    assert normalized.status is JobStatus.FAILED
    assert normalized.error is not None
    assert (normalized.error.code, normalized.error.message) == (code, message)
    assert normalized.outputs == ()


def test_instantapi_old_body_timestamp_is_refused() -> None:
    payload = body(
        {
            "event_type": "task.completed",
            "task_id": "t",
            "timestamp": 1736000000,
            "usage": {"cost": 1},
        }
    )
    adapter = default_adapter("instantapi")
    normalize(adapter, payload, now=1736000000 + 3600)
    with pytest.raises(VerificationError) as caught:
        adapter.normalize(payload, verified_for("instantapi"), 1736000000 + 24 * 3600 + 1)
    assert caught.value.reason == "timestamp_out_of_window"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"event_type": "task.exploded", "task_id": "t"}, "unknown_status"),
        ({"task_id": "t"}, "missing_field"),
        ({"event_type": "task.completed"}, "missing_field"),
        ("task.completed", "unexpected_shape"),
    ],
)
def test_instantapi_shapes_it_cannot_map(payload: Any, reason: str) -> None:
    with pytest.raises(NormalizationError) as caught:
        default_adapter("instantapi").normalize(payload, verified_for("instantapi"), NOW)
    assert caught.value.reason == reason


# ---------------------------------------------------------------------------- Standard Webhooks
def test_generic_standard_webhooks_envelope() -> None:
    payload = body(
        {
            "type": "job.completed",
            "timestamp": "2025-01-12T10:30:00Z",
            "data": {
                "id": "job_42",
                "status": "succeeded",
                "output": [
                    "https://cdn.example.com/a.png",
                    {"url": "https://cdn.example.com/b", "content_type": "audio/mpeg"},
                ],
            },
        }
    )
    normalized, _ = normalize(default_adapter("standard-webhooks"), payload)
    assert normalized.job_id == "job_42"
    assert normalized.status is JobStatus.SUCCEEDED
    assert normalized.provider_event_type == "job.completed"
    assert [o.kind for o in normalized.outputs] == [OutputKind.IMAGE, OutputKind.AUDIO]
    assert normalized.occurred_at == utc("2025-01-12T10:30:00+00:00")


def test_generic_status_falls_back_to_the_event_type() -> None:
    payload = body(
        {"type": "job.failed", "data": {"id": 7, "error": {"code": "E", "message": "m"}}}
    )
    normalized, _ = normalize(default_adapter("standard-webhooks"), payload)
    assert normalized.job_id == "7"
    assert normalized.status is JobStatus.FAILED
    assert normalized.error is not None
    assert (normalized.error.code, normalized.error.message) == ("E", "m")


def test_generic_paths_and_status_map_are_configurable() -> None:
    adapter = make_adapter(
        "standard-webhooks",
        secrets=[("p", "whsec_" + "A" * 32)],
        options={
            "job_id_path": "task.uuid",
            "status_path": "task.state",
            "event_type_path": "kind",
            "occurred_at_path": "task.finished",
            "outputs_path": "task.files",
            "error_path": "task.problem",
            "status_map": {"DONE": "succeeded", "BROKEN": "failed"},
        },
    )
    payload = body(
        {
            "kind": "task.update",
            "task": {
                "uuid": "u-1",
                "state": "DONE",
                "finished": 1736677800,
                "files": "https://x/y.mp4",
            },
        }
    )
    normalized, _ = normalize(adapter, payload)
    assert (normalized.job_id, normalized.status) == ("u-1", JobStatus.SUCCEEDED)
    assert normalized.outputs[0].kind is OutputKind.VIDEO
    assert normalized.occurred_at == datetime.fromtimestamp(1736677800, tz=UTC)
    with pytest.raises(NormalizationError) as caught:
        adapter.normalize(body({"task": {"uuid": "u", "state": "done"}}), verified_for("x"), NOW)
    assert caught.value.reason == "unknown_status"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"type": "job.completed", "data": {}}, "missing_field"),
        ({"type": "job.teleported", "data": {"id": "j"}}, "unknown_status"),
        ({"data": {"id": "j"}}, "unknown_status"),
        (["job"], "unexpected_shape"),
    ],
)
def test_generic_shapes_it_cannot_map(payload: Any, reason: str) -> None:
    with pytest.raises(NormalizationError) as caught:
        default_adapter("standard-webhooks").normalize(payload, verified_for("x"), NOW)
    assert caught.value.reason == reason


# ----------------------------------------------------------------- numbers beyond float range
# A body may hold integers of any size (parse_json keeps them exactly); a metric that is not a
# float must be dropped (None) like any other unusable metric, not crash the normalizer.
HUGE = 10**400


@pytest.mark.parametrize(
    ("provider", "payload", "metric"),
    [
        (
            "fal",
            {
                "request_id": FAL_REQUEST_ID,
                "status": "OK",
                "payload": {"timings": {"inference": HUGE}},
            },
            "inference_seconds",
        ),
        (
            "replicate",
            {"id": "p", "status": "succeeded", "metrics": {"predict_time": HUGE, "total_time": 1}},
            "inference_seconds",
        ),
        (
            "abstrakt",
            {"job_id": "j", "status": "succeeded", "output": {}, "credits_used": HUGE},
            "credits",
        ),
        (
            "abstrakt",
            {"request_id": "j", "status": "completed", "metrics": {"queue_time": HUGE}},
            "queue_seconds",
        ),
        (
            "instantapi",
            {"event_type": "task.completed", "task_id": "t", "usage": {"cost": HUGE}},
            "cost",
        ),
    ],
)
def test_integer_metrics_beyond_float_range_are_dropped(
    provider: str, payload: dict[str, Any], metric: str
) -> None:
    normalized, _ = normalize(default_adapter(provider), payload)
    assert getattr(normalized.metrics, metric) is None


@pytest.mark.parametrize("provider", ["openai", "instantapi", "abstrakt", "standard-webhooks"])
def test_integer_timestamps_beyond_float_range_are_ignored(provider: str) -> None:
    payload: dict[str, Any] = {
        "openai": {"type": "batch.completed", "created_at": HUGE, "data": {"id": "b"}},
        "instantapi": {"event_type": "task.completed", "task_id": "t", "completed_at": HUGE},
        "abstrakt": {"job_id": "j", "status": "succeeded", "output": {}, "completed_at": HUGE},
        "standard-webhooks": {"type": "a.succeeded", "timestamp": HUGE, "data": {"id": "j"}},
    }[provider]
    normalized, _ = normalize(default_adapter(provider), payload)
    assert normalized.occurred_at is None


# ------------------------------------------------------------------------------------ parse_json
def test_parse_json_fast_and_exact_paths_agree() -> None:
    document = {"id": "12345678901234567890123", "n": 1.5, "s": "café", "l": [True, None]}
    fast = parse_json(json.dumps(document).encode())
    exact = parse_json(json.dumps(document | {"big": 10**25}).encode())
    assert fast == document
    assert exact == document | {"big": 10**25}


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"\xff\xfe", b"NaN", b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}'],
)
@pytest.mark.parametrize("long_digits", [False, True], ids=["fast", "exact"])
def test_parse_json_refuses(raw: bytes, long_digits: bool) -> None:
    if long_digits:
        raw = raw + b' "pad": 123456789012345678901234'
    with pytest.raises(NormalizationError) as caught:
        parse_json(raw)
    assert caught.value.reason == "invalid_json"


# The exact (standard-library) path is taken only when a run of 20+ digits appears anywhere in
# the body. Whether a body is valid JSON must not depend on that: these four are refused by the
# fast path (orjson), so they must be refused by the exact path too.
PAD = b', "pad": 123456789012345678901234}'
INCONSISTENT = {
    "utf8-bom": b'\xef\xbb\xbf{"a": 1' + PAD,
    "utf16": ('{"a": 1' + PAD.decode()).encode("utf-16"),
    "lone-surrogate-escape": b'{"a": "\\ud800"' + PAD,
    "float-overflow": b'{"a": 1e400' + PAD,
}


@pytest.mark.parametrize("raw", INCONSISTENT.values(), ids=INCONSISTENT.keys())
def test_parse_json_exact_path_accepts_only_what_the_fast_path_accepts(raw: bytes) -> None:
    with pytest.raises(NormalizationError) as caught:
        parse_json(raw)
    assert caught.value.reason == "invalid_json"


@pytest.mark.parametrize("raw", [b"[1]", b'"x"', b"3", b"null"])
def test_parse_object_refuses_non_objects(raw: bytes) -> None:
    with pytest.raises(NormalizationError) as caught:
        parse_object(raw)
    assert caught.value.reason == "unexpected_shape"
