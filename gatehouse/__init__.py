"""gatehouse: the project's command line (``gatehouse …``). Each role's package owns its commands."""
from __future__ import annotations

__version__ = "0.1.0"
