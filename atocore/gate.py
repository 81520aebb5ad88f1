"""The gate: the one check for everything that reaches main (docs/store.md, "The gate").

Review list/show/approve, refresh, propose and restore all call it, so what ``review list``
calls approvable is exactly what ``approve`` accepts, with the same words.

What it refuses:

* **paths** outside the layout (per top folder, below), or with an unsafe segment
  (:mod:`atocore.store.paths`: ``..``, control characters, ``.git*`` in any case or
  disguise, ...);
* **modes** other than a plain file (100644) or a folder: symlinks (120000), submodules
  (160000) and executables (100755);
* **sizes**: a file over ``limits.max_file_bytes``, a change over ``limits.max_change_bytes``
  of new content or ``limits.max_change_files`` paths (``atocore.yaml`` of main sets them);
* **content**: not UTF-8 text, a record that breaks its schema (``atocore.yaml`` included, by
  the start-up schema), something the redactor would redact (a secret);
* **objects** git would reject (``fsck --strict``): trees not in canonical form (unsorted,
  duplicate or zero-padded entries), commits with malformed headers.

For a branch, *every commit* is checked, not only the net change: approving merges the
branch's commits into main's history, so a secret added and deleted again would still reach
main and every backup.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from dulwich.objects import Commit, parse_tree, serialize_tree, sorted_tree_items

from .config import DEFAULT_LIMITS, load_config
from .errors import ValidationError
from .store.diskcache import DiskCache
from .store.paths import path_problem, printable, segment_problem

ROOT_FILES = ("atocore.yaml", "README.md")
FILE_MODE = 0o100644
PROTECTED_PATHS = ("atocore.yaml",)
MAX_COMMITS = 1000       # a longer proposal: squash it
MAX_PROBLEMS = 50
_YEAR, _MONTH = re.compile(r"^\d{4}\Z"), re.compile(r"^\d{2}\Z")
_IDENT = re.compile(rb"^[^<>\n]*<[^<>\n]*> \d+ [+-]\d{4}\Z")
_MARK = re.compile(r"\[REDACTED:([a-z0-9-]+)\]")
LAYOUT = ("atocore.yaml, README.md, memories/<id>.md, state/<project>.yaml, projects/<project>.yaml, "
          "interactions/YYYY/MM/<session>.jsonl, sources/<project>/<path>, eval/<name>.yaml")


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = DEFAULT_LIMITS["max_file_bytes"]
    max_change_bytes: int = DEFAULT_LIMITS["max_change_bytes"]
    max_change_files: int = DEFAULT_LIMITS["max_change_files"]


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)   # blob sha -> size, for what was looked at
    new_bytes: int = 0

    def add(self, problem: str) -> None:
        if problem not in self.problems and len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


_CFG_CACHE: dict[tuple[str, str | None], tuple[Limits, tuple[str, ...]]] = {}


def _main_settings(store) -> tuple[Limits, tuple[str, ...]]:
    """(caps, redaction patterns) of main's configuration, parsed once per version of it."""
    key = (str(store.path), store.blob_id("atocore.yaml"))
    hit = _CFG_CACHE.get(key)
    if hit is None:
        cfg = load_config(store)
        hit = (Limits(**cfg.limits), tuple(cfg.redact_patterns))
        if len(_CFG_CACHE) > 64:
            _CFG_CACHE.clear()
        _CFG_CACHE[key] = hit
    return hit


def limits_of(store) -> Limits:
    """The caps main's configuration sets (a proposal can never raise its own caps)."""
    return _main_settings(store)[0]


def settings_key(store) -> tuple[Limits, tuple[str, ...]]:
    """What a branch's verdict depends on besides its own commits (for caches of it)."""
    return _main_settings(store)


def _patterns(store) -> tuple[str, ...]:
    return _main_settings(store)[1]


# ----------------------------------------------------------------------------- files


def layout_problem(path: str) -> str | None:
    """Why ``path`` does not belong in the store's layout, or None."""
    why = path_problem(path)
    if why:
        return why
    parts = path.split("/")
    top = parts[0]
    if len(parts) == 1:
        return None if path in ROOT_FILES else f"only {', '.join(ROOT_FILES)} may live at the top of the store"
    if top == "memories":
        return None if len(parts) == 2 and path.endswith(".md") else "memories are memories/<id>.md"
    if top in ("state", "projects"):
        return None if len(parts) == 2 and path.endswith(".yaml") else f"{top} files are {top}/<project>.yaml"
    if top == "interactions":
        ok = (len(parts) == 4 and _YEAR.match(parts[1]) and _MONTH.match(parts[2]) and parts[3].endswith(".jsonl"))
        return None if ok else "captured turns are interactions/YYYY/MM/<session>.jsonl"
    if top == "sources":
        return None if len(parts) >= 3 else "source copies are sources/<project>/<path>"
    if top == "eval":  # golden questions for 'atocore eval' (validated as records)
        ok = len(parts) == 2 and path.endswith((".yaml", ".yml"))
        return None if ok else "golden questions are eval/<name>.yaml"
    return f"{top!r} is not a folder of the store (the layout: {LAYOUT})"


