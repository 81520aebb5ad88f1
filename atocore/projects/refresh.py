"""Refresh: stage a project's text sources into ``sources/<project>/`` as one commit, then re-index.

Only changed files are read into the commit: each file's git blob id is computed from disk and
compared with the tree on main, so an unchanged project costs one directory walk and no commit.
Files that cannot be staged (binary, too large, unreadable, not UTF-8) are skipped and counted
with the reason, never fatal. One refresh runs at a time per store (a lock file beside the
writer lock); a second one gets ``Busy("refresh in progress ...")`` unless it asks to wait.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Busy, ValidationError
from ..records import Project
from ..store import Store
from ..store.lock import try_lock
from ..store.objects import object_id
from .globs import matches
from .registry import get_project, projects

log = logging.getLogger("atocore.refresh")

MAX_FILE_BYTES = 4_000_000
ALWAYS_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", ".tox"}
REFRESH_LOCK = "atocore-refresh.lock"
LIST_LIMIT = 200  # files named per category in the commit message


@dataclass
class RefreshReport:
    project: str
    commit: str | None = None
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}
    index: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def skipped_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.skipped:
            out[s["reason"]] = out.get(s["reason"], 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"project": self.project, "commit": self.commit, "added": self.added, "changed": self.changed,
                "removed": self.removed, "unchanged": self.unchanged, "skipped": self.skipped,
                "skipped_counts": self.skipped_counts, "index": self.index, "seconds": round(self.seconds, 3)}


def _classify(data: bytes) -> str | None:
    """Why a file cannot be staged as text, or None if it can."""
    if b"\x00" in data[:8192]:
        return "binary"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    return None


def scan_sources(proj: Project, max_bytes: int = MAX_FILE_BYTES) -> tuple[dict[str, Path], list[dict[str, str]]]:
    """Files to stage ``{relative path: disk path}`` and the skipped ones with reasons."""
    found: dict[str, Path] = {}
    skipped: list[dict[str, str]] = []
    for root_cfg in proj.sources:
        root = Path(root_cfg.path).expanduser()
        if not root.is_dir():
            skipped.append({"path": root_cfg.path, "reason": "source folder missing"})
            continue
        for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: skipped.append(
                {"path": str(e.filename), "reason": "unreadable"})):
            dirnames[:] = sorted(d for d in dirnames if d not in ALWAYS_SKIP_DIRS)
            base = Path(dirpath)
            for fn in sorted(filenames):
                full = base / fn
                rel = full.relative_to(root).as_posix()
                if not matches(rel, root_cfg.include) or matches(rel, root_cfg.exclude):
                    continue
                if rel in found:
                    skipped.append({"path": rel, "reason": "same relative path in an earlier source folder"})
                    continue
                try:
                    st = full.stat()
                except OSError:
                    skipped.append({"path": rel, "reason": "unreadable"})
                    continue
                if not full.is_file():
                    skipped.append({"path": rel, "reason": "not a regular file"})
                    continue
                if st.st_size > max_bytes:
                    skipped.append({"path": rel, "reason": f"larger than {max_bytes} bytes"})
                    continue
                found[rel] = full
    return found, skipped


def _message(report: RefreshReport) -> str:
    counts = f"{len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed"
    lines = [f"Refresh sources of project {report.project}: {counts}", ""]
    for label, paths in (("Added", report.added), ("Changed", report.changed), ("Removed", report.removed)):
        if paths:
            lines.append(f"{label}:")
            lines += [f"  {p}" for p in paths[:LIST_LIMIT]]
            if len(paths) > LIST_LIMIT:
                lines.append(f"  ... and {len(paths) - LIST_LIMIT} more")
    if report.skipped:
        lines.append("Skipped: " + ", ".join(f"{n} {r}" for r, n in sorted(report.skipped_counts.items())))
    return "\n".join(lines)


def stage_project(store: Store, proj: Project, author: str | None = None,
                  max_bytes: int = MAX_FILE_BYTES) -> RefreshReport:
    """Stage ``proj``'s sources as one commit on main (none if nothing changed)."""
    report = RefreshReport(project=proj.id)
    found, report.skipped = scan_sources(proj, max_bytes)
    prefix = f"sources/{proj.id}/"
    changes: dict[str, bytes | None] = {}
    kept: set[str] = set()
    # Reading happens outside the writer lock: only refreshes touch sources/<project>/ and they are
    # serialised by the refresh lock, so the comparison with main stays valid until the commit.
    existing = store.files("main", prefix.rstrip("/")) if store.head() else {}
    for rel, full in found.items():
        try:
            data = full.read_bytes()
        except OSError:
            report.skipped.append({"path": rel, "reason": "unreadable"})
            continue
        why = _classify(data)
        if why:
            report.skipped.append({"path": rel, "reason": why})
            continue
        path = prefix + rel
        kept.add(path)
        old = existing.get(path)
        if old is None:
            report.added.append(rel)
        elif old != object_id(b"blob", data):
            report.changed.append(rel)
        else:
            report.unchanged += 1
            continue
        changes[path] = data
    for path in sorted(existing):
        if path not in kept:  # gone from disk, no longer included, or now unstageable
            changes[path] = None
            report.removed.append(path[len(prefix):])
    if changes:
        _snapshot(store, f"before refresh of project {proj.id}")
        report.commit = store.commit(changes, _message(report), author=author)
    return report


def _snapshot(store: Store, reason: str) -> None:
    """A backup/<timestamp> tag of main before it changes (the backup area's retention prunes them)."""
    try:
        from ..backup.snapshots import snapshot
    except ImportError:
        return
    try:
        snapshot(store, reason)
    except Exception as exc:  # a missing tag must never stop a refresh
        log.warning("snapshot before refresh failed: %s", exc)


class refresh_lock:
    """One refresh per store at a time (across threads and processes)."""

    def __init__(self, store: Store, wait: float = 0.0):
        self.path = store.path / REFRESH_LOCK
        self.wait = wait
        self.fd: int | None = None

    def __enter__(self) -> "refresh_lock":
        deadline = time.monotonic() + self.wait
        while True:
            self.fd = try_lock(self.path)
            if self.fd is not None:
                return self
            if time.monotonic() >= deadline:
                raise Busy("refresh in progress: another refresh of this store is running; try again when it ends")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None


def refresh(store: Store, project_id: str | None = None, retriever=None, author: str | None = None,
            wait: float = 0.0, update_index: bool = True, max_bytes: int = MAX_FILE_BYTES) -> list[RefreshReport]:
    """Refresh one project (or every registered one), then bring the index to main."""
    started = time.perf_counter()
    with refresh_lock(store, wait):
        if project_id is not None:
            targets = [get_project(store, project_id)]
        else:
            targets = list(projects(store).values())
            if not targets:
                raise ValidationError("project", "no project is registered yet; 'atocore project register ID --source DIR'")
        reports = [stage_project(store, p, author, max_bytes) for p in targets]
        index = None
        if update_index:
            if retriever is None:
                from ..retrieval import open_retriever

                retriever = open_retriever(store)
            index = retriever.update()
    elapsed = time.perf_counter() - started
    for r in reports:
        r.index = index
        r.seconds = elapsed
    return reports
