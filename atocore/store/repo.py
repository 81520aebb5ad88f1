"""The store: a bare git repository written at the object level with dulwich.

There is one commit path (:meth:`Store.commit`). It takes the writer lock, reads ``main``,
writes the new blobs, the changed trees and the commit, then moves the ref with
compare-and-swap. Objects are written before the ref moves, so a reader (which never takes
the lock) always sees a complete commit, and a writer killed at any moment leaves at worst
some unreferenced objects behind.
"""

from __future__ import annotations

import os
import re
import stat
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from dulwich.errors import NotGitRepository
from dulwich.objects import Blob, Commit, ShaFile, Tree
from dulwich.objectspec import AmbiguousShortId, parse_commit
from dulwich.repo import Repo

from ..errors import Conflict, NotFound, StoreError, ValidationError
from .lock import file_lock
from .history import HistoryIndex
from .maintain import maybe_pack
from .objects import LooseWriter, RawTree, object_id, read_loose
from .paths import path_problem, printable

MAIN = b"refs/heads/main"
REVIEW_PREFIX = b"refs/heads/review/"
BACKUP_TAG_PREFIX = b"refs/tags/backup/"
DEFAULT_AUTHOR = "AtoCore <atocore@localhost>"
LOCK_FILE = "atocore.lock"
STALE_LOCK_SECONDS = 10.0
INDEX_DIR = "atocore-index"  # derived data lives inside the bare repo's folder, never in git
_REV_RE = re.compile(r"^([^~^]+)((?:[~^][0-9]*)*)\Z")
_REV_STEP = re.compile(r"([~^])([0-9]*)")
_TYPE_NUMS = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}
FILE_MODE = 0o100644
DIR_MODE = stat.S_IFDIR


@dataclass(frozen=True)
class Change:
    """One path that differs between two commits (blob ids as hex; ``None`` = absent)."""

    path: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    message: str
    author: str
    time: int
    parents: tuple[str, ...]

    @property
    def summary(self) -> str:
        return self.message.splitlines()[0] if self.message else ""

    def to_dict(self) -> dict:
        return {"sha": self.sha, "summary": self.summary, "message": self.message, "author": self.author,
                "time": self.time, "parents": list(self.parents)}


def author_from_env() -> str:
    return os.environ.get("ATOCORE_AUTHOR") or DEFAULT_AUTHOR


def _check_author(author: str) -> bytes:
    if "<" not in author or not author.rstrip().endswith(">") or "\n" in author:
        raise ValidationError("author", f"{author!r} must look like 'Name <email>'")
    return author.encode()


def _check_store_path(path: str) -> bytes:
    why = path_problem(path)
    if why:
        raise ValidationError("path", f"{printable(path)!r} is not a safe path inside the store: {why}")
    return path.encode()


def _unknown_rev(rev: str) -> NotFound:
    return NotFound(f"revision {rev!r} not found in the store: give a commit sha, a branch, a tag (e.g. "
                    "backup/<timestamp>) or one of those with ~N / ^N ('atocore log' lists commits)")


def _lru_put(cache: OrderedDict, key, value, limit: int) -> None:
    cache[key] = value
    while len(cache) > limit:
        try:
            cache.popitem(last=False)
        except KeyError:  # emptied by another thread meanwhile; harmless
            break


