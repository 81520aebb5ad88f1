"""Review as git branches: a proposal is commits on ``refs/heads/review/<id>`` off main.

* ``propose`` validates every changed file, then commits them on a new review branch.
* A person can propose too, by pushing a ``review/*`` branch from their own clone; every file
  such a branch changes is validated here, and its problems are listed and block approval.
* ``approve_review`` merges into main as one commit with parents ``[main, branch head]`` and a
  ``Reviewed-by:`` trailer. The merge is path-level and three-way from the merge base: a path
  changed on both sides to different content is a conflict, reported before anything is
  written. The branch is then deleted (compare-and-swap).
* ``reject_review`` records the reason as an (empty) commit on main, then deletes the branch.
"""

from __future__ import annotations

import datetime as _dt
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping

from dulwich.graph import find_merge_base

from . import gate
from .errors import Conflict, NotFound, ValidationError
from .ids import new_ulid
from .records import ProjectState, now_iso, parse_memory, parse_state, validate_path
from .store import MAIN, REVIEW_PREFIX, Change, Store
from .store.diskcache import DiskCache
from .store.repo import _check_author, _check_store_path, author_from_env

REVIEW_KINDS = ("change", "state", "project", "memory", "config")
_REVIEW_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*\Z")
_TRAILER_RE = re.compile(r"^(Review-Kind|Review-Id):\s*(.+)$", re.MULTILINE)
PROTECTED_PATHS = gate.PROTECTED_PATHS


@dataclass
class Proposal:
    id: str
    ref: str
    title: str
    kind: str
    author: str
    created: str
    base: str | None            # merge base with main (None: no shared history)
    head: str                   # the branch head
    main: str | None            # main when this view was computed
    paths: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    resolved: dict[str, bytes] = field(default_factory=dict)  # both sides changed, merged entry by entry
    body: str = ""
    commits: int = 0
    changes: list[Change] = field(default_factory=list)
    files: dict[str, bytes | None] = field(default_factory=dict)  # new content per changed path (None = deleted)
    status: str = "open"        # open | approved | rejected
    result: str | None = None   # main's sha after approve/reject

    @property
    def approvable(self) -> bool:
        return not self.problems and not self.conflicts

    def to_dict(self, with_files: bool = False) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("id", "ref", "title", "kind", "author", "created", "base", "head",
                                                 "main", "paths", "problems", "conflicts", "body", "commits",
                                                 "status", "result")}
        out["approvable"] = self.approvable
        out["refused"] = bool(self.problems)  # by the gate; ``problems`` says why (the words approve uses)
        out["merged_by_entry"] = sorted(self.resolved)
        out["changes"] = [{"path": c.path, "old": c.old, "new": c.new} for c in self.changes]
        if with_files:
            out["files"] = {p: (None if b is None else b.decode("utf-8", "replace")) for p, b in self.files.items()}
        return out


def check_review_id(review_id: str) -> str:
    """Accept ``<id>``, ``review/<id>`` or ``refs/heads/review/<id>``; return ``<id>``."""
    rid = review_id
    for prefix in ("refs/heads/review/", "review/"):
        if isinstance(rid, str) and rid.startswith(prefix):
            rid = rid[len(prefix):]
            break
    if (not isinstance(rid, str) or len(rid) > 200 or not _REVIEW_ID_RE.match(rid) or ".." in rid
            or rid.endswith(".lock") or "/." in rid):
        raise ValidationError("review_id", f"{review_id!r} is not a review id (letters, digits, '.', '_', '-', '/')")
    return rid


def review_ref(review_id: str) -> bytes:
    return REVIEW_PREFIX + check_review_id(review_id).encode()


def _iso(ts: int) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _split_message(message: str) -> tuple[str, str]:
    """(title, body without trailer lines) of a proposal commit message."""
    title, _, rest = message.strip().partition("\n")
    body = "\n".join(line for line in rest.strip().splitlines() if not _TRAILER_RE.match(line)).strip()
    return title.strip(), body


def _problem(path: str, exc: Exception) -> str:
    msg = str(exc)
    return msg if msg.startswith(path) else f"{path}: {msg}"


