"""Benchmark harness: ``python -m bench.run --mode full|smoke`` (``make bench``/``bench-smoke``)."""
