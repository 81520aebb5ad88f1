"""Built-in plugin: OpenClaw.

Two halves:

- ``openclaw-plugin/`` (beside this file) is the TypeScript plugin that OpenClaw itself loads:
  ``before_prompt_build`` asks ``POST /context/build`` and returns ``prependContext``;
  ``agent_end`` posts the finished turn to ``POST /interactions``. See its README.
- This module registers the ``openclaw`` capture source, whose ``parse_transcript`` reads
  OpenClaw's session store for ``atocore import openclaw PATH...``: since 2026.9 the per-agent
  SQLite database (``~/.openclaw/agents/<agent>/agent/openclaw-agent.sqlite``, table
  ``transcript_events``), and the older / archived pi session JSONL files.
  It also accepts the same turn JSON the TypeScript plugin posts on stdin
  (``atocore hook openclaw``), for operators who prefer a command hook.

Transcript format (pi ``SessionManager`` v3/v4, checked against OpenClaw 2026.9.6): a
``{"type": "session", "id", "cwd", ...}`` header, then entries ``{"type": "message", "id",
"parentId", "timestamp", "message": {"role": "user"|"assistant"|"toolResult", "content": ...}}``
and others (compaction, custom, model_change, ...), which are skipped.
"""

from __future__ import annotations

import json
import os
import re
from typing import Iterable

import atocore
from atocore.capture.sources import CaptureSource, content_text, truncate_turn

SOURCE = "openclaw"
_INJECTED = re.compile(r"<(atocore-context|relevant-memories)\b[^>]*>.*?(?:</\1>|\Z)", re.DOTALL | re.IGNORECASE)


def clean_user_text(text: str) -> str:
    return _INJECTED.sub("", text).strip()


def _run_id(msg: dict) -> str | None:
    oc = msg.get("__openclaw")
    rid = oc.get("runId") if isinstance(oc, dict) else None
    return rid if isinstance(rid, str) and rid else None


def turns_from_entries(session_id: str, cwd: str | None, entries: Iterable[dict]) -> list[dict]:
    """Every (user prompt, assistant text) turn of one session's transcript entries (pi v3/v4).

    Ids agree with live capture (atocore-core.mjs): ``oc-run-<runId>`` for the last turn of an
    agent run (OpenClaw tags each assistant message with its run id; agent_end carries the same
    id but no entry ids), else ``oc-<entry id>``.
    """
    turns: list[dict] = []
    current: dict | None = None
    replies: list[str] = []
    run_id: str | None = None

    def close() -> None:
        if current is None:
            return
        prompt = clean_user_text(content_text(current["message"].get("content")))
        reply = "\n\n".join(r for r in replies if r.strip())
        if not prompt and not reply:
            return
        turn = {"source": SOURCE, "session_id": session_id, "prompt": truncate_turn(prompt),
                "response": truncate_turn(reply),
                "meta": {k: v for k, v in {"cwd": cwd, "entry_id": current.get("id"), "event": "import",
                                           "runId": run_id}.items() if v}}
        if isinstance(current.get("id"), str) and current["id"]:
            turn["id"] = "oc-" + current["id"]  # idempotent by message id
        if isinstance(current.get("timestamp"), str):
            turn["created"] = current["timestamp"]
        turns.append(turn)

    for entry in entries:
        msg = entry.get("message")
        if entry.get("type") != "message" or not isinstance(msg, dict):
            continue
        role = msg.get("role")
        if role == "user" and clean_user_text(content_text(msg.get("content"))):
            close()
            current, replies, run_id = entry, [], None
        elif role == "assistant" and current is not None:
            replies.append(content_text(msg.get("content")))
            run_id = run_id or _run_id(msg)
    close()
    # The run's last turn is the one agent_end reports: give it the id live capture uses.
    last_of_run: dict[str, dict] = {}
    for t in turns:
        if t["meta"].get("runId"):
            last_of_run[t["meta"]["runId"]] = t
    for rid, t in last_of_run.items():
        t["id"] = "oc-run-" + rid
    return turns


