"""The central hub: tickets, gates, validations, conflicts, stats, manifests (FastAPI + SQLite)."""