def secret_kinds(text: str, patterns: Iterable[str] = ()) -> list[str]:
    """The kinds of secret the redactor would remove from ``text`` ([] if none)."""
    from .redact import redact

    red = redact(text, tuple(patterns))
    if red == text:
        return []
    kinds = sorted(set(_MARK.findall(red)) - set(_MARK.findall(text)))
    return kinds or ["private"]


def content_problems(path: str, content: bytes, limits: Limits, patterns: Iterable[str] = (),
                     schema: bool = True, secrets: bool = True) -> list[str]:
    """Problems with one file's content (size, text, secrets, schema)."""
    from .records import validate_path

    where = printable(path)
    if len(content) > limits.max_file_bytes:
        return [f"{where}: {len(content)} bytes is over the {limits.max_file_bytes}-byte cap for one file "
                "(limits.max_file_bytes)"]
    if b"\x00" in content:
        return [f"{where}: binary content (only text reaches main)"]
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return [f"{where}: not UTF-8 text (only text reaches main)"]
    out = []
    if secrets:
        kinds = secret_kinds(text, patterns)
        if kinds:
            out.append(f"{where}: contains what looks like a secret ({', '.join(kinds)}); remove it from every "
                       "commit of the branch (approving would put it into main's history and every backup)")
    if schema:
        try:
            validate_path(path, content)
        except ValidationError as exc:
            msg = str(exc)
            out.append(msg if msg.startswith(path) else f"{where}: {msg}")
    return out


def mode_problem(path: str, mode: int | None) -> str | None:
    if mode is None or mode == 0o100644:
        return None
    what = {0o120000: "a symlink", 0o160000: "a submodule", 0o100755: "an executable file"}.get(
        mode, f"an entry of mode {mode:o}")
    return f"{printable(path)}: must be a regular file ({what} is not allowed; only plain files, mode 100644, reach main)"


def _count_problem(changes: Mapping, limits: Limits) -> str | None:
    if len(changes) > limits.max_change_files:
        return (f"the change touches {len(changes)} paths, over the cap of {limits.max_change_files} "
                "(limits.max_change_files)")
    return None


def _path_problem(path: str, deleted: bool) -> tuple[str | None, bool]:
    """(problem, done) for one path of a change: deleting is always allowed (it is how stray
    files are cleaned up) except the configuration; anything else must fit the layout."""
    if deleted:
        return (f"{path}: the store configuration cannot be deleted" if path in PROTECTED_PATHS else None), True
    why = layout_problem(path)
    return (f"{printable(path)}: {why}", True) if why else (None, False)


def check_files(store, changes: Mapping[str, bytes | None], limits: Limits | None = None,
                patterns: Iterable[str] | None = None, secrets: bool = True) -> list[str]:
    """Problems with a set of writes ``{path: content or None (delete)}`` bound for main."""
    limits = limits or limits_of(store)
    patterns = _patterns(store) if patterns is None else tuple(patterns)
    v = Verdict()
    too_many = _count_problem(changes, limits)
    if too_many:
        v.add(too_many)
    total = 0
    for path, content in sorted(changes.items()):
        problem, done = _path_problem(path, content is None)
        if problem:
            v.add(problem)
        if done:
            continue
        total += len(content)
        for p in content_problems(path, content, limits, patterns, secrets=secrets):
            v.add(p)
    if total > limits.max_change_bytes:
        v.add(f"the change adds {total} bytes, over the cap of {limits.max_change_bytes} (limits.max_change_bytes)")
    return v.problems


def require_ok(problems: list[str], what: str) -> None:
    if problems:
        field_name = problems[0].split(": ", 1)[0] if ": " in problems[0] else "changes"
        raise ValidationError(field_name, f"{what} refused by the gate: " + "; ".join(problems))


# ----------------------------------------------------------------------------- objects


