"""The plugin manager: loads every ``atocore`` entry point, built-in plugins included."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, Callable

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "atocore"


@lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("atocore")
    pm.add_hookspecs(hookspecs)
    if not os.environ.get("ATOCORE_DISABLE_PLUGINS"):
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


def reset_plugin_manager() -> None:
    """Forget loaded plugins (tests that install a plugin at run time call this)."""
    get_plugin_manager.cache_clear()


def collect(hook_name: str, key: Callable[[Any], str] = lambda item: item.name) -> dict[str, Any]:
    """Call a ``register_*`` hook and return what plugins registered, by name."""
    found: dict[str, Any] = {}

    def register(item: Any) -> None:
        found.setdefault(key(item), item)

    getattr(get_plugin_manager().hook, hook_name)(register=register)
    return found


def plugin_names() -> list[str]:
    pm = get_plugin_manager()
    return sorted(name for name, _ in pm.list_name_plugin())
