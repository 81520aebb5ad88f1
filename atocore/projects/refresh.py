"""Refresh: stage a project's text sources into ``sources/<project>/`` as one commit.

A writer only: the index follows main afterwards (the service's watcher, or the CLI's step after
its own write, :mod:`atocore.cli.follow`), so ``RefreshReport.index`` is filled in by them.

Only changed files are read into the commit: each file's git blob id is computed from disk and
compared with the tree on main, so an unchanged project costs one directory walk and no commit.
Files that cannot be staged (binary, too large, unreadable, not UTF-8) are skipped and counted
with the reason, never fatal. One refresh runs at a time per store (a lock file beside the
writer lock); a second one gets ``Busy("refresh in progress ...")`` unless it asks to wait.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..redact import redact
from ..config import DEFAULT_REFRESH, load_config
from ..errors import Busy, ValidationError
from ..gate import check_files, layout_problem, require_ok
from ..records import Project
from ..store import Store
from ..store.lock import try_lock
from ..store.objects import object_id
from ..store.paths import printable, reserved_segment
from ..store.snapshots import snapshot
from .globs import matches
from .registry import get_project, projects

log = logging.getLogger("atocore.refresh")

MAX_FILE_BYTES = 4_000_000
ALWAYS_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", ".tox"}
REFRESH_LOCK = "atocore-refresh.lock"
LIST_LIMIT = 200  # files named per category in the commit message
_REDACTED = re.compile(r"\[REDACTED:([a-z0-9-]+)\]")


@dataclass
class RefreshReport:
    project: str
    commit: str | None = None
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}
    redacted: list[dict[str, Any]] = field(default_factory=list)  # {"path", "secrets", "kinds"}
    index: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def redacted_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.redacted:
            for kind in r["kinds"]:
                out[kind] = out.get(kind, 0) + 1
        return out

    @property
    def skipped_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.skipped:
            out[s["reason"]] = out.get(s["reason"], 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"project": self.project, "commit": self.commit, "added": self.added, "changed": self.changed,
                "removed": self.removed, "unchanged": self.unchanged, "skipped": self.skipped,
                "skipped_counts": self.skipped_counts,
                "redacted": self.redacted, "redacted_counts": self.redacted_counts, "index": self.index, "seconds": round(self.seconds, 3)}


def _classify(data: bytes) -> str | None:
    """Why a file cannot be staged as text, or None if it can."""
    if b"\x00" in data[:8192]:
        return "binary"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    return None


@dataclass(frozen=True)
class RefreshCaps:
    """What one refresh may stage (``refresh:`` and ``limits:`` in atocore.yaml)."""

    max_file_bytes: int = MAX_FILE_BYTES
    max_files: int = DEFAULT_REFRESH["max_files"]       # entries looked at per project, all roots together
    max_bytes: int = DEFAULT_REFRESH["max_bytes"]       # total bytes staged per project
    follow_symlinks: bool = False                       # True: follow symlinks that stay inside their root


def caps_of(store: Store, max_bytes: int | None = None) -> RefreshCaps:
    cfg = load_config(store)
    file_cap = min(cfg.limits["max_file_bytes"], max_bytes if max_bytes is not None else MAX_FILE_BYTES)
    return RefreshCaps(max_file_bytes=file_cap, max_files=cfg.refresh["max_files"],
                       max_bytes=cfg.refresh["max_bytes"], follow_symlinks=cfg.refresh["follow_symlinks"])


def _within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def scan_sources(proj: Project, max_bytes: int = MAX_FILE_BYTES, caps: RefreshCaps | None = None
                 ) -> tuple[dict[str, Path], list[dict[str, str]]]:
    """Files to stage ``{relative path: disk path}`` and the skipped ones with reasons.

    Nothing outside a source root is ever read: symlinks are skipped (or, with
    ``refresh.follow_symlinks``, followed only when their target resolves inside the same
    root), and folders reached through symlinks are never entered. A walk that meets more than
    ``refresh.max_files`` entries, or files totalling more than ``refresh.max_bytes``, stops
    with a ``ValidationError`` and stages nothing (a source root of ``/`` is refused, not read).
    """
    caps = caps or RefreshCaps(max_file_bytes=max_bytes)
    found: dict[str, Path] = {}
    skipped: list[dict[str, str]] = []
    seen = 0
    total = 0
    for root_cfg in proj.sources:
        root = Path(root_cfg.path).expanduser()
        if not root.is_dir():
            skipped.append({"path": root_cfg.path, "reason": "source folder missing"})
            continue
        real_root = root.resolve()
        for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: skipped.append(
                {"path": printable(str(e.filename)), "reason": "unreadable"})):
            seen += len(dirnames) + len(filenames)
            if seen > caps.max_files:
                raise ValidationError("sources", f"project {proj.id}: the source folders hold more than "
                                      f"{caps.max_files} entries (refresh.max_files in atocore.yaml); narrow the "
                                      "source path or its include/exclude globs, or raise the cap. Nothing was staged")
            dirnames[:] = sorted(d for d in dirnames if d not in ALWAYS_SKIP_DIRS and not reserved_segment(d))
            base = Path(dirpath)
            for fn in sorted(filenames):
                full = base / fn
                rel = full.relative_to(root).as_posix()
                if not matches(rel, root_cfg.include) or matches(rel, root_cfg.exclude):
                    continue
                why = layout_problem(f"sources/{proj.id}/{rel}")
                if why:
                    skipped.append({"path": printable(rel), "reason": f"name not allowed in the store ({why})"})
                    continue
                if rel in found:
                    skipped.append({"path": rel, "reason": "same relative path in an earlier source folder"})
                    continue
                try:
                    st = full.lstat()
                except OSError:
                    skipped.append({"path": rel, "reason": "unreadable"})
                    continue
                target = full
                if stat.S_ISLNK(st.st_mode):
                    if not caps.follow_symlinks:
                        skipped.append({"path": rel, "reason": "symlink (not followed)"})
                        continue
                    try:
                        target = full.resolve(strict=True)
                        st = target.stat()
                    except (OSError, RuntimeError):
                        skipped.append({"path": rel, "reason": "unreadable"})
                        continue
                    if not _within(target, real_root):
                        skipped.append({"path": rel, "reason": "symlink pointing outside the source folder"})
                        continue
                if not stat.S_ISREG(st.st_mode):
                    skipped.append({"path": rel, "reason": "not a regular file"})
                    continue
                if st.st_size > caps.max_file_bytes:
                    skipped.append({"path": rel, "reason": f"larger than {caps.max_file_bytes} bytes"})
                    continue
                total += st.st_size
                if total > caps.max_bytes:
                    raise ValidationError("sources", f"project {proj.id}: the source files total more than "
                                          f"{caps.max_bytes} bytes (refresh.max_bytes in atocore.yaml); narrow the "
                                          "source path or its globs, or raise the cap. Nothing was staged")
                found[rel] = target
    return found, skipped


def _read_source(path: Path, follow: bool, max_bytes: int) -> bytes:
    """Read a regular file without following a symlink swapped in since the scan (O_NOFOLLOW),
    without blocking on a FIFO (O_NONBLOCK), and no more than the cap."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
            raise OSError("changed since the scan")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise OSError("grew past the cap while reading")
        return data
    finally:
        os.close(fd)


