"""AtoCore with the real OpenClaw (`openclaw agent --local`), installed by the README's own
commands, OpenClaw's built-in memory left in place. A fake model API records what reached the
model; a real `atocore serve` with a temporary store answers, then goes away.

OpenClaw needs ~1 minute per turn on a small CI machine, so one test walks the whole story:
install, context prepended, MCP tool, capture, import from the SQLite session store (the same
turn is not stored twice), then a turn with AtoCore down.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.e2e.conftest import REPO, SECRET, STATE_FACT, _tool, base_env
from tests.e2e.fake_anthropic import text, tool_use
from tests.e2e.test_claude_code import readme_command, sh
from tests.fixtures_capture import atocore_serve, store_turns, wait_for

pytestmark = pytest.mark.e2e

MCP_DOC = (REPO / "docs" / "mcp.md").read_text()
TURN_TIMEOUT = 400  # seconds; a turn takes 30-130 s on 2 busy cores


def openclaw_home(tmp_path, api, workspace):
    exe = _tool("openclaw", "openclaw")
    home = tmp_path / "home"
    (home / ".openclaw").mkdir(parents=True)
    env = base_env(home, api)
    env["PATH"] = f"{exe.parent}:{env['PATH']}"
    # The model: an Anthropic-Messages provider at the fake API (loopback needs allowPrivateNetwork).
    cfg = {"agents": {"defaults": {"model": {"primary": "fake/claude-test"}, "workspace": str(workspace)}},
           "models": {"mode": "merge", "providers": {"fake": {
               "baseUrl": api.url, "apiKey": "sk-fake-e2e", "api": "anthropic-messages",
               "request": {"allowPrivateNetwork": True}, "models": [{"id": "claude-test", "name": "Fake"}]}}}}
    (home / ".openclaw" / "openclaw.json").write_text(json.dumps(cfg))
    return home, env


def turn(env, cwd, message: str) -> dict:
    p = subprocess.run(["openclaw", "agent", "--local", "--agent", "main", "--message", message, "--json"],
                       env=env, cwd=cwd, capture_output=True, text=True, timeout=TURN_TIMEOUT)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return json.loads(p.stdout[p.stdout.index("{"):])


def test_openclaw_end_to_end(tmp_path, api, seeded):
    store_path, project = seeded
    home, env = openclaw_home(tmp_path, api, project)
    env["ATOCORE_STORE"] = str(store_path)
    db = home / ".openclaw" / "agents" / "main" / "agent" / "openclaw-agent.sqlite"

    with atocore_serve(store_path) as srv:
        env["ATOCORE_URL"] = srv.url
        sh(readme_command('openclaw plugins install "$(atocore install openclaw --print-dir)" '
                          '--force --accept-capabilities'), env, home, timeout=180)
        sh(readme_command('openclaw config set plugins.entries.atocore "{\\"config\\": {\\"url\\": \\"$ATOCORE_URL\\"}, '
                          '\\"hooks\\": {\\"allowConversationAccess\\": true}}" --strict-json --merge'), env, home,
           timeout=180)
        sh(readme_command('openclaw mcp add atocore --url "$ATOCORE_URL/mcp" --transport streamable-http'),
           env, home, timeout=180)
        config = json.loads((home / ".openclaw" / "openclaw.json").read_text())
        assert config.get("plugins", {}).get("slots", {}).get("memory") in (None, "memory-core")

        # The model looks for AtoCore's MCP tool through OpenClaw's Tool Search, calls it, answers.
        api.on(lambda r: "pitch lap" in r.all_text() and not r.tool_results(),
               tool_use("tool_search", {"query": "atocore project state"}))
        api.on(lambda r: len(r.tool_results()) == 1,
               tool_use("tool_call", {"id": "atocore__project_state", "args": {"project": "p04"}}))
        api.on(lambda r: len(r.tool_results()) == 2, text("The lap is 300 mm."))
        out = turn(env, project, f"what size is the pitch lap? my key is {SECRET}")
        assert "The lap is 300 mm." in json.dumps(out)

        first = api.requests[0]
        sent = first.all_text()
        assert "<atocore-context>" in sent and STATE_FACT in sent  # prepended to the prompt
        assert "memory_search" in json.dumps(first.body)  # OpenClaw's own memory is still there
        mcp_text = json.dumps(api.requests[-1].tool_results()[-1])
        assert "Trusted state of project p04" in mcp_text and "atocore/payload" not in mcp_text

        turns = wait_for(lambda: [t for t in store_turns(_open(store_path)) if t["source"] == "openclaw"], timeout=30)
        assert len(turns) == 1, turns
        [live] = turns
        assert live["prompt"].startswith("what size is the pitch lap?") and "The lap is 300 mm." in live["response"]
        assert live["id"].startswith("oc-run-") and SECRET not in json.dumps(store_turns(_open(store_path)))

        # Import from OpenClaw's SQLite session store: the live turn is recognised, not stored again.
        assert db.is_file()
        imp = sh(readme_command("atocore import openclaw ~/.openclaw/agents/main/agent/openclaw-agent.sqlite"),
                 env, home).stdout
        assert "0 new turn(s), 1 already stored" in imp, imp
        assert len([t for t in store_turns(_open(store_path)) if t["source"] == "openclaw"]) == 1

    # AtoCore down: OpenClaw answers as usual, without a supplement.
    api.requests.clear()
    out = turn(env, project, "and the polishing slurry?")
    assert api.default_text in json.dumps(out)
    assert api.requests and "<atocore-context>" not in api.requests[0].all_text().split("and the polishing slurry?")[-1]
    assert "and the polishing slurry?" in api.requests[0].all_text()


def _open(path):
    from atocore.store import open_store

    return open_store(path)
