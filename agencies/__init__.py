"""Synthetic population and simulated agency services (demo, tests, benchmarks)."""