def validate_changes(store: Store, changes: Mapping[str, tuple[int | None, bytes | None]]) -> list[str]:
    """Problems with a set of changed files ``{path: (mode, content or None)}``; [] if all good
    (the gate's net-change rules: layout, modes, schema, the protected configuration)."""
    return gate.net_problems(store, changes)


def _append_only_problems(store: Store, changes: list[Change], files: Mapping[str, bytes | None]) -> list[str]:
    """Captured interactions are append-only: a proposal may add lines, never change or drop them."""
    problems = []
    for c in changes:
        if not c.path.startswith("interactions/") or c.old is None:
            continue
        new = files.get(c.path)
        if new is None or not new.startswith(store.read_blob(c.old)):
            problems.append(f"{c.path}: captured interactions are append-only (lines may be added, "
                            "not changed or removed)")
    return problems


# --------------------------------------------------------------------------- reading reviews


@dataclass(frozen=True)
class _BranchContent:
    """What a branch proposes: a function of its head and merge base(s) only (commits are
    immutable), so it is computed once and shared by every later view, whatever main does."""

    title: str
    body: str
    kind: str
    author: str
    created: str
    commits: int
    changes: tuple[Change, ...] = ()
    files: tuple[tuple[str, bytes | None], ...] = ()
    problems: tuple[str, ...] = ()


_CONTENT_CACHE: "OrderedDict[tuple, _BranchContent]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CONTENT_CACHE_MAX = 1024
_CONTENT_CACHE_MAX_BYTES = 1_000_000  # a branch with more changed content than this is not kept
_DIFF_CACHE_MAX = 32


def _cache_get(cache: OrderedDict, key: Any) -> Any:
    with _CACHE_LOCK:
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
        return hit


def _cache_put(cache: OrderedDict, key: Any, value: Any, limit: int) -> None:
    with _CACHE_LOCK:
        cache[key] = value
        while len(cache) > limit:
            cache.popitem(last=False)


def _branch_content(store: Store, head: str, bases: list[str], main: str | None, disk: bool = True) -> _BranchContent:
    # The gate's verdict depends on the branch's own commits (fixed by head and bases) and on
    # main's caps and redaction patterns: all of them are in the key.
    limits = gate.limits_of(store)
    key = (head, tuple(bases), main is not None, limits, gate.settings_key(store))
    hit = _cache_get(_CONTENT_CACHE, key)
    if hit is not None:
        return hit
    disk_key = _disk_key(key)
    hit = _disk_get(store, disk_key) if disk else None
    if hit is not None:
        _cache_put(_CONTENT_CACHE, key, hit, _CONTENT_CACHE_MAX)
        return hit
    # The branch's own commits: reachable from its head, not from main. Every commit main and
    # the branch share is an ancestor of a merge base, so excluding the bases is the same set
    # and does not walk main's whole history.
    commits = [e.commit for e in store.repo.get_walker(include=[head.encode()], exclude=[b.encode() for b in bases])]
    oldest = commits[-1] if commits else store._commit(head)
    title, body = _split_message(oldest.message.decode("utf-8", "replace"))
    trailers = dict(_TRAILER_RE.findall("\n".join(c.message.decode("utf-8", "replace") for c in commits)))
    base = bases[0] if bases else None
    meta = dict(title=title, body=body, kind=trailers.get("Review-Kind", "change").strip(),
                author=oldest.author.decode("utf-8", "replace"), created=_iso(oldest.author_time),
                commits=len(commits))
    if main is not None and base is None:
        out = _BranchContent(**meta, problems=(
            "the branch shares no history with main; branch it from main and push again",))
    elif base == head:
        out = _BranchContent(**meta, problems=("the branch has nothing that is not already on main",))
    else:
        base_tree = store._commit(base).tree if base else None
        # The gate checks every commit of the branch first (sizes from object headers), so nothing
        # refused is read whole: a 100 MB file is reported, never loaded.
        verdict = gate.check_branch(store, head, main, limits, commits=commits)
        _remember_verdict(store, gate.verdict_key(store, head, bases, main is not None), verdict.problems)
        changes: list[Change] = []
        found: dict[str, tuple[int | None, bytes | None]] = {}
        files: dict[str, bytes | None] = {}
        problems: list[str] = []
        try:
            for path, old_sha, new_sha, mode in store.tree_changes(base_tree, store._commit(head).tree):
                changes.append(Change(path, old_sha, new_sha))
                content = None
                if new_sha is not None and mode == gate.FILE_MODE:
                    size = verdict.sizes.get(new_sha)
                    if size is None or size <= limits.max_file_bytes:
                        content = store.read_blob(new_sha)
                    else:
                        files[path] = f"(not shown: {size} bytes, over the cap)".encode()
                found[path] = (mode, content)
                files.setdefault(path, content)
        except Exception as exc:  # noqa: BLE001 - malformed trees: the gate has said why
            problems.append(f"the branch's folders cannot be compared with main ({type(exc).__name__})")
        if not changes and not verdict.problems:
            problems.append("the branch changes no files")
        for problem in verdict.problems + validate_changes(store, found):
            if problem not in problems:
                problems.append(problem)
        problems.extend(_append_only_problems(store, changes, files))
        out = _BranchContent(**meta, changes=tuple(changes), files=tuple(files.items()), problems=tuple(problems))
    if sum(len(b or b"") for _, b in out.files) <= _CONTENT_CACHE_MAX_BYTES:
        _cache_put(_CONTENT_CACHE, key, out, _CONTENT_CACHE_MAX)
        _disk_put(store, disk_key, out)
    return out


