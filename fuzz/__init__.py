"""Coverage-guided fuzzing of everything that reads hostile input (``make fuzz``).

Each target in :mod:`fuzz.targets` is a plain ``one_input(data: bytes) -> None`` that raises
only when the invariant breaks: the code under test may raise the gateway's own errors
(``GatewayError`` subclasses) and nothing else. :mod:`fuzz.harness` runs one target under
atheris (libFuzzer) with the gateway's modules instrumented; :mod:`fuzz.run` runs them all for
``FUZZ_SECONDS`` each; the tests replay the committed corpus in ``fuzz/corpus/<target>/``.
"""
