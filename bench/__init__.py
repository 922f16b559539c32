"""Benchmark scenarios behind `make bench`."""
