"""Merge AtoCore's hook entries into a Claude Code settings file, and take them out again.

Settings structure (Claude Code hooks reference): ``{"hooks": {Event: [{"matcher"?: ...,
"hooks": [{"type": "command", "command": ...}]}]}}``. Entries from all settings files merge,
so we only ever add our own matcher groups and only ever remove handlers whose command runs
``atocore hook claude-code``; everything else in the file is written back unchanged.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

MARKER = "hook claude-code"  # our handlers' command always contains this
# Every SessionStart source of Claude Code 2.1.332 (`fork`: `--fork-session`, /branch).
SESSION_START_MATCHER = "startup|resume|clear|compact|fork"
# For a settings file meant to be committed (`--project`): no path of this machine in it.
PORTABLE_COMMAND = "atocore hook claude-code"


def settings_path(project: str | None = None, user: bool = False, local: bool = False) -> Path:
    if project is not None and not user:
        name = "settings.local.json" if local else "settings.json"
        return Path(project).expanduser().resolve() / ".claude" / name
    config_dir = os.environ.get("CLAUDE_CONFIG_DIR")
    base = Path(config_dir).expanduser() if config_dir else Path.home() / ".claude"
    return base / "settings.json"


def default_command(shared: bool = False) -> str:
    """How Claude Code should start the hook.

    ``<this python> -m atocore.capture hook claude-code``: the same as ``atocore hook
    claude-code`` without click in front (~15-20 ms less CPU on every prompt), and it keeps
    working when ``atocore`` is not on the PATH Claude Code sees.
    """
    if shared:
        # .claude/settings.json is shared through git: a teammate's interpreter lives elsewhere,
        # so the hook runs `atocore` from the PATH Claude Code sees (README: install it there).
        return PORTABLE_COMMAND
    # -P: do not put the current directory (the user's project) first on sys.path, where a
    # json.py or signal.py of theirs would shadow the standard library.
    return f"{shlex.quote(sys.executable)} -P -m atocore.capture hook claude-code"


def hook_entries(command: str, url: str | None = None, capture_budget: float = 10.0) -> dict:
    prefix = f"ATOCORE_URL={shlex.quote(url)} " if url else ""
    ctx = {"type": "command", "command": prefix + command, "timeout": 5}
    # Stop runs in the background (async), so capture may take longer than the prompt path.
    cap = {"type": "command", "command": f"{prefix}ATOCORE_HOOK_TIMEOUT={capture_budget:g} {command}",
           "async": True, "timeout": 30}
    # SessionEnd hooks share a 1.5 s budget: stop at 1 s so an undelivered turn is still spooled.
    end = {"type": "command", "command": f"{prefix}ATOCORE_HOOK_TIMEOUT=1 {command}", "timeout": 5}
    return {
        "SessionStart": [{"matcher": SESSION_START_MATCHER, "hooks": [ctx]}],
        "UserPromptSubmit": [{"hooks": [dict(ctx)]}],
        "Stop": [{"hooks": [cap]}],
        "SessionEnd": [{"hooks": [end]}],
    }


def _load(path: Path) -> dict:
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); fix it first, nothing was changed") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object; nothing was changed")
    return data


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".atocore-tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _is_ours(handler: object) -> bool:
    return isinstance(handler, dict) and MARKER in str(handler.get("command", ""))


def remove_ours(hooks: dict) -> int:
    """Drop our handlers from a ``hooks`` mapping in place; return how many were removed."""
    removed = 0
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        kept_groups = []
        for group in groups:
            if isinstance(group, dict) and isinstance(group.get("hooks"), list):
                kept = [h for h in group["hooks"] if not _is_ours(h)]
                removed += len(group["hooks"]) - len(kept)
                if not kept:
                    continue
                group = {**group, "hooks": kept}
            kept_groups.append(group)
        if kept_groups:
            hooks[event] = kept_groups
        else:
            del hooks[event]
    return removed


def install(path: Path, command: str | None = None, url: str | None = None, shared: bool = False) -> dict:
    data = _load(path)
    hooks = data.get("hooks")
    if hooks is None:
        hooks = data["hooks"] = {}
    if not isinstance(hooks, dict):
        raise ValueError(f"{path}: 'hooks' must be an object; nothing was changed")
    replaced = remove_ours(hooks)
    for event, groups in hook_entries(command or default_command(shared), url).items():
        hooks.setdefault(event, [])
        if not isinstance(hooks[event], list):
            raise ValueError(f"{path}: hooks.{event} must be a list; nothing was changed")
        hooks[event].extend(groups)
    _write(path, data)
    return {"settings": str(path), "events": sorted(hook_entries("x")), "replaced": replaced}


def uninstall(path: Path) -> dict:
    data = _load(path)
    hooks = data.get("hooks")
    removed = 0
    if isinstance(hooks, dict):
        removed = remove_ours(hooks)
        if not hooks:
            del data["hooks"]
        if removed:
            _write(path, data)
    return {"settings": str(path), "removed": removed}
