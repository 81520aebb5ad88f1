"""Whose name goes in ``Reviewed-by:`` when someone approves in the browser.

The browser proves it holds the token; it does not say who the person is. The name is
configured where the service runs, first found wins:

1. ``ATOCORE_REVIEWER`` in the service's environment (``Name <email>``);
2. ``review: {reviewer: "Name <email>"}`` in the store's ``atocore.yaml`` (changed through review);
3. ``ATOCORE_AUTHOR`` (the same default the CLI uses), else AtoCore's default author.
"""

from __future__ import annotations

import os

from ..config import load_config
from ..errors import ValidationError
from ..store import Store
from ..store.repo import _check_author, author_from_env


def reviewer_name(store: Store) -> tuple[str, str]:
    """``(name, where it was configured)``; a badly formed name is an error the page shows."""
    env = os.environ.get("ATOCORE_REVIEWER")
    if env:
        return _checked(env, "ATOCORE_REVIEWER"), "ATOCORE_REVIEWER"
    raw = load_config(store).raw.get("review") if store.head() else None
    if isinstance(raw, dict) and isinstance(raw.get("reviewer"), str) and raw["reviewer"].strip():
        return _checked(raw["reviewer"].strip(), "atocore.yaml review.reviewer"), "atocore.yaml (review.reviewer)"
    where = "ATOCORE_AUTHOR" if os.environ.get("ATOCORE_AUTHOR") else "the default author"
    return author_from_env(), where


def _checked(name: str, where: str) -> str:
    try:
        _check_author(name)
    except ValidationError:
        raise ValidationError(where, f"{name!r} must look like 'Name <email>'") from None
    return name
