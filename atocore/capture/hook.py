"""The hook runtime behind ``atocore hook NAME``: fast, stdlib-only and fail-open.

One process per assistant event: read the event JSON on stdin, ask the server for a context
supplement (events that want one) and/or record the finished turn, print what the assistant
expects, exit 0. Whatever goes wrong (server down or slow, bad configuration, malformed or
huge input, non-UTF-8 bytes) the process prints nothing, exits 0 and writes one line to
``$ATOCORE_HOME/logs/hook.log`` (default ``~/.atocore/logs``).

Environment:
    ATOCORE_URL            server base URL (default http://127.0.0.1:8100)
    ATOCORE_TOKEN          bearer token for the server, if it wants one
    ATOCORE_HOOK_TIMEOUT   whole-process time budget in seconds (default 1.5)
    ATOCORE_STORE          if set and the server cannot be reached, turns are written
                           straight into this store
    ATOCORE_HOME           logs, the spool of turns kept while AtoCore was unreachable, caches
    ATOCORE_HOOK_DISABLE   set to 1 to make every hook a no-op
Claude Code plugin options arrive as CLAUDE_PLUGIN_OPTION_ATOCORE_URL / _ATOCORE_TOKEN and
are used when the ATOCORE_* variables are not set.

Speed matters (this runs before every prompt): only ``json``, ``os``, ``socket``,
``signal``, ``sys`` and ``time`` are imported here; plain-HTTP requests go over a raw
socket (``http.client`` alone costs ~30 ms to import); https falls back to urllib.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time

DEFAULT_URL = "http://127.0.0.1:8100"
DEFAULT_BUDGET = 1.5
MAX_STDIN = 8 * 1024 * 1024
MAX_LOG_BYTES = 1024 * 1024


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


def home() -> str:
    return os.environ.get("ATOCORE_HOME") or os.path.join(os.path.expanduser("~"), ".atocore")


def log(message: str) -> None:
    """Append one line to the hook log; never raises."""
    try:
        folder = os.path.join(home(), "logs")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "hook.log")
        try:
            if os.path.getsize(path) > MAX_LOG_BYTES:
                os.replace(path, path + ".1")
        except OSError:
            pass
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = " ".join(str(message).split())[:2000]
        with open(path, "a", encoding="utf-8", errors="replace") as fh:
            fh.write(f"{stamp} pid={os.getpid()} {line}\n")
    except Exception:
        pass


def env(name: str, default: str = "") -> str:
    value = os.environ.get(name)
    if value:
        return value
    # Claude Code plugin userConfig (atocore_url, atocore_token) arrives as CLAUDE_PLUGIN_OPTION_<KEY>;
    # the docs do not say whether <KEY> keeps its case, so both spellings are read.
    for key in ("CLAUDE_PLUGIN_OPTION_" + name, "CLAUDE_PLUGIN_OPTION_" + name.lower()):
        if os.environ.get(key):
            return os.environ[key]
    return default


class Deadline:
    def __init__(self, budget: float):
        self.end = time.monotonic() + budget

    def left(self, margin: float = 0.0) -> float:
        return self.end - time.monotonic() - margin


# ----------------------------------------------------------------------------- HTTP


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


# ----------------------------------------------------------------------------- spool


def spool_path(source: str) -> str:
    return os.path.join(home(), "spool", f"{source}.jsonl")


def spool(turns: list[dict], source: str) -> None:
    """Keep turns that could not be delivered; they are sent with the next successful capture."""
    try:
        from .redact import redact, redact_value  # secrets never rest on disk in our files either

        path = spool_path(source)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            for t in turns:
                t = dict(t)
                for key in ("prompt", "response"):
                    if isinstance(t.get(key), str):
                        t[key] = redact(t[key])
                if isinstance(t.get("meta"), dict):  # the store redacts meta too; so must the spool
                    t["meta"] = redact_value(t["meta"])
                fh.write(json.dumps(t) + "\n")  # ASCII: safe for any text, surrogates included
        log(f"{source}: kept {len(turns)} turn(s) in the spool for later delivery")
    except Exception as exc:
        log(f"{source}: could not spool {len(turns)} turn(s): {exc!r}")


def refused_path(source: str) -> str:
    return os.path.join(home(), "spool", f"{source}.refused.jsonl")


def keep_refused(line: str, source: str, exc: Exception) -> None:
    """A spooled turn the server refused again: keep it aside (not re-sent on every capture).
    Move the file's lines back into the spool to retry them once the cause is fixed."""
    try:
        with open(refused_path(source), "a", encoding="utf-8") as fh:
            fh.write(line.rstrip("\n") + "\n")
        log(f"{source}: the server refused a spooled turn again ({exc}); kept in {refused_path(source)}")
    except Exception as err:
        log(f"{source}: could not keep a refused turn: {err!r}")