# A fresh CLI process (``atocore review list``, ``status``) has an empty LRU: the same content is
# also kept on disk, one JSON file per key in the index folder (disposable like the other indexes:
# deleting it costs one recomputation). The key covers everything the content depends on: head,
# merge base(s), main's caps and redaction patterns, and this code's version.
_DISK_FORMAT = 1
_DISK_DIR = "review-views"
_DISK_MAX_FILES = 2048


def _disk_key(key: tuple) -> str:
    import hashlib

    from . import __version__

    return hashlib.sha1(repr((_DISK_FORMAT, __version__, key)).encode()).hexdigest()


def _disk_get(store: Store, disk_key: str) -> _BranchContent | None:
    import base64

    d = DiskCache(store.index_dir / _DISK_DIR, _DISK_MAX_FILES).get(disk_key)
    if d is None:
        return None
    try:
        return _BranchContent(
            title=d["title"], body=d["body"], kind=d["kind"], author=d["author"], created=d["created"],
            commits=int(d["commits"]), changes=tuple(Change(*c) for c in d["changes"]),
            files=tuple((p, None if b is None else base64.b64decode(b)) for p, b in d["files"]),
            problems=tuple(d["problems"]))
    except (ValueError, KeyError, TypeError):
        return None  # missing or damaged: recompute


def _disk_put(store: Store, disk_key: str, out: _BranchContent) -> None:
    import base64

    d = dict(title=out.title, body=out.body, kind=out.kind, author=out.author, created=out.created,
             commits=out.commits, changes=[[c.path, c.old, c.new] for c in out.changes],
             files=[[p, None if b is None else base64.b64encode(b).decode()] for p, b in out.files],
             problems=list(out.problems))
    DiskCache(store.index_dir / _DISK_DIR, _DISK_MAX_FILES).put(disk_key, d)


def _main_blobs(store: Store, main: str, changes: list[Change]) -> dict[str, str | None]:
    """``{path: blob on main}`` for the paths a proposal changes: a lookup per path (raw tree
    search), not a diff of main against the merge base, which costs what main changed since
    (thousands of captured turns for a week-old proposal, ~12 ms each in a queue of 100)."""
    tree = store._tree_of(main)
    out: dict[str, str | None] = {}
    for c in changes:
        raw = store._entry_at(tree, [part.encode() for part in c.path.split("/")])
        out[c.path] = raw.hex() if raw is not None else None
    return out


_BASES: "OrderedDict[tuple[str, str], tuple[str, list[str], frozenset[bytes]]]" = OrderedDict()
_NEW_ON_MAIN: "OrderedDict[tuple[str, str], frozenset[bytes] | None]" = OrderedDict()