class Store:
    """A store at ``path`` (a bare git repository with ``main`` as truth)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path).resolve()
        try:
            self.repo = Repo(str(self.path))
        except NotGitRepository:
            raise StoreError(f"{self.path} is not an AtoCore store (no git repository there); "
                             f"create one with 'atocore init {path}'") from None
        if not self.repo.bare:
            self.repo.close()
            raise StoreError(f"{self.path} is a git work tree, not an AtoCore store; point at a store made by "
                             "'atocore init PATH' (a bare repository)")
        # Close pack files when the handle goes away or the interpreter exits (dulwich's own
        # __del__ otherwise prints noise at shutdown once the store has packs).
        weakref.finalize(self, self.repo.close)
        self._trees: OrderedDict[bytes, Tree] = OrderedDict()
        self._raw_trees: OrderedDict[str, RawTree] = OrderedDict()
        self._commit_trees: OrderedDict[str, str] = OrderedDict()
        self.objects_dir = self.path / "objects"
        # Durability (docs/store.md): every object file and the new ref are fsynced before the ref
        # is renamed into place. ATOCORE_FSYNC=strict also fsyncs the ref's folder after the
        # rename (no window at all); ATOCORE_FSYNC=0 skips object fsync (throwaway stores only).
        mode = os.environ.get("ATOCORE_FSYNC", "1")
        self.writer = LooseWriter(self.objects_dir, durable=mode != "0")
        self.strict_durability = mode == "strict"
        self.lock_path = self.path / LOCK_FILE
        self.index_dir = self.path / INDEX_DIR
        self._history: HistoryIndex | None = None

    # ------------------------------------------------------------------ reading

    def head(self, ref: bytes = MAIN) -> str | None:
        try:
            return self.repo.refs[ref].decode()
        except KeyError:
            return None

    def resolve(self, rev: str = "main") -> str:
        """A commit sha for ``rev``: a sha (or prefix), branch, tag, plus ``~N`` / ``^N`` suffixes."""
        if not rev or not isinstance(rev, str):
            raise ValidationError("rev", "is empty")
        m = _REV_RE.match(rev)
        if m is None:
            raise _unknown_rev(rev)
        try:
            sha = parse_commit(self.repo, m.group(1).encode()).id.decode()
        except AmbiguousShortId:
            raise ValidationError("rev", f"{rev!r} matches more than one object; give more of the sha") from None
        except (KeyError, ValueError, NotImplementedError, NotFound):
            raise _unknown_rev(rev) from None
        for op, num in _REV_STEP.findall(m.group(2)):
            n = 1 if num == "" else int(num)
            for k in ([1] * n if op == "~" else [n] if n else []):  # ~N: N first parents; ^N: the N-th
                parents = self._commit(sha).parents
                if len(parents) < k:
                    have = "no parent" if not parents else f"only {len(parents)} parent(s)"
                    raise NotFound(f"revision {rev!r} not found in the store: {sha[:12]} has {have}")
                sha = parents[k - 1].decode()
        return sha

    def _raw(self, sha: str) -> tuple[int, bytes]:
        """(type number, raw content) of any object: loose first (one open), then packs.

        Loose objects are always read here, never by dulwich: it parses the whole object and
        serialises it again (~3 ms for a 10,000-entry tree), and a packed store still gets every
        new object loose until the next pack. A packed object costs one failed ``open`` more."""
        loose = read_loose(self.objects_dir, sha)
        if loose is not None:
            return _TYPE_NUMS[loose[0]], loose[1]
        try:
            return self.repo.object_store.get_raw(sha.encode())  # packs (then loose, then alternates)
        except (KeyError, ValueError, AssertionError):
            raise NotFound(f"object {sha} is not in the store") from None

    def _object(self, sha: str | bytes):
        hexsha = sha.decode() if isinstance(sha, bytes) else sha
        type_num, raw = self._raw(hexsha)
        return ShaFile.from_raw_string(type_num, raw, sha=hexsha.encode())

    def _commit(self, sha: str | bytes) -> Commit:
        obj = self._object(sha)
        if not isinstance(obj, Commit):
            raise NotFound(f"{sha!r} is not a commit")
        return obj

    def _tree(self, sha: bytes) -> Tree:
        tree = self._trees.get(sha)
        if tree is None:
            tree = self._object(sha)
            if not isinstance(tree, Tree):
                raise StoreError(f"{sha!r} is not a tree")
            _lru_put(self._trees, sha, tree, 256)
        else:
            try:
                self._trees.move_to_end(sha)
            except KeyError:  # evicted by another thread meanwhile; harmless
                pass
        return tree

    def tree_id(self, rev: str = "main") -> str:
        return self._commit(self.resolve(rev)).tree.decode()

    def files(self, rev: str = "main", prefix: str = "") -> dict[str, str]:
        """Every file at ``rev`` under ``prefix``: ``{path: blob sha}``."""
        commit = self.resolve(rev) if rev else None
        if commit is None:
            return {}
        root = self._tree_of(commit).encode()
        out: dict[str, str] = {}
        start = root
        base = ""
        if prefix:
            prefix = prefix.strip("/")
            for part in prefix.split("/"):
                tree = self._tree(start)
                try:
                    mode, sha = tree[part.encode()]
                except KeyError:
                    return {}
                if not stat.S_ISDIR(mode):
                    return {prefix: sha.decode()}
                start = sha
            base = prefix + "/"
        self._walk(start, base, out)
        return out

    def _walk(self, tree_sha: bytes, base: str, out: dict[str, str]) -> None:
        for entry in self._tree(tree_sha).iteritems():
            name = base + entry.path.decode()
            if stat.S_ISDIR(entry.mode):
                self._walk(entry.sha, name + "/", out)
            else:
                out[name] = entry.sha.decode()

    def read_blob(self, sha: str) -> bytes:
        type_num, raw = self._raw(sha)
        if type_num != Blob.type_num:
            raise NotFound(f"{sha} is not a file")
        return raw

    def blob_id(self, path: str, rev: str = "main") -> str | None:
        commit = self.head() if rev == "main" else self.resolve(rev)
        if commit is None:
            return None
        sha = self._tree_of(commit).encode()
        parts = path.strip("/").split("/")
        for i, part in enumerate(parts):
            try:
                mode, sha = self._tree(sha)[part.encode()]
            except KeyError:
                return None
            if stat.S_ISDIR(mode) != (i < len(parts) - 1):
                return None
        return sha.decode()

    def read(self, path: str, rev: str = "main") -> bytes | None:
        """The content of ``path`` at ``rev``, or ``None`` if it does not exist there."""
        sha = self.blob_id(path, rev)
        return None if sha is None else self.read_blob(sha)

    def diff(self, old: str | None, new: str | None) -> list[Change]:
        """Paths that differ between two commits (``None`` = the empty tree)."""
        t1 = self._commit(old).tree if old else None
        t2 = self._commit(new).tree if new else None
        return [Change(path, o, n) for path, o, n, _mode in self.tree_changes(t1, t2)]

    def tree_changes(self, t1: bytes | None, t2: bytes | None) -> Iterator[tuple[str, str | None, str | None, int | None]]:
        """``(path, old blob, new blob, new mode)`` for every file that differs between two trees
        (costs what changed, not the size of the trees: see ``treediff``)."""
        from .treediff import tree_changes as raw_tree_changes

        def read(sha: str) -> bytes:
            type_num, raw = self._raw(sha)
            if type_num != Tree.type_num:
                raise StoreError(f"{sha} is not a tree")
            return raw

        yield from raw_tree_changes(read, t1.decode() if isinstance(t1, bytes) else t1,
                                    t2.decode() if isinstance(t2, bytes) else t2)

    def info(self, sha: str) -> CommitInfo:
        c = self._commit(sha)
        return CommitInfo(sha=c.id.decode(), message=c.message.decode("utf-8", "replace"),
                          author=c.author.decode("utf-8", "replace"), time=c.commit_time,
                          parents=tuple(p.decode() for p in c.parents))

    def log(self, rev: str = "main", path: str | None = None, limit: int | None = None,
            until_added: bool = False) -> list[CommitInfo]:
        """Commits reachable from ``rev``, newest first.

        With ``path``: the commits of ``rev``'s first-parent history (main's own history, where
        an approved review appears as its merge commit) that changed that file or folder;
        ``until_added`` stops at the commit that created it (for records that are never
        deleted, such as memories, that is the whole history without walking to the root).
        """
        start = self.resolve(rev)
        if path:
            path = path.strip("/")
            shas = self._indexed_path_log(start, path, limit, until_added)
            if shas is not None:
                return [self.info(sha) for sha in shas]
            return self._path_log(start, path, limit, until_added)
        out = []
        for entry in self.repo.get_walker(include=[start.encode()], max_entries=limit):
            out.append(self.info(entry.commit.id.decode()))
        return out

    @property
    def history(self) -> "HistoryIndex":
        """The path history index (derived, in the index folder; see ``store/history.py``)."""
        if self._history is None:
            self._history = HistoryIndex(self)
        return self._history

    def _indexed_path_log(self, start: str, path: str, limit: int | None, until_added: bool) -> list[str] | None:
        """History from the index when ``start`` is on main's first-parent chain; None: walk."""
        if os.environ.get("ATOCORE_HISTORY_INDEX", "1") == "0" or (limit is not None and limit <= 0):
            return None
        try:
            return self.history.lookup(start, path, limit, until_added)
        except (OSError, StoreError, NotFound):  # e.g. a read-only store: the walk still answers
            return None

    def _path_log(self, start: str, path: str, limit: int | None, until_added: bool = False) -> list[CommitInfo]:
        parts = [p.encode() for p in path.split("/")]
        out: list[CommitInfo] = []
        sha: str | None = start
        here = self._entry_at(self._tree_of(start), parts)
        while sha is not None and (limit is None or len(out) < limit):
            commit = self._commit(sha)
            parent = commit.parents[0].decode() if commit.parents else None
            before = self._entry_at(self._tree_of(parent), parts) if parent else None
            if before != here:
                out.append(self.info(sha))
                if until_added and before is None:
                    break
            sha, here = parent, before
        return out

    def _entry_at(self, tree: str, parts: list[bytes]) -> bytes | None:
        """The raw sha of the entry at ``parts`` under ``tree`` (None if absent), without parsing
        whole trees: one ``find`` per level (a 10,000-entry tree is searched in microseconds)."""
        sha = bytes.fromhex(tree)
        for i, part in enumerate(parts):
            _type, raw = self._raw(sha.hex())
            last = i == len(parts) - 1
            found = None
            for mode in ((b"100644", b"100755", b"120000", b"40000") if last else (b"40000",)):
                needle = mode + b" " + part + b"\0"
                pos = raw.find(needle)
                # a match must start an entry: at 0, or right after the previous entry's 20-byte sha
                while pos > 0 and raw[pos - 21:pos - 20] != b"\0":
                    pos = raw.find(needle, pos + 1)
                if pos >= 0:
                    start = pos + len(needle)
                    found = raw[start:start + 20]
                    break
            if found is None:
                return None
            sha = found
        return sha

    def refs(self, prefix: bytes = b"refs/") -> dict[str, str]:
        """``{full ref name: sha}`` for refs under ``prefix`` (e.g. ``b"refs/heads/review/"``)."""
        base = prefix.decode()
        if base and not base.endswith("/"):
            base += "/"
        return {base + k.decode(): v.decode() for k, v in self.repo.refs.as_dict(base.rstrip("/").encode()).items()}

    # ------------------------------------------------------------------ writing

    def lock(self, timeout: float | None = 60.0):
        return file_lock(self.lock_path, timeout)

    def _clear_stale_ref_locks(self, ref: bytes) -> None:
        # Called with the writer lock held. Every AtoCore writer takes that lock, so a
        # ``<ref>.lock`` for the ref we are about to move is debris from a writer killed
        # mid-update (it would block every later update). Other lock files may belong to a
        # person's `git push` in progress, so they are only cleared once clearly stale.
        now = time.time()
        for lock, max_age in ((self.path / (ref.decode() + ".lock"), 0.0),
                              (self.path / "packed-refs.lock", STALE_LOCK_SECONDS)):
            try:
                if now - lock.stat().st_mtime >= max_age:
                    lock.unlink()
            except FileNotFoundError:
                pass
        self.writer.sweep()

    def _raw_tree(self, sha: str) -> RawTree:
        tree = self._raw_trees.get(sha)
        if tree is None:
            type_num, raw = self._raw(sha)
            if type_num != Tree.type_num:
                raise StoreError(f"{sha} is not a tree")
            tree = RawTree.parse(raw)
            self._cache_raw_tree(sha, tree)
        else:
            try:
                self._raw_trees.move_to_end(sha)
            except KeyError:
                pass
        return tree

    def _cache_raw_tree(self, sha: str, tree: RawTree) -> None:
        _lru_put(self._raw_trees, sha, tree, 16)  # a 10,000-entry tree is ~1.5 MB in memory

    def _tree_of(self, commit: str) -> str:
        tree = self._commit_trees.get(commit)
        if tree is None:
            tree = self._commit(commit).tree.decode()
            _lru_put(self._commit_trees, commit, tree, 256)
        return tree

    def build_tree(self, base_tree: str | bytes | None, changes: Mapping[str, bytes | None]
                   ) -> tuple[str, list[tuple[str, bytes, bytes]]]:
        """Apply ``{path: content or None}`` to ``base_tree``.

        Returns (new tree id, new objects as ``(sha, kind, raw)``); nothing is written yet.
        """
        if isinstance(base_tree, bytes):
            base_tree = base_tree.decode()
        new_objects: list[tuple[str, bytes, bytes]] = []
        nested: dict[bytes, dict | str | None] = {}
        for path, content in changes.items():
            node = nested
            parts = _check_store_path(path).split(b"/")
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise ValidationError("path", f"{path!r} is under a path that is also written as a file")
                node = child
            if isinstance(node.get(parts[-1]), dict):
                raise ValidationError("path", f"{path!r} is also written as a folder")
            if content is None:
                node[parts[-1]] = None
            else:
                if not isinstance(content, bytes):
                    raise ValidationError("content", f"{path!r}: file content must be bytes")
                sha = object_id(b"blob", content)
                new_objects.append((sha, b"blob", content))
                node[parts[-1]] = sha
        tree_id = self._apply(base_tree, nested, new_objects)
        if tree_id is None:
            tree_id = object_id(b"tree", b"")
            new_objects.append((tree_id, b"tree", b""))
        return tree_id, new_objects

    def _apply(self, tree_sha: str | None, node: dict, new_objects: list) -> str | None:
        tree = self._raw_tree(tree_sha).copy() if tree_sha is not None else RawTree()
        if len(node) > RawTree.MAX_SPLICES:
            tree.raw = None  # many edits: one join at the end beats a copy per edit
        for name, sub in node.items():
            if isinstance(sub, dict):
                existing = tree.get(name)
                child_base = existing[1] if existing and existing[0] else None
                child = self._apply(child_base, sub, new_objects)
                tree.remove(name)  # a file of that name is replaced by the folder
                if child is None:
                    tree.remove(name + b"/")
                else:
                    tree.put(name, True, child)
            elif sub is None:
                tree.remove(name)
                tree.remove(name + b"/")
            else:
                tree.remove(name + b"/")
                tree.put(name, False, sub)
        if not len(tree):
            return None
        raw = tree.serialize()
        sha = object_id(b"tree", raw)
        if sha != tree_sha:
            new_objects.append((sha, b"tree", raw))
        self._cache_raw_tree(sha, tree)
        return sha

    def commit(
        self,
        changes: Mapping[str, bytes | None],
        message: str,
        author: str | None = None,
        ref: bytes = MAIN,
        parents: Iterable[str] | None = None,
        allow_empty: bool = False,
        base_tree: str | None = None,
    ) -> str | None:
        """Write ``changes`` as one commit on ``ref``; return its sha (``None`` if nothing changed).

        Must be called with the writer lock held (``with store.lock():``) or it takes it.
        """
        with self.lock():
            return self._commit_locked(changes, message, author, ref, parents, allow_empty, base_tree)

    def _commit_locked(self, changes, message, author, ref, parents, allow_empty, base_tree) -> str | None:
        if not message.strip():
            raise ValidationError("message", "a commit needs a message saying what and why")
        who = _check_author(author or author_from_env())
        self._clear_stale_ref_locks(ref)
        current = self.repo.refs[ref] if ref in self.repo.refs else None
        parent_ids = [p.encode() if isinstance(p, str) else p for p in parents] if parents is not None \
            else ([current] if current else [])
        if base_tree is not None:
            base = base_tree.decode() if isinstance(base_tree, bytes) else base_tree
        elif parent_ids:
            base = self._tree_of(parent_ids[0].decode())
        else:
            base = None
        tree_id, objects = self.build_tree(base, changes)
        if not allow_empty and base is not None and tree_id == base and len(parent_ids) < 2:
            return None
        c = Commit()
        c.tree = tree_id.encode()
        c.parents = parent_ids
        c.author = c.committer = who
        c.author_time = c.commit_time = int(time.time())
        c.author_timezone = c.commit_timezone = 0
        c.encoding = b"UTF-8"
        c.message = message.rstrip().encode() + b"\n"
        raw_commit = c.as_raw_string()
        commit_id = object_id(b"commit", raw_commit)
        objects.append((commit_id, b"commit", raw_commit))
        # Objects first (each fsynced), then the ref: a reader or a crash never sees a ref
        # pointing at a missing object.
        for sha, kind, raw in objects:
            self.writer.write(sha, kind, raw)
        ok = (self.repo.refs.add_if_new(ref, commit_id.encode()) if current is None
              else self.repo.refs.set_if_equals(ref, current, commit_id.encode()))
        if not ok:
            raise Conflict(f"{ref.decode()} moved while writing; nothing was changed, try again")
        if self.strict_durability:
            self._fsync_dir(self.path / os.path.dirname(ref.decode()))
        _lru_put(self._commit_trees, commit_id, tree_id, 256)
        try:
            # a cheap check; packs loose objects in the background when they pile up
            if maybe_pack(self.path, self.writer.written):
                self.writer.written = 0
        except OSError:
            pass
        return commit_id

    @staticmethod
    def _fsync_dir(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def update(
        self,
        build: Callable[["Store", str | None], tuple[Mapping[str, bytes | None], str]],
        author: str | None = None,
        ref: bytes = MAIN,
    ) -> str | None:
        """Read-modify-write: ``build(store, head)`` returns (changes, message) under the lock."""
        with self.lock():
            changes, message = build(self, self.head(ref))
            return self._commit_locked(changes, message, author, ref, None, False, None)

    def set_ref(self, ref: bytes, old: str | None, new: str | None) -> None:
        """Move or delete a ref with compare-and-swap (caller holds the lock)."""
        self._clear_stale_ref_locks(ref)
        old_b = old.encode() if old else None
        if new is None:
            ok = self.repo.refs.remove_if_equals(ref, old_b)
        elif old_b is None:
            ok = self.repo.refs.add_if_new(ref, new.encode())
        else:
            ok = self.repo.refs.set_if_equals(ref, old_b, new.encode())
        if not ok:
            raise Conflict(f"{ref.decode()} changed while updating it; nothing was changed, try again")

    def iter_records(self, prefix: str, rev: str = "main") -> Iterator[tuple[str, bytes]]:
        for path, sha in sorted(self.files(rev, prefix).items()):
            yield path, self.read_blob(sha)
