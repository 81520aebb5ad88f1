"""Tree diffs that cost what changed, not what the trees hold.

dulwich's ``tree_changes`` parses every entry of both trees: comparing two 10,000-memory
``memories/`` trees that differ by one file costs ~20-40 ms, and the review queue does that for
every open proposal (100 of them: seconds). Here both serialised trees are compared as bytes
first: the common prefix and suffix are skipped with a few ``memcmp``s, and only the entries in
between are parsed. Entry boundaries come from one side's offsets, computed once per tree and
kept in a small LRU keyed by the tree's sha (content addressed, so valid across stores): a
review branch and main share their base tree, so it is parsed once for the whole queue.

Why the trimming is exact: parsing a tree is deterministic from its start, so a boundary of one
side that lies inside the identical prefix is a boundary of the other side too. The end of the
middle region is only trusted when parsing the other side forward actually lands on it;
otherwise the rest of both trees is parsed.
"""

from __future__ import annotations

import stat
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from typing import Callable, Iterator

Entry = tuple[int, bytes]  # (mode, 20-byte sha)
Change = tuple[str, "str | None", "str | None", "int | None"]  # (path, old hex, new hex, new mode)

_CHUNK = 4096
_OFFSETS_MAX = 16
_offsets: OrderedDict[bytes, list[int]] = OrderedDict()
_offsets_lock = threading.Lock()


def _parse(raw: bytes, pos: int, stop: int) -> tuple[dict[bytes, Entry], int]:
    """Entries from ``pos`` (a boundary) until at or past ``stop``; returns them and the end."""
    out: dict[bytes, Entry] = {}
    find, n = raw.find, len(raw)
    while pos < stop:
        sp = find(b" ", pos)
        nul = find(b"\0", sp)
        end = nul + 21
        if sp < 0 or nul < 0 or end > n:
            raise ValueError("malformed tree object")
        out[raw[sp + 1:nul]] = (int(raw[pos:sp], 8), raw[nul + 1:end])
        pos = end
    return out, pos


def _boundaries(sha: bytes, raw: bytes) -> list[int]:
    with _offsets_lock:
        hit = _offsets.get(sha)
        if hit is not None:
            _offsets.move_to_end(sha)
            return hit
    offs = [0]
    find, pos, n = raw.find, 0, len(raw)
    while pos < n:
        nul = find(b"\0", pos)
        if nul < 0 or nul + 21 > n:
            raise ValueError("malformed tree object")
        pos = nul + 21
        offs.append(pos)
    with _offsets_lock:
        _offsets[sha] = offs
        while len(_offsets) > _OFFSETS_MAX:
            _offsets.popitem(last=False)
    return offs


def _cached(sha: bytes) -> bool:
    with _offsets_lock:
        return sha in _offsets


def common_prefix(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    lo = 0
    while lo < n and a[lo:lo + _CHUNK] == b[lo:lo + _CHUNK]:
        lo += _CHUNK
    hi = min(lo + _CHUNK, n)
    while lo < hi:  # the first difference is in [lo, hi)
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return min(lo, n)


def common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the common suffix, at most ``limit``."""
    la, lb = len(a), len(b)
    s = 0
    while s < limit:
        step = min(_CHUNK, limit - s)
        if a[la - s - step:la - s] != b[lb - s - step:lb - s]:
            lo, hi = s, s + step  # the suffix ends in (s, s + step]
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if a[la - mid:la - s] == b[lb - mid:lb - s]:
                    lo = mid
                else:
                    hi = mid - 1
            return lo
        s += step
    return s


def _middle(sha_a: bytes, a: bytes, sha_b: bytes, b: bytes) -> tuple[dict[bytes, Entry], dict[bytes, Entry]]:
    """The entries of both trees outside their identical prefix and suffix."""
    swap = _cached(sha_b) and not _cached(sha_a)  # use the side whose offsets we already have
    if swap:
        sha_a, a, sha_b, b = sha_b, b, sha_a, a
    offs = _boundaries(sha_a, a)
    prefix = common_prefix(a, b)
    p = offs[bisect_right(offs, prefix) - 1]
    suffix = common_suffix(a, b, min(len(a), len(b)) - p)
    q_a = offs[bisect_left(offs, len(a) - suffix)]
    q_b = q_a + len(b) - len(a)
    ea, _ = _parse(a, p, q_a)
    eb, end = _parse(b, p, q_b)
    if end != q_b:  # b's entries do not end there: no shared tail after all, parse the rest
        ea, _ = _parse(a, p, len(a))
        eb, _ = _parse(b, p, len(b))
    return (eb, ea) if swap else (ea, eb)


def tree_changes(read: Callable[[str], bytes], t1: str | None, t2: str | None, base: str = "") -> Iterator[Change]:
    """``(path, old blob, new blob, new mode)`` for every file that differs between two trees.

    ``read(sha_hex)`` returns a tree's serialised entries. Subtrees are compared recursively;
    a path that is a file on one side and a folder on the other is a deletion plus additions.
    """
    if t1 == t2:
        return
    if t1 is None or t2 is None:
        raw = read(t1 or t2)  # type: ignore[arg-type]
        entries, _ = _parse(raw, 0, len(raw))
        ea, eb = (entries, {}) if t2 is None else ({}, entries)
    else:
        ea, eb = _middle(bytes.fromhex(t1), read(t1), bytes.fromhex(t2), read(t2))
    names = sorted(set(ea) | set(eb), key=lambda n: n + b"/" if stat.S_ISDIR((ea.get(n) or eb[n])[0]) else n)
    for name in names:
        a, b = ea.get(name), eb.get(name)
        if a == b:
            continue
        path = base + name.decode("utf-8", "replace")
        a_dir = a is not None and stat.S_ISDIR(a[0])
        b_dir = b is not None and stat.S_ISDIR(b[0])
        if a_dir or b_dir:
            yield from tree_changes(read, a[1].hex() if a_dir else None, b[1].hex() if b_dir else None, path + "/")
            if a is not None and not a_dir:
                yield (path, a[1].hex(), None, None)
            if b is not None and not b_dir:
                yield (path, None, b[1].hex(), b[0])
            continue
        yield (path, a[1].hex() if a else None, b[1].hex() if b else None, b[0] if b else None)
