"""A minimal JSON-over-HTTP client for the hook: raw sockets for http://, urllib for https://.

``http.client`` alone costs ~30 ms to import, which the hook (run before every prompt) cannot
afford; so plain-HTTP requests go over a raw socket and only https falls back to urllib.
Every failure raises (the caller fails open).
"""

from __future__ import annotations

import json
import socket
import time


class HookTimeout(Exception):
    pass


class HttpError(Exception):
    def __init__(self, status: int, body: bytes):
        super().__init__(f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}")
        self.status = status
        self.body = body

    @property
    def retryable(self) -> bool:
        """Worth keeping the turn for later (server trouble, auth, rate limit); else the data is bad."""
        return self.status >= 500 or self.status in (401, 403, 404, 408, 429)


class Deadline:
    def __init__(self, budget: float):
        self.end = time.monotonic() + budget

    def left(self, margin: float = 0.0) -> float:
        return self.end - time.monotonic() - margin


def _split_url(url: str) -> tuple[str, str, int, str]:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise ValueError(f"ATOCORE_URL {url!r} must start with http:// or https://")
    hostport, _, base = rest.partition("/")
    host, port = hostport, 443 if scheme == "https" else 80
    if hostport.startswith("["):  # [::1]:8100
        host, _, p = hostport[1:].partition("]")
        port = int(p[1:]) if p.startswith(":") else port
    elif ":" in hostport:
        host, p = hostport.rsplit(":", 1)
        port = int(p)
    return scheme, host, port, "/" + base.strip("/") if base.strip("/") else ""


def post_json(url: str, path: str, body: dict, token: str, timeout: float) -> dict:
    """POST JSON and return the decoded JSON object; raises on any failure (the caller fails open)."""
    if timeout <= 0.01:
        raise HookTimeout("no time left for the request")
    try:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: escape them; the server cleans them up
        data = json.dumps(body).encode("ascii")
    scheme, host, port, base = _split_url(url)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if scheme == "https":
        import urllib.error
        import urllib.request

        req = urllib.request.Request(url.rstrip("/") + path, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise HttpError(exc.code, exc.read()) from None
        return _decode(raw)
    status, raw = _raw_post(host, port, base + path, headers, data, timeout)
    if not 200 <= status < 300:
        raise HttpError(status, raw)
    return _decode(raw)


def _decode(raw: bytes) -> dict:
    out = json.loads(raw.decode("utf-8"))
    if not isinstance(out, dict):
        raise ValueError("the server did not answer with a JSON object")
    return out


def _raw_post(host: str, port: int, path: str, headers: dict, data: bytes, timeout: float) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(data)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data
    # An ASCII host as bytes: a str host makes getaddrinfo import the idna codec (~1-5 ms).
    addr = host.encode("ascii") if host.isascii() else host
    with socket.create_connection((addr, port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HookTimeout("the server did not answer in time")
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    header, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("malformed HTTP response")
    lines = header.split(b"\r\n")
    status = int(lines[0].split()[1])
    fields = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        fields[k.strip().lower()] = v.strip()
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = _dechunk(body)
    elif b"content-length" in fields:
        body = body[: int(fields[b"content-length"])]
    return status, body


def _dechunk(body: bytes) -> bytes:
    out, pos = [], 0
    while True:
        end = body.index(b"\r\n", pos)
        size = int(body[pos:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(body[end + 2 : end + 2 + size])
        pos = end + 2 + size + 2
