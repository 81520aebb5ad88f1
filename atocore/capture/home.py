"""Where capture keeps its local files, and the hook log.

``$ATOCORE_HOME`` (default ``~/.atocore``) holds ``logs/hook.log``, the spool of turns kept
while AtoCore was unreachable, and small caches. Stdlib only: the hook imports this on every
prompt.
"""

from __future__ import annotations

import os
import time

MAX_LOG_BYTES = 1024 * 1024


def atocore_home() -> str:
    return os.environ.get("ATOCORE_HOME") or os.path.join(os.path.expanduser("~"), ".atocore")


def log(message: str) -> None:
    """Append one line to the hook log; never raises."""
    try:
        folder = os.path.join(atocore_home(), "logs")
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
