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

Speed matters (this runs before every prompt): only stdlib modules are imported here and in
the helpers it uses: :mod:`.client` (the HTTP client), :mod:`.spool` (turns kept for later) and
:mod:`.home` (``$ATOCORE_HOME`` and the hook log).
"""

from __future__ import annotations

import json
import os
import signal
import sys

from .client import Deadline, HookTimeout, HttpError, post_json
from .home import log
from .spool import flush_spool, spool

DEFAULT_URL = "http://127.0.0.1:8100"
DEFAULT_BUDGET = 1.5
MAX_STDIN = 8 * 1024 * 1024


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


def read_payload(stream) -> dict:
    raw = stream.read(MAX_STDIN + 1)
    if len(raw) > MAX_STDIN:
        raise ValueError(f"hook input is larger than {MAX_STDIN} bytes")
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    payload = json.loads(text) if text.strip() else None
    if not isinstance(payload, dict):
        raise ValueError("hook input is not a JSON object")
    return payload


def _store_direct(turns: list[dict], store_path: str | None) -> list[dict]:
    """Write turns into the store at ``store_path``; return the ones that could not be written.
    Capture only commits: the service's watcher (or ``atocore index update``) indexes them."""
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


def run(name: str, stdin=None, stdout=None, store: str | None = None) -> int:
    """Handle one hook event for capture source ``name``. Always returns 0.

    ``store`` (``atocore --store PATH hook ...``, else ``$ATOCORE_STORE``): where turns are
    written when the server cannot be reached."""
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
            out = _run(name, stdin, deadline, store or os.environ.get("ATOCORE_STORE"))
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


def _run(name: str, stdin, deadline: Deadline, store: str | None) -> str:
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
        _deliver(name, turns, url, token, deadline, store)
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


def _deliver(name: str, turns: list[dict], url: str, token: str, deadline: Deadline, store: str | None) -> None:
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
            undelivered = _store_direct(undelivered, store)
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
