"""Benchmarks: `make bench` (python -m bench). Never timing assertions in tests: they live here."""