def _recover_orphans(path: str) -> None:
    """Put back turns claimed by a hook that was killed while sending them (older than a minute)."""
    folder, base = os.path.split(path)
    now = time.time()
    for name in os.listdir(folder):
        if not (name.startswith(base + ".") and name.endswith(".sending")):
            continue
        orphan = os.path.join(folder, name)
        try:
            if now - os.path.getmtime(orphan) < 60:
                continue  # probably another hook at work right now
            with open(orphan, encoding="utf-8", errors="replace") as src, open(path, "a", encoding="utf-8") as dst:
                dst.write(src.read())
            os.unlink(orphan)
        except OSError:
            continue


def flush_spool(source: str, send, deadline: Deadline) -> None:
    """Send spooled turns (oldest first) while time allows; what is not sent stays spooled."""
    path = spool_path(source)
    if not os.path.isdir(os.path.dirname(path)):
        return
    _recover_orphans(path)
    if not os.path.exists(path):
        return
    work = f"{path}.{os.getpid()}.sending"
    try:
        os.replace(path, work)  # claim it; a concurrent hook sees no spool
    except OSError:
        return
    with open(work, encoding="utf-8", errors="replace") as fh:
        lines = [ln for ln in fh.read().splitlines() if ln.strip()]
    sent = 0
    try:
        for line in lines:
            if deadline.left(0.2) <= 0:
                break
            try:
                send(json.loads(line))
            except HttpError as exc:
                if exc.retryable:
                    break
                keep_refused(line, source, exc)  # refused twice: kept aside, never dropped
            except ValueError:
                log(f"{source}: dropped an unreadable spooled line")
            except Exception:
                break
            sent += 1
    finally:
        left = lines[sent:]
        if left:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write("\n".join(left) + "\n")
        os.unlink(work)


# ----------------------------------------------------------------------------- main


def read_payload(stream) -> dict:
    raw = stream.read(MAX_STDIN + 1)
    if len(raw) > MAX_STDIN:
        raise ValueError(f"hook input is larger than {MAX_STDIN} bytes")
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    payload = json.loads(text) if text.strip() else None
    if not isinstance(payload, dict):
        raise ValueError("hook input is not a JSON object")
    return payload


def _store_direct(turns: list[dict]) -> list[dict]:
    """Write turns into $ATOCORE_STORE; return the ones that could not be written."""
    store_path = os.environ.get("ATOCORE_STORE")
    if not store_path or not os.path.isdir(store_path):
        return turns
    try:
        from ..store import open_store
        from .record import record_interaction

        store = open_store(store_path)
    except Exception as exc:
        log(f"store {store_path!r} unusable: {exc!r}")
        return turns
    left = []
    for t in turns:
        try:
            record_interaction(store, t)
        except Exception as exc:  # refused (perhaps by a broken config) or failed: spool it
            log(f"store write failed: {exc!r}")
            left.append(t)
    return left


