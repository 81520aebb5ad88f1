"""The Claude Code integration against payloads recorded from the real Claude Code 2.1.332
(tests/data/claude-code-2.1.332/README.md says how): hook events and the session transcript."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from atocore.default_plugins.claude_code import context_request, parse_hook_payload, parse_transcript
from atocore.default_plugins.claude_code.install import hook_entries
from tests.conftest import REPO_ROOT, run_cli

DATA = Path(__file__).parent / "data" / "claude-code-2.1.332"
PLUGIN = REPO_ROOT / "atocore" / "default_plugins" / "claude_code"


@pytest.fixture
def recorded(tmp_path):
    """(hook events with transcript_path pointing at a copy of the recorded transcript, that path)."""
    transcript = tmp_path / "session.jsonl"
    shutil.copy(DATA / "session.jsonl", transcript)
    events = []
    for line in (DATA / "hook-events.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["session_id"].startswith("ce00f960"):
            e["transcript_path"] = str(transcript)
        events.append(e)
    return events, transcript


def event(events, name, **match):
    return [e for e in events if e["hook_event_name"] == name and all(e.get(k) == v for k, v in match.items())]


def test_task_notification_is_not_a_prompt_and_gets_no_context(recorded):
    events, _ = recorded
    [note] = [e for e in event(events, "UserPromptSubmit") if e["prompt"].startswith("<task-notification>")]
    assert context_request(note) is None  # before: a supplement was built for the XML
    [person] = event(events, "UserPromptSubmit", prompt="please check the build")
    assert context_request(person)["prompt"] == "please check the build"


def test_stop_after_a_task_notification_stores_no_prompt(recorded):
    events, _ = recorded
    [note] = [e for e in event(events, "UserPromptSubmit") if e["prompt"].startswith("<task-notification>")]
    [stop] = event(events, "Stop", prompt_id=note["prompt_id"])
    [turn] = parse_hook_payload(stop)
    assert turn["prompt"] == ""  # before: the <task-notification> XML, stored as the person's words
    assert turn["response"] == "The helper says 3 files."
    assert turn["meta"]["origin"] == "task-notification"
    # the person's own turn before it keeps its prompt
    [delegate] = event(events, "Stop", prompt_id=event(events, "UserPromptSubmit", prompt="delegate the counting")[0]["prompt_id"])
    [t2] = parse_hook_payload(delegate)
    assert t2["prompt"] == "delegate the counting" and "task-notification" not in json.dumps(t2)


def test_stop_keeps_the_text_written_between_tool_calls(recorded):
    events, _ = recorded
    [first] = event(events, "Stop", prompt_id=event(events, "UserPromptSubmit", prompt="please check the build")[0]["prompt_id"])
    assert first["last_assistant_message"] == "All done: the build is fine."
    [turn] = parse_hook_payload(first)
    # before: only last_assistant_message; "Let me check." was lost
    assert turn["response"] == "Let me check.\n\nAll done: the build is fine."


def test_stop_adds_the_final_message_when_the_transcript_lags(recorded, tmp_path):
    events, transcript = recorded
    [first] = event(events, "Stop", prompt_id=event(events, "UserPromptSubmit", prompt="please check the build")[0]["prompt_id"])
    lines = transcript.read_text().splitlines()
    cut = next(i for i, ln in enumerate(lines) if "All done: the build is fine." in ln)
    transcript.write_text("\n".join(lines[:cut]) + "\n")  # the final message not written yet
    [turn] = parse_hook_payload(first)
    assert turn["response"] == "Let me check.\n\nAll done: the build is fine."


def test_import_of_the_transcript_agrees_with_live_capture(recorded):
    events, transcript = recorded
    live = {}
    for stop in event(events, "Stop"):
        if stop["session_id"].startswith("ce00f960"):
            for t in parse_hook_payload(stop):
                live[t["id"]] = t
    imported = {t["id"]: t for t in parse_transcript(str(transcript))}
    assert set(live) <= set(imported)
    for tid, t in live.items():
        assert (imported[tid]["prompt"], imported[tid]["response"]) == (t["prompt"], t["response"])
    assert not any("<task-notification>" in t["prompt"] for t in imported.values())
    assert not any("/compact" in t["prompt"] or "compact" == t["prompt"] for t in imported.values())


def test_session_start_matches_every_source_claude_code_sends(recorded):
    events, _ = recorded
    sources = {e["source"] for e in event(events, "SessionStart")}
    assert {"startup", "resume", "compact", "fork"} <= sources
    settings_matcher = hook_entries("atocore hook claude-code")["SessionStart"][0]["matcher"].split("|")
    plugin = json.loads((PLUGIN / "claude-plugin" / "hooks" / "hooks.json").read_text())
    plugin_matcher = plugin["hooks"]["SessionStart"][0]["matcher"].split("|")
    for source in sources:  # before: fork was missing from both
        assert source in settings_matcher and source in plugin_matcher


def test_project_install_writes_no_path_of_this_machine(tmp_path):
    project = tmp_path / "repo"
    project.mkdir()
    run_cli("install", "claude-code", "--project", str(project))
    text = (project / ".claude" / "settings.json").read_text()
    commands = [h["command"] for groups in json.loads(text)["hooks"].values() for g in groups for h in g["hooks"]]
    assert commands and all(c.endswith("atocore hook claude-code") for c in commands)
    assert str(Path.home()) not in text and "/bin/python" not in text and str(REPO_ROOT) not in text
    # settings.local.json is not shared: there the exact interpreter is kept (works without PATH)
    run_cli("install", "claude-code", "--project", str(project), "--local")
    local = (project / ".claude" / "settings.local.json").read_text()
    assert "-m atocore.capture hook claude-code" in local


def test_plugin_skill_uses_the_plugin_url_and_needs_no_store():
    skill = (PLUGIN / "claude-plugin" / "skills" / "atocore-recall" / "SKILL.md").read_text()
    assert "${user_config.atocore_url}/search" in skill
    assert "atocore search" not in skill and "ATOCORE_URL" not in skill
    market = json.loads((PLUGIN / ".claude-plugin" / "marketplace.json").read_text())
    [entry] = market["plugins"]
    assert market["name"] == "atocore" and entry["name"] == "atocore"
    assert (PLUGIN / entry["source"] / ".claude-plugin" / "plugin.json").is_file()
    printed = run_cli("install", "claude-code", "--print-dir").stdout.strip()
    assert Path(printed) == PLUGIN.resolve()
