"""Built-in plugin: Claude Code capture and automatic context.

Always registered by :mod:`atocore.plugins` (a default plugin, like llm's). Formats
follow the Claude Code hooks reference (stdin JSON fields, ``hookSpecificOutput`` output);
the transcript line format is internal to Claude Code and reverse-engineered (see
docs/capture.md), so every field is treated as optional and unknown lines are skipped.

Events handled by ``atocore hook claude-code``:

- ``UserPromptSubmit`` / ``SessionStart``: ask ``POST /context/build`` and print
  ``{"hookSpecificOutput": {"hookEventName": ..., "additionalContext": ...}}`` (<= 10,000 chars).
- ``Stop`` / ``SessionEnd``: record the last turn of the session: the person's prompt and all
  the assistant text after it (intermediate text between tool calls included), as a later
  ``atocore import`` of the transcript would, so both agree on the turn and its id.

Lines Claude Code itself puts into the conversation as user turns (a finished background
subagent's ``<task-notification>``, marked ``promptSource: "system"`` and ``origin.kind``) are
not the person's words: no context is built for them and their turn is stored with an empty
prompt and ``meta.origin`` (checked against Claude Code 2.1.332).

This module is on the hook's hot path: it imports only stdlib modules that are already loaded.
"""

from __future__ import annotations

import json
import os
import re

import atocore
from atocore.capture.sources import CaptureSource, content_text, truncate_turn

SOURCE = "claude-code"
MAX_ADDITIONAL_CONTEXT = 10_000  # Claude Code's cap for additionalContext
CONTEXT_BUDGET = 8_000  # what we ask the server for; leaves room for the wrapper
TAIL_STEPS = (256 * 1024, 4 * 1024 * 1024, 16 * 1024 * 1024)  # transcript bytes scanned from the end
MAX_LATER_TURNS = 8  # turns written after Stop's own one that last_turn looks past
TAG = "atocore-context"  # our supplement is wrapped in <atocore-context>...</atocore-context>

# Text that Claude Code or AtoCore put into user turns, which is not what the person typed.
_INJECTED = re.compile(
    r"<(atocore-context|system-reminder|relevant-memories)\b[^>]*>.*?(?:</\1>|\Z)", re.DOTALL | re.IGNORECASE
)
_COMMAND_WRAPPERS = ("<command-name>", "<command-message>", "<local-command-stdout>", "<local-command-stderr>",
                     "<bash-input>", "<bash-stdout>", "<bash-stderr>", "Caveat: The messages below were generated")
_NOT_A_PROMPT = ("[Request interrupted by user", "[Request cancelled")
# Claude Code's own notifications, delivered as user turns (UserPromptSubmit's `prompt` carries them).
_SYSTEM_PROMPT = re.compile(r"\s*<(task-notification|teammate-message|channel-message)\b")


def clean_user_text(text: str) -> str:
    return _INJECTED.sub("", text).strip()


def is_system_prompt(text: str) -> bool:
    """A prompt Claude Code generated (e.g. a background subagent's completion notice)."""
    return bool(_SYSTEM_PROMPT.match(text))


def system_origin(entry: dict) -> str | None:
    """For a transcript user line Claude Code wrote itself: what produced it (else None)."""
    origin = entry.get("origin")
    kind = origin.get("kind") if isinstance(origin, dict) else None
    if entry.get("promptSource") == "system" or (isinstance(kind, str) and kind not in ("human", "user")):
        return kind if isinstance(kind, str) else "system"
    return None


def turn_start(entry: dict) -> str | None:
    """``"person"`` or ``"system"`` for a user line that starts a turn, None for any other line."""
    if system_origin(entry) is not None and entry.get("type") == "user" and not entry.get("isSidechain"):
        return "system"
    text = user_prompt_text(entry, system=True)
    if text is None:
        return None
    return "system" if is_system_prompt(text) else "person"


def user_prompt_text(entry: dict, system: bool = False) -> str | None:
    """The typed prompt of a transcript ``user`` line, or None if the line is not one
    (``system=True``: also the text of lines Claude Code wrote as user turns)."""
    if entry.get("type") != "user" or entry.get("isMeta") or entry.get("isSidechain") or entry.get("isCompactSummary"):
        return None
    if not system and system_origin(entry) is not None:
        return None
    msg = entry.get("message")
    if not isinstance(msg, dict):
        return None
    content = msg.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
        if not parts:
            return None  # tool_result-only (or image-only) lines are not prompts
        text = "\n".join(p for p in parts if isinstance(p, str))
    else:
        return None
    stripped = text.lstrip()
    if stripped.startswith(_COMMAND_WRAPPERS) or stripped.startswith(_NOT_A_PROMPT):
        return None
    if not system and is_system_prompt(stripped):
        return None
    text = clean_user_text(text)
    return text or None