def run(name: str, stdin=None, stdout=None) -> int:
    """Handle one hook event for capture source ``name``. Always returns 0."""
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout
    if os.environ.get("ATOCORE_HOOK_DISABLE") in ("1", "true", "yes"):
        return 0
    try:
        budget = float(os.environ.get("ATOCORE_HOOK_TIMEOUT") or DEFAULT_BUDGET)
        if not 0 < budget <= 600:
            raise ValueError
    except ValueError:
        log(f"ATOCORE_HOOK_TIMEOUT={os.environ.get('ATOCORE_HOOK_TIMEOUT')!r} is not a number of seconds; using {DEFAULT_BUDGET}")
        budget = DEFAULT_BUDGET
    deadline = Deadline(budget)

    def on_alarm(signum, frame):
        raise HookTimeout(f"time budget of {budget} s used up")

    old, armed = None, False
    out = ""
    try:
        # The timer is disarmed in the inner finally, before any handler runs: an alarm firing
        # while a handler logs would otherwise escape run() as a traceback and a non-zero exit.
        try:
            if hasattr(signal, "setitimer"):
                try:
                    old = signal.signal(signal.SIGALRM, on_alarm)
                    armed = True
                except ValueError:  # not the main thread: no timer; the deadline still bounds requests
                    pass
                else:
                    signal.setitimer(signal.ITIMER_REAL, budget)
            out = _run(name, stdin, deadline)
        finally:
            if armed:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old)
    except HookTimeout as exc:
        log(f"{name}: {exc}")
        out = ""
        _rescue_pending()  # the timer is disarmed: spooling is local and quick
    except BaseException as exc:  # fail open, whatever it was
        if isinstance(exc, KeyboardInterrupt):
            log(f"{name}: interrupted")
        else:
            log(f"{name}: {type(exc).__name__}: {exc}")
        out = ""
        try:
            _rescue_pending()
        except BaseException:
            pass
    if out:
        try:
            stdout.write(out)
            stdout.flush()
        except Exception as exc:
            log(f"{name}: could not write the hook output: {exc!r}")
    return 0


def _run(name: str, stdin, deadline: Deadline) -> str:
    payload = read_payload(stdin)
    _pending.update(name=name, payload=payload)
    from .sources import find_source

    source = find_source(name)
    if source is None:
        log(f"no capture source called {name!r} is installed")
        return ""
    url = env("ATOCORE_URL", DEFAULT_URL)
    token = env("ATOCORE_TOKEN")
    out = ""

    request = source.context_request(payload)
    if request is not None:
        try:
            build = post_json(url, "/context/build", request, token, deadline.left(0.05))
            out = source.render_context(payload, build) or ""
        except HookTimeout:
            raise
        except Exception as exc:
            log(f"{name}: context request failed: {exc!r}")

    turns = source.parse_hook_payload(payload)
    if turns:
        _pending.update(name=name, turns=list(turns))
        _deliver(name, turns, url, token, deadline)
    _pending.clear()
    return out


# Turns parsed but not yet delivered or spooled: if the time budget runs out first (a slow
# machine, a hung server), run() spools them instead of losing them.
_pending: dict = {}


def _rescue_pending() -> None:
    turns, name, payload = _pending.get("turns"), _pending.get("name"), _pending.get("payload")
    _pending.clear()
    if turns is None and payload is not None and name:  # the budget ran out before the turns were parsed
        from .sources import find_source

        source = find_source(name)
        turns = source.parse_hook_payload(payload) if source is not None else []
    if turns and name:
        spool(turns, name)


def _deliver(name: str, turns: list[dict], url: str, token: str, deadline: Deadline) -> None:
    def send(turn: dict) -> dict:
        return post_json(url, "/interactions", turn, token, deadline.left(0.25))

    undelivered: list[dict] = []
    server_ok = False
    for i, turn in enumerate(turns):
        try:
            send(turn)
            server_ok = True
            _pending["turns"] = undelivered + turns[i + 1:]
        except HttpError as exc:
            if not exc.retryable:
                # Refused (a 4xx): perhaps the turn, perhaps the server's config (a bad redact
                # pattern refuses every turn). Spool it rather than lose it; a second refusal
                # on the next flush moves it aside (keep_refused).
                log(f"{name}: the server refused a turn, kept in the spool: {exc}")
                undelivered.append(turn)
                continue
            log(f"{name}: server error: {exc}")
            undelivered.extend(turns[i:])
            break
        except Exception as exc:  # down, slow, misconfigured: keep the rest
            log(f"{name}: server unreachable at {url}: {exc!r}")
            undelivered.extend(turns[i:])
            break
    if undelivered:
        _pending["turns"] = list(undelivered)
        try:
            undelivered = _store_direct(undelivered)
        except HookTimeout:
            pass
        if undelivered:
            spool(undelivered, name)
        _pending.clear()
    elif server_ok:
        try:
            flush_spool(name, send, deadline)
        except HookTimeout:
            raise
        except Exception as exc:
            log(f"{name}: spool flush failed: {exc!r}")
