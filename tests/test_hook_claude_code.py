"""`atocore hook claude-code` end to end: real hook processes, a real `atocore serve`, a real store.

Payloads and transcripts are composed per the Claude Code hooks reference (stdin fields,
hookSpecificOutput) and the reverse-engineered transcript schema (see fixtures_capture.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from atocore.memories import add_memory
from atocore.store import init_store, open_store
from tests.fixtures_capture import CCTranscript, atocore_serve, free_port, hook_env, hook_log, run_hook, store_turns, wait_for  # noqa: F401

SESSION = "7f3c9a10-5b2e-4c1d-9e8f-0a1b2c3d4e5f"


def conversation(tmp_path: Path, session: str = SESSION, cwd: str = "/home/dev/p04") -> CCTranscript:
    t = CCTranscript(tmp_path / "projects" / "-home-dev-p04" / f"{session}.jsonl", session, cwd)
    t.user("hello, what's in this repo?")
    t.assistant({"type": "text", "text": "It holds the P04 optics notes."})
    t.bookkeeping()
    t.hook_context("<atocore-context>\nAtoCore context supplement: the lap is 300 mm\n</atocore-context>")
    t.user("why does the login test fail?\n<atocore-context>old supplement pasted</atocore-context>")
    t.assistant({"type": "thinking", "thinking": "Let me run it.", "signature": "sig"})
    t.tool_round("pytest tests/test_login.py -x", "1 failed: fixture token expired")
    t.assistant({"type": "text", "text": "The fixture token expired; I regenerated it."})
    t.bookkeeping()
    t.write()
    return t


# ----------------------------------------------------------------------------- store-direct mode


def test_stop_writes_into_the_store_when_no_server_runs(tmp_path, store, hook_env):
    t = conversation(tmp_path)
    env = {**hook_env, "ATOCORE_STORE": str(store.path)}
    p = run_hook(t.payload("Stop", stop_hook_active=False, background_tasks=[], session_crons=[],
                           last_assistant_message="The fixture token expired; I regenerated it and the test passes."),
                 env)
    assert p.returncode == 0 and p.stdout == b"" and p.stderr == b""
    [turn] = store_turns(open_store(store.path))
    assert turn["source"] == "claude-code" and turn["session_id"] == SESSION
    assert turn["prompt"] == "why does the login test fail?"  # our own supplement stripped
    # the transcript lags: its text for the turn, then the final message only Stop carries
    assert turn["response"] == ("The fixture token expired; I regenerated it.\n\n"
                                "The fixture token expired; I regenerated it and the test passes.")
    assert turn["id"].startswith("cc-") and turn["created"].startswith("2026-08-01T09:")
    assert turn["meta"]["cwd"] == "/home/dev/p04" and turn["meta"]["event"] == "Stop"
    assert "server unreachable" in hook_log(hook_env)


def test_store_option_reaches_the_hook_as_an_argument_not_the_environment(tmp_path, store, hook_env, monkeypatch):
    """`atocore --store PATH hook ...` names the store for store-direct mode (no ATOCORE_STORE),
    and the hook runtime takes it as an argument: the process environment is left alone."""
    import io

    from atocore.capture import hook

    t = conversation(tmp_path)
    env = {k: v for k, v in {**os.environ, **hook_env}.items() if k != "ATOCORE_STORE"}
    data = json.dumps(t.payload("Stop", last_assistant_message="Regenerated the token.")).encode()
    p = subprocess.run([sys.executable, "-m", "atocore", "--store", str(store.path), "hook", "claude-code"],
                       input=data, capture_output=True, env=env, timeout=60)
    assert p.returncode == 0 and p.stdout == b""
    [turn] = store_turns(open_store(store.path))
    assert turn["prompt"] == "why does the login test fail?"
    other, _ = init_store(tmp_path / "other")
    monkeypatch.delenv("ATOCORE_STORE", raising=False)
    for key, value in hook_env.items():
        monkeypatch.setenv(key, value)
    payload = t.payload("Stop", last_assistant_message="Another reply.")
    assert hook.run("claude-code", io.BytesIO(json.dumps(payload).encode()), io.StringIO(), store=str(other.path)) == 0
    assert "ATOCORE_STORE" not in os.environ
    assert [x["response"] for x in store_turns(open_store(other.path))][0].endswith("Another reply.")


def test_stop_then_session_end_store_the_turn_once(tmp_path, store, hook_env):
    t = conversation(tmp_path)
    env = {**hook_env, "ATOCORE_STORE": str(store.path)}
    run_hook(t.payload("Stop", last_assistant_message="Regenerated the token."), env)
    head = open_store(store.path).head()
    p = run_hook(t.payload("SessionEnd", reason="prompt_input_exit"), env)  # reply read from the transcript
    assert p.returncode == 0 and p.stdout == b""
    s = open_store(store.path)
    assert s.head() == head and len(store_turns(s)) == 1


def test_session_end_reads_the_reply_from_the_transcript(tmp_path, store, hook_env):
    t = conversation(tmp_path)
    run_hook(t.payload("SessionEnd", reason="other"), {**hook_env, "ATOCORE_STORE": str(store.path)})
    [turn] = store_turns(open_store(store.path))
    assert turn["prompt"] == "why does the login test fail?"
    assert turn["response"] == "The fixture token expired; I regenerated it."  # text blocks only


def test_secrets_in_a_turn_are_redacted_before_commit(tmp_path, store, hook_env):
    t = CCTranscript(tmp_path / "t.jsonl", "s-secret", "/w")
    t.user("use AKIAQ3EGVBMPLKJX7Y2Z and <private>my home address</private> to deploy")
    t.write()
    run_hook(t.payload("Stop", last_assistant_message="Deployed with ghp_Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lmaaaa"),
             {**hook_env, "ATOCORE_STORE": str(store.path)})
    [turn] = store_turns(open_store(store.path))
    assert "AKIA" not in turn["prompt"] and "home address" not in turn["prompt"]
    assert "ghp_" not in turn["response"]


# ----------------------------------------------------------------------------- fail-open


@pytest.mark.parametrize("stdin", [b"", b"not json", b"[1, 2]", b'{"hook_event_name": "Stop"}', b"\xff\xfe\x00garbage",
                                   b'{"hook_event_name": "Stop", "session_id": 5, "transcript_path": 7}',
                                   b'{"hook_event_name": "UserPromptSubmit", "prompt": ["x"]}',
                                   b'{"hook_event_name": "Stop", "session_id": "s", "transcript_path": "/nonexistent/x.jsonl"}'])
def test_malformed_input_exits_0_silently(stdin, hook_env):
    p = run_hook(stdin, hook_env)
    assert p.returncode == 0 and p.stdout == b"" and p.stderr == b""


def test_huge_stdin_is_refused_quietly(hook_env):
    p = run_hook(b'{"prompt": "' + b"x" * (9 * 1024 * 1024) + b'"}', hook_env)
    assert p.returncode == 0 and p.stdout == b""
    assert "larger than" in hook_log(hook_env)


def test_unknown_source_and_bad_url_fail_open(tmp_path, hook_env):
    t = conversation(tmp_path)
    p = run_hook(t.payload("UserPromptSubmit", prompt="hi"), hook_env, source="no-such-assistant")
    assert p.returncode == 0 and p.stdout == b""
    assert "no capture source called 'no-such-assistant'" in hook_log(hook_env)
    p = run_hook(t.payload("UserPromptSubmit", prompt="hi"), {**hook_env, "ATOCORE_URL": "not-a-url",
                                                              "ATOCORE_HOOK_TIMEOUT": "banana"})
    assert p.returncode == 0 and p.stdout == b""


def test_non_utf8_and_junk_lines_in_the_transcript(tmp_path, store, hook_env):
    t = conversation(tmp_path)
    raw = t.path.read_bytes()
    junk = b"\xff\xfe not json at all\n{\"type\": \"user\", \"message\": 5}\n[]\n"
    user = json.dumps({"type": "user", "uuid": "u-latin1", "sessionId": SESSION, "timestamp": "2026-08-01T10:00:00Z",
                       "message": {"role": "user", "content": "caf\u00e9 QQQ"}}).encode().replace(b"QQQ", b"\xe9\xff")
    t.path.write_bytes(raw + junk + user + b"\n")
    p = run_hook(t.payload("Stop", last_assistant_message="ok"), {**hook_env, "ATOCORE_STORE": str(store.path)})
    assert p.returncode == 0
    [turn] = store_turns(open_store(store.path))
    assert turn["prompt"].startswith("café ") and turn["id"] == "cc-u-latin1"


def test_huge_transcript_is_read_from_its_tail(tmp_path, store, hook_env):
    t = CCTranscript(tmp_path / "big.jsonl", "s-big", "/w")
    for i in range(300):
        t.user(f"question {i}")
        t.tool_round("cat big.log", "log line\n" * 4000)  # ~36 KB per tool result
        t.assistant({"type": "text", "text": f"answer {i}"})
    t.write()
    assert t.path.stat().st_size > 10_000_000
    start = time.monotonic()
    p = run_hook(t.payload("Stop"), {**hook_env, "ATOCORE_STORE": str(store.path)})
    assert p.returncode == 0 and time.monotonic() - start < 5
    [turn] = store_turns(open_store(store.path))
    assert turn["prompt"] == "question 299" and turn["response"] == "answer 299"


def test_prompt_beyond_the_scanned_tail_still_keeps_the_reply(tmp_path, store, hook_env):
    t = CCTranscript(tmp_path / "huge-line.jsonl", "s-line", "/w")
    t.user("summarise the giant log")
    t.tool_round("cat giant.log", "y" * (17 * 1024 * 1024))  # one 17 MB line after the prompt
    t.write()
    p = run_hook(t.payload("Stop", last_assistant_message="It is mostly the letter y."),
                 {**hook_env, "ATOCORE_STORE": str(store.path)})
    assert p.returncode == 0
    [turn] = store_turns(open_store(store.path))
    assert turn["response"] == "It is mostly the letter y."


class SilentServer:
    """Accepts connections and never answers: a hung AtoCore."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.conns = []
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_slow_server_hook_gives_up_within_its_budget(tmp_path, hook_env):
    srv = SilentServer()
    try:
        t = conversation(tmp_path)
        env = {**hook_env, "ATOCORE_URL": f"http://127.0.0.1:{srv.port}", "ATOCORE_HOOK_TIMEOUT": "0.5"}
        start = time.monotonic()
        p = run_hook(t.payload("UserPromptSubmit", prompt="why does the login test fail?"), env)
        took = time.monotonic() - start
        assert p.returncode == 0 and p.stdout == b""
        assert took < 3.0
        # a capture against the hung server is kept in the spool, not lost
        p = run_hook(t.payload("Stop", last_assistant_message="ok"), env)
        assert p.returncode == 0
        spool = Path(hook_env["ATOCORE_HOME"]) / "spool" / "claude-code.jsonl"
        assert spool.exists() and "why does the login test fail?" in spool.read_text()
    finally:
        srv.close()


