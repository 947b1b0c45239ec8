"""Real peer systems run on this machine for tests and benchmarks (pretix first)."""
