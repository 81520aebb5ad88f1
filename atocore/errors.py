"""Errors a user can act on.

Every error carries a message written for the person at the keyboard (or the client
developer reading an HTTP 4xx body): what was wrong, and what would be accepted instead.
"""

from __future__ import annotations

from typing import Any, Sequence


class AtoCoreError(Exception):
    """Base class: ``str(err)`` is the user-facing message."""

    status_code = 400

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": str(self)}


class ValidationError(AtoCoreError):
    """A record or request field is wrong. Nothing was written."""

    status_code = 422

    def __init__(self, field: str, message: str, allowed: Sequence[Any] | None = None):
        self.field = field
        self.message = message
        self.allowed = list(allowed) if allowed is not None else None
        text = f"{field}: {message}"
        if self.allowed:
            text += f" (allowed: {', '.join(str(a) for a in self.allowed)})"
        super().__init__(text)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["field"] = self.field
        if self.allowed is not None:
            out["allowed"] = self.allowed
        return out


class NotFound(AtoCoreError):
    status_code = 404


class Conflict(AtoCoreError):
    """The write could not be applied to the current state (e.g. a review that no longer merges)."""

    status_code = 409


class StoreError(AtoCoreError):
    """The store itself is missing, damaged or not a store."""

    status_code = 500


class Busy(AtoCoreError):
    """Another writer holds a lock that this operation will not wait for."""

    status_code = 409