def test_disabled_hook_does_nothing(tmp_path, hook_env):
    t = conversation(tmp_path)
    p = run_hook(t.payload("Stop"), {**hook_env, "ATOCORE_HOOK_DISABLE": "1"})
    assert p.returncode == 0 and p.stdout == b"" and hook_log(hook_env) == ""


# ----------------------------------------------------------------------------- with a running server


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_path):
    root = tmp_path_factory.mktemp("served")
    s, _ = init_store(root / "store")
    add_memory(s, "The login test uses a fixture token that expires every 24 hours; regenerate it with make fixtures.",
               "knowledge")
    env = {k: v for k, v in os.environ.items() if k not in ("ATOCORE_STORE", "ATOCORE_URL", "ATOCORE_TOKEN")}
    env.update({"ATOCORE_EMBED_MODEL": model_path, "HF_HUB_OFFLINE": "1", "ATOCORE_HOME": str(root / "home")})
    with atocore_serve(s.path, env=env) as srv:
        yield srv


def test_prompt_hook_prints_the_supplement_in_the_documented_form(tmp_path, server, hook_env):
    t = conversation(tmp_path)
    env = {**hook_env, "ATOCORE_URL": server.url}
    p = run_hook(t.payload("UserPromptSubmit", prompt="why does the login test fail? is it the fixture token?"), env)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert set(out) == {"hookSpecificOutput"}
    hso = out["hookSpecificOutput"]
    assert hso["hookEventName"] == "UserPromptSubmit"
    ctx = hso["additionalContext"]
    assert len(ctx) <= 10_000
    assert ctx.startswith("<atocore-context>") and ctx.endswith("</atocore-context>")
    assert "fixture token that expires every 24 hours" in ctx


