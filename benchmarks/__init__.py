"""Throughput and latency benchmarks (run with python -m benchmarks.<name>)."""
