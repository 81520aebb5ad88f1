"""Built-in plugin: OpenClaw.

Two halves:

- ``openclaw-plugin/`` (beside this file) is the TypeScript plugin that OpenClaw itself loads:
  ``before_prompt_build`` asks ``POST /context/build`` and returns ``prependContext``;
  ``agent_end`` posts the finished turn to ``POST /interactions``. See its README.
- This module registers the ``openclaw`` capture source, whose ``parse_transcript`` reads
  OpenClaw (pi-coding-agent v3) session JSONL files for ``atocore import openclaw PATH...``.
  It also accepts the same turn JSON the TypeScript plugin posts on stdin
  (``atocore hook openclaw``), for operators who prefer a command hook.

Transcript format (pi ``SessionManager`` v3; OpenClaw-specific additions unverified): a
``{"type": "session", "id", "cwd", ...}`` header, then entries ``{"type": "message", "id",
"parentId", "timestamp", "message": {"role": "user"|"assistant"|"toolResult", "content": ...}}``
and others (compaction, custom, model_change, ...), which are skipped.
"""

from __future__ import annotations

import json
import os
import re

import atocore
from atocore.capture.sources import CaptureSource, content_text, truncate_turn

SOURCE = "openclaw"
_INJECTED = re.compile(r"<(atocore-context|relevant-memories)\b[^>]*>.*?(?:</\1>|\Z)", re.DOTALL | re.IGNORECASE)


def clean_user_text(text: str) -> str:
    return _INJECTED.sub("", text).strip()


def parse_transcript(path: str) -> list[dict]:
    """Every (user prompt, assistant text) turn of an OpenClaw session JSONL file."""
    session_id = os.path.splitext(os.path.basename(path))[0]
    cwd = None
    turns: list[dict] = []
    current: dict | None = None
    replies: list[str] = []

    def close() -> None:
        if current is None:
            return
        prompt = clean_user_text(content_text(current["message"].get("content")))
        reply = "\n\n".join(r for r in replies if r.strip())
        if not prompt and not reply:
            return
        turn = {"source": SOURCE, "session_id": session_id, "prompt": truncate_turn(prompt), "response": truncate_turn(reply),
                "meta": {k: v for k, v in {"cwd": cwd, "entry_id": current.get("id"), "event": "import"}.items() if v}}
        if isinstance(current.get("id"), str) and current["id"]:
            turn["id"] = "oc-" + current["id"]  # idempotent by message id
        if isinstance(current.get("timestamp"), str):
            turn["created"] = current["timestamp"]
        turns.append(turn)

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
            msg = entry.get("message")
            if entry.get("type") != "message" or not isinstance(msg, dict):
                continue
            role = msg.get("role")
            if role == "user" and clean_user_text(content_text(msg.get("content"))):
                close()
                current, replies = entry, []
            elif role == "assistant" and current is not None:
                replies.append(content_text(msg.get("content")))
    close()
    return turns


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
