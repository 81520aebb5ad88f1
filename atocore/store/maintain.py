"""Keeping the object store small: pack loose objects with ``git repack`` in the background.

Every memory write rewrites the ``memories/`` tree (~600 kB at 10,000 memories) as a loose
object, so 300 writes leave ~170 MB of loose objects; ``git repack`` turns them into a ~2 MB
pack (trees delta against each other). Writers check a cheap estimate after each commit (the
size of 4 of the 256 object folders, as ``git gc --auto`` samples one) and, past a threshold,
start a detached, low-priority job that holds ``maintenance.lock``, waits for a pause in writing
(main unmoved for 2 s; a repack's I/O would slow a burst of fsynced commits) and runs
``git repack -d`` (``-a`` once packs pile up). Packing is safe
alongside writers and readers: git writes the pack before removing the loose copies, and
writers never depend on an object being loose.

Unreachable objects (a rejected review's commits and trees, a writer killed before its ref
moved) are never packed by ``repack -d`` and would stay loose forever, keeping the estimate above
the threshold (a repack after every commit that achieves nothing). So when loose objects are
still over the threshold after the incremental repack, or packs pile up, the job consolidates:
``git repack -a -d --cruft`` packs everything reachable into one pack and the unreachable
objects into a *cruft pack* (deltified, so a year of rejected proposals is a few MB), dropping
those unreachable for more than two weeks (git gc's default expiry).

``ATOCORE_AUTO_PACK=0`` turns the automatic start off; :func:`pack` runs it by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .lock import file_lock, try_lock
from .objects import ensure_fanout

MAINTENANCE_LOCK = "maintenance.lock"
SAMPLE_DIRS = ("17", "4a", "b3", "e8")  # git gc --auto samples "17"; four dirs halve the noise
MAX_LOOSE_BYTES = 32 << 20     # estimated (or this process's) loose bytes that start a repack
# (32 MB, not 128: a year's store packs to ~40 MB, and loose objects on top must keep the store
# within 2x of its `git gc --aggressive` size; bench/year.py)
MIN_LOOSE_BYTES = 4 << 20      # below MAX_LOOSE_BYTES the limit is half the packs' size, at least this
# (an absolute 32 MB is three times a whole quarter-year store's packed size: 3.7x gc --aggressive
# on a fresh build; loose objects up to half the packs keep the store near 1.7x at any size)
MAX_LOOSE_OBJECTS = 2048       # ... or estimated loose objects
MAX_PACKS = 8                  # more packs than this: consolidate them (repack -a --cruft)
IDLE_SECONDS = 2.0             # repack once main has not moved for this long ...
MAX_WAIT_SECONDS = 600.0       # ... or after this long anyway
URGENT_LOOSE_BYTES = 16 * MAX_LOOSE_BYTES  # ... or at once past this (512 MB, as before)
CRUFT_EXPIRY = "2.weeks.ago"   # unreachable objects older than this are dropped at consolidation


def loose_estimate(objects_dir: Path) -> tuple[int, int]:
    """(objects, bytes) of loose objects, estimated from 4 of the 256 folders."""
    count = size = 0
    for name in SAMPLE_DIRS:
        try:
            with os.scandir(objects_dir / name) as it:
                for entry in it:
                    count += 1
                    size += entry.stat().st_size
        except FileNotFoundError:
            pass
    return count * 64, size * 64


def pack_count(objects_dir: Path) -> int:
    try:
        return sum(1 for p in os.listdir(objects_dir / "pack") if p.endswith(".pack"))
    except FileNotFoundError:
        return 0


def _git_version() -> tuple[int, ...]:
    try:
        out = subprocess.run(["git", "--version"], capture_output=True, text=True, timeout=30).stdout
        return tuple(int(x) for x in out.split()[2].split(".")[:2])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return (0,)


def _command(objects_dir: Path, full: bool) -> list[str]:
    full = full or pack_count(objects_dir) >= MAX_PACKS
    base = ["git", "-c", "gc.auto=0", "-c", "pack.threads=1", "repack", "-d", "-q"]
    if not full:
        return base
    if _git_version() >= (2, 37):  # cruft packs: unreachable objects packed, not left loose
        return [*base, "--cruft", f"--cruft-expiration={CRUFT_EXPIRY}"]
    return [*base, "-a"]


def run_policy(store_path: Path) -> int:
    """One maintenance pass (call with ``maintenance.lock`` held): an incremental repack, then a
    consolidating one if loose objects are still over the threshold (unreachable ones) or packs
    piled up. Returns git's exit code."""
    objects_dir = store_path / "objects"
    full = pack_count(objects_dir) >= MAX_PACKS
    code = 0
    if not full:
        code = subprocess.run(_command(objects_dir, False), cwd=store_path, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        full = code == 0 and needs_pack(objects_dir)
    if full:
        code = subprocess.run(_command(objects_dir, True), cwd=store_path, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    ensure_fanout(objects_dir)
    return code


def packed_bytes(objects_dir: Path) -> int:
    try:
        with os.scandir(objects_dir / "pack") as it:
            return sum(e.stat().st_size for e in it if e.name.endswith(".pack"))
    except FileNotFoundError:
        return 0


def loose_limit(objects_dir: Path) -> int:
    """Loose bytes that start a repack: half the packs' size, within [4 MB, 32 MB]."""
    return min(MAX_LOOSE_BYTES, max(MIN_LOOSE_BYTES, packed_bytes(objects_dir) // 2))


def needs_pack(objects_dir: Path) -> bool:
    count, size = loose_estimate(objects_dir)
    return size > loose_limit(objects_dir) or count > MAX_LOOSE_OBJECTS


def maybe_pack(store_path: Path, written: int = 0) -> bool:
    """Start a background repack if loose objects piled up; True if one was started.

    ``written``: loose bytes this process wrote since its last repack (exact, unlike the
    estimate, which samples only 4 of the 256 object folders).
    """
    if os.environ.get("ATOCORE_AUTO_PACK", "1") == "0":
        return False
    objects_dir = store_path / "objects"
    if not (written > loose_limit(objects_dir) or needs_pack(objects_dir)) or shutil.which("git") is None:
        return False
    fd = try_lock(store_path / MAINTENANCE_LOCK)
    if fd is None:
        return False  # one is already running (or waiting for the store to go idle)
    try:
        # The child inherits the locked descriptor and holds the lock until it exits. It waits
        # for a pause in writing first: a repack's I/O slows a burst of fsynced commits down.
        proc = subprocess.Popen([sys.executable, "-m", "atocore.store.maintain", str(store_path)],
                                cwd=store_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, pass_fds=(fd,), start_new_session=True, close_fds=True)
        try:  # background work: leave the CPU to writers and readers
            os.setpriority(os.PRIO_PROCESS, proc.pid, 19)
        except OSError:
            pass
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _last_write(store_path: Path) -> float:
    times = []
    for p in (store_path / "refs" / "heads" / "main", store_path / "packed-refs"):
        try:
            times.append(p.stat().st_mtime)
        except FileNotFoundError:
            pass
    return max(times, default=0.0)


def wait_for_idle_then_pack(store_path: Path) -> int:
    """The background job: wait until main stops moving (or it is urgent), then repack."""
    objects_dir = store_path / "objects"
    start = time.monotonic()
    while time.monotonic() - start < MAX_WAIT_SECONDS:
        if time.time() - _last_write(store_path) >= IDLE_SECONDS:
            break
        if loose_estimate(objects_dir)[1] > URGENT_LOOSE_BYTES:
            break
        time.sleep(0.5)
    return run_policy(store_path)


def pack(store_path: Path, full: bool = False, timeout: float = 600) -> dict:
    """Repack now (waits for a running background repack first); returns before/after figures."""
    if shutil.which("git") is None:
        return {"packed": False, "reason": "git is not installed"}
    objects_dir = store_path / "objects"
    before = loose_estimate(objects_dir)
    with file_lock(store_path / MAINTENANCE_LOCK, timeout, what="store maintenance"):
        proc = subprocess.run(_command(objects_dir, full), cwd=store_path, capture_output=True, text=True,
                              timeout=timeout)
        ensure_fanout(objects_dir)
    return {"packed": proc.returncode == 0, "error": proc.stderr.strip() or None,
            "loose_before": before[0], "loose_after": loose_estimate(objects_dir)[0],
            "packs": pack_count(objects_dir)}


def wait_idle(store_path: Path, timeout: float = 120) -> None:
    """Block until no background repack is running (tests, backups, shutdown)."""
    with file_lock(store_path / MAINTENANCE_LOCK, timeout, what="store maintenance"):
        pass


if __name__ == "__main__":  # the detached job started by maybe_pack
    sys.exit(wait_for_idle_then_pack(Path(sys.argv[1])))
