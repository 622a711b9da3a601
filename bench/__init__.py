"""Benchmarks: `make bench` runs them all and writes bench/results.md and the README table."""
