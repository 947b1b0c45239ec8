"""Shared test settings. Every timeout in the suite scales from TIMEOUT_S."""
from __future__ import annotations

from gatehouse.venue import TIMEOUT_S, eventually

__all__ = ["TIMEOUT_S", "eventually"]
