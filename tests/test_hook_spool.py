"""The hook never drops a turn (issue 12, row 3): a refusal (4xx) or a time budget used up
before delivery leaves the turn in the spool; a second refusal keeps it aside, not lost."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

from atocore.store import open_store
from tests.fixtures_capture import atocore_serve, hook_env, run_hook, store_turns  # noqa: F401
from tests.test_hook_claude_code import SESSION, conversation


class RefusingServer:
    """Answers every request with a 422, as a server with a broken redact pattern did."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        data += conn.recv(65536)
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    while len(body) < length:
                        body += conn.recv(65536)
                except OSError:
                    continue
                self.requests += 1
                out = json.dumps({"error": "ValidationError", "field": "capture.redact_patterns[0]",
                                  "message": "'(' is not a valid regular expression"}).encode()
                conn.sendall(b"HTTP/1.1 422 Unprocessable Entity\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(out), out))

    def close(self):
        self.sock.close()


def test_a_refused_turn_is_spooled_then_delivered_when_the_server_accepts_again(tmp_path, store, hook_env):
    srv = RefusingServer()
    spool = Path(hook_env["ATOCORE_HOME"]) / "spool" / "claude-code.jsonl"
    try:
        t = conversation(tmp_path)
        p = run_hook(t.payload("Stop", last_assistant_message="ok"), {**hook_env, "ATOCORE_URL": f"http://127.0.0.1:{srv.port}"})
        assert p.returncode == 0 and srv.requests >= 1
    finally:
        srv.close()
    assert spool.exists() and "why does the login test fail?" in spool.read_text()
    # The server accepts again: the next capture delivers the new turn and flushes the spooled one.
    with atocore_serve(store.path) as server:
        t.user("and now?")
        t.assistant({"type": "text", "text": "Now it passes."})
        t.write()
        p = run_hook(t.payload("Stop", last_assistant_message="Now it passes."),
                     {**hook_env, "ATOCORE_URL": server.url, "ATOCORE_HOOK_TIMEOUT": "30"})
        assert p.returncode == 0
    prompts = {x["prompt"] for x in store_turns(open_store(store.path)) if x["session_id"] == SESSION}
    assert any("why does the login test fail?" in x for x in prompts) and any("and now?" in x for x in prompts)
    assert not spool.exists() or not spool.read_text().strip()


def test_a_turn_refused_again_from_the_spool_is_kept_aside(tmp_path, hook_env):
    home = Path(hook_env["ATOCORE_HOME"])
    spool = home / "spool" / "claude-code.jsonl"
    spool.parent.mkdir(parents=True)
    spool.write_text(json.dumps({"source": "claude-code", "session_id": "s-old", "prompt": "old turn",
                                 "response": "kept"}) + "\n")
    from atocore.capture.client import Deadline, HttpError
    from atocore.capture.spool import flush_spool

    def send(turn):
        raise HttpError(422, b'{"error": "ValidationError"}')

    import os
    old = os.environ.get("ATOCORE_HOME")
    os.environ["ATOCORE_HOME"] = str(home)
    try:
        flush_spool("claude-code", send, Deadline(10))
    finally:
        if old is None:
            os.environ.pop("ATOCORE_HOME", None)
        else:
            os.environ["ATOCORE_HOME"] = old
    refused = home / "spool" / "claude-code.refused.jsonl"
    assert refused.exists() and "old turn" in refused.read_text()
    assert not spool.exists() or "old turn" not in spool.read_text()


def test_a_budget_used_up_before_delivery_spools_the_turn(tmp_path, hook_env):
    """Under load the budget can run out before the turn is even sent (this lost turns when the
    machine was busy): the turn goes to the spool instead."""
    spool = Path(hook_env["ATOCORE_HOME"]) / "spool" / "claude-code.jsonl"
    t = conversation(tmp_path)
    p = run_hook(t.payload("Stop", last_assistant_message="ok"),
                 {**hook_env, "ATOCORE_URL": "http://127.0.0.1:9", "ATOCORE_HOOK_TIMEOUT": "0.001"})
    assert p.returncode == 0 and p.stdout == b""
    assert spool.exists() and "why does the login test fail?" in spool.read_text()
