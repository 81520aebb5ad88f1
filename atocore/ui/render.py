"""Jinja2 with autoescaping for every template and every string: record text is user-controlled."""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined


def _when(value: Any) -> str:
    """A commit time (unix seconds) or an ISO timestamp, as 'YYYY-MM-DD HH:MM UTC'."""
    if value in (None, ""):
        return "-"
    try:
        if isinstance(value, (int, float)):
            t = _dt.datetime.fromtimestamp(value, _dt.timezone.utc)
        else:
            t = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return t.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (ValueError, OverflowError, OSError):
        return str(value)


def _nocreds(url: Any) -> str:
    """A remote URL without a password (``https://user:secret@host`` -> ``https://user@host``)."""
    return re.sub(r"(//[^/@:\s]*):[^/@\s]*@", r"\1@", str(url or ""))


def _short(sha: Any) -> str:
    return str(sha)[:12] if sha else "-"


class Templates:
    def __init__(self) -> None:
        self.env = Environment(loader=PackageLoader("atocore.ui", "templates"), autoescape=True,
                               undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(when=_when, short=_short, nocreds=_nocreds)

    def render(self, name: str, **ctx: Any) -> str:
        return self.env.get_template(name).render(**ctx)