def _new_on_main(store: Store, old: str, new: str) -> frozenset[bytes] | None:
    """Commits main gained going from ``old`` to ``new``, or None if ``old`` is not an ancestor
    of ``new`` (main was moved back, e.g. by a restore)."""
    key = (old, new)
    with _CACHE_LOCK:
        if key in _NEW_ON_MAIN:
            return _NEW_ON_MAIN[key]
    commits = [e.commit for e in store.repo.get_walker(include=[new.encode()], exclude=[old.encode()])]
    grew = new == old or any(old.encode() in c.parents for c in commits)
    out = frozenset(c.id for c in commits) if grew else None
    _cache_put(_NEW_ON_MAIN, key, out, _DIFF_CACHE_MAX)
    return out


def _merge_bases(store: Store, main: str, head: str) -> list[str]:
    """``find_merge_base(main, head)``, carried forward when main only grew by commits that are
    not the branch's own: the common ancestors of main and the branch are then unchanged (a commit
    main gained is common only if the branch contains it, and the branch's commits outside its
    merge bases are exactly its own). One review approved leaves the others' bases as they were,
    so the queue after an approval does not walk history 100 times."""
    key = (str(store.path), head)
    prev = _cache_get(_BASES, key)
    if prev is not None and prev[0] != main:
        gained = _new_on_main(store, prev[0], main)
        if gained is not None and not (gained & prev[2]):
            prev = (main, prev[1], prev[2])
            _cache_put(_BASES, key, prev, _CONTENT_CACHE_MAX)
    if prev is not None and prev[0] == main:
        return prev[1]
    fast = _fast_branch_point(store, head, main)
    if fast is not None:  # from the history index: no walk over main's history
        bases = [fast[0]] if fast[0] else []
        own = frozenset(sha.encode() for sha in fast[1])
    else:
        bases = [b.decode() for b in find_merge_base(store.repo, [main.encode(), head.encode()])]
        own = frozenset(e.commit.id for e in store.repo.get_walker(include=[head.encode()],
                                                                    exclude=[b.encode() for b in bases]))
    _cache_put(_BASES, key, (main, bases, own), _CONTENT_CACHE_MAX)
    return bases


def _branch_view(store: Store, rid: str, ref: bytes, head: str, merges: Any = None, disk: bool = True) -> Proposal:
    main = store.head()
    bases = _merge_bases(store, main, head) if main is not None else []
    base = bases[0] if bases else None
    content = _branch_content(store, head, bases, main, disk)
    p = Proposal(id=rid, ref=ref.decode(), title=content.title or f"review {rid}", kind=content.kind,
                 author=content.author, created=content.created, base=base, head=head, main=main, body=content.body,
                 commits=content.commits, changes=list(content.changes), files=dict(content.files),
                 problems=list(content.problems))
    p.paths = [c.path for c in p.changes]
    if main is not None and base is not None and base != main and base != head:
        ours = _main_blobs(store, main, p.changes)
        for c in p.changes:
            if ours[c.path] != c.old and ours[c.path] != c.new:  # main changed it too, differently
                merged = _cached_merge(store, merges, c.path, c.old, ours[c.path], c.new)
                if merged is None:
                    p.conflicts.append(c.path)
                else:
                    p.resolved[c.path] = merged
    return p


_VERDICTS: "OrderedDict[tuple[str, str], tuple[str, ...]]" = OrderedDict()  # (store, key) -> problems


def _remember_verdict(store: Store, key: str, problems: list[str]) -> None:
    _cache_put(_VERDICTS, (str(store.path), key), tuple(problems), _CONTENT_CACHE_MAX)
    if gate.load_verdict(store, key) != list(problems):
        gate.save_verdict(store, key, problems)


def gate_problems(store: Store, head: str, main: str | None) -> list[str]:
    """The gate's verdict on a branch (``gate.check_branch(...).problems``), cached in memory and
    on disk under :func:`gate.verdict_key` (head, merge bases, main's settings, the gate's code):
    a backup push asks this for every open review branch, and the branches rarely change between
    two pushes. ``review list``/``show`` fill the same cache."""
    try:
        bases = _merge_bases(store, main, head) if main is not None else []
    except Exception:  # noqa: BLE001 - malformed commits: the gate walks them its own way, uncached
        return gate.check_branch(store, head, main).problems
    key = gate.verdict_key(store, head, bases, main is not None)
    hit = _cache_get(_VERDICTS, (str(store.path), key))
    if hit is not None:
        return list(hit)
    problems = gate.load_verdict(store, key)
    if problems is None:
        try:
            commits = [e.commit for e in store.repo.get_walker(include=[head.encode()],
                                                               exclude=[b.encode() for b in bases])]
        except Exception:  # noqa: BLE001 - as above
            return gate.check_branch(store, head, main).problems
        problems = gate.check_branch(store, head, main, commits=commits).problems
        gate.save_verdict(store, key, problems)
    _cache_put(_VERDICTS, (str(store.path), key), tuple(problems), _CONTENT_CACHE_MAX)
    return problems


