"""The backup drill: the whole backup/restore procedure, rehearsed on a scratch copy.

Nothing touches the real store except reading it (a file-level copy of the bare repository
and its index). Each step reports pass/fail; the drill stops at the first failure that
makes later steps meaningless.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..store.maintain import MAINTENANCE_LOCK
from ..store.repo import INDEX_DIR, LOCK_FILE, MAIN
from .push import push
from .recover import init_from
from .restore import restore

# Files of the real store that the scratch copy must not inherit (locks, backup state, service claim).
_SKIP = {"atocore.lock", "atocore-backup.json", "atocore-backup.json.lock", "atocore-service.lock",
         "maintenance.lock"}


@dataclass
class Step:
    name: str
    ok: bool | None       # None = skipped
    detail: str = ""
    seconds: float = 0.0


class _Abort(Exception):
    pass


def _copy_store(src: Path, dst: Path) -> None:
    def ignore(folder, names):
        skip = {n for n in names if n in _SKIP or n.endswith(".lock") and Path(folder) == src}
        if Path(folder) == src:
            skip.add(INDEX_DIR)
        return skip

    from ..store.lock import file_lock

    # The writer lock keeps refs consistent; the maintenance lock keeps a background
    # ``git repack`` from removing loose objects under the copy.
    with file_lock(src / LOCK_FILE), file_lock(src / MAINTENANCE_LOCK, 600, what="store maintenance"):
        shutil.copytree(src, dst, ignore=ignore, symlinks=True)
    index = src / INDEX_DIR
    if index.is_dir():  # a copy of the index makes the drill's re-index incremental
        try:
            shutil.copytree(index, dst / INDEX_DIR, symlinks=True)
        except (OSError, shutil.Error):
            shutil.rmtree(dst / INDEX_DIR, ignore_errors=True)  # being rewritten: the drill rebuilds it


def _retriever(store):
    from ..retrieval import open_retriever

    return open_retriever(store)


def _found(retriever, text: str, memory_id: str) -> bool:
    hits = retriever.search(text, k=10)
    return any(getattr(h, "id", None) == memory_id or memory_id in (getattr(h, "source", "") or "") for h in hits)


def drill(store, keep: bool = False, workdir: str | None = None,
          on_step: Callable[[Step], None] | None = None) -> dict:
    """Run the drill on a scratch copy of ``store``; returns ``{"ok", "steps", "scratch"}``."""
    from ..memories import add_memory
    from ..store import Store

    scratch = Path(tempfile.mkdtemp(prefix="atocore-drill-", dir=workdir))
    steps: list[Step] = []
    ctx: dict = {}

    def step(name: str, fn: Callable[[], str | None], required: bool = True) -> None:
        t0 = time.perf_counter()
        try:
            detail = fn()
            s = Step(name, True, detail or "")
        except _Skip as sk:
            s = Step(name, None, str(sk))
        except Exception as exc:  # noqa: BLE001 - a failed step is the drill's output
            s = Step(name, False, f"{type(exc).__name__}: {exc}")
        s.seconds = round(time.perf_counter() - t0, 3)
        steps.append(s)
        if on_step:
            on_step(s)
        if s.ok is False and required:
            raise _Abort

    def copy():
        _copy_store(Path(store.path), scratch / "store")
        ctx["store"] = Store(scratch / "store")
        ctx["remote"] = scratch / "remote.git"
        return f"copied {store.path.name} at {ctx['store'].head()[:12]} to a scratch folder"

    def marker():
        s = ctx["store"]
        ctx["before"] = s.head()
        token = uuid.uuid4().hex[:12]
        ctx["text"] = f"AtoCore drill marker {token}: the backup drill wrote this memory"
        mem = add_memory(s, ctx["text"], "episodic", source="drill", author="AtoCore drill <drill@localhost>")
        ctx["id"], ctx["path"], ctx["marker_commit"] = mem.id, mem.path, s.head()
        return f"memory {mem.id} in commit {ctx['marker_commit'][:12]}"

    def search_has(expect: bool):
        def run():
            r = _retriever(ctx["store"])
            r.update()  # the drill's own step: bring the scratch copy's index to main, then look
            found = _found(r, ctx["text"], ctx["id"])
            if found != expect:
                raise AssertionError(f"marker {'not ' if expect else ''}found in search results")
            return f"marker {'found' if found else 'absent'} in search results (index at {ctx['store'].head()[:12]})"
        return run

    def backup():
        rep = push(ctx["store"], str(ctx["remote"]), deep=True, create=True)
        res = rep["results"][0]
        if not rep["ok"]:
            raise RuntimeError(res.get("error"))
        v = res["verify"]
        return f"pushed {len(res['updated'])} refs, verified {v['objects_checked']} objects in {v['ms']} ms"

    def git_fsck():
        git = shutil.which("git")
        if git is None:
            raise _Skip("git CLI not installed")
        proc = subprocess.run([git, "--git-dir", str(ctx["remote"]), "fsck", "--strict", "--no-dangling"],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"git fsck failed: {proc.stderr.strip() or proc.stdout.strip()}")
        out = subprocess.run([git, "--git-dir", str(ctx["remote"]), "rev-parse", "refs/heads/main"],
                             capture_output=True, text=True, timeout=60).stdout.strip()
        if out != ctx["store"].head():
            raise RuntimeError(f"remote main is {out}, store main is {ctx['store'].head()}")
        return "git fsck clean; remote main equals store main"

    def restore_to(rev_key: str):
        def run():
            rep = restore(ctx["store"], ctx[rev_key])
            return (f"new commit {rep['commit'][:12]} (+{len(rep['added'])} ~{len(rep['changed'])} "
                    f"-{len(rep['removed'])}), safety snapshot {rep['snapshot']}")
        return run

    def store_has(expect: bool):
        def run():
            s = ctx["store"]
            present = s.read(ctx["path"]) is not None
            if present != expect:
                raise AssertionError(f"{ctx['path']} {'missing from' if expect else 'still in'} main")
            return f"{ctx['path']} {'present' if present else 'absent'} on main"
        return run

    def recover():
        rec = init_from(str(ctx["remote"]), scratch / "recovered")
        s = ctx["store"]
        try:
            if rec.head() != s.head() or rec.tree_id() != s.tree_id():
                raise AssertionError("the store recovered from the backup differs from the scratch store")
        finally:
            rec.repo.close()
        return f"recovered {rec.recovery['refs']} refs; main and its tree identical"

    try:
        step("copy the store to a scratch folder", copy)
        step("write a marker memory", marker)
        step("marker is searchable", search_has(True))
        step("back up to a scratch bare remote", backup)
        step("verify the backup with git fsck", git_fsck)
        step("restore to before the marker", restore_to("before"))
        step("marker gone from the store", store_has(False))
        step("marker gone from search results", search_has(False))
        step("restore forward to the marker", restore_to("marker_commit"))
        step("marker back in the store", store_has(True))
        step("marker back in search results", search_has(True))
        step("back up the restores (fast-forward)", backup)
        step("recover a store from the backup", recover)
    except _Abort:
        pass
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    ok = bool(steps) and all(s.ok is not False for s in steps) and len(steps) == 13
    return {"ok": ok, "steps": [asdict(s) for s in steps], "scratch": str(scratch) if keep else None,
            "store_head": store.head(MAIN)}


class _Skip(Exception):
    pass