def _jsonl_entries(path: str) -> tuple[str, str | None, list[dict]]:
    session_id = os.path.splitext(os.path.basename(path))[0]
    cwd = None
    entries: list[dict] = []
    with open(path, "rb") as fh:
        for raw in fh:
            try:
                entry = json.loads(raw.decode("utf-8", "replace"))
            except ValueError:
                continue
            if not isinstance(entry, dict):
                continue
            if entry.get("type") == "session":
                if isinstance(entry.get("id"), str) and entry["id"].strip():
                    session_id = entry["id"]
                if isinstance(entry.get("cwd"), str):
                    cwd = entry["cwd"]
                continue
            entries.append(entry)
    return session_id, cwd, entries


def _zstd_decompress(blob: bytes) -> bytes:
    import zstandard  # a dependency; imported only for compressed events (the hook never needs it)

    try:
        return zstandard.ZstdDecompressor().decompress(blob, max_output_size=8 * 1024 * 1024)
    except zstandard.ZstdError as exc:
        raise ValueError(f"a compressed transcript event is unreadable: {exc}") from None


def sqlite_sessions(path: str) -> list[tuple[str, str | None, list[dict]]]:
    """(session id, cwd, entries) of every session in an OpenClaw agent database
    (``~/.openclaw/agents/<agent>/agent/openclaw-agent.sqlite``, OpenClaw >= 2026.9): table
    ``transcript_events(session_id, seq, event_json | event_zstd)``. Opened read-only, so a
    running Gateway is not disturbed."""
    import sqlite3
    from urllib.parse import quote

    db = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True, timeout=10)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "transcript_events" not in tables:
            raise ValueError("not an OpenClaw agent database (no transcript_events table)")
        sessions: dict[str, tuple[str | None, list[dict]]] = {}
        for sid, raw, packed in db.execute(
                "SELECT session_id, event_json, event_zstd FROM transcript_events ORDER BY session_id, seq"):
            if raw is None and packed is not None:
                try:
                    raw = _zstd_decompress(packed).decode("utf-8", "replace")
                except ValueError:
                    continue  # one unreadable event: the rest of the session still counts
            try:
                entry = json.loads(raw)
            except (TypeError, ValueError):
                continue
            if not isinstance(entry, dict):
                continue
            cwd, entries = sessions.setdefault(sid, (None, []))
            if entry.get("type") == "session":
                if isinstance(entry.get("cwd"), str):
                    sessions[sid] = (entry["cwd"], entries)
                continue
            entries.append(entry)
        return [(sid, cwd, entries) for sid, (cwd, entries) in sessions.items()]
    finally:
        db.close()


def is_sqlite(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(16) == b"SQLite format 3\x00"


def parse_transcript(path: str) -> list[dict]:
    """Every turn of an OpenClaw agent database (2026.9: sessions live in SQLite) or of a
    legacy / archived session JSONL file."""
    if is_sqlite(path):
        out: list[dict] = []
        for sid, cwd, entries in sqlite_sessions(path):
            out += turns_from_entries(sid, cwd, entries)
        return out
    return turns_from_entries(*_jsonl_entries(path))


def parse_hook_payload(payload: dict) -> list[dict]:
    """A turn in the shape the TypeScript plugin posts (already a POST /interactions body)."""
    if not {"session_id", "prompt", "response"} <= payload.keys():
        return []
    turn = {k: payload[k] for k in ("id", "session_id", "prompt", "response", "project", "created", "meta")
            if k in payload}
    turn["source"] = SOURCE
    return [turn]


@atocore.hookimpl
def register_capture_sources(register):
    register(CaptureSource(
        name=SOURCE,
        description="OpenClaw session transcripts (import) and agent_end turns",
        parse_hook_payload=parse_hook_payload,
        parse_transcript=parse_transcript,
        module=__name__,
    ))


@atocore.hookimpl
def register_commands(install, uninstall):
    from . import commands  # click and the settings editor: only when the CLI asks

    install.add_command(commands.install)
    uninstall.add_command(commands.uninstall)
