"""AtoCore with the real Claude Code (`claude -p`), installed both ways the README says:
settings hooks (`atocore install claude-code --user`) and the plugin marketplace. A fake model
API records what reached the model; a real `atocore serve` with a temporary store answers."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.e2e.conftest import REPO, SECRET, STATE_FACT, hook_log, wait_file
from tests.e2e.fake_anthropic import text, tool_use
from tests.fixtures_capture import wait_for

pytestmark = pytest.mark.e2e

SUPPLEMENT = "AtoCore context supplement"
README = (REPO / "README.md").read_text()
MCP_DOC = (REPO / "docs" / "mcp.md").read_text()


def sh(cmd: str, env: dict, cwd, timeout: float = 120) -> subprocess.CompletedProcess:
    """A README command, run by bash exactly as written there."""
    p = subprocess.run(["bash", "-c", cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{cmd}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
    return p


def readme_command(cmd: str, doc: str = README) -> str:
    assert cmd in doc, f"the docs no longer show: {cmd}"
    return cmd


def install_settings(claude, url: str) -> None:
    claude.env["ATOCORE_URL"] = url
    sh(readme_command("atocore install claude-code --user"), claude.env, claude.home)


def install_plugin(claude, url: str) -> None:
    claude.env["ATOCORE_URL"] = url  # the plugin's option is set below; this one is for `atocore`
    sh(readme_command('claude plugin marketplace add "$(atocore install claude-code --print-dir)"'),
       claude.env, claude.home)
    sh(readme_command("claude plugin install atocore@atocore --config atocore_url=$ATOCORE_URL"),
       claude.env, claude.home)
    del claude.env["ATOCORE_URL"]  # hooks must get the URL from the plugin option alone


def transcript_attachments(path, event: str) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        e = json.loads(line)
        a = e.get("attachment") if e.get("type") == "attachment" else None
        if isinstance(a, dict) and a.get("hookEvent") == event and a.get("type") == "hook_additional_context":
            out.append(json.dumps(a.get("content")))
    return out


def script_tool_turn(api) -> None:
    api.on("pitch lap", text("Let me check."), tool_use("Bash", {"command": "echo built-ok", "description": "say ok"}))
    api.on(lambda r: "built-ok" in json.dumps(r.messages[-1:]), text("All done: the lap is 300 mm."))


@pytest.mark.parametrize("way", ["settings", "plugin"])
def test_context_capture_and_tool_use(way, claude, api, atocore):
    (install_settings if way == "settings" else install_plugin)(claude, atocore.url)
    script_tool_turn(api)
    res = claude.prompt(f"what size is the pitch lap? my key is {SECRET}", atocore.project_dir)
    assert res["result"] == "All done: the lap is 300 mm." and not res["is_error"]

    # SessionStart and UserPromptSubmit context both reached the model with the trusted state
    first = api.wait_for(lambda r: "pitch lap" in r.last_user_text())
    sent = first.all_text()
    assert sent.count(SUPPLEMENT) >= 2 and STATE_FACT in sent
    [transcript] = claude.transcripts()
    assert transcript_attachments(transcript, "SessionStart") and transcript_attachments(transcript, "UserPromptSubmit")
    assert "built-ok" in json.dumps(api.requests[-1].tool_results())  # the tool ran and its result came back

    # Stop (async) and SessionEnd captured the turn once, with all its text and the key redacted
    turns = atocore.wait_turns(lambda t: "pitch lap" in t["prompt"])
    assert len(turns) == 1, turns
    [turn] = turns
    assert turn["response"] == "Let me check.\n\nAll done: the lap is 300 mm."
    assert SECRET not in json.dumps(atocore.turns()) and turn["project"] == "p04"
    assert turn["id"].startswith("cc-") and turn["source"] == "claude-code"


def test_background_subagent_notification_is_not_a_prompt(claude, api, atocore):
    install_settings(claude, atocore.url)
    api.on("delegate the counting", tool_use("Agent", {"description": "count files", "prompt": "SUBTASK count the files",
                                                       "subagent_type": "general-purpose", "run_in_background": True}))
    api.on("SUBTASK", text("subagent found 3 files"))
    api.on(lambda r: "Async agent launched" in json.dumps(r.messages[-1:]), text("Started a helper."))
    api.on("<task-notification>", text("The helper says 3 files."))
    res = claude.prompt("delegate the counting", atocore.project_dir)
    assert not res["is_error"]
    note = api.wait_for(lambda r: "<task-notification>" in r.last_user_text())
    assert note is not None, "Claude Code no longer delivers the subagent's completion as a user turn"
    assert SUPPLEMENT not in json.dumps(note.messages[-1])  # no context built for the notification
    turns = atocore.wait_turns(lambda t: t["meta"].get("origin") == "task-notification")
    assert turns and turns[0]["prompt"] == "" and turns[0]["response"] == "The helper says 3 files."
    assert atocore.wait_turns(lambda t: t["prompt"] == "delegate the counting")
    assert not any("task-notification" in t["prompt"] for t in atocore.turns())


def test_compact_and_fork_get_starting_context(claude, api, atocore):
    install_settings(claude, atocore.url)
    sid = claude.prompt("first question about the pitch lap", atocore.project_dir)["session_id"]
    api.on(lambda r: "summary" in r.last_user_text().lower(), text("<summary>talked about the lap</summary>"))
    claude("-p", "/compact", "--resume", sid, "--output-format", "json", cwd=atocore.project_dir)
    [transcript] = claude.transcripts()
    assert any("atocore-context" in a for a in transcript_attachments(transcript, "SessionStart")[1:]), \
        "no AtoCore context after /compact"
    forked = claude.prompt("a question after the fork", atocore.project_dir, "--resume", sid, "--fork-session")
    assert forked["session_id"] != sid
    fork_file = next(p for p in claude.transcripts() if forked["session_id"] in p.name)
    assert any("atocore-context" in a for a in transcript_attachments(fork_file, "SessionStart")), \
        "no SessionStart context in the forked session"
    req = api.wait_for(lambda r: "a question after the fork" in r.last_user_text())
    assert STATE_FACT in req.all_text()


def test_server_down_fails_open(claude, api, atocore_down):
    install_settings(claude, atocore_down.url)
    res = claude.prompt("is the pitch lap ready?", atocore_down.project_dir)
    assert res["result"] == api.default_text and not res["is_error"]
    assert SUPPLEMENT not in api.requests[-1].all_text()
    spool = claude.home / ".atocore" / "spool" / "claude-code.jsonl"
    assert wait_file(spool), hook_log(claude.home)  # the turn is kept for later delivery
    assert "is the pitch lap ready?" in spool.read_text()
    assert "unreachable" in hook_log(claude.home)


def test_mcp_tools_reach_the_model_as_text(claude, api, atocore):
    claude.env["ATOCORE_STORE"] = str(atocore.store_path)
    claude.env["ATOCORE_URL"] = atocore.url
    sh(readme_command('claude mcp add atocore --scope user -e ATOCORE_URL="$ATOCORE_URL" '
                      '-e ATOCORE_STORE="$ATOCORE_STORE" -- atocore mcp', MCP_DOC), claude.env, claude.home)
    sh(readme_command('claude mcp add --scope user --transport http atocore-http "$ATOCORE_URL/mcp"', MCP_DOC),
       claude.env, claude.home)
    api.on("state of p04", tool_use("mcp__atocore__project_state", {"project": "p04"}))
    api.on(lambda r: len(r.tool_results()) == 1, tool_use("mcp__atocore-http__search", {"query": "pitch lap", "k": 3}))
    api.on(lambda r: len(r.tool_results()) == 2, text("The lap is 300 mm."))
    res = claude.prompt("what is the trusted state of p04?", atocore.project_dir,
                        "--allowedTools", "mcp__atocore__project_state,mcp__atocore-http__search")
    assert res["result"] == "The lap is 300 mm.", res
    stdio_result, http_result = api.requests[-1].tool_results()
    stdio_text = json.dumps(stdio_result)
    assert "Trusted state of project p04" in stdio_text and "state/p04.yaml#lap" in stdio_text
    assert '\\"entries\\"' not in stdio_text and "atocore/payload" not in stdio_text  # text, not the JSON copy
    assert "result(s) for 'pitch lap'" in json.dumps(http_result)


def test_plugin_skill_points_at_the_configured_server(claude, api, atocore):
    market = REPO / "atocore" / "default_plugins" / "claude_code"
    for folder in (market, market / "claude-plugin"):  # the marketplace and the plugin itself
        out = claude("plugin", "validate", "--strict", str(folder), cwd=claude.home).stdout
        assert "Validation passed" in out, out
    install_plugin(claude, atocore.url)
    api.on("look it up", tool_use("Skill", {"skill": "atocore:atocore-recall"}))
    api.on(lambda r: r.tool_results(), text("Looked."))
    claude.prompt("look it up in atocore", atocore.project_dir)
    skill = json.dumps(api.requests[-1].messages[-3:])
    assert f"{atocore.url}/search" in skill, skill[:3000]  # ${user_config.atocore_url} substituted
    assert "atocore search" not in skill
    assert wait_for(lambda: atocore.turns(), timeout=30)  # the plugin's hooks captured the turn too