def object_size(store, sha: str) -> int | None:
    """An object's size from its header, without inflating the whole object (None: unknown)."""
    objects_dir = store.path / "objects"
    try:
        with open(objects_dir / sha[:2] / sha[2:], "rb") as fh:
            head = zlib.decompressobj().decompress(fh.read(256), 64)
        _kind, _, rest = head.partition(b" ")
        return int(rest.split(b"\0", 1)[0])
    except (OSError, ValueError, zlib.error):
        pass
    try:
        for pack in store.repo.object_store.packs:
            try:
                offset = pack.index.object_offset(bytes.fromhex(sha))
            except (KeyError, ValueError):
                continue
            data = pack.data
            with open(data._filename, "rb") as fh:
                fh.seek(offset)
                buf = fh.read(4096)
            b = buf[0]
            kind, size, i, shift = (b >> 4) & 7, b & 15, 1, 4
            while b & 0x80:
                b = buf[i]
                size |= (b & 0x7F) << shift
                shift += 7
                i += 1
            if kind in (1, 2, 3, 4):
                return size
            if kind == 6:  # ofs-delta: skip the base offset
                while buf[i] & 0x80:
                    i += 1
                i += 1
            elif kind == 7:  # ref-delta: skip the base sha
                i += 20
            delta = zlib.decompressobj().decompress(buf[i:], 32)
            pos = 0
            for _ in range(2):  # base size, then target size
                value, shift = 0, 0
                while True:
                    b = delta[pos]
                    pos += 1
                    value |= (b & 0x7F) << shift
                    shift += 7
                    if not b & 0x80:
                        break
            return value
    except Exception:  # noqa: BLE001 - fall back to reading the object
        return None
    return None


def _tree_entries(store, sha: str) -> list[tuple[bytes, int, bytes]] | None:
    try:
        type_num, raw = store._raw(sha)
    except Exception:  # noqa: BLE001
        return None
    if type_num != 2:
        return None
    return list(parse_tree(raw, 20))


def _old_entries(store, shas: list[str]) -> list[dict[bytes, tuple[int, str]]]:
    out = []
    for sha in shas:
        entries = _tree_entries(store, sha)
        if entries is not None:
            out.append({name: (mode, s.decode()) for name, mode, s in entries})
    return out


class _BranchCheck:
    def __init__(self, store, limits: Limits, patterns: tuple[str, ...]):
        self.store, self.limits, self.patterns = store, limits, patterns
        self.v = Verdict()
        self.seen_trees: set[tuple[str, str]] = set()
        self.seen_blobs: set[tuple[str, str]] = set()
        self.sized: set[str] = set()

    def commit(self, c: Commit) -> None:
        sha = c.id.decode()
        raw = c.as_raw_string()
        try:
            type_num, stored = self.store._raw(sha)
        except Exception:  # noqa: BLE001
            self.v.add(f"commit {sha[:12]} is missing or unreadable")
            return
        if stored != raw:
            self.v.add(f"commit {sha[:12]} is not written in git's canonical form (git fsck --strict refuses it)")
        header = stored.split(b"\n\n", 1)[0]
        for line in header.split(b"\n"):
            key, _, value = line.partition(b" ")
            if key in (b"author", b"committer") and not _IDENT.match(value):
                self.v.add(f"commit {sha[:12]}: malformed {key.decode()} line (git fsck --strict refuses it)")
        parents = []
        for p in c.parents:
            try:
                parents.append(self.store._commit(p).tree.decode())
            except Exception:  # noqa: BLE001
                self.v.add(f"commit {sha[:12]}: parent {p.decode()[:12]} is missing")
        self.tree(c.tree.decode(), parents, "", sha)

    def tree(self, sha: str, olds: list[str], prefix: str, commit: str) -> None:
        if sha in olds or (prefix, sha) in self.seen_trees:
            return
        self.seen_trees.add((prefix, sha))
        where = prefix.rstrip("/") or "the root folder"
        try:
            type_num, raw = self.store._raw(sha)
        except Exception:  # noqa: BLE001
            self.v.add(f"{where} (commit {commit[:12]}): tree {sha[:12]} is missing")
            return
        if type_num != 2:
            self.v.add(f"{where} (commit {commit[:12]}): is not a folder object")
            return
        try:
            entries = list(parse_tree(raw, 20, strict=True))
            canonical = b"".join(serialize_tree(sorted_tree_items({n: (m, s) for n, m, s in entries}, False)))
        except Exception:  # noqa: BLE001 - dulwich raises several kinds on garbage
            entries, canonical = [], None
        if canonical != raw or len({n for n, _m, _s in entries}) != len(entries):
            self.v.add(f"{where} (commit {commit[:12]}): the folder object is malformed (unsorted, duplicate or "
                       "badly written entries; git fsck --strict refuses it)")
            return
        old_maps = _old_entries(self.store, olds)
        for name_b, mode, hex_sha in entries:
            s = hex_sha.decode()
            if any(m.get(name_b) == (mode, s) for m in old_maps):
                continue
            try:
                name = name_b.decode("utf-8")
            except UnicodeDecodeError:
                self.v.add(f"{where} (commit {commit[:12]}): a name is not UTF-8 ({name_b!r})")
                continue
            path = prefix + name
            why = segment_problem(name) or ("'/' inside a name" if "/" in name else None)
            if why:
                self.v.add(f"{printable(path)} (commit {commit[:12]}): {why}")
                continue
            if mode == 0o040000:
                sub_olds = [m[name_b][1] for m in old_maps if name_b in m and m[name_b][0] == 0o040000]
                self.tree(s, sub_olds, path + "/", commit)
                continue
            bad = mode_problem(path, mode)
            if bad:
                self.v.add(bad)
                continue
            why = layout_problem(path)
            if why:
                self.v.add(f"{printable(path)}: {why}")
                continue
            self.blob(path, s)

    def blob(self, path: str, sha: str) -> None:
        if (path, sha) in self.seen_blobs:
            return
        self.seen_blobs.add((path, sha))
        size = object_size(self.store, sha)
        if size is not None and size > self.limits.max_file_bytes:
            self.v.add(f"{printable(path)}: {size} bytes is over the {self.limits.max_file_bytes}-byte cap for one "
                       "file (limits.max_file_bytes)")
            self.v.sizes[sha] = size
            return
        try:
            content = self.store.read_blob(sha)
        except Exception:  # noqa: BLE001
            self.v.add(f"{printable(path)}: its content {sha[:12]} is missing or not a file")
            return
        self.v.sizes[sha] = len(content)
        if sha not in self.sized:
            self.sized.add(sha)
            self.v.new_bytes += len(content)
        for p in content_problems(path, content, self.limits, self.patterns, schema=False):
            self.v.add(p)


