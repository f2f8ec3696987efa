"""Benchmarks for nba, run on demand: `python -m bench --help`. Never part of the test suite."""
