"""The one error tree of gatehouse.

Every error raised by gatehouse code derives from :class:`GatehouseError` and also from the
matching built-in, so callers may catch either. Data travels in attributes, not only in the
message. A refused ticket is *not* an error: :func:`tickets.decide.decide` returns a verdict.
"""
from __future__ import annotations


class GatehouseError(Exception):
    """Root of every gatehouse error."""


class CredentialError(GatehouseError, ValueError):
    """A scanned credential could not be accepted. ``reason`` is a stable reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class MalformedCredential(CredentialError):
    """The bytes are not a credential of any format we know (reason MALFORMED)."""

    def __init__(self, detail: str) -> None:
        super().__init__("MALFORMED", detail)


class ForgedCredential(CredentialError):
    """Well formed, but the signature does not verify with any key we hold (reason FORGED)."""

    def __init__(self, detail: str) -> None:
        super().__init__("FORGED", detail)


class KeyFileError(GatehouseError, OSError):
    """A key file is missing, unreadable, of the wrong kind or too widely readable."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


class ConfigError(GatehouseError, ValueError):
    """A configuration value is missing or invalid. ``key`` names it."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"{key}: {detail}")
        self.key = key
        self.detail = detail