def _safe_view(store: Store, rid: str, ref: bytes, head: str, merges: Any = None, disk: bool = True) -> Proposal:
    """The branch's view; a branch whose objects cannot even be parsed (a hand-made commit with a
    broken header, a missing object) is listed as refused instead of breaking the listing."""
    try:
        return _branch_view(store, rid, ref, head, merges, disk)
    except (NotFound, Conflict):
        raise
    except Exception as exc:  # noqa: BLE001 - hostile input: report it, never crash on it
        p = Proposal(id=rid, ref=ref.decode(), title=f"review {rid}", kind="change", author="?", created="",
                     base=None, head=head, main=store.head())
        try:
            p.problems.extend(gate.check_branch(store, head, p.main).problems)
        except Exception:  # noqa: BLE001
            pass
        p.problems.append(f"the branch cannot be read: its commits or folders are malformed ({type(exc).__name__}: "
                          f"{str(exc)[:200]})")
        return p


def _fast_branch_point(store: Store, head: str, main: str) -> tuple[str | None, list[str]] | None:
    """Merge base and the branch's own commits from the store's history index (None: walk)."""
    try:
        return store.history.branch_point(head, main)
    except (OSError, NotFound):
        return None


def list_reviews(store: Store) -> list[Proposal]:
    """Open proposals (``review/*`` branches, including ones pushed by people), oldest first."""
    from .store.parsecache import ParseCache

    out = []
    merges = ParseCache(store.index_dir, "review-merges.json")
    for ref, head in store.refs(REVIEW_PREFIX).items():
        rid = ref[len(REVIEW_PREFIX):]
        try:
            check_review_id(rid)
        except ValidationError:
            continue
        out.append(_safe_view(store, rid, ref.encode(), head, merges))
    merges.save()
    out.sort(key=lambda p: (p.created, p.id))
    return out


def get_review(store: Store, review_id: str, _disk: bool = True) -> Proposal:
    rid = check_review_id(review_id)
    ref = REVIEW_PREFIX + rid.encode()
    head = store.head(ref)
    if head is None:
        raise NotFound(f"no open review {rid!r}; 'atocore review list' shows the open ones")
    return _safe_view(store, rid, ref, head, disk=_disk)


_STATES: dict[tuple[str, str], ProjectState] = {}  # (blob sha, path) -> parsed (read only here)


def _parsed_state(store: Store, sha: str, path: str) -> ProjectState:
    """A state file parsed once per content: listing 100 reviews of a busy project merges each
    against the same main version of ``state/<project>.yaml``."""
    key = (sha, path)
    if key not in _STATES:
        if len(_STATES) > 256:
            _STATES.clear()
        _STATES[key] = parse_state(store.read_blob(sha), path)
    return _STATES[key]


def _cached_merge(store: Store, merges: Any, path: str, base: str | None, ours: str | None,
                  theirs: str | None) -> bytes | None:
    """:func:`_merge_state`, kept by a listing in the index folder keyed by the three blobs (a
    fresh ``review list`` process would otherwise parse three state files per state proposal)."""
    if merges is None or not path.startswith("state/"):
        return _merge_state(store, path, base, ours, theirs)
    import base64

    def compute() -> str | None:
        merged = _merge_state(store, path, base, ours, theirs)
        return None if merged is None else base64.b64encode(merged).decode()

    hit = merges.get(f"{path}\0{base}\0{ours}\0{theirs}", compute)
    return None if hit is None else base64.b64decode(hit)


