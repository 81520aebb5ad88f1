"""The store: a bare git repository written at the object level with dulwich.

There is one commit path (:meth:`Store.commit`). It takes the writer lock, reads ``main``,
writes the new blobs, the changed trees and the commit, then moves the ref with
compare-and-swap. Objects are written before the ref moves, so a reader (which never takes
the lock) always sees a complete commit, and a writer killed at any moment leaves at worst
some unreferenced objects behind.
"""

from __future__ import annotations

import os
import stat
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from dulwich.diff_tree import tree_changes
from dulwich.errors import NotGitRepository
from dulwich.objects import Blob, Commit, Tree
from dulwich.objectspec import parse_commit
from dulwich.repo import Repo

from ..errors import Conflict, NotFound, StoreError, ValidationError
from .lock import file_lock

MAIN = b"refs/heads/main"
REVIEW_PREFIX = b"refs/heads/review/"
BACKUP_TAG_PREFIX = b"refs/tags/backup/"
DEFAULT_AUTHOR = "AtoCore <atocore@localhost>"
LOCK_FILE = "atocore.lock"
INDEX_DIR = "atocore-index"  # derived data lives inside the bare repo's folder, never in git
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
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..", ".git") for p in parts):
        raise ValidationError("path", f"{path!r} is not a safe path inside the store")
    return path.encode()


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
            raise StoreError(f"{self.path} is a git work tree, not an AtoCore store")
        self._trees: OrderedDict[bytes, Tree] = OrderedDict()
        self.lock_path = self.path / LOCK_FILE
        self.index_dir = self.path / INDEX_DIR

    # ------------------------------------------------------------------ reading

    def head(self, ref: bytes = MAIN) -> str | None:
        try:
            return self.repo.refs[ref].decode()
        except KeyError:
            return None

    def resolve(self, rev: str = "main") -> str:
        """A commit sha for ``rev`` (sha, branch, tag, ``main~2``...)."""
        if not rev:
            raise ValidationError("rev", "is empty")
        try:
            return parse_commit(self.repo, rev.encode()).id.decode()
        except (KeyError, ValueError, NotImplementedError):
            raise NotFound(f"revision {rev!r} not found in the store") from None

    def _commit(self, sha: str | bytes) -> Commit:
        obj = self.repo.object_store[sha.encode() if isinstance(sha, str) else sha]
        if not isinstance(obj, Commit):
            raise NotFound(f"{sha!r} is not a commit")
        return obj

    def _tree(self, sha: bytes) -> Tree:
        tree = self._trees.get(sha)
        if tree is None:
            tree = self.repo.object_store[sha]
            assert isinstance(tree, Tree)
            self._trees[sha] = tree
            if len(self._trees) > 256:
                self._trees.popitem(last=False)
        else:
            self._trees.move_to_end(sha)
        return tree

    def tree_id(self, rev: str = "main") -> str:
        return self._commit(self.resolve(rev)).tree.decode()

    def files(self, rev: str = "main", prefix: str = "") -> dict[str, str]:
        """Every file at ``rev`` under ``prefix``: ``{path: blob sha}``."""
        commit = self.resolve(rev) if rev else None
        if commit is None:
            return {}
        root = self._commit(commit).tree
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
        obj = self.repo.object_store[sha.encode()]
        if not isinstance(obj, Blob):
            raise NotFound(f"{sha} is not a file")
        return obj.as_raw_string()

    def blob_id(self, path: str, rev: str = "main") -> str | None:
        commit = self.head() if rev == "main" else self.resolve(rev)
        if commit is None:
            return None
        sha = self._commit(commit).tree
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
        out = []
        for ch in tree_changes(self.repo.object_store, t1, t2):
            path = (ch.new.path or ch.old.path).decode()
            out.append(Change(path, ch.old.sha.decode() if ch.old.sha else None,
                              ch.new.sha.decode() if ch.new.sha else None))
        return out

    def info(self, sha: str) -> CommitInfo:
        c = self._commit(sha)
        return CommitInfo(sha=c.id.decode(), message=c.message.decode("utf-8", "replace"),
                          author=c.author.decode("utf-8", "replace"), time=c.commit_time,
                          parents=tuple(p.decode() for p in c.parents))

    def log(self, rev: str = "main", path: str | None = None, limit: int | None = None) -> list[CommitInfo]:
        """Commits reachable from ``rev``, newest first; only those touching ``path`` if given."""
        start = self.resolve(rev)
        kwargs = {"paths": [path.encode()]} if path else {}
        out = []
        for entry in self.repo.get_walker(include=[start.encode()], max_entries=limit, **kwargs):
            out.append(self.info(entry.commit.id.decode()))
        return out

    def refs(self, prefix: bytes) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.repo.refs.as_dict(prefix).items()}

    # ------------------------------------------------------------------ writing

    def lock(self, timeout: float | None = 60.0):
        return file_lock(self.lock_path, timeout)

    def _clear_stale_ref_locks(self) -> None:
        # Only called while holding the writer lock: a *.lock left under refs/ is then
        # debris from a writer that died mid-update, and would block every later update.
        for base in (self.path / "refs", self.path):
            for lock in base.rglob("*.lock") if base.name == "refs" else base.glob("packed-refs.lock"):
                try:
                    lock.unlink()
                except FileNotFoundError:
                    pass

    def build_tree(self, base_tree: bytes | None, changes: Mapping[str, bytes | None]) -> tuple[bytes, list]:
        """Apply ``{path: content or None}`` to ``base_tree``; return (new tree id, new objects)."""
        new_objects: list = []
        nested: dict[bytes, dict] = {}
        for path, content in changes.items():
            node = nested
            parts = _check_store_path(path).split(b"/")
            for part in parts[:-1]:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise ValidationError("path", f"{path!r} is under a path that is also written as a file")
                node = child
            if content is None:
                node[parts[-1]] = None
            else:
                blob = Blob.from_string(content)
                new_objects.append(blob)
                node[parts[-1]] = blob.id
        tree_id = self._apply(base_tree, nested, new_objects)
        return tree_id or Tree().id, new_objects

    def _apply(self, tree_sha: bytes | None, node: dict, new_objects: list) -> bytes | None:
        if tree_sha is not None:
            old = self._tree(tree_sha)
            tree = Tree()
            for entry in old.iteritems():
                tree.add(entry.path, entry.mode, entry.sha)
        else:
            tree = Tree()
        for name, sub in node.items():
            existing = tree[name] if name in tree else None
            if isinstance(sub, dict):
                child_base = existing[1] if existing and stat.S_ISDIR(existing[0]) else None
                child = self._apply(child_base, sub, new_objects)
                if child is None:
                    if existing:
                        del tree[name]
                else:
                    tree.add(name, DIR_MODE, child)
            elif sub is None:
                if existing:
                    del tree[name]
            else:
                tree.add(name, FILE_MODE, sub)
        if not len(tree):
            return None
        if tree_sha is not None and tree.id == tree_sha:
            return tree_sha
        new_objects.append(tree)
        self._trees[tree.id] = tree
        return tree.id

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
        self._clear_stale_ref_locks()
        current = self.repo.refs[ref] if ref in self.repo.refs else None
        parent_ids = [p.encode() for p in parents] if parents is not None else ([current] if current else [])
        if base_tree is not None:
            base = base_tree.encode()
        elif parent_ids:
            base = self._commit(parent_ids[0]).tree
        else:
            base = None
        tree_id, objects = self.build_tree(base, changes)
        if not allow_empty and base is not None and tree_id == base and len(parent_ids) < 2:
            return None
        c = Commit()
        c.tree = tree_id
        c.parents = parent_ids
        c.author = c.committer = who
        c.author_time = c.commit_time = int(time.time())
        c.author_timezone = c.commit_timezone = 0
        c.encoding = b"UTF-8"
        c.message = message.rstrip().encode() + b"\n"
        objects.append(c)
        store = self.repo.object_store
        for obj in objects:
            store.add_object(obj)
        if not self.repo.refs.set_if_equals(ref, current, c.id):
            raise Conflict(f"{ref.decode()} moved while writing; nothing was changed, try again")
        return c.id.decode()

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
        self._clear_stale_ref_locks()
        old_b = old.encode() if old else None
        if new is None:
            ok = self.repo.refs.remove_if_equals(ref, old_b)
        else:
            ok = self.repo.refs.set_if_equals(ref, old_b, new.encode())
        if not ok:
            raise Conflict(f"{ref.decode()} changed while updating it; nothing was changed, try again")

    def iter_records(self, prefix: str, rev: str = "main") -> Iterator[tuple[str, bytes]]:
        for path, sha in sorted(self.files(rev, prefix).items()):
            yield path, self.read_blob(sha)
