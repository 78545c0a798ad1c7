"""The fuzz targets (``fuzz/``): the committed corpus replays cleanly, the seeds reach every
stage of the pipeline, each harness really runs under atheris for a few seconds, and the
findings fuzzing made stay fixed."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from adapters import ADAPTERS, ConfigError
from adapters.declarative.template import compile_template
from fuzz import run as fuzz_run
from fuzz.reader import Reader, Writer
from fuzz.targets import TARGETS, deliveries
from gateway.dedupe import MemoryDedupe
from gateway.ingest import Pipeline
from gateway.settings import SecretRef, load_settings
from tests.support import example_settings, signed

CORPUS = Path(fuzz_run.CORPUS)


def corpus(target: str) -> list[Path]:
    return sorted((CORPUS / target).iterdir())


def test_every_adapter_and_parser_has_a_target_and_a_corpus() -> None:
    assert {f"adapter_{p.replace('-', '_')}" for p in ADAPTERS} <= set(TARGETS)
    assert set(TARGETS) >= {
        "parse_json",
        "headers",
        "standard_webhooks_header",
        "client_address",
        "settings_loader",
        "declarative_scheme",
        "declarative_template",
    }
    assert set(fuzz_run.targets()) == set(TARGETS)
    for target in TARGETS:
        assert len(corpus(target)) >= 4, target


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_corpus_replays(target: str) -> None:
    """Every input the fuzzer kept (and every seed) holds the invariant, uninstrumented."""
    one_input = TARGETS[target]
    for path in corpus(target):
        one_input(path.read_bytes())


#: Senders whose seeds cannot be signed here, and why (their refusals are still fuzzed).
UNSIGNABLE = {
    "aws-sns": "the signature covers an envelope the adapter builds, with a fetched certificate",
    "gcp-pubsub": "the token is checked against Google's keys, which are fetched (offline here)",
}
#: Job senders whose mapping takes any authentic body (no seed dead-letters).
MAPS_EVERYTHING = {"baseten": "the status is computed from the errors list, never unknown"}


@pytest.mark.parametrize("source", deliveries.PROVIDERS)
def test_seeds_reach_acceptance_dead_letters_and_refusals(source: str) -> None:
    """If the harness stopped reaching the pipeline's later stages, fuzzing would only ever
    exercise the refusals: the seeds must reach every kind of outcome the sender has."""
    target = deliveries._BUILT[source]
    outcomes: Counter[str] = Counter()
    for path in corpus(f"adapter_{source.replace('-', '_')}"):
        target(path.read_bytes())
        assert target.last is not None
        outcomes[target.last.outcome] += 1
    assert outcomes["rejected"] > 0
    if source in UNSIGNABLE:
        return
    assert outcomes["accepted"] > 0
    # A passthrough takes any authentic JSON.
    if not target.adapter.may_pass_through and source not in MAPS_EVERYTHING:
        assert outcomes["dead_letter"] > 0


def test_a_target_fails_on_a_foreign_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    """The invariant is really checked: an exception that is not the gateway's is a crash."""

    def broken(raw: bytes) -> object:
        raise ValueError("not ours")

    monkeypatch.setattr("fuzz.targets.payload.parse_json", broken)
    with pytest.raises(ValueError, match="not ours"):
        TARGETS["parse_json"](b"{}")

    target = deliveries._BUILT["abstrakt"]

    def normalize(*_: object) -> object:
        raise KeyError("status")

    monkeypatch.setattr(target.adapter, "normalize", normalize)
    body = b'{"job_id": "j", "status": "completed"}'
    with pytest.raises(KeyError):
        target(deliveries.encode(body, sign=True))


