"""Benchmark suite: ``python benchmarks/run.py`` (or ``make bench``); see benchmarks/run.py."""
