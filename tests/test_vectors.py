"""Every known-answer vector in ``tests/vectors/<provider>/*.json``, one test each.

A vector holds the source configuration, the exact headers (a list of pairs, so duplicates and
case survive) and body text, the pinned clock, and what must happen: accepted with a given key,
scheme and delivery id, or refused with a given reason. Some also say what ``normalize`` must do
with the parsed body. See ``tests/vectors/generate_vectors.py`` for where each one comes from.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from adapters import (
    ADAPTERS,
    AdapterServices,
    GatewayError,
    VerificationError,
    Verified,
    build_adapter,
)
from adapters.base import Normalized, Passthrough
from tests.helpers_adapters import (
    load_vector,
    vector_fetcher,
    vector_files,
    vector_headers,
    vector_request,
    vector_spec,
)

FILES = vector_files()
REQUIRED_KEYS = {"provider", "description", "origin", "source", "headers", "body", "now"}


async def run_verify(vector: dict[str, Any]) -> Verified:
    fetcher = vector_fetcher(vector)
    adapter = build_adapter(vector_spec(vector), AdapterServices(fetcher=fetcher))
    await adapter.start()
    try:
        body = vector["body"].encode("utf-8")
        return await adapter.verify(
            body, vector_headers(vector), vector["now"], vector_request(vector)
        )
    finally:
        await adapter.close()


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_vector(path: Path) -> None:
    vector = load_vector(path)
    expected = vector["expected"]
    assert vector["provider"] in ADAPTERS
    if not expected["valid"]:
        with pytest.raises(VerificationError) as caught:
            await run_verify(vector)
        assert caught.value.reason == expected["reason"]
        return

    verified = await run_verify(vector)
    for name in ("key_id", "scheme", "delivery_id"):
        if name in expected:
            assert getattr(verified, name) == expected[name], name

    check = expected.get("normalize")
    if check is None:
        return
    adapter = build_adapter(vector_spec(vector), AdapterServices(fetcher=vector_fetcher(vector)))
    payload = adapter.parse(vector["body"].encode("utf-8"), vector_request(vector))
    if "error" in check:
        with pytest.raises(GatewayError) as failed:
            adapter.normalize(payload, verified, vector["now"])
        assert type(failed.value).__name__ == check["error"]
        assert failed.value.reason == check["reason"]
    else:
        normalized = adapter.normalize(payload, verified, vector["now"])
        if check.get("passthrough"):
            assert isinstance(normalized, Passthrough)
            assert normalized.event_type == check.get("event_type")
        else:
            assert isinstance(normalized, Normalized)
            assert normalized.job_id == check["job_id"]
            assert normalized.status == check["status"]


def test_vector_files_are_well_formed() -> None:
    assert len(FILES) >= 100
    stems = Counter(p.stem for p in FILES)
    assert [s for s, n in stems.items() if n > 1] == []  # test ids are the stems
    for path in FILES:
        vector = load_vector(path)
        assert vector.keys() >= REQUIRED_KEYS, path
        assert path.parent.name == vector["provider"], path
        expected = vector["expected"]
        assert isinstance(expected["valid"], bool)
        assert expected["valid"] or isinstance(expected.get("reason"), str), path
        assert all(isinstance(p, list) and len(p) == 2 for p in vector["headers"]), path


def test_every_provider_and_official_set_is_covered() -> None:
    providers = Counter(load_vector(p)["provider"] for p in FILES)
    assert set(providers) == set(ADAPTERS)
    official = [p.stem for p in FILES if load_vector(p)["origin"].startswith("official")]
    assert len([s for s in official if s.startswith("sw-")]) == 9
    assert {"openai-official-valid", "openai-raw-utf8-secret"} <= set(official)
    stems = {p.stem for p in FILES}
    assert {"sw-v1a-synthetic", "fal-synthetic-static-key", "fal-synthetic-jwks"} <= stems
