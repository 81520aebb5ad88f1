"""The plugin manager: the built-in plugins, always, and third-party ones from entry points.

The pattern of llm's and datasette's ``plugins.py``: the built-ins under
:mod:`atocore.default_plugins` are registered with ``pm.register`` on every start, so a checkout
that was never installed, or ``ATOCORE_DISABLE_PLUGINS=1``, keeps the markdown format, the
signal extractor and the Claude Code / OpenClaw sources. Setuptools entry points of the group
``atocore`` are for third-party plugins only.
"""

from __future__ import annotations

import importlib
import logging
import os
from functools import lru_cache
from typing import Any, Callable

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "atocore"

# (name, module): the names are what the entry points of earlier releases were called.
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("formats", "atocore.default_plugins.formats"),
    ("signals", "atocore.default_plugins.signals"),
    ("claude_code", "atocore.default_plugins.claude_code"),
    ("openclaw", "atocore.default_plugins.openclaw"),
)

log = logging.getLogger("atocore.plugins")


def new_plugin_manager() -> pluggy.PluginManager:
    """An empty manager that knows AtoCore's hookspecs (the hook's fast path registers one module)."""
    pm = pluggy.PluginManager("atocore")
    pm.add_hookspecs(hookspecs)
    return pm


@lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    pm = new_plugin_manager()
    for name, module in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module), name=name)
    if not os.environ.get("ATOCORE_DISABLE_PLUGINS"):
        _load_entry_points(pm)
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register every ``atocore`` entry point; one that fails to import is logged by name and skipped."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue  # a built-in's name (an old install's metadata), or declared twice
        try:
            plugin = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken third-party plugin must not stop AtoCore
            log.warning("plugin %r (%s) could not be loaded and is skipped: %s: %s",
                        ep.name, ep.value, type(exc).__name__, exc)
            continue
        if pm.is_registered(plugin):
            continue  # a built-in module named by an entry point
        pm.register(plugin, name=ep.name)


def reset_plugin_manager() -> None:
    """Forget loaded plugins (tests that install a plugin at run time call this)."""
    get_plugin_manager.cache_clear()


def call_each(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> None:
    """Call every implementation of ``hook_name``, one plugin at a time, so that a plugin that
    raises is reported by name (logged) and the others still run."""
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):  # pluggy's call order
        try:
            impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
        except Exception as exc:  # noqa: BLE001 - reported, not swallowed
            log.warning("plugin %r failed in %s and is skipped: %s: %s",
                        impl.plugin_name, hook_name, type(exc).__name__, exc)


def collect_by_plugin(hook_name: str, pm: pluggy.PluginManager | None = None,
                      key: Callable[[Any], str] = lambda item: item.name) -> dict[str, tuple[str, Any]]:
    """Call a ``register_*`` hook; return ``{key: (plugin name, item)}`` (the first one wins)."""
    pm = pm or get_plugin_manager()
    found: dict[str, tuple[str, Any]] = {}
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):  # pluggy's call order
        def register(item: Any, _plugin: str = impl.plugin_name) -> None:
            found.setdefault(key(item), (_plugin, item))

        try:
            impl.function(register=register)
        except Exception as exc:  # noqa: BLE001 - reported, not swallowed
            log.warning("plugin %r failed in %s and is skipped: %s: %s",
                        impl.plugin_name, hook_name, type(exc).__name__, exc)
    return found


def collect(hook_name: str, key: Callable[[Any], str] = lambda item: item.name) -> dict[str, Any]:
    """Call a ``register_*`` hook and return what plugins registered, by name."""
    return {k: item for k, (_plugin, item) in collect_by_plugin(hook_name, key=key).items()}


def plugin_names() -> list[str]:
    pm = get_plugin_manager()
    return sorted(name for name, _ in pm.list_name_plugin())
