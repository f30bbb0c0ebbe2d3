"""Benchmarks of the whole stack at scale (`make bench`; entry point bench/run.py)."""
