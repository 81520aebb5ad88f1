"""Fixtures for the capture tests: composed Claude Code / OpenClaw transcripts and a real
``atocore serve`` process on a free loopback port.

Transcripts follow the documented (and, for Claude Code, reverse-engineered) formats in
``../shared/research/integrations.md`` sections A.4, A.7 and B.4; they are composed here,
not copied from a real session.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

CC_VERSION = "2.1.230"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CCTranscript:
    """Builds a Claude Code session transcript (JSONL) line by line."""

    def __init__(self, path: Path, session_id: str, cwd: str):
        self.path, self.session_id, self.cwd = path, session_id, cwd
        self.lines: list[dict] = []
        self.n = 0
        self.last_uuid: str | None = None

    def _base(self, kind: str) -> dict:
        self.n += 1
        uuid = f"{self.session_id[:8]}-{self.n:04d}-4c1d-9e8f-0a1b2c3d4e5f"
        entry = {"type": kind, "uuid": uuid, "parentUuid": self.last_uuid, "sessionId": self.session_id,
                 "timestamp": f"2026-08-01T09:{10 + self.n // 60:02d}:{self.n % 60:02d}.114Z", "version": CC_VERSION,
                 "cwd": self.cwd, "gitBranch": "main", "isSidechain": False, "userType": "external"}
        self.last_uuid = uuid
        return entry

    def user(self, content) -> str:
        e = self._base("user")
        e["message"] = {"role": "user", "content": content}
        self.lines.append(e)
        return e["uuid"]

    def hook_context(self, text: str) -> None:
        self.lines.append({"type": "attachment", "uuid": f"att-{self.n}", "parentUuid": self.last_uuid,
                           "sessionId": self.session_id, "timestamp": "2026-08-01T09:10:00.000Z",
                           "attachment": {"type": "hook_additional_context", "hookName": "UserPromptSubmit",
                                          "hookEvent": "UserPromptSubmit", "content": [text]}})

    def assistant(self, *blocks: dict) -> None:
        for block in blocks:  # one transcript line per content block, sharing message.id
            e = self._base("assistant")
            e["requestId"] = "req_01ABCDEF"
            e["message"] = {"id": f"msg_01XY{self.n:04d}", "type": "message", "role": "assistant",
                            "model": "claude-test", "content": [block], "stop_reason": None,
                            "usage": {"input_tokens": 812, "output_tokens": 41}}
            self.lines.append(e)

    def tool_round(self, command: str, result: str) -> None:
        tid = f"toolu_01QR{self.n:04d}"
        self.assistant({"type": "tool_use", "id": tid, "name": "Bash", "input": {"command": command}})
        self.user([{"type": "tool_result", "tool_use_id": tid, "content": result, "is_error": False}])

    def bookkeeping(self) -> None:
        self.lines.append({"type": "file-history-snapshot", "messageId": "x", "snapshot": {}})
        self.lines.append({"type": "system", "subtype": "turn_duration", "durationMs": 1234,
                           "uuid": f"sys-{self.n}", "timestamp": "2026-08-01T09:10:00.000Z"})

    def write(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", encoding="utf-8") as fh:
            for line in self.lines:
                fh.write(json.dumps(line) + "\n")
        return self.path

    def payload(self, event: str, **extra) -> dict:
        return {"session_id": self.session_id, "transcript_path": str(self.path), "cwd": self.cwd,
                "permission_mode": "default", "hook_event_name": event, **extra}


def run_hook(payload: dict | bytes | str, env: dict, source: str = "claude-code",
             timeout: float = 30) -> subprocess.CompletedProcess:
    """Run the real ``atocore hook SOURCE`` process with the payload on stdin."""
    data = payload if isinstance(payload, bytes) else (
        payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
    return subprocess.run([sys.executable, "-m", "atocore", "hook", source], input=data, capture_output=True,
                          env={**os.environ, **env}, timeout=timeout)


class Server:
    def __init__(self, url: str, proc: subprocess.Popen, store_path: Path):
        self.url, self.proc, self.store_path = url, proc, store_path

    def post(self, path: str, body: dict, timeout: float = 30) -> dict:
        import httpx

        r = httpx.post(self.url + path, json=body, timeout=timeout)
        r.raise_for_status()
        return r.json()


@contextmanager
def atocore_serve(store_path: Path, env: dict | None = None) -> Iterator[Server]:
    """``atocore serve`` as a real process on a free loopback port."""
    port = free_port()
    full = {**os.environ, **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "atocore", "--store", str(store_path), "serve", "--port", str(port)],
                            env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        import httpx

        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"atocore serve exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("atocore serve did not become ready")
            time.sleep(0.1)
        yield Server(url, proc, store_path)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_for(predicate, timeout: float = 20, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture
def hook_env(tmp_path) -> dict:
    """Environment for hook processes: a private ATOCORE_HOME, nothing else set."""
    return {"ATOCORE_HOME": str(tmp_path / "atocore-home"), "ATOCORE_URL": f"http://127.0.0.1:{free_port()}",
            "ATOCORE_HOOK_TIMEOUT": "5"}


def store_turns(store) -> list[dict]:
    out = []
    for path, raw in store.iter_records("interactions/"):
        for line in raw.decode().splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


def hook_log(env: dict) -> str:
    p = Path(env["ATOCORE_HOME"]) / "logs" / "hook.log"
    return p.read_text() if p.exists() else ""