def test_session_start_gets_context_too(tmp_path, server, hook_env):
    t = conversation(tmp_path)
    p = run_hook(t.payload("SessionStart", source="startup", model="claude-test"), {**hook_env, "ATOCORE_URL": server.url})
    assert p.returncode == 0
    if p.stdout:  # a store with no project state may have nothing to say at session start
        assert json.loads(p.stdout)["hookSpecificOutput"]["hookEventName"] == "SessionStart"


def test_stop_through_the_server_is_committed_and_searchable(tmp_path, server, hook_env):
    t = CCTranscript(tmp_path / "s2.jsonl", "sess-served", "/home/dev/p04")
    t.user("how long do we anneal the borosilicate blank?")
    t.assistant({"type": "text", "text": "Anneal the borosilicate blank at 560 C for six hours, then cool slowly."})
    t.write()
    env = {**hook_env, "ATOCORE_URL": server.url}
    p = run_hook(t.payload("Stop", last_assistant_message="Anneal the borosilicate blank at 560 C for six hours."), env)
    assert p.returncode == 0 and p.stdout == b""
    s = open_store(server.store_path)
    turns = [x for x in store_turns(s) if x["session_id"] == "sess-served"]
    assert len(turns) == 1 and s.log()[0].summary.startswith("Capture claude-code turn cc-")
    hits = wait_for(lambda: [h for h in server.post("/search", {"query": "anneal borosilicate blank", "k": 5})["hits"]
                             if turns[0]["id"] in h["source"]])
    assert hits, "the captured turn never became searchable"
    head = s.head()
    run_hook(t.payload("SessionEnd", reason="other"), env)  # same turn again: no new commit
    assert open_store(server.store_path).head() == head


