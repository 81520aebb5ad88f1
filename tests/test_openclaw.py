"""OpenClaw: importing session transcripts, the plugin files, and the HTTP contract the plugin uses.

Transcripts are composed per the pi-coding-agent v3 session format that OpenClaw documents
(research notes B.4). The plugin's logic (atocore-core.mjs) is run with Node against a real
`atocore serve`, when Node is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from atocore.store import init_store, open_store
from tests.conftest import run_cli
from tests.fixtures_capture import atocore_serve, store_turns, wait_for

PLUGIN = Path(__file__).resolve().parents[1] / "atocore" / "default_plugins" / "openclaw" / "openclaw-plugin"
SESSION = "3b0e9d7c-1f2a-4b5c-8d9e-0f1a2b3c4d5e"


def oc_session(path: Path, session: str = SESSION, extra: list[dict] | None = None) -> Path:
    def msg(eid, parent, ts, message):
        return {"type": "message", "id": eid, "parentId": parent, "timestamp": f"2026-08-01T09:00:{ts:02d}.000Z",
                "message": message}

    lines = [
        {"type": "session", "version": 3, "id": session, "timestamp": "2026-08-01T09:00:00.000Z",
         "cwd": "/home/dev/.openclaw/workspace"},
        {"type": "model_change", "id": "0a0b0c0d", "parentId": None, "timestamp": "2026-08-01T09:00:01.000Z",
         "provider": "anthropic", "modelId": "claude-test"},
        msg("1a2b3c4d", "0a0b0c0d", 5, {"role": "user", "content": "remind me what we decided about backups",
                                        "timestamp": 1785574805000}),
        msg("5e6f7a8b", "1a2b3c4d", 7, {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "search memory"},
            {"type": "toolCall", "id": "call_1", "name": "memory_search", "arguments": {"query": "backup decision"}}],
            "provider": "anthropic", "model": "claude-test", "stopReason": "toolUse", "timestamp": 1785574807000}),
        msg("9c0d1e2f", "5e6f7a8b", 8, {"role": "toolResult", "toolCallId": "call_1", "toolName": "memory_search",
                                        "content": [{"type": "text", "text": "memory/2026-07-30.md#L4-L9: nightly restic to NAS"}],
                                        "isError": False, "timestamp": 1785574808000}),
        msg("aa11bb22", "9c0d1e2f", 9, {"role": "assistant", "content": [
            {"type": "text", "text": "We decided on nightly restic backups to the NAS."}],
            "provider": "anthropic", "model": "claude-test", "stopReason": "stop", "timestamp": 1785574809000}),
        {"type": "compaction", "id": "cc00dd11", "parentId": "aa11bb22", "timestamp": "2026-08-01T09:00:10.000Z",
         "summary": "talked about backups", "firstKeptEntryId": "aa11bb22", "tokensBefore": 1200},
        msg("c3d4e5f6", "cc00dd11", 11, {"role": "user", "content": [
            {"type": "text", "text": "<atocore-context>\nold supplement\n</atocore-context>\nand the retention?"}]}),
        msg("d4e5f6a7", "c3d4e5f6", 12, {"role": "assistant", "content": [
            {"type": "text", "text": "Keep 14 daily and 8 weekly snapshots."}]}),
        {"type": "custom", "id": "ee22ff33", "parentId": "d4e5f6a7", "customType": "x", "data": {}},
    ] + (extra or [])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_import_is_idempotent_by_message_id(tmp_path, store):
    f = oc_session(tmp_path / "sessions" / f"{SESSION}.jsonl")
    out = json.loads(run_cli("import", "openclaw", str(f), "--json", store=store).stdout)
    assert out["created"] == 2 and out["existing"] == 0
    s = open_store(store.path)
    turns = store_turns(s)
    assert [t["id"] for t in turns] == ["oc-1a2b3c4d", "oc-c3d4e5f6"]
    first, second = turns
    assert first["source"] == "openclaw" and first["session_id"] == SESSION
    assert first["prompt"] == "remind me what we decided about backups"
    assert first["response"] == "We decided on nightly restic backups to the NAS."  # tool calls/results skipped
    assert first["created"] == "2026-08-01T09:00:05.000Z"
    assert second["prompt"] == "and the retention?"  # our injected supplement stripped
    head = s.head()
    out = json.loads(run_cli("import", "openclaw", str(f), "--json", store=store).stdout)
    assert out["created"] == 0 and out["existing"] == 2
    assert open_store(store.path).head() == head
    # a session that grew: only the new turn is added
    grown = oc_session(f, extra=[
        {"type": "message", "id": "f0f1f2f3", "parentId": "ee22ff33", "timestamp": "2026-08-01T09:01:00.000Z",
         "message": {"role": "user", "content": "thanks"}}])
    out = json.loads(run_cli("import", "openclaw", str(grown), "--json", store=store).stdout)
    assert out["created"] == 1 and out["existing"] == 2


def test_import_survives_bad_lines_and_redacts(tmp_path, store):
    f = tmp_path / "bad.jsonl"
    f.write_bytes(b"\xff\xfe garbage\n[]\n{\"type\": \"message\", \"message\": 3}\n" + json.dumps(
        {"type": "message", "id": "abcd0001", "parentId": None, "timestamp": "2026-08-01T09:00:00Z",
         "message": {"role": "user", "content": "my key is AKIAQ3EGVBMPLKJX7Y2Z"}}).encode() + b"\n")
    out = json.loads(run_cli("import", "openclaw", str(f), "--json", store=store).stdout)
    assert out["created"] == 1
    [turn] = store_turns(open_store(store.path))
    assert turn["session_id"] == "bad" and "AKIA" not in turn["prompt"]


def test_import_unknown_source_is_a_clear_error(tmp_path, store):
    f = oc_session(tmp_path / "x.jsonl")
    p = run_cli("import", "nope", str(f), store=store, check=False)
    assert p.returncode != 0 and "not a capture source" in p.stderr and "openclaw" in p.stderr


def test_plugin_files_are_well_formed():
    pkg = json.loads((PLUGIN / "package.json").read_text())
    # `openclaw plugins install <folder>` loads runtime JavaScript: a .ts entry is refused (2026.9.6)
    assert pkg["openclaw"]["extensions"] == ["./index.js"] and (PLUGIN / "index.js").is_file()
    assert not list(PLUGIN.glob("*.ts")) and set(pkg["files"]) <= {p.name for p in PLUGIN.iterdir()}
    manifest = json.loads((PLUGIN / "openclaw.plugin.json").read_text())
    assert manifest["id"] == "atocore" and manifest["configSchema"]["type"] == "object"
    # No exclusive slot: `kind: "memory"` would replace OpenClaw's own memory, or stay disabled
    # while memory-core holds the slot. AtoCore is a supplement beside it.
    assert "kind" not in manifest and manifest["activation"]["onStartup"] is True
    skill = (PLUGIN / "skills" / "atocore-recall" / "SKILL.md").read_text()
    assert skill.startswith("---\nname: atocore-recall\ndescription: ")
    index = (PLUGIN / "index.js").read_text()
    for needle in ('"before_prompt_build"', '"agent_end"', "./atocore-core.mjs"):
        assert needle in index
    assert "kind:" not in index  # the runtime-entry kind is deprecated too


NODE = shutil.which("node")

DRIVER = r"""
import * as core from "./atocore-core.mjs";
const [url, step] = process.argv.slice(2);
const cfg = core.resolveConfig({ url, timeoutMs: 3000, captureTimeoutMs: 5000 });
const logs = [];
const log = (m) => logs.push(m);
let out;
if (step === "recall") {
  out = await core.beforePromptBuild(cfg, { prompt: "what did we decide about the NAS backups?", messages: [] },
                                      { workspaceDir: "/home/dev/ws", sessionId: "oc-live" }, log);
} else if (step === "capture") {
  const messages = [
    { role: "user", content: "old question" }, { role: "assistant", content: [{ type: "text", text: "old answer" }] },
    { role: "user", content: [{ type: "text", text: "<atocore-context>x</atocore-context>\nhow long do restic snapshots stay?" }] },
    { role: "assistant", content: [{ type: "toolCall", id: "c1", name: "memory_search", arguments: {} }] },
    { role: "toolResult", toolCallId: "c1", content: [{ type: "text", text: "..." }] },
    { role: "assistant", content: [{ type: "text", text: "Restic snapshots stay 14 days." }] },
  ];
  out = await core.agentEnd(cfg, { success: true, messages, durationMs: 10 },
                            { sessionId: "oc-live", agentId: "main", workspaceDir: "/home/dev/ws" }, log);
} else if (step === "failed-run") {
  out = await core.agentEnd(cfg, { success: false, messages: [{ role: "user", content: "x" }] }, {}, log);
}
console.log(JSON.stringify({ out: out ?? null, logs }));
"""


def run_node(step: str, url: str, tmp_path: Path) -> dict:
    work = tmp_path / "openclaw-plugin"
    if not work.exists():
        shutil.copytree(PLUGIN, work)  # the driver imports the module exactly as index.js does
    driver = work / "driver.mjs"
    driver.write_text(DRIVER)
    p = subprocess.run([NODE, str(driver), url, step], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_plugin_logic_against_a_real_server(tmp_path, model_path):
    s, _ = init_store(tmp_path / "store")
    from atocore.memories import add_memory

    add_memory(s, "Backups: nightly restic to the NAS, keeping 14 daily and 8 weekly snapshots.", "knowledge")
    env = {k: v for k, v in os.environ.items() if k not in ("ATOCORE_STORE", "ATOCORE_URL", "ATOCORE_TOKEN")}
    env.update({"ATOCORE_EMBED_MODEL": model_path, "HF_HUB_OFFLINE": "1"})
    with atocore_serve(s.path, env=env) as srv:
        recall = run_node("recall", srv.url, tmp_path)
        ctx = recall["out"]["prependContext"]
        assert ctx.startswith("<atocore-context>") and ctx.rstrip().endswith("</atocore-context>")
        assert "nightly restic" in ctx
        captured = run_node("capture", srv.url, tmp_path)
        assert captured["out"]["created"] is True, captured
        turns = [t for t in store_turns(open_store(s.path)) if t["source"] == "openclaw"]
        assert len(turns) == 1
        assert turns[0]["prompt"] == "how long do restic snapshots stay?"
        assert turns[0]["response"] == "Restic snapshots stay 14 days."
        assert turns[0]["session_id"] == "oc-live" and turns[0]["meta"]["agentId"] == "main"
        again = run_node("capture", srv.url, tmp_path)
        assert again["out"]["created"] is False  # the same turn twice is stored once
        assert run_node("failed-run", srv.url, tmp_path)["out"] is None
    # server gone: both hooks fail open quickly and say why in the log
    down = run_node("recall", srv.url, tmp_path)
    assert down["out"] is None and down["logs"]
    assert run_node("capture", srv.url, tmp_path)["out"] is None


def test_openclaw_hook_command_accepts_the_plugin_turn_shape(tmp_path, store):
    from tests.fixtures_capture import run_hook

    body = {"session_id": "oc-cmd", "prompt": "hi there", "response": "hello", "meta": {"agentId": "main"}}
    env = {"ATOCORE_HOME": str(tmp_path / "home"), "ATOCORE_STORE": str(store.path),
           "ATOCORE_URL": "http://127.0.0.1:9", "ATOCORE_HOOK_TIMEOUT": "5"}
    p = run_hook(body, env, source="openclaw")
    assert p.returncode == 0 and p.stdout == b""
    assert wait_for(lambda: store_turns(open_store(store.path)))[0]["source"] == "openclaw"


# ----------------------------------------------------------------------------- recorded from OpenClaw 2026.9.6

DATA = Path(__file__).parent / "data" / "openclaw-2026.9.6"


def recorded_db(path: Path) -> Path:
    """An OpenClaw agent database holding the recorded transcript_events table."""
    import sqlite3

    rec = json.loads((DATA / "transcript_events.json").read_text())
    db = sqlite3.connect(path)
    try:
        db.execute(rec["schema"])
    except sqlite3.OperationalError:  # an older SQLite than Node's lacks octet_length(): same columns
        db.execute("CREATE TABLE transcript_events (session_id TEXT NOT NULL, seq INTEGER NOT NULL, event_json TEXT, "
                   "created_at INTEGER NOT NULL, event_zstd BLOB, event_utf8_bytes INTEGER, navigation_json TEXT, "
                   "PRIMARY KEY (session_id, seq)) STRICT")
    db.executemany("INSERT INTO transcript_events (session_id, seq, event_json, created_at) VALUES (?, ?, ?, ?)",
                   [(r["session_id"], r["seq"], r["event_json"], r["created_at"]) for r in rec["rows"]])
    db.commit()
    db.close()
    return path


def recorded_hooks() -> dict:
    return {e["hook"]: e for e in map(json.loads, (DATA / "hook-events.jsonl").read_text().splitlines())}


def test_import_reads_the_sqlite_session_store(tmp_path, store):
    db = recorded_db(tmp_path / "openclaw-agent.sqlite")
    out = json.loads(run_cli("import", "openclaw", str(db), "--json", store=store).stdout)
    assert out["created"] == 1 and not out["problems"], out  # before: no turns found at all
    [turn] = store_turns(open_store(store.path))
    run_id = recorded_hooks()["agent_end"]["event"]["runId"]
    assert turn["id"] == f"oc-run-{run_id}" and turn["session_id"] == recorded_hooks()["agent_end"]["ctx"]["sessionId"]
    assert turn["prompt"].startswith("what size is the pitch lap?") and turn["response"] == "OK from the fake model."
    again = json.loads(run_cli("import", "openclaw", str(db), "--json", store=store).stdout)
    assert again["created"] == 0 and again["existing"] == 1


NODE_REPLAY = r"""
import * as core from "./atocore-core.mjs";
import { readFileSync } from "node:fs";
const [url, file, step] = process.argv.slice(2);
const rec = Object.fromEntries(readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l)).map((e) => [e.hook, e]));
const cfg = core.resolveConfig({ url, timeoutMs: 3000, captureTimeoutMs: 5000 });
const sent = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (u, init) => { sent.push({ url: String(u), body: JSON.parse(init.body) }); return realFetch(u, init); };
let out;
if (step === "capture") out = await core.agentEnd(cfg, rec.agent_end.event, rec.agent_end.ctx, () => {});
if (step === "recall-current") {
  const ev = { ...rec.before_prompt_build.event, prompt: "earlier: tell me about gripper firmware\n\nwhat size is the pitch lap?",
               currentUserMessage: "what size is the pitch lap?" };
  out = await core.beforePromptBuild(cfg, ev, rec.before_prompt_build.ctx, () => {});
}
if (step === "recall-empty") {
  out = await core.beforePromptBuild(cfg, { ...rec.before_prompt_build.event, currentUserMessage: "" }, rec.before_prompt_build.ctx, () => {});
}
console.log(JSON.stringify({ out: out ?? null, sent }));
"""


def replay(step: str, url: str, tmp_path: Path) -> dict:
    work = tmp_path / "openclaw-plugin"
    if not work.exists():
        shutil.copytree(PLUGIN, work)
    (work / "replay.mjs").write_text(NODE_REPLAY)
    p = subprocess.run([NODE, str(work / "replay.mjs"), url, str(DATA / "hook-events.jsonl"), step],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_live_capture_and_import_store_a_turn_once(tmp_path, store):
    env = {k: v for k, v in os.environ.items() if k not in ("ATOCORE_STORE", "ATOCORE_URL", "ATOCORE_TOKEN")}
    with atocore_serve(store.path, env=env) as srv:
        live = replay("capture", srv.url, tmp_path)
        assert live["out"]["created"] is True
        assert live["sent"][0]["body"]["id"].startswith("oc-run-")  # before: no id (agent_end has no entry ids)
    db = recorded_db(tmp_path / "openclaw-agent.sqlite")
    out = json.loads(run_cli("import", "openclaw", str(db), "--json", store=store).stdout)
    assert out["created"] == 0 and out["existing"] == 1, out
    assert len(store_turns(open_store(store.path))) == 1


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_context_request_uses_the_current_user_message(tmp_path, store):
    env = {k: v for k, v in os.environ.items() if k not in ("ATOCORE_STORE", "ATOCORE_URL", "ATOCORE_TOKEN")}
    with atocore_serve(store.path, env=env) as srv:
        cur = replay("recall-current", srv.url, tmp_path)
        # before: event.prompt, which may hold reconstructed history
        assert [s["body"]["prompt"] for s in cur["sent"]] == ["what size is the pitch lap?"]
        empty = replay("recall-empty", srv.url, tmp_path)
        assert empty["sent"] == [] and empty["out"] is None  # "" = no textual request: no fallback


def test_import_reads_zstd_compressed_events(tmp_path, store):
    import base64
    import sqlite3

    rec = json.loads((DATA / "transcript_events_mcp.json").read_text())
    assert any("event_zstd_b64" in r for r in rec["rows"])  # OpenClaw compresses larger events
    path = tmp_path / "openclaw-agent.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE transcript_events (session_id TEXT NOT NULL, seq INTEGER NOT NULL, event_json TEXT, "
               "created_at INTEGER NOT NULL, event_zstd BLOB, event_utf8_bytes INTEGER, navigation_json TEXT, "
               "PRIMARY KEY (session_id, seq))")
    for r in rec["rows"]:
        packed = base64.b64decode(r["event_zstd_b64"]) if "event_zstd_b64" in r else None
        db.execute("INSERT INTO transcript_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (r["session_id"], r["seq"], r.get("event_json"), r["created_at"], packed,
                    r.get("event_utf8_bytes"), r.get("navigation_json")))
    db.commit()
    db.close()
    out = json.loads(run_cli("import", "openclaw", str(path), "--json", store=store).stdout)
    assert out["created"] == 1 and not out["problems"], out  # before: "zstd-compressed" problem, 0 turns
    [turn] = store_turns(open_store(store.path))
    assert turn["prompt"] == "what size is the pitch lap?" and turn["response"] == "Done."
    assert turn["id"].startswith("oc-run-")
