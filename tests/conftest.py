"""Shared test settings. Every timeout in the suite scales from TIMEOUT_S."""
from __future__ import annotations

from gatehouse.venue import TIMEOUT_S, eventually

# the PostgreSQL fixtures (a throwaway cluster per session, a database per test)
pytest_plugins = ["tests.pg"]

__all__ = ["TIMEOUT_S", "eventually"]
