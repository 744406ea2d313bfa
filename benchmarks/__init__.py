"""Benchmarks: this project against the seed notebook's way of doing the same work."""
