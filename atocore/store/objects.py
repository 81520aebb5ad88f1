"""Fast object-level I/O for the commit path: raw trees, hashing and durable loose objects.

Why not dulwich's ``Tree``/``add_object`` here: with 10,000 memories ``memories/`` is one
~600 kB tree that every memory write rewrites. dulwich re-serialises it entry by entry and
compresses it chunk by chunk (~50 ms). A :class:`RawTree` keeps the serialised entries in a
sorted list, so a change is a bisect + list splice + one ``join``; big objects are written
with zlib level 0 (tree bytes are mostly SHA-1s and barely compress; ``git repack`` deltas
them later), and every object file is fsynced before the ref moves.
"""

from __future__ import annotations

import hashlib
import os
import time
import zlib
from bisect import bisect_left
from pathlib import Path

TREE_MODE = b"40000"
FILE_MODE = b"100644"
BIG_OBJECT = 32 * 1024  # above this, store uncompressed (zlib level 0)
TMP_PREFIX = "tmp_atocore_obj_"


def object_id(kind: bytes, raw: bytes) -> str:
    h = hashlib.sha1(b"%s %d\0" % (kind, len(raw)))
    h.update(raw)
    return h.hexdigest()


class RawTree:
    """A tree as sorted git sort keys (``name`` or ``name/`` for a subtree), serialised entries,
    and (while edits are few) the serialised tree itself, patched in place by splicing."""

    __slots__ = ("keys", "entries", "raw")

    MAX_SPLICES = 8  # more edits than this in one tree: re-join the entries instead

    def __init__(self, keys: list[bytes] | None = None, entries: list[bytes] | None = None,
                 raw: bytes | None = None):
        self.keys = keys if keys is not None else []
        self.entries = entries if entries is not None else []
        self.raw = raw if raw is not None else (b"" if not self.entries else None)

    @classmethod
    def parse(cls, raw: bytes) -> "RawTree":
        keys: list[bytes] = []
        entries: list[bytes] = []
        pos, n = 0, len(raw)
        find = raw.find
        while pos < n:
            sp = find(b" ", pos)
            nul = find(b"\0", sp)
            end = nul + 21
            if sp < 0 or nul < 0 or end > n:
                raise ValueError("malformed tree object")
            name = raw[sp + 1:nul]
            keys.append(name + b"/" if raw[pos:sp] == TREE_MODE else name)
            entries.append(raw[pos:end])
            pos = end
        if keys != sorted(keys):  # trees from elsewhere should be sorted; never trust it for bisect
            order = sorted(range(len(keys)), key=keys.__getitem__)
            keys = [keys[i] for i in order]
            entries = [entries[i] for i in order]
            return cls(keys, entries, None)
        return cls(keys, entries, raw)

    def copy(self) -> "RawTree":
        return RawTree(self.keys[:], self.entries[:], self.raw)

    def _find(self, key: bytes) -> int:
        i = bisect_left(self.keys, key)
        return i if i < len(self.keys) and self.keys[i] == key else -1

    def get(self, name: bytes) -> tuple[bool, str] | None:
        """``(is_dir, hex sha)`` of the entry called ``name``, or None."""
        i = self._find(name)
        is_dir = False
        if i < 0:
            i = self._find(name + b"/")
            is_dir = True
            if i < 0:
                return None
        return is_dir, self.entries[i][-20:].hex()

    def _splice(self, i: int, old: bytes | None, new: bytes) -> None:
        # Patch the serialised tree: one search (an entry with its 20-byte sha is unique) and
        # one copy, instead of joining 10,000 entries again.
        raw = self.raw
        if raw is None:
            return
        if old is None:
            off = raw.find(self.entries[i]) if i < len(self.entries) else len(raw)
        else:
            off = raw.find(old)
        if off < 0:
            self.raw = None
            return
        self.raw = raw[:off] + new + raw[off + (len(old) if old is not None else 0):]

    def remove(self, key: bytes) -> bool:
        i = self._find(key)
        if i < 0:
            return False
        self._splice(i, self.entries[i], b"")
        del self.keys[i]
        del self.entries[i]
        return True

    def put(self, name: bytes, is_dir: bool, sha_hex: str) -> None:
        key = name + b"/" if is_dir else name
        entry = b"%s %s\0%s" % (TREE_MODE if is_dir else FILE_MODE, name, bytes.fromhex(sha_hex))
        i = bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            if self.entries[i] != entry:
                self._splice(i, self.entries[i], entry)
                self.entries[i] = entry
        else:
            self._splice(i, None, entry)
            self.keys.insert(i, key)
            self.entries.insert(i, entry)

    def serialize(self) -> bytes:
        if self.raw is None:
            self.raw = b"".join(self.entries)
        return self.raw

    def __len__(self) -> int:
        return len(self.keys)


class LooseWriter:
    """Writes loose objects atomically (temp file + rename), fsynced when ``durable``."""

    def __init__(self, objects_dir: Path, durable: bool = True):
        self.objects_dir = objects_dir
        self.durable = durable
        self._swept = -1e9
        self.written = 0  # bytes of loose objects written (reset when a repack starts)

    def path(self, sha: str) -> Path:
        return self.objects_dir / sha[:2] / sha[2:]

    def write(self, sha: str, kind: bytes, raw: bytes) -> bool:
        """Write one object unless it is already there (loose); True if a file was written."""
        path = self.path(sha)
        try:
            os.utime(path)  # already there: freshen it (as git does) so pruning keeps it
            return False
        except FileNotFoundError:
            pass
        comp = zlib.compressobj(0 if len(raw) > BIG_OBJECT else 1)
        data = comp.compress(b"%s %d\0" % (kind, len(raw))) + comp.compress(raw) + comp.flush()
        # Temp files live in objects/ itself, not objects/xx/, so a writer killed mid-write leaves
        # nothing that `git fsck` would call garbage; they are swept under the writer lock.
        tmp = self.objects_dir / f"{TMP_PREFIX}{os.getpid()}_{sha}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if self.durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.rename(tmp, path)
        except FileNotFoundError:
            path.parent.mkdir(exist_ok=True)
            os.rename(tmp, path)
        self.written += len(data)
        return True

    def sweep(self, every: float = 30.0) -> None:
        """Remove temp files left by killed writers (call with the writer lock held).

        Harmless debris (git ignores files in ``objects/`` itself), so only look now and then.
        """
        now = time.monotonic()
        if now - self._swept < every:
            return
        self._swept = now
        with os.scandir(self.objects_dir) as it:
            for entry in it:
                if entry.name.startswith(TMP_PREFIX):
                    try:
                        os.unlink(entry.path)
                    except FileNotFoundError:
                        pass


def ensure_fanout(objects_dir: Path) -> None:
    """Create the 256 ``objects/xx`` folders (git's ``prune-packed`` removes empty ones), so a
    write does not pay for creating a folder; empty folders are harmless to git."""
    for i in range(256):
        try:
            os.mkdir(objects_dir / f"{i:02x}")
        except FileExistsError:
            pass


def read_loose(objects_dir: Path, sha: str) -> tuple[bytes, bytes] | None:
    """``(kind, raw)`` of a loose object, or None if it is not loose (it may be packed)."""
    try:
        with open(f"{objects_dir}/{sha[:2]}/{sha[2:]}", "rb") as f:
            data = zlib.decompress(f.read())
    except FileNotFoundError:
        return None
    nul = data.index(b"\0")
    kind, _, _size = data[:nul].partition(b" ")
    return kind, data[nul + 1:]
