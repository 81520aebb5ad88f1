"""The path history index: path -> the commits of main's first-parent history that changed it.

Derived and disposable, like the search index: one SQLite file in the store's index folder
(``atocore-index/history.sqlite``, never in git), stamped with the main commit it reflects.
:meth:`HistoryIndex.update` brings it to main by walking first parents back from main to the
stamp and diffing each new commit against its first parent; if the stamp is not on that walk
(a restore, a force push, a pushed merge that re-parents main) or the file is missing, stale
in format or corrupt, it is rebuilt from the store. So history costs one indexed lookup
instead of a walk over every commit.

Semantics are those of :meth:`Store._path_log` (the walk it replaces, still used for
revisions off main's first-parent chain): a commit is listed for a path when the entry at
that path (file or folder) differs from its first parent's, so an approved review appears
as its merge commit and the branch's own commits do not.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

from .lock import file_lock

T = TypeVar("T")

if TYPE_CHECKING:
    from .repo import Store

FILE_NAME = "history.sqlite"
FORMAT = "3"  # 3: the review ids named by main's commits
BATCH = 2000  # commits per transaction while (re)building

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE commits (pos INTEGER PRIMARY KEY, sha BLOB NOT NULL UNIQUE);
CREATE TABLE paths (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE);
CREATE TABLE merged (sha BLOB PRIMARY KEY, pos INTEGER NOT NULL);
CREATE TABLE touches (path INTEGER NOT NULL, pos INTEGER NOT NULL, added INTEGER NOT NULL,
                      PRIMARY KEY (path, pos)) WITHOUT ROWID;
CREATE TABLE reviewed (id TEXT PRIMARY KEY, pos INTEGER NOT NULL) WITHOUT ROWID;
"""
_REVIEW_ID = re.compile(rb"^Review-Id:\s*(\S+)", re.M)  # as capture/extract.py's walk reads them


_ENTRY = re.compile(rb"([0-7]+) ([^\0]*)\0(.{20})", re.S)
_TREE = re.compile(rb"(?:[0-7]+ [^\0]*\0.{20})*", re.S)


def parse_tree_entries(raw: bytes) -> list[tuple[bytes, bytes, bytes]]:
    """``(mode, name, raw sha)`` of every entry of a serialised git tree (one C-level scan)."""
    if _TREE.fullmatch(raw) is None:
        raise ValueError("malformed tree object")
    return _ENTRY.findall(raw)


def _is_dir(mode: bytes) -> bool:
    return stat.S_ISDIR(int(mode, 8))


