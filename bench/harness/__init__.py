"""The benchmark harness: servers and workers, load generation, statistics, result files."""
