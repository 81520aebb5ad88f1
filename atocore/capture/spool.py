"""The spool: turns the hook could not deliver, kept (redacted) for the next successful capture.

``$ATOCORE_HOME/spool/<source>.jsonl`` holds them; a turn the server refuses twice moves to
``<source>.refused.jsonl`` instead of being re-sent forever. Stdlib only (redaction is
imported when a turn is actually spooled).
"""

from __future__ import annotations

import json
import os
import time

from .client import Deadline, HttpError
from .home import atocore_home, log


def spool_path(source: str) -> str:
    return os.path.join(atocore_home(), "spool", f"{source}.jsonl")


def spool(turns: list[dict], source: str) -> None:
    """Keep turns that could not be delivered; they are sent with the next successful capture."""
    try:
        from ..redact import redact, redact_value  # secrets never rest on disk in our files either

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
    return os.path.join(atocore_home(), "spool", f"{source}.refused.jsonl")


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