class _TooMany(Exception):
    pass


def _branch_commits(store, head: str, main: str | None) -> list[Commit]:
    """The commits reachable from ``head`` and not from ``main``. dulwich's walker needs sane
    commit dates; a hand-made commit without them is walked here by its parent lines instead."""
    exclude = [main.encode()] if main else []
    commits: list[Commit] = []
    try:
        for entry in store.repo.get_walker(include=[head.encode()], exclude=exclude):
            commits.append(entry.commit)
            if len(commits) > MAX_COMMITS:
                raise _TooMany
        return commits
    except _TooMany:
        raise
    except Exception:  # noqa: BLE001 - malformed commits: walk them by hand
        pass
    on_main: set[bytes] = set()
    if main:
        on_main = {e.commit.id for e in store.repo.get_walker(include=[main.encode()])}
    commits, seen, todo = [], set(), [head.encode()]
    while todo:
        sha = todo.pop()
        if sha in seen or sha in on_main:
            continue
        seen.add(sha)
        try:
            c = store._commit(sha)
        except Exception:  # noqa: BLE001 - reported by the commit check as missing
            continue
        commits.append(c)
        if len(commits) > MAX_COMMITS:
            raise _TooMany
        todo.extend(c.parents or [])
    return commits


def check_branch(store, head: str, main: str | None, limits: Limits | None = None,
                 commits: list[Commit] | None = None) -> Verdict:
    """Every commit reachable from ``head`` and not from ``main``: objects, paths, modes, sizes,
    text and secrets (schema and append-only rules apply to the net change: see review.py).
    ``commits``: that set when the caller already has it (review listing finds it from the merge
    bases, which does not walk main's history as excluding ``main`` itself does)."""
    limits = limits or limits_of(store)
    chk = _BranchCheck(store, limits, _patterns(store))
    try:
        if commits is None:
            commits = _branch_commits(store, head, main)
        elif len(commits) > MAX_COMMITS:
            raise _TooMany
    except _TooMany:
        chk.v.add(f"the branch has more than {MAX_COMMITS} commits; squash it")
        return chk.v
    for c in commits:
        chk.commit(c)
        if len(chk.v.problems) >= MAX_PROBLEMS:
            break
    if chk.v.new_bytes > limits.max_change_bytes:
        chk.v.add(f"the branch adds {chk.v.new_bytes} bytes, over the cap of {limits.max_change_bytes} "
                  "(limits.max_change_bytes)")
    return chk.v


