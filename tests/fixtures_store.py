"""Helpers for the store tests: the real git CLI, subprocess writers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from atocore.store.maintain import wait_idle

REPO_ROOT = Path(__file__).resolve().parents[1]


def git(*args: str, cwd: Path | str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd or os.getcwd()),
           "GIT_AUTHOR_NAME": "Pat Person", "GIT_AUTHOR_EMAIL": "pat@example.org",
           "GIT_COMMITTER_NAME": "Pat Person", "GIT_COMMITTER_EMAIL": "pat@example.org"}
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def fsck(store_path: Path | str) -> str:
    """``git fsck --strict`` must pass; returns its output (dangling objects are fine)."""
    wait_idle(Path(store_path))  # a background repack may be running: let it finish first
    proc = git("fsck", "--strict", "--no-progress", cwd=store_path, check=False)
    assert proc.returncode == 0, f"git fsck failed:\n{proc.stdout}\n{proc.stderr}"
    bad = [line for line in (proc.stdout + proc.stderr).splitlines()
           if line.strip() and not line.startswith(("dangling ", "Checking", "notice:"))]
    assert not bad, f"git fsck reported problems:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def python(code: str, *args: str) -> list[str]:
    """argv for running ``code`` in a fresh interpreter with the project importable."""
    return [sys.executable, "-c", code, *args]


# A writer process: adds memories and prints each id only after add_memory returned
# (i.e. after the commit is durable and main points at it).
WRITER = r"""
import sys
from atocore.store import open_store
from atocore.memories import add_memory
store = open_store(sys.argv[1])
tag, count = sys.argv[2], int(sys.argv[3])
from atocore.errors import Busy
for i in range(count):
    while True:
        try:
            m = add_memory(store, f"note {tag} {i}: torque the lens mount to spec", "knowledge", project="optics",
                           source=f"writer-{tag}")
            break
        except Busy:  # the lock was not free for 60 s (a loaded machine): nothing written; try again, as documented
            continue
    sys.stdout.write(m.id + "\n")
    sys.stdout.flush()
"""
