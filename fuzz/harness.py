"""Run one fuzz target under atheris: ``python -m fuzz.harness TARGET [libFuzzer flags]``.

The gateway's own packages are instrumented for coverage (imported inside
``atheris.instrument_imports``), the libraries they use are not: their code is not what is
under test, and instrumenting it would slow every execution. A finding is an exception other
than the target's allowed ones; libFuzzer then writes the input as ``crash-<sha1>``.
"""

from __future__ import annotations

import os
import sys

import atheris

with atheris.instrument_imports(include=["adapters", "gateway", "schemas", "fuzz"]):
    from fuzz.targets import TARGETS
    from fuzz.targets.settings_loader import clean_environment


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in TARGETS:
        print(f"usage: python -m fuzz.harness {{{','.join(sorted(TARGETS))}}} [libFuzzer flags]")
        return 2
    clean_environment()
    target = TARGETS[argv[1]]
    # libFuzzer's -merge and -fork re-run argv[0] with flags only: it must be a command that
    # runs this target (fuzz/run.py writes one per target and names it here).
    program = os.environ.get("FUZZ_HARNESS_COMMAND", argv[0])
    atheris.Setup([program, *argv[2:]], target)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