# ----------------------------------------------------------------------------- verdict cache
# A backup push asks the gate about every open review branch (~100), and each answer walks the
# branch's commits and reads its trees and files (~9 ms each): most of an incremental push. A
# branch's verdict depends only on its own commits (fixed by its head and its merge bases with
# main), main's caps and redaction patterns, and this code; so it is kept on disk, one small
# JSON file per key in the index folder, disposable like every derived cache: a missing,
# damaged or foreign file is recomputed, and a change of any part of the key is a new file.

VERDICT_DIR = "gate-verdicts"
_VERDICT_FORMAT = 1
_VERDICT_MAX_FILES = 2048
_CODE_KEY: list[str] = []


def _code_key() -> str:
    """A hash of the code a verdict comes from (the gate, the path rules, the redactor): a new
    version of any of them must not trust verdicts an older one gave."""
    if not _CODE_KEY:
        import hashlib
        from pathlib import Path

        from . import redact
        from .store import paths

        h = hashlib.sha1()
        for mod_file in (__file__, paths.__file__, redact.__file__):
            try:
                h.update(Path(mod_file).read_bytes())
            except OSError:
                h.update(mod_file.encode())
        _CODE_KEY.append(h.hexdigest())
    return _CODE_KEY[0]


def verdict_key(store, head: str, bases: list[str] | None, main_present: bool) -> str:
    """The cache key of a branch's verdict: its head, the merge bases that bound its own commits
    (None: bounded by main itself, then ``main_present`` carries main's sha), main's settings, code."""
    import hashlib

    limits, patterns = settings_key(store)
    parts = (_VERDICT_FORMAT, _code_key(), head, None if bases is None else tuple(bases), main_present,
             (limits.max_file_bytes, limits.max_change_bytes, limits.max_change_files), patterns)
    return hashlib.sha1(repr(parts).encode()).hexdigest()


def _verdicts(store) -> DiskCache:
    return DiskCache(store.index_dir / VERDICT_DIR, _VERDICT_MAX_FILES)


def load_verdict(store, key: str) -> list[str] | None:
    """The problems cached under ``key``, or None (missing, damaged or not this key's file)."""
    d = _verdicts(store).get(key)
    if not isinstance(d, dict) or d.get("key") != key:
        return None  # missing, damaged or another key's file: recompute
    problems = d.get("problems")
    if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
        return None
    return problems


def save_verdict(store, key: str, problems: list[str]) -> None:
    _verdicts(store).put(key, {"key": key, "problems": list(problems)})


def net_problems(store, changes: Mapping[str, tuple[int | None, bytes | None]], limits: Limits | None = None) -> list[str]:
    """Schema and layout problems of a branch's net change ``{path: (mode, content or None)}``
    (content None for a deletion, or for a file the branch check refused unread)."""
    from .records import validate_path

    limits = limits or limits_of(store)
    v = Verdict()
    too_many = _count_problem(changes, limits)
    if too_many:
        v.add(too_many)
    for path, (mode, content) in sorted(changes.items()):
        problem, done = _path_problem(path, mode is None)
        if problem:
            v.add(problem)
        if done:
            continue
        bad = mode_problem(path, mode)
        if bad:
            v.add(bad)
            continue
        if content is None:
            continue
        try:
            validate_path(path, content)
        except ValidationError as exc:
            msg = str(exc)
            v.add(msg if msg.startswith(path) else f"{printable(path)}: {msg}")
    return v.problems


def check_tree_change(store, old_tree: str | None, new_tree: str, limits: Limits | None = None) -> list[str]:
    """Layout, modes, sizes and schema of everything that differs between two trees (restore)."""
    limits = limits or limits_of(store)
    changes: dict[str, tuple[int | None, bytes | None]] = {}
    problems: list[str] = []
    for path, _old, new, mode in store.tree_changes(old_tree.encode() if old_tree else None, new_tree.encode()):
        content = None
        if new is not None and mode == 0o100644:
            size = object_size(store, new)
            if size is not None and size > limits.max_file_bytes:
                problems.append(f"{printable(path)}: {size} bytes is over the {limits.max_file_bytes}-byte cap "
                                "for one file (limits.max_file_bytes)")
                changes[path] = (mode, None)
                continue
            content = store.read_blob(new)
        changes[path] = (mode, content)
    problems += net_problems(store, changes, limits)
    return problems


__all__ = ["Limits", "Verdict", "limits_of", "verdict_key", "load_verdict", "save_verdict", "layout_problem", "check_files", "check_branch", "net_problems",
           "check_tree_change", "content_problems", "secret_kinds", "object_size", "require_ok", "FILE_MODE"]