def _merge_state(store: Store, path: str, base: str | None, ours: str | None, theirs: str | None) -> bytes | None:
    """Three-way merge of a trusted-state file, entry by entry (key); None if it really conflicts.

    Two proposals for *different* keys of one project both rewrite ``state/<project>.yaml``;
    path-level merging would call that a conflict, so state files are merged by key: a key
    changed on both sides to different entries is the only conflict.
    """
    if not path.startswith("state/") or ours is None or theirs is None:
        return None
    try:
        states = [_parsed_state(store, sha, path) if sha else ProjectState(project="-")
                  for sha in (base, ours, theirs)]
    except ValidationError:
        return None
    b, o, t = ({e.key: e for e in st.entries} for st in states)
    merged = dict(o)
    for key in set(b) | set(t):
        if b.get(key) == t.get(key):
            continue  # theirs left it alone
        if b.get(key) != o.get(key) and o.get(key) != t.get(key):
            return None  # both changed the same key differently
        if t.get(key) is None:
            merged.pop(key, None)
        else:
            merged[key] = t[key]
    order = [e.key for e in states[1].entries] + [e.key for e in states[2].entries if e.key not in o]
    result = ProjectState(project=states[1].project, entries=[merged[k] for k in order if k in merged])
    return result.dump()


# --------------------------------------------------------------------------- writing


def _message(title: str, body: str, trailers: list[tuple[str, str]]) -> str:
    parts = [title.strip()]
    if body.strip():
        parts.append(body.strip())
    parts.append("\n".join(f"{k}: {v}" for k, v in trailers))
    return "\n\n".join(parts)


def propose(store: Store, changes: Mapping[str, bytes | None], title: str, body: str = "", kind: str = "change",
            author: str | None = None, approve: bool = False, reviewer: str | None = None,
            review_id: str | None = None) -> Proposal:
    """Validate ``changes`` and commit them on a new ``review/<id>`` branch off main.

    With ``approve=True`` (the operator shortcut) the proposal is merged at once, so history
    shows both the proposal commit and the approving merge.
    """
    if not isinstance(title, str) or not title.strip() or "\n" in title.strip():
        raise ValidationError("title", "a proposal needs a one-line title")
    if kind not in REVIEW_KINDS:
        raise ValidationError("kind", f"{kind!r} is not allowed", REVIEW_KINDS)
    if not changes:
        raise ValidationError("changes", "a proposal must change at least one file")
    for path, content in changes.items():
        _check_store_path(path)
        if content is not None:
            try:
                validate_path(path, content)
            except ValidationError as exc:
                where = exc.field if exc.field.startswith(path) else f"{path}: {exc.field}"
                raise ValidationError(where, exc.message, exc.allowed) from None
        elif path in PROTECTED_PATHS:
            raise ValidationError(path, "the store configuration cannot be deleted")
    gate.require_ok(gate.check_files(store, changes), "the proposal")
    appended = [Change(path, store.blob_id(path), None) for path in changes if path.startswith("interactions/")]
    bad = _append_only_problems(store, [c for c in appended if c.old], changes)
    if bad:
        raise ValidationError(bad[0].split(": ", 1)[0], bad[0].split(": ", 1)[1])
    rid = check_review_id(review_id) if review_id else new_ulid()
    ref = REVIEW_PREFIX + rid.encode()
    who = author or author_from_env()
    with store.lock():
        if store.head(ref) is not None:
            raise Conflict(f"review {rid!r} already exists")
        main = store.head()
        message = _message(title, body, [("Review-Id", rid), ("Review-Kind", kind)])
        sha = store.commit(changes, message, author=who, ref=ref, parents=[main] if main else [])
        if sha is None:
            raise ValidationError("changes", "nothing to propose: main already has exactly this content")
        if approve:
            result = approve_review(store, rid, reviewer or who)
            p = _branch_view_after(store, rid, ref, sha, main)
            p.status, p.result = "approved", result
            return p
        return get_review(store, rid)


def _branch_view_after(store: Store, rid: str, ref: bytes, head: str, main: str | None) -> Proposal:
    # The branch is gone once merged; describe it from its head commit.
    c = store._commit(head)
    message = c.message.decode("utf-8", "replace")
    title, body = _split_message(message)
    trailers = dict(_TRAILER_RE.findall(message))
    changes = store.diff(main, head)
    return Proposal(id=rid, ref=ref.decode(), title=title, kind=trailers.get("Review-Kind", "change"),
                    author=c.author.decode("utf-8", "replace"), created=_iso(c.author_time), base=main, head=head,
                    main=store.head(), paths=[ch.path for ch in changes], changes=changes, commits=1, body=body)


