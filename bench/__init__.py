"""Benchmarks: each module prints figures beside baselines measured in the same run."""
