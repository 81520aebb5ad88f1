"""Which objects a set of new ref tips adds over a set of known ones, found cheaply.

dulwich's ``MissingObjectFinder`` collects every object of the *known* side's full trees to
subtract them; on a store with 10k memories that is ~0.3 s per push. Here new commits are
found with a walker that stops at the known history, and each new commit's tree is diffed
against its first parent's tree, descending only into subtrees whose id changed. An object
unchanged from the parent is covered by the parent (known, or new and diffed in turn), so the
result holds every object reachable from the new tips and not from the known ones (plus, at
worst, a few the remote already has, e.g. the trees of a restore to an old revision).
"""

from __future__ import annotations

from typing import Iterable

from dulwich.objects import Commit, Tag, parse_tree
from dulwich.walk import Walker

_DIR = 0o040000
_GITLINK = 0o160000


def _peel(objs, sha: bytes) -> tuple[list[bytes], bytes | None, bytes | None]:
    """(tag ids along the way, commit id or None, other target id or None)."""
    tags = []
    obj = objs[sha]
    while isinstance(obj, Tag):
        tags.append(obj.id)
        obj = objs[obj.object[1]]
    if isinstance(obj, Commit):
        return tags, obj.id, None
    return tags, None, obj.id


def _tree_entries(objs, sha: bytes) -> list[tuple[bytes, int, bytes]]:
    _type, raw = objs.get_raw(sha)
    return list(parse_tree(raw, 20))


def new_objects(objs, wants: Iterable[bytes], haves: Iterable[bytes]) -> list[bytes]:
    """Objects reachable from ``wants`` but not from ``haves`` (ids unknown to ``objs`` in
    ``haves`` are ignored)."""
    out: list[bytes] = []
    seen: set[bytes] = set()

    def add(sha: bytes) -> bool:
        if sha in seen:
            return False
        seen.add(sha)
        out.append(sha)
        return True

    have_set = {h for h in haves if h in objs}
    have_commits = []
    for h in have_set:
        _tags, commit, _other = _peel(objs, h)
        if commit is not None:
            have_commits.append(commit)
    want_commits = []
    for w in wants:
        if w in have_set:
            continue
        tags, commit, other = _peel(objs, w)
        for t in tags:
            if t not in have_set:
                add(t)
        if commit is not None:
            want_commits.append(commit)
        elif other is not None:
            add(other)  # a tag on a tree or blob: rare, sent whole
    if not want_commits:
        return out

    def diff_tree(new: bytes, old: bytes | None) -> None:
        if new == old or not add(new):
            return
        old_entries = {name: (mode, sha) for name, mode, sha in _tree_entries(objs, old)} if old else {}
        for name, mode, sha in _tree_entries(objs, new):
            if mode == _GITLINK:
                continue
            prev = old_entries.get(name)
            if prev is not None and prev[1] == sha:
                continue
            if mode & 0o170000 == _DIR:
                diff_tree(sha, prev[1] if prev is not None and prev[0] & 0o170000 == _DIR else None)
            else:
                add(sha)

    for entry in Walker(objs, include=want_commits, exclude=have_commits):
        c = entry.commit
        add(c.id)
        parent_tree = objs[c.parents[0]].tree if c.parents and c.parents[0] in objs else None
        diff_tree(c.tree, parent_tree)
    return out