def approve_review(store: Store, review_id: str, reviewer: str | None, expect_head: str | None = None) -> str:
    """Merge the review into main (one merge commit with a ``Reviewed-by:`` trailer); return main's sha.

    ``expect_head`` (a sha or its prefix, as ``review show`` prints it) makes sure what is merged is
    what the reviewer read: a branch that received new commits since is refused, not merged.
    """
    who = reviewer or author_from_env()
    _check_author(who)
    with store.lock():
        p = get_review(store, review_id, _disk=False)  # approval recomputes: never trusts a file
        if expect_head is not None:
            wanted = expect_head.strip().lower()
            if len(wanted) < 7 or not p.head.startswith(wanted):
                raise Conflict(f"review {p.id} is at {p.head[:12]}, not {expect_head!r} (it changed since you read "
                               f"it, or the sha is shorter than 7 characters): run 'atocore review show {p.id}' "
                               "again, then approve with its new head")
        if p.main is not None and p.base == p.head:
            # already merged (e.g. a crash between the merge and the branch deletion): tidy up
            store.set_ref(p.ref.encode(), p.head, None)
            return p.main
        if p.problems:
            raise Conflict(f"review {p.id} is refused by the gate; it cannot be approved until its problems are fixed: "
                           + "; ".join(p.problems))
        if p.conflicts:
            raise Conflict(f"review {p.id} no longer merges: main changed {', '.join(p.conflicts)} since the "
                           "proposal was made; nothing was merged. Reject it and propose again, or update the branch")
        changes = {c.path: p.resolved.get(c.path) or (store.read_blob(c.new) if c.new else None) for c in p.changes}
        changes.update(_activate_candidates(changes))
        trailers = [("Review-Id", p.id), ("Review-Kind", p.kind), ("Proposed-by", p.author), ("Reviewed-by", who)]
        message = _message(f"Approve review {p.id}: {p.title}", p.body, trailers)
        sha = store.commit(changes, message, author=who, ref=MAIN, parents=[p.main, p.head] if p.main else [p.head],
                           allow_empty=True)
        _close_branch(store, p)
        assert sha is not None
        return sha


def _close_branch(store: Store, p: Proposal) -> None:
    """Delete the branch once main records the decision. A ``git push`` does not take our lock:
    if the branch got new commits meanwhile, those were never reviewed, so the branch stays open
    with them (set_ref's Conflict would wrongly say nothing was changed: main already moved)."""
    try:
        store.set_ref(p.ref.encode(), p.head, None)
    except Conflict:
        pass


def _activate_candidates(changes: dict[str, bytes | None]) -> dict[str, bytes]:
    """Approving a proposed memory is what makes it trusted: ``candidate`` becomes ``active``."""
    out = {}
    for path, raw in changes.items():
        if raw is None or not path.startswith("memories/"):
            continue
        mem = parse_memory(raw, path)
        if mem.status == "candidate":
            mem.status, mem.updated = "active", now_iso()
            out[path] = mem.dump()
    return out


def reject_review(store: Store, review_id: str, reason: str, reviewer: str | None) -> str:
    """Delete the review branch and record why as an empty commit on main; return main's sha."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("reason", "say why the proposal is rejected")
    who = reviewer or author_from_env()
    _check_author(who)
    with store.lock():
        p = get_review(store, review_id)
        trailers = [("Review-Id", p.id), ("Review-Head", p.head), ("Proposed-by", p.author), ("Rejected-by", who)]
        body = f"Reason: {reason.strip()}\n\nChanged: {', '.join(p.paths) or 'nothing'}"
        sha = store.commit({}, _message(f"Reject review {p.id}: {p.title}", body, trailers), author=who,
                           allow_empty=True)
        _close_branch(store, p)
        assert sha is not None
        return sha


__all__ = ["Proposal", "propose", "list_reviews", "get_review", "approve_review", "reject_review",
           "validate_changes", "check_review_id", "review_ref", "REVIEW_KINDS"]