def assistant_text(entry: dict) -> str:
    if entry.get("type") != "assistant" or entry.get("isSidechain"):
        return ""
    msg = entry.get("message")
    return content_text(msg.get("content") if isinstance(msg, dict) else None)


def _parse_lines(blob: bytes) -> list[dict]:
    out = []
    for line in blob.split(b"\n"):
        if not line.strip():
            continue
        try:
            entry = json.loads(line.decode("utf-8", "replace"))
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


def last_turn(path: str, prompt_id: str | None = None) -> tuple[dict | None, str]:
    """(the user line that started the last turn, all assistant text after it up to the next
    turn), reading only the file's tail. The line is the person's prompt or a system-originated
    one (turn_start). With ``prompt_id`` (Stop's, CLI >= 2.1.196) the turn of that prompt: our
    Stop hook runs async, so the transcript may already hold the next turn (a task notification
    arrives right after a turn that started a background subagent)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        for step in TAIL_STEPS:
            start = max(0, size - step)
            fh.seek(start)
            blob = fh.read(size - start)
            if start:
                blob = blob.split(b"\n", 1)[1] if b"\n" in blob else b""  # drop the partial first line
            entries = _parse_lines(blob)
            replies: list[str] = []
            skipped = 0
            for entry in reversed(entries):
                if turn_start(entry) is not None:
                    pid = entry.get("promptId")
                    if prompt_id is None or not isinstance(pid, str) or pid == prompt_id:
                        return entry, "\n\n".join(reversed([r for r in replies if r.strip()]))
                    skipped += 1
                    if skipped > MAX_LATER_TURNS:
                        return None, ""
                    replies = []  # a later turn: not ours
                    continue
                replies.append(assistant_text(entry))
            if not start:
                break
    return None, ""


def _meta(payload: dict, entry: dict | None) -> dict:
    meta = {"event": payload.get("hook_event_name")}
    if entry and turn_start(entry) == "system":
        meta["origin"] = system_origin(entry) or "system"  # not the person's words: prompt left empty
    for key in ("cwd", "permission_mode"):
        if isinstance(payload.get(key), str):
            meta[key] = payload[key]
    if entry:
        for src, dst in (("uuid", "prompt_uuid"), ("version", "claude_code_version"), ("gitBranch", "git_branch")):
            if isinstance(entry.get(src), str):
                meta[dst] = entry[src]
        if "cwd" not in meta and isinstance(entry.get("cwd"), str):
            meta["cwd"] = entry["cwd"]
    return {k: v for k, v in meta.items() if v is not None}


def parse_hook_payload(payload: dict) -> list[dict]:
    event = payload.get("hook_event_name")
    if event not in ("Stop", "SessionEnd"):
        return []
    session = payload.get("session_id")
    if not isinstance(session, str) or not session.strip():
        raise ValueError("hook input has no session_id")
    entry, reply = None, ""
    path = payload.get("transcript_path")
    if isinstance(path, str) and path:
        path = os.path.expanduser(path)
        if os.path.isfile(path):
            entry, reply = last_turn(path, payload.get("prompt_id") if isinstance(payload.get("prompt_id"), str) else None)
    pid = payload.get("prompt_id")  # CLI >= 2.1.196: tells whether the transcript caught up
    if entry is not None and isinstance(pid, str) and isinstance(entry.get("promptId"), str) and entry["promptId"] != pid:
        entry, reply = None, ""  # the current prompt is not in the transcript yet: keep the reply alone
    last = payload.get("last_assistant_message")
    if isinstance(last, str) and last.strip() and last.strip() not in reply:
        # The transcript may lag behind the Stop event: add the final message it lacks, keeping
        # the text written earlier in the turn (between tool calls), as an import would.
        reply = f"{reply}\n\n{last}" if reply.strip() else last
    prompt = user_prompt_text(entry) if entry else ""
    prompt, reply = truncate_turn(prompt or ""), truncate_turn(reply or "")
    if not prompt.strip() and not reply.strip():
        return []
    turn = {"source": SOURCE, "session_id": session, "prompt": prompt, "response": reply,
            "meta": _meta(payload, entry)}
    if entry and isinstance(entry.get("uuid"), str) and entry["uuid"]:
        turn["id"] = "cc-" + entry["uuid"]  # Stop and SessionEnd of one turn share it: stored once
    if entry and isinstance(entry.get("timestamp"), str):
        turn["created"] = entry["timestamp"]
    return [turn]


def parse_transcript(path: str) -> list[dict]:
    """Every (prompt, reply) turn of a whole Claude Code transcript (for ``atocore import``)."""
    with open(path, "rb") as fh:
        entries = _parse_lines(fh.read())
    turns: list[dict] = []
    current: dict | None = None
    replies: list[str] = []

    def close() -> None:
        if current is None:
            return
        prompt = user_prompt_text(current) or ""
        reply = "\n\n".join(r for r in replies if r.strip())
        if not prompt.strip() and not reply.strip():
            return
        session = current.get("sessionId") or os.path.splitext(os.path.basename(path))[0]
        turn = {"source": SOURCE, "session_id": str(session), "prompt": truncate_turn(prompt),
                "response": truncate_turn(reply), "meta": _meta({"hook_event_name": "import"}, current)}
        if isinstance(current.get("uuid"), str):
            turn["id"] = "cc-" + current["uuid"]
        if isinstance(current.get("timestamp"), str):
            turn["created"] = current["timestamp"]
        turns.append(turn)

    for entry in entries:
        if turn_start(entry) is not None:
            close()
            current, replies = entry, []
        elif current is not None:
            replies.append(assistant_text(entry))
    close()
    return turns


def _project_hint(payload: dict) -> str | None:
    cwd = payload.get("cwd")
    return cwd if isinstance(cwd, str) and cwd else None


def context_request(payload: dict) -> dict | None:
    event = payload.get("hook_event_name")
    if event == "UserPromptSubmit":
        prompt = payload.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip() or is_system_prompt(prompt):
            return None  # a task notification is not a question from the person
        prompt = clean_user_text(prompt)[:4000]
    elif event == "SessionStart":
        cwd = _project_hint(payload) or ""
        # No prompt yet: ask for the project's standing facts (the server infers the project).
        prompt = f"project summary, current focus, decisions and constraints for {os.path.basename(cwd.rstrip('/'))}"
    else:
        return None
    body: dict = {"prompt": prompt, "budget_chars": CONTEXT_BUDGET}
    if _project_hint(payload):
        body["cwd"] = payload["cwd"]
    project = os.environ.get("ATOCORE_PROJECT")
    if project:
        body["project"] = project
    return body


def render_context(payload: dict, build: dict) -> str:
    context = build.get("context")
    if not isinstance(context, str) or not context.strip():
        return ""
    project = build.get("project")
    head = f"<{TAG}>\nAtoCore context supplement" + (f" (project {project})" if project else "") + \
        ": stored notes from earlier work; they may be outdated.\n"
    tail = f"\n</{TAG}>"
    room = MAX_ADDITIONAL_CONTEXT - len(head) - len(tail)
    # Our closing tag inside the text would end the block early (and confuse capture's stripping).
    body = re.sub(rf"</?{TAG}\b", lambda m: m.group(0).replace("<", "&lt;"), context.strip(), flags=re.I)
    if len(body) > room:
        cut = body.rfind("\n", 0, room - 20)
        body = body[: cut if cut > room // 2 else room - 20] + "\n[...]"
    text = head + body + tail
    return json.dumps({"hookSpecificOutput": {"hookEventName": payload.get("hook_event_name"),
                                              "additionalContext": text}}, ensure_ascii=False)


@atocore.hookimpl
def register_capture_sources(register):
    register(CaptureSource(
        name=SOURCE,
        description="Claude Code hooks (UserPromptSubmit/SessionStart context; Stop/SessionEnd capture) and transcripts",
        parse_hook_payload=parse_hook_payload,
        parse_transcript=parse_transcript,
        context_request=context_request,
        render_context=render_context,
        module=__name__,
    ))


@atocore.hookimpl
def register_commands(install, uninstall):
    from . import commands  # click and the settings editor: only when the CLI asks

    install.add_command(commands.install)
    uninstall.add_command(commands.uninstall)