def test_reader_decodes_what_the_writer_wrote() -> None:
    data = Writer().byte(7).number(513).signed(-5).blob(b"abc").text("\udcff\u00e9").getvalue()
    r = Reader(data + b"tail")
    assert (r.byte(), r.number(), r.signed(), r.blob(10)) == (7, 513, -5, b"abc")
    assert r.text(10) == "\udcff\u00e9"
    assert r.rest() == b"tail"
    assert (r.byte(), r.number(), r.blob(5), r.text(5)) == (0, 0, b"", "")  # past the end


def run_harnesses(targets: list[str], work: Path) -> dict[str, tuple[int, str]]:
    """Each target for 2 s under atheris, all at once: (exit code, stderr) per target."""
    procs = {}
    for target in targets:
        (work / target).mkdir()
        procs[target] = subprocess.Popen(
            fuzz_run.harness_command(
                target,
                str(work / target),
                str(CORPUS / target),
                "-max_total_time=2",
                f"-max_len={fuzz_run.MAX_LEN.get(target, fuzz_run.DEFAULT_MAX_LEN)}",
                f"-artifact_prefix={work}/{target}-",
                "-print_final_stats=1",
            ),
            cwd=fuzz_run.ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    results = {}
    for target, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        results[target] = (proc.returncode, err)
    return results


def test_every_harness_runs_under_atheris(tmp_path: Path) -> None:
    """A few seconds each, eight at a time, so the harnesses (and atheris) cannot rot."""
    targets = sorted(TARGETS)
    for start in range(0, len(targets), 8):
        for target, (code, err) in run_harnesses(targets[start : start + 8], tmp_path).items():
            assert code == 0, f"{target}:\n{err[-3000:]}"
            executed = fuzz_run._EXECUTED.findall(err)
            assert executed, f"{target}: no statistics\n{err[-2000:]}"
            assert int(executed[-1]) > 0
            assert "Instrumenting adapters" in err, target


# --- findings, each kept fixed ---------------------------------------------------------------


def test_dead_letter_with_non_utf8_header_bytes_is_kept() -> None:
    """An authentic but unmappable delivery whose User-Agent held bytes that are not UTF-8:
    its dead letter failed to serialize, so it answered 503 on every retry."""
    raw, headers = signed(example_settings(), "replicate", body=b'{"unexpected": true}')
    received = CIMultiDict(headers)
    received["User-Agent"] = "client/\udcff\udcfe"  # aiohttp's surrogateescape of 0xff 0xfe
    target = deliveries._BUILT["replicate"]
    pipeline = Pipeline(
        target.pipeline.sources,
        deliveries.SerializingSink(),
        MemoryDedupe(16, 3600),
        publish_timeout_seconds=5.0,
        retry_after_seconds=5,
        wall_clock=time.time,
        perf_clock=time.perf_counter,
    )
    outcome = asyncio.run(pipeline.handle(target.source, raw, CIMultiDictProxy(received)))
    assert (outcome.status, outcome.outcome) == (200, "dead_letter")


def test_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_bytes(b"mode: production\n\xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(path)


def test_template_with_a_lone_surrogate_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid text"):
        compile_template("\udc80{body}")


def test_secret_from_the_environment_that_is_not_utf8_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python hands environment bytes that are not UTF-8 over as lone surrogates: every HMAC
    check would then fail with UnicodeEncodeError, a 503 for every delivery."""
    monkeypatch.setenv("FUZZ_SECRET", "abc\udcff")
    with pytest.raises(ConfigError, match="not UTF-8"):
        SecretRef(id="a", env="FUZZ_SECRET").resolve(allow_inline=False)


def test_secret_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"\xff\xfesecret")
    with pytest.raises(ConfigError, match="not UTF-8"):
        SecretRef(id="a", file=path).resolve(allow_inline=False)


@pytest.mark.parametrize("text", ["1: x\n", "null: 3\n", "true: {}\n"])
def test_config_with_a_top_level_key_that_is_not_a_name(tmp_path: Path, text: str) -> None:
    """It reached pydantic-settings as a keyword argument: TypeError, not a config error."""
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="top-level key"):
        load_settings(path)
