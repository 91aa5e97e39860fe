"""Benchmarks (not part of the installed packages); run as python -m benchmarks.<name>."""
