"""Crash safety: writers killed with SIGKILL at random moments never damage the store or
lose a write they acknowledged."""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time

from atocore.memories import add_memory, list_memories
from atocore.store import Store

from .fixtures_store import WRITER, fsck, python

ROUNDS = 14


def _run_and_kill(store_path, tag: str, delay: float) -> set[str]:
    proc = subprocess.Popen(python(WRITER, str(store_path), tag, "100000"), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    lines: list[bytes] = []
    started = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    started.wait(timeout=30)  # it is writing: now kill it somewhere inside a later write
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    reader.join(timeout=30)
    # only complete lines count: each was printed after add_memory had returned
    return {line.decode().strip() for line in lines if line.endswith(b"\n")}


def test_writers_killed_at_random_moments(store):
    rng = random.Random(20261126)
    acked: set[str] = set()
    for n in range(ROUNDS):
        acked |= _run_and_kill(store.path, str(n), rng.uniform(0.0, 0.25))
        fresh = Store(store.path)  # the store opens...
        present = {m.id for m in list_memories(fresh)}
        missing = acked - present
        assert not missing, f"round {n}: acknowledged writes lost: {sorted(missing)[:5]}"
        fsck(store.path)  # ...and git finds nothing wrong
    assert len(acked) > ROUNDS
    # and the next writer carries on normally (stale lock files are cleared)
    m = add_memory(Store(store.path), "after the storm", "episodic")
    assert m.id in {x.id for x in list_memories(Store(store.path))}
    assert all(len(c.parents) == 1 for c in Store(store.path).log()[:-1])
    fsck(store.path)
