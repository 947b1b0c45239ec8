from __future__ import annotations

from tests.peers.pretix import gates, pretix_peer

__all__ = ["gates", "pretix_peer"]