def _line(name: str) -> str:
    return printable(name)


def _message(report: RefreshReport) -> str:
    counts = f"{len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed"
    lines = [f"Refresh sources of project {report.project}: {counts}", ""]
    for label, paths in (("Added", report.added), ("Changed", report.changed), ("Removed", report.removed)):
        if paths:
            lines.append(f"{label}:")
            lines += [f"  {_line(p)}" for p in paths[:LIST_LIMIT]]
            if len(paths) > LIST_LIMIT:
                lines.append(f"  ... and {len(paths) - LIST_LIMIT} more")
    if report.redacted:
        lines.append(f"Redacted: {sum(report.redacted_counts.values())} secrets in {len(report.redacted)} files ("
                     + ", ".join(f"{n} {k}" for k, n in sorted(report.redacted_counts.items())) + ")")
    if report.skipped:
        lines.append("Skipped: " + ", ".join(f"{n} {_line(r)}" for r, n in sorted(report.skipped_counts.items())))
    return "\n".join(lines)


def stage_project(store: Store, proj: Project, author: str | None = None,
                  max_bytes: int = MAX_FILE_BYTES) -> RefreshReport:
    """Stage ``proj``'s sources as one commit on main (none if nothing changed).

    Every file goes through the capture redactor (with ``capture.redact_patterns``) before it is
    compared and committed, and the whole change through the gate.
    """
    report = RefreshReport(project=proj.id)
    caps = caps_of(store, max_bytes)
    cfg = load_config(store)
    patterns = tuple(cfg.redact_patterns)
    found, report.skipped = scan_sources(proj, caps=caps)
    prefix = f"sources/{proj.id}/"
    changes: dict[str, bytes | None] = {}
    kept: set[str] = set()
    # Reading happens outside the writer lock: only refreshes touch sources/<project>/ and they are
    # serialised by the refresh lock, so the comparison with main stays valid until the commit.
    existing = store.files("main", prefix.rstrip("/")) if store.head() else {}
    for rel, full in found.items():
        try:
            data = _read_source(full, caps.follow_symlinks, caps.max_file_bytes)
        except OSError:
            report.skipped.append({"path": rel, "reason": "unreadable"})
            continue
        why = _classify(data)
        if why:
            report.skipped.append({"path": rel, "reason": why})
            continue
        text = data.decode("utf-8")
        clean = redact(text, patterns)
        if clean != text:
            kinds = _REDACTED.findall(clean)
            before = _REDACTED.findall(text)
            report.redacted.append({"path": rel, "secrets": max(len(kinds) - len(before), 1),
                                    "kinds": sorted(set(kinds) - set(before)) or ["private"]})
            data = clean.encode("utf-8")
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
        require_ok(check_files(store, changes, patterns=patterns), f"refresh of project {proj.id}")
        _snapshot(store, f"before refresh of project {proj.id}")
        report.commit = store.commit(changes, _message(report), author=author)
    return report


def _snapshot(store: Store, reason: str) -> None:
    """A backup/<timestamp> tag of main before it changes (the backup area's retention prunes them)."""
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


def refresh(store: Store, project_id: str | None = None, author: str | None = None,
            wait: float = 0.0, max_bytes: int = MAX_FILE_BYTES) -> list[RefreshReport]:
    """Refresh one project (or every registered one): at most one commit per project."""
    started = time.perf_counter()
    with refresh_lock(store, wait):
        if project_id is not None:
            targets = [get_project(store, project_id)]
        else:
            targets = list(projects(store).values())
            if not targets:
                raise ValidationError("project", "no project is registered yet; 'atocore project register ID --source DIR'")
        reports = [stage_project(store, p, author, max_bytes) for p in targets]
    elapsed = time.perf_counter() - started
    for r in reports:
        r.seconds = elapsed
    return reports
