"""Output formats: how a context build becomes text for the assistant.

Formats are plugins (hook ``register_output_formats``); the built-in ones live in
:mod:`atocore.default_plugins.formats`, always registered with the same ``pm.register`` call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import ValidationError
from .model import ContextBuild

DEFAULT_FORMAT = "markdown"


@dataclass(frozen=True)
class OutputFormat:
    name: str
    description: str
    media_type: str
    render: Callable[[ContextBuild], str]


_cache: list = [None, {}]  # [plugin manager, formats]: holding the manager keeps identity checks sound


def get_formats() -> dict[str, OutputFormat]:
    """Every registered format by name (cached per plugin manager)."""
    from ..plugins import collect, get_plugin_manager

    pm = get_plugin_manager()
    if _cache[0] is not pm:
        found = collect("register_output_formats")
        for name, fmt in found.items():
            if not isinstance(fmt, OutputFormat):
                raise TypeError(f"output format plugin {name!r} registered {type(fmt).__name__}, not OutputFormat")
        _cache[0], _cache[1] = pm, found
    return _cache[1]


def format_names() -> list[str]:
    return sorted(get_formats())


def get_format(name: str | None) -> OutputFormat:
    formats = get_formats()
    fmt = formats.get(name or DEFAULT_FORMAT)
    if fmt is None:
        raise ValidationError("format", f"{name!r} is not a known output format", sorted(formats))
    return fmt


def render(build: ContextBuild, name: str | None = None) -> str:
    """Render ``build`` with the format ``name`` (default markdown)."""
    return get_format(name).render(build)
