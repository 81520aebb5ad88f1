"""Capture sources: the plugin type that turns an assistant's hooks and transcripts into turns.

A plugin registers one with the ``register_capture_sources`` hook::

    @atocore.hookimpl
    def register_capture_sources(register):
        register(CaptureSource(name="my-assistant", parse_hook_payload=..., parse_transcript=...))

``atocore hook NAME`` and ``atocore import NAME PATH...`` then find it by ``name``. Every
function returns plain ``POST /interactions`` bodies (dicts with source, session_id, prompt,
response and optionally id, project, created, meta), so a source never touches the store.

Finding a source must be cheap, because ``atocore hook`` runs on every prompt: loading all
entry points through pluggy costs ~80 ms here. So the first lookup records which plugin
module provides which source in a small cache file under ``$ATOCORE_HOME/cache`` (keyed by
the modification times of the ``sys.path`` folders, which change when packages are
installed or removed); later lookups import only that one module.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable

from .home import atocore_home

Turn = dict[str, Any]

MAX_TURN_CHARS = 200_000  # atocore.records.MAX_TURN_CHARS (not imported: keeps the hook light)
_TRUNCATED = "\n[... truncated by AtoCore capture ...]\n"


def truncate_turn(text: str) -> str:
    """``text`` cut to what a stored turn may hold, keeping its start and its end."""
    if len(text) <= MAX_TURN_CHARS:
        return text
    half = (MAX_TURN_CHARS - len(_TRUNCATED)) // 2
    return text[:half] + _TRUNCATED + text[-half:]


def content_text(content: Any) -> str:
    """The text of a chat message's ``content``: a string, or the ``text`` blocks of a block list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b["text"] for b in content
                         if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str))
    return ""


def _no_turns(_arg: Any) -> list[Turn]:
    return []


def _no_context(_payload: dict) -> dict | None:
    return None


def _plain_context(_payload: dict, build: dict) -> str:
    return str(build.get("context") or "")


class CaptureSource:
    """How one assistant talks to AtoCore.

    - ``name``: the ``atocore hook``/``atocore import`` argument and the interactions' ``source``.
    - ``parse_hook_payload(payload) -> [turn]``: a hook event (parsed stdin JSON) to turns to record.
    - ``parse_transcript(path) -> [turn]``: a whole transcript file to turns (for importing).
    - ``context_request(payload) -> body | None``: the ``POST /context/build`` body for events
      that want a context supplement, else None.
    - ``render_context(payload, build) -> str``: what the hook prints for that supplement
      ("" prints nothing).

    A plain class rather than a dataclass: importing ``dataclasses`` costs the hook a few ms.
    """

    __slots__ = ("name", "description", "parse_hook_payload", "parse_transcript", "context_request",
                 "render_context", "module")

    def __init__(self, name: str, description: str = "",
                 parse_hook_payload: Callable[[dict], list[Turn]] = _no_turns,
                 parse_transcript: Callable[[str], list[Turn]] = _no_turns,
                 context_request: Callable[[dict], dict | None] = _no_context,
                 render_context: Callable[[dict, dict], str] = _plain_context,
                 module: str = ""):
        self.name = name
        self.description = description
        self.parse_hook_payload = parse_hook_payload
        self.parse_transcript = parse_transcript
        self.context_request = context_request
        self.render_context = render_context
        self.module = module  # the plugin module that provided it (filled in at registration)

    def __repr__(self) -> str:
        return f"CaptureSource(name={self.name!r}, module={self.module!r})"


def _cache_path() -> str:
    return os.path.join(atocore_home(), "cache", "capture-sources.json")


def _env_key() -> list:
    key: list = [os.environ.get("ATOCORE_DISABLE_PLUGINS", "")]
    # sys.path[0] is the script's folder or the current directory: not where plugins live,
    # and keying on it would miss the cache whenever the hook runs from another folder.
    for p in sys.path[1:]:
        try:
            key.append([p, os.stat(p or ".").st_mtime_ns])
        except OSError:
            key.append([p, None])
    return key


def _module_of(pm, plugin_name: str) -> str:
    plugin = pm.get_plugin(plugin_name)
    return getattr(plugin, "__name__", "") or ""


def all_sources() -> dict[str, CaptureSource]:
    """Every registered capture source by name (loads all plugins; the slow, complete path)."""
    from ..plugins import collect_by_plugin, get_plugin_manager

    pm = get_plugin_manager()
    found: dict[str, CaptureSource] = {}
    for name, (plugin_name, src) in collect_by_plugin("register_capture_sources", pm).items():
        if not src.module:
            src.module = _module_of(pm, plugin_name)
        found[name] = src
    return found


def _write_cache(sources: dict[str, CaptureSource]) -> None:
    try:
        path = _cache_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"key": _env_key(), "sources": {n: s.module for n, s in sources.items() if s.module}}, fh)
        os.replace(tmp, path)
    except OSError:
        pass  # a cache is an optimisation only


def _from_module(module: str, name: str) -> CaptureSource | None:
    """The source ``name`` from the one plugin module the cache names, through a plugin manager
    of its own (pluggy and the hookspecs are loaded already; atocore.plugins and its logging
    are not, which keeps ~15 ms off every prompt)."""
    import importlib

    import pluggy

    from .. import hookspecs

    pm = pluggy.PluginManager("atocore")
    pm.add_hookspecs(hookspecs)
    pm.register(importlib.import_module(module), name=module)
    found: list[CaptureSource] = []
    pm.hook.register_capture_sources(register=found.append)
    for src in found:
        if src.name == name:
            src.module = src.module or module
            return src
    return None


def find_source(name: str) -> CaptureSource | None:
    """The capture source called ``name``, importing as little as possible."""
    try:
        with open(_cache_path(), encoding="utf-8") as fh:
            cached = json.load(fh)
        if cached.get("key") == json.loads(json.dumps(_env_key())):
            module = cached.get("sources", {}).get(name)
            if module:
                src = _from_module(module, name)
                if src is not None:
                    return src
    except (OSError, ValueError, ImportError, AttributeError, TypeError):
        pass
    sources = all_sources()
    _write_cache(sources)
    return sources.get(name)


def source_names() -> list[str]:
    return sorted(all_sources())