class HistoryIndex:
    """The history index of one store (one per :class:`Store` handle; thread-safe)."""

    def __init__(self, store: "Store"):
        self.store = store
        self.path: Path = store.index_dir / FILE_NAME
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None  # kept open for reads (one per handle)
        self._db_key: tuple[int, int] | None = None
        self._parsed: dict[bytes, frozenset] = {}  # a few parsed trees (raw sha -> entries)
        self.last_action: str | None = None  # "rebuild", "update" or "none" (for benchmarks/tests)

    # ------------------------------------------------------------------ diffing

    def _tree(self, sha: bytes) -> list[tuple[bytes, bytes, bytes]]:
        return list(self._tree_set(sha))

    def _tree_set(self, sha: bytes) -> frozenset[tuple[bytes, bytes, bytes]]:
        # consecutive commits share trees (this commit's new tree is the next one's old tree)
        entries = self._parsed.get(sha)
        if entries is None:
            _type, raw = self.store._raw(sha.hex())
            entries = frozenset(parse_tree_entries(raw))
            if len(self._parsed) >= 32:
                self._parsed.pop(next(iter(self._parsed)))
            self._parsed[sha] = entries
        return entries

    def _all_files(self, sha: bytes, base: str, added: bool, out: list[tuple[str, int]]) -> None:
        for mode, name, child in self._tree(sha):
            path = base + name.decode("utf-8", "replace")
            if _is_dir(mode):
                self._all_files(child, path + "/", added, out)
            else:
                out.append((path, int(added)))

    def _diff(self, old: bytes | None, new: bytes | None, base: str, out: list[tuple[str, int]]) -> None:
        """``(path, added)`` for every file that differs between two trees (raw shas)."""
        sa = self._tree_set(old) if old is not None else frozenset()
        sb = self._tree_set(new) if new is not None else frozenset()
        a = {name: (mode, sha) for mode, name, sha in sa - sb}  # only the entries that differ
        b = {name: (mode, sha) for mode, name, sha in sb - sa}
        for name in a.keys() | b.keys():
            ea, eb = a.get(name), b.get(name)
            if ea is not None and eb is not None and ea[1] == eb[1]:
                continue  # same object: unchanged (a mode-only change is no change, as in the walk)
            path = base + name.decode("utf-8", "replace")
            da = ea is not None and _is_dir(ea[0])
            db = eb is not None and _is_dir(eb[0])
            if da and db:
                self._diff(ea[1], eb[1], path + "/", out)
                continue
            if da:
                self._all_files(ea[1], path + "/", False, out)
            elif ea is not None:
                out.append((path, 0))  # a file changed, deleted or replaced by a folder
            if db:
                self._all_files(eb[1], path + "/", True, out)
            elif eb is not None:
                out.append((path, int(ea is None or da)))

    def changed_paths(self, sha: str) -> list[tuple[str, int]]:
        """Files a commit changed against its first parent, with whether each was added."""
        commit = self.store._commit(sha)
        parent = commit.parents[0].decode() if commit.parents else None
        old = bytes.fromhex(self.store._tree_of(parent)) if parent else None
        out: list[tuple[str, int]] = []
        self._diff(old, bytes.fromhex(commit.tree.decode()), "", out)
        return out

    # ------------------------------------------------------------------ the file

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # disposable: a torn file is detected and rebuilt
        return db

    def _open(self) -> sqlite3.Connection | None:
        """The index file if it is usable (right format, intact), else None."""
        if not self.path.exists():
            return None
        try:
            db = self._connect()
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") != FORMAT or "head" not in meta:
                db.close()
                return None
            return db
        except sqlite3.DatabaseError:
            return None

    def _reader(self) -> sqlite3.Connection | None:
        """The cached read connection to the current file (reopened when the file was replaced)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._close_reader()
            return None
        key = (st.st_ino, st.st_dev)
        if self._db is None or self._db_key != key:
            self._close_reader()
            self._db, self._db_key = self._open(), key
        return self._db

    def _close_reader(self) -> None:
        if self._db is not None:
            self._db.close()
        self._db = self._db_key = None

    def _remove(self) -> None:
        self._close_reader()
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(str(self.path) + suffix)
            except FileNotFoundError:
                pass

    @staticmethod
    def _meta(db: sqlite3.Connection) -> tuple[str, int]:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        return meta["head"], int(meta["count"])

    # ------------------------------------------------------------------ keeping up with main

    def update(self, head: str | None = None) -> str:
        """Bring the index to main (or ``head``); returns "none", "update" or "rebuild"."""
        head = head if head is not None else self.store.head()
        with self._lock:
            try:  # the common case, without taking the file lock: already at main
                db = self._reader()
                if db is not None and self._meta(db)[0] == (head or ""):
                    self.last_action = "none"
                    return "none"
            except (sqlite3.DatabaseError, KeyError, ValueError):
                self._close_reader()
            self.store.index_dir.mkdir(parents=True, exist_ok=True)
            with file_lock(self.store.index_dir / "history.lock", timeout=600, what="the history index"):
                try:
                    action = self._update_locked(head)
                except sqlite3.DatabaseError:  # corrupt in a way only a query shows: start again
                    self._remove()
                    action = self._update_locked(head)
            self.last_action = action
            return action

    def _update_locked(self, head: str | None) -> str:
        db = self._open()
        if db is not None:
            try:
                stamp, count = self._meta(db)
                if stamp == (head or ""):
                    return "none"
                new = self._first_parents_since(head, stamp) if head else None
                if new is not None:
                    self._append(db, new, count, head)
                    return "update"
            finally:
                db.close()
        self._rebuild(head)
        return "rebuild"

    def _first_parents_since(self, head: str, stamp: str) -> list[str] | None:
        """main's first-parent commits after ``stamp``, oldest first (None: stamp not on the walk)."""
        if not stamp:
            return None
        out: list[str] = []
        sha: str | None = head
        while sha is not None and sha != stamp:
            out.append(sha)
            parents = self.store._commit(sha).parents
            sha = parents[0].decode() if parents else None
        if sha is None:
            return None
        out.reverse()
        return out

    def _start_git_log(self, head: str) -> subprocess.Popen | None:
        """Start ``git log`` for :meth:`_git_changes` (it runs while Python walks the chain)."""
        if shutil.which("git") is None:
            return None
        out = tempfile.TemporaryFile()  # not a pipe: git must not wait for us to read (MBs)
        try:
            proc = subprocess.Popen(
                ["git", "--git-dir", str(self.store.path), "-c", "core.quotepath=off", "log", "--first-parent",
                 "--diff-merges=first-parent", "--raw", "--no-abbrev", "--no-renames", "-z", "--format=%H", head],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL)
        except OSError:
            out.close()
            return None
        proc.stdout = out  # (read by _git_changes once git is done)
        return proc

    def _git_changes(self, proc: subprocess.Popen | None) -> dict[str, list[tuple[str, int]]] | None:
        """Every first-parent commit's changed files from the real git CLI (C speed: a rebuild of
        50,000 commits reads packed trees in seconds, not minutes); None if git is unavailable."""
        if proc is None:
            return None
        out = proc.stdout
        proc.stdout = None
        with out:
            try:
                proc.wait(timeout=3600)
            except subprocess.SubprocessError:
                proc.kill()
                proc.wait()
                return None
            if proc.returncode != 0:
                return None
            out.seek(0)
            stdout = out.read()
        out: dict[str, list[tuple[str, int]]] = {}
        current: list[tuple[str, int]] | None = None
        tokens = stdout.split(b"\0")
        i = 0
        while i < len(tokens):
            tok = tokens[i].lstrip(b"\n")
            i += 1
            if tok.startswith(b":"):  # ":oldmode newmode oldsha newsha status", then the path
                _om, _nm, old, new, status = tok[1:].split(b" ")
                path = tokens[i].decode("utf-8", "replace")
                i += 1
                if current is not None and old != new:  # a mode-only change is no change (as the walk)
                    current.append((path, int(status == b"A")))
            elif len(tok) == 40:
                current = out.setdefault(tok.decode(), [])
            elif tok:
                return None  # not what we asked for: use the Python diff
        return out

    def _append(self, db: sqlite3.Connection, shas: list[str], count: int, head: str | None,
                known_changes: dict[str, list[tuple[str, int]]] | None = None) -> None:
        path_ids: dict[str, int] = {}

        def path_id(path: str) -> int:
            pid = path_ids.get(path)
            if pid is None:
                row = db.execute("SELECT id FROM paths WHERE path = ?", (path,)).fetchone()
                if row is None:
                    pid = db.execute("INSERT INTO paths (path) VALUES (?)", (path,)).lastrowid
                else:
                    pid = row[0]
                path_ids[path] = pid
            return pid

        chain = set(shas)

        def known(sha: bytes) -> bool:  # already reachable from main (on the chain or merged in)
            return (sha.decode() in chain
                    or db.execute("SELECT 1 FROM commits WHERE sha = ?", (bytes.fromhex(sha.decode()),)).fetchone()
                    is not None
                    or db.execute("SELECT 1 FROM merged WHERE sha = ?", (bytes.fromhex(sha.decode()),)).fetchone()
                    is not None)

        def reviewed(message: bytes, pos: int) -> None:  # "Review-Id:" trailers (approve, reject, propose)
            for rid in _REVIEW_ID.findall(message):
                db.execute("INSERT OR IGNORE INTO reviewed (id, pos) VALUES (?, ?)", (rid.decode("utf-8", "replace"), pos))

        for start in range(0, len(shas), BATCH):
            chunk = shas[start:start + BATCH]
            db.execute("BEGIN IMMEDIATE")
            try:
                for i, sha in enumerate(chunk, count + start):
                    db.execute("INSERT INTO commits (pos, sha) VALUES (?, ?)", (i, bytes.fromhex(sha)))
                    commit = self.store._commit(sha)
                    parents = commit.parents
                    reviewed(commit.message, i)
                    if len(parents) > 1:  # a merge: remember the commits it brings in (a review branch's)
                        todo = [p for p in parents[1:] if not known(p)]
                        while todo:
                            c = todo.pop()
                            if known(c):
                                continue
                            db.execute("INSERT INTO merged (sha, pos) VALUES (?, ?)", (bytes.fromhex(c.decode()), i))
                            merged = self.store._commit(c)
                            reviewed(merged.message, i)
                            todo += [p for p in merged.parents if not known(p)]
                    changes = known_changes.get(sha) if known_changes is not None else None
                    if changes is None:
                        changes = self.changed_paths(sha)
                    db.executemany("INSERT OR REPLACE INTO touches (path, pos, added) VALUES (?, ?, ?)",
                                   [(path_id(p), i, a) for p, a in changes])
                last = start + len(chunk) == len(shas)
                stamp = (head or "") if last else chunk[-1]
                db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                               [("head", stamp), ("count", str(count + start + len(chunk)))])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                path_ids.clear()
                raise

    def _rebuild(self, head: str | None) -> None:
        self._remove()
        tmp = self.path.with_name(FILE_NAME + ".tmp")
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.unlink(str(tmp) + suffix)
            except FileNotFoundError:
                pass
        git_log = self._start_git_log(head) if head else None  # C, in parallel with the walk below
        shas: list[str] = []
        sha = head
        try:
            while sha is not None:
                shas.append(sha)
                parents = self.store._commit(sha).parents
                sha = parents[0].decode() if parents else None
            shas.reverse()
            known = self._git_changes(git_log)
            git_log = None
        finally:
            if git_log is not None:  # the walk failed: stop git too
                git_log.kill()
                git_log.wait()
                git_log.stdout.close()
        if known is not None and len(known) != len(shas):
            known = None  # git saw another history than we walked: trust the walk
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.executescript(_SCHEMA)
            db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                           [("format", FORMAT), ("head", ""), ("count", "0")])
            self._append(db, shas, 0, head, known)
        finally:
            db.close()
        os.replace(tmp, self.path)  # readers see the old file or the whole new one

    # ------------------------------------------------------------------ reading

    def lookup(self, start: str, path: str, limit: int | None = None,
               until_added: bool = False) -> list[str] | None:
        """Commit shas that changed ``path`` on main's first-parent history up to ``start``,
        newest first; None when ``start`` is not on main's first-parent chain (walk instead)."""
        return self._ask(None, lambda db: self._lookup(db, start, path, limit, until_added))

    def _ask(self, main: str | None, question: Callable[[sqlite3.Connection], T],
             damaged: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)) -> T | None:
        """Bring the index to ``main`` (None: main as it is now) and answer ``question`` from it;
        None when the index cannot answer (a ``damaged`` error also closes the reader): the
        caller walks the history instead."""
        with self._lock:
            self.update(main)
            db = self._reader()
            if db is None:
                return None
            try:
                return question(db)
            except damaged:
                self._close_reader()
                return None

    @staticmethod
    def _lookup(db: sqlite3.Connection, start: str, path: str, limit: int | None, until_added: bool) -> list[str] | None:
        row = db.execute("SELECT pos FROM commits WHERE sha = ?", (bytes.fromhex(start),)).fetchone()
        if row is None:
            return None
        top = row[0]
        exact = db.execute("SELECT id FROM paths WHERE path = ?", (path,)).fetchone()
        folder = db.execute("SELECT 1 FROM paths WHERE path >= ? AND path < ? LIMIT 1",
                            (path + "/", path + "0")).fetchone() is not None
        if folder:
            if until_added:
                return None  # "where the folder was created" is not indexed: walk instead
            rows = db.execute(
                "SELECT DISTINCT t.pos, 0 FROM touches t JOIN paths p ON p.id = t.path "
                "WHERE (p.path = ? OR (p.path >= ? AND p.path < ?)) AND t.pos <= ? ORDER BY t.pos DESC"
                + ("" if limit is None else f" LIMIT {int(limit)}"),
                (path, path + "/", path + "0", top)).fetchall()
        elif exact is not None:
            rows = db.execute("SELECT pos, added FROM touches WHERE path = ? AND pos <= ? ORDER BY pos DESC",
                              (exact[0], top)).fetchall()
        else:
            rows = []
        out: list[str] = []
        for pos, added in rows:
            if limit is not None and len(out) >= limit:
                break
            out.append(db.execute("SELECT sha FROM commits WHERE pos = ?", (pos,)).fetchone()[0].hex())
            if until_added and added:
                break
        return out

    def review_ids(self, main: str | None = None) -> set[str] | None:
        """Every ``Review-Id:`` named by a commit reachable from main (its first-parent chain and
        the review branches merged into it): the reviews already approved or rejected. None if
        the index cannot answer (then walk the history)."""
        if os.environ.get("ATOCORE_HISTORY_INDEX", "1") == "0":
            return None
        main = main if main is not None else self.store.head()
        if not main:
            return set()

        def reviewed(db: sqlite3.Connection) -> set[str] | None:
            if self._meta(db)[0] != main:
                return None  # main moved meanwhile (another process updated the index)
            return {row[0] for row in db.execute("SELECT id FROM reviewed")}

        return self._ask(main, reviewed, damaged=(sqlite3.DatabaseError, KeyError, ValueError))

    def branch_point(self, head: str, main: str, max_commits: int = 2000) -> tuple[str | None, list[str]] | None:
        """``(merge base with main, commits reachable from head but not from main)`` for a branch
        such as ``review/<id>``, from the index instead of walking main's history; None when the
        answer is not simple (criss-cross merges, a long unrelated branch): use the full algorithm.

        Every commit reachable from main is on main's first-parent chain or brought in by one of
        its merges (``merged``), so a walk from ``head`` that stops at such commits sees exactly
        the branch's own commits, and the newest chain commit it stops at is the merge base as
        long as every merged-in commit it stops at came in no later than that.
        """
        return self._ask(main, lambda db: self._branch_point(db, head, main, max_commits))

    def _branch_point(self, db: sqlite3.Connection, head: str, main: str,
                      max_commits: int) -> tuple[str | None, list[str]] | None:
        if self._meta(db)[0] != main:
            return None  # main moved meanwhile (another process updated the index): be exact
        seen: set[bytes] = set()
        own: list[str] = []
        best, latest_merged = -1, -1
        todo = [head.encode()]
        while todo:
            c = todo.pop()
            if c in seen:
                continue
            seen.add(c)
            raw = bytes.fromhex(c.decode())
            row = db.execute("SELECT pos FROM commits WHERE sha = ?", (raw,)).fetchone()
            if row is not None:
                best = max(best, row[0])
                continue
            row = db.execute("SELECT pos FROM merged WHERE sha = ?", (raw,)).fetchone()
            if row is not None:
                latest_merged = max(latest_merged, row[0])
                continue
            own.append(c.decode())
            if len(own) > max_commits:
                return None
            todo += self.store._commit(c).parents
        if latest_merged > best:
            return None
        base = None
        if best >= 0:
            base = db.execute("SELECT sha FROM commits WHERE pos = ?", (best,)).fetchone()[0].hex()
        return base, own