def test_server_down_then_up_nothing_lost(tmp_path, server, hook_env, model_path):
    t = CCTranscript(tmp_path / "s3.jsonl", "sess-spool", "/w")
    t.user("remember the spool test")
    t.write()
    down = {**hook_env, "ATOCORE_URL": f"http://127.0.0.1:{free_port()}"}
    p = run_hook(t.payload("UserPromptSubmit", prompt="remember the spool test"), down)
    assert p.returncode == 0 and p.stdout == b""  # no context, no noise
    p = run_hook(t.payload("Stop", last_assistant_message="Spooled reply one."), down)
    assert p.returncode == 0 and p.stdout == b""
    spool = Path(hook_env["ATOCORE_HOME"]) / "spool" / "claude-code.jsonl"
    assert spool.exists()
    # the next turn, with the server back, delivers both
    t.user("second question")
    t.write()
    p = run_hook(t.payload("Stop", last_assistant_message="Reply two."), {**hook_env, "ATOCORE_URL": server.url})
    assert p.returncode == 0
    turns = [x for x in store_turns(open_store(server.store_path)) if x["session_id"] == "sess-spool"]
    assert sorted(x["response"] for x in turns) == ["Reply two.", "Spooled reply one."]
    assert not spool.exists()


def test_escaped_lone_surrogates_reach_the_server_cleaned(tmp_path, server, hook_env):
    t = CCTranscript(tmp_path / "s4.jsonl", "sess-surrogate", "/w")
    t.user("broken \ud800 emoji half")
    t.write()  # json.dumps escapes the lone surrogate as \ud800, as a JS writer would
    p = run_hook(t.payload("Stop", last_assistant_message="fine"), {**hook_env, "ATOCORE_URL": server.url})
    assert p.returncode == 0
    [turn] = [x for x in store_turns(open_store(server.store_path)) if x["session_id"] == "sess-surrogate"]
    assert turn["prompt"] == "broken \ufffd emoji half"


def test_unwritable_home_still_exits_0(tmp_path, hook_env):
    blocker = tmp_path / "home-is-a-file"
    blocker.write_text("x")
    p = run_hook(b"not json", {**hook_env, "ATOCORE_HOME": str(blocker)})
    assert p.returncode == 0 and p.stdout == b"" and p.stderr == b""


