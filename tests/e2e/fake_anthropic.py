"""A small fake Anthropic Messages API on 127.0.0.1 for the end-to-end tests.

The real Claude Code and OpenClaw talk to it through ``ANTHROPIC_BASE_URL``. Every request is
logged (``api.requests``) so a test can assert what reached the model; answers are scripted per
test with rules: ``api.on(predicate, *blocks)`` answers a request whose last user text matches
with those content blocks (text or tool_use), once (or ``times=N`` / ``times=None`` for always).
Unmatched requests get a short text answer. Streaming requests get SSE in the Messages API
event order (message_start, content_block_*, message_delta, message_stop).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


def text_of(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for b in content:
            if isinstance(b, dict):
                if b.get("type") == "text":
                    out.append(str(b.get("text", "")))
                elif b.get("type") == "tool_result":
                    out.append(text_of(b.get("content")))
        return "\n".join(out)
    return ""


@dataclass
class ModelRequest:
    path: str
    headers: dict
    body: dict

    @property
    def messages(self) -> list:
        return self.body.get("messages") or []

    @property
    def system(self) -> str:
        return text_of(self.body.get("system"))

    def all_text(self) -> str:
        """System prompt and every message's text (tool results included)."""
        return self.system + "\n" + "\n".join(text_of(m.get("content")) for m in self.messages)

    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return text_of(m.get("content"))
        return ""

    def tool_names(self) -> list[str]:
        return [t.get("name", "") for t in self.body.get("tools") or []]

    def tool_results(self) -> list[dict]:
        out = []
        for m in self.messages:
            if m.get("role") == "user" and isinstance(m.get("content"), list):
                out += [b for b in m["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]
        return out


@dataclass
class Rule:
    match: Callable[[ModelRequest], bool]
    blocks: list
    times: int | None = 1
    used: int = 0


def text(t: str) -> dict:
    return {"type": "text", "text": t}


_ids = iter(range(1, 10**9))


def tool_use(name: str, input: dict, id: str | None = None) -> dict:
    return {"type": "tool_use", "id": id or f"toolu_e2e{next(_ids):06d}", "name": name, "input": input}


@dataclass
class FakeAnthropic:
    requests: list[ModelRequest] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    default_text: str = "OK from the fake model."

    def __post_init__(self):
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def _json(self, status: int, obj) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.startswith("/v1/models"):
                    self._json(200, {"data": [{"id": "claude-sonnet-4-5", "type": "model",
                                               "display_name": "fake"}], "has_more": False})
                else:
                    self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})

            def do_HEAD(self):
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                path = self.path.split("?")[0]
                if path.endswith("/count_tokens"):
                    self._json(200, {"input_tokens": 100})
                    return
                if not path.endswith("/v1/messages"):
                    self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
                    return
                req = ModelRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                blocks = api._answer(req)
                with api._cond:
                    api.requests.append(req)
                    api._cond.notify_all()
                self._reply(body, blocks)

            def _reply(self, body: dict, blocks: list) -> None:
                model = body.get("model") or "claude-sonnet-4-5"
                stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
                msg = {"id": f"msg_e2e{next(_ids):06d}", "type": "message", "role": "assistant", "model": model,
                       "content": blocks, "stop_reason": stop, "stop_sequence": None,
                       "usage": {"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 0,
                                 "cache_read_input_tokens": 0}}
                if not body.get("stream"):
                    self._json(200, msg)
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("connection", "close")
                self.end_headers()

                def ev(name: str, data: dict) -> None:
                    self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

                ev("message_start", {"type": "message_start", "message": {**msg, "content": [], "stop_reason": None,
                                                                          "usage": {**msg["usage"], "output_tokens": 1}}})
                for i, b in enumerate(blocks):
                    if b["type"] == "text":
                        ev("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {"type": "text", "text": ""}})
                        ev("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "text_delta", "text": b["text"]}})
                    else:
                        ev("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {**b, "input": {}}})
                        ev("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "input_json_delta",
                                                             "partial_json": json.dumps(b["input"])}})
                    ev("content_block_stop", {"type": "content_block_stop", "index": i})
                ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                     "usage": {"output_tokens": 20}})
                ev("message_stop", {"type": "message_stop"})
                self.wfile.flush()
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ scripting

    def on(self, match: str | Callable[[ModelRequest], bool], *blocks: dict, times: int | None = 1) -> None:
        """Answer requests matching ``match`` (a regex on the last user text, or a predicate)."""
        if isinstance(match, str):
            pattern = re.compile(match, re.S)
            pred = lambda r: bool(pattern.search(r.last_user_text()))  # noqa: E731
        else:
            pred = match
        with self._lock:
            self.rules.append(Rule(pred, list(blocks), times))

    def _answer(self, req: ModelRequest) -> list:
        with self._lock:
            for rule in self.rules:
                if (rule.times is None or rule.used < rule.times) and rule.match(req):
                    rule.used += 1
                    return rule.blocks
        return [text(self.default_text)]

    def wait_for(self, predicate: Callable[[ModelRequest], bool], timeout: float = 60) -> ModelRequest | None:
        """The first logged request that satisfies ``predicate``, waiting for one up to ``timeout`` s."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                for r in self.requests:
                    if predicate(r):
                        return r
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