def test_interactions_http_contract(server):
    """The contract both integrations rely on: 201 new, 200 already stored, 422 naming the field."""
    import httpx

    body = {"source": "openclaw", "session_id": "http-contract", "prompt": "ping AKIAQ3EGVBMPLKJX7Y2Z",
            "response": "pong"}
    r1 = httpx.post(server.url + "/interactions", json=body, timeout=30)
    r2 = httpx.post(server.url + "/interactions", json=body, timeout=30)
    assert (r1.status_code, r2.status_code) == (201, 200)
    assert r1.json()["id"] == r2.json()["id"] and r1.json()["created"] is True and r2.json()["created"] is False
    bad = httpx.post(server.url + "/interactions", json={**body, "source": "Not A Slug"}, timeout=30)
    assert bad.status_code == 422 and "source" in bad.text
    [turn] = [t for t in store_turns(open_store(server.store_path)) if t["session_id"] == "http-contract"]
    assert "AKIA" not in turn["prompt"]


def test_turns_claimed_by_a_killed_hook_are_recovered(tmp_path, server, hook_env):
    spool_dir = Path(hook_env["ATOCORE_HOME"]) / "spool"
    spool_dir.mkdir(parents=True)
    orphan = spool_dir / "claude-code.jsonl.99999.sending"
    orphan.write_text(json.dumps({"source": "claude-code", "session_id": "sess-orphan", "id": "cc-orphan",
                                  "prompt": "left behind", "response": "by a killed hook"}) + "\n")
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    t = CCTranscript(tmp_path / "s5.jsonl", "sess-orphan", "/w")
    t.user("next question")
    t.write()
    p = run_hook(t.payload("Stop", last_assistant_message="next answer"), {**hook_env, "ATOCORE_URL": server.url})
    assert p.returncode == 0
    turns = [x for x in store_turns(open_store(server.store_path)) if x["session_id"] == "sess-orphan"]
    assert sorted(x["prompt"] for x in turns) == ["left behind", "next question"]
    assert list(spool_dir.iterdir()) == []


def test_a_lagging_transcript_is_not_paired_with_the_new_reply(tmp_path, store, hook_env):
    t = CCTranscript(tmp_path / "lag.jsonl", "s-lag", "/w")
    t.user("old question")
    t.lines[-1]["promptId"] = "prompt-1"
    t.write()
    p = run_hook(t.payload("Stop", prompt_id="prompt-2", last_assistant_message="new answer"),
                 {**hook_env, "ATOCORE_STORE": str(store.path)})
    assert p.returncode == 0
    [turn] = store_turns(open_store(store.path))
    assert turn["prompt"] == "" and turn["response"] == "new answer" and turn["id"].startswith("h-")


def test_importing_the_transcript_after_live_capture_adds_only_missing_turns(tmp_path, store, hook_env):
    from tests.conftest import run_cli

    t = conversation(tmp_path)
    run_hook(t.payload("Stop", last_assistant_message="The fixture token expired; I regenerated it."),
             {**hook_env, "ATOCORE_STORE": str(store.path)})
    out = json.loads(run_cli("import", "claude-code", str(t.path), "--json", store=store).stdout)
    assert (out["created"], out["existing"]) == (1, 1)  # the first turn was new; the live one was there
    turns = store_turns(open_store(store.path))
    assert sorted(x["prompt"] for x in turns) == ["hello, what's in this repo?", "why does the login test fail?"]


def test_the_spool_keeps_no_secret_in_meta_either(tmp_path, monkeypatch):
    from atocore.capture import spool

    monkeypatch.setenv("ATOCORE_HOME", str(tmp_path))
    key = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    spool.spool([{"source": "claude-code", "session_id": "s", "prompt": f"use {key}", "response": "ok",
                 "meta": {"cwd": "/w", "note": f"token {key}"}}], "claude-code")
    text = Path(spool.spool_path("claude-code")).read_text()
    assert key not in text and json.loads(text)["meta"]["cwd"] == "/w"


def test_the_hook_runtime_fails_open_off_the_main_thread(tmp_path, monkeypatch):
    import io

    from atocore.capture import hook

    monkeypatch.setenv("ATOCORE_HOME", str(tmp_path))
    out, rc = io.StringIO(), []
    t = threading.Thread(target=lambda: rc.append(hook.run("claude-code", io.BytesIO(b"not json"), out)))
    t.start()
    t.join(30)
    assert rc == [0] and out.getvalue() == ""  # no SIGALRM timer there (signals are main-thread only)
