"""Purging a secret that got into the store: rewrite history so no reachable object holds it.

Redaction runs before every commit, but a secret can still get in (a pattern added later, a
push from a clone, a source file before source redaction). ``atocore redact --history``
rewrites every commit reachable from the store's branches and tags (``main``, ``review/*``,
``backup/*`` snapshots): each blob, commit message and tag message that matches has the match
replaced by ``[REDACTED:purged]``; unchanged objects keep their ids. Then it

1. moves the refs (compare-and-swap: a ref that moved meanwhile is refused, nothing half-done),
2. records what it did as an empty commit on main (counts and old -> new heads, never the
   secret or the pattern),
3. drops the old objects (``git reflog expire`` + ``git gc --prune=now``, when git is on PATH),
4. rebuilds the search index (it holds the old text too),
5. with ``remotes``: force-pushes the rewritten refs to each backup remote and, for remotes on
   a local path, prunes the old objects there as well; for network remotes it says what to run
   on the server (their old objects stay until that server's gc).

The service must be stopped first: it holds an index and a view of main that would still
serve the old text.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass, field

from dulwich.objects import Blob, Commit, Tag, Tree

from ..errors import Busy, ValidationError

MARK = b"[REDACTED:purged]"
_REFS = (b"refs/heads/", b"refs/tags/")


@dataclass
class Rewriter:
    repo: object
    regex: re.Pattern[bytes]
    blobs: dict[bytes, bytes] = field(default_factory=dict)
    trees: dict[bytes, bytes] = field(default_factory=dict)
    commits: dict[bytes, bytes] = field(default_factory=dict)
    replaced: int = 0
    files: set[str] = field(default_factory=set)
    changed_commits: int = 0

    def _sub(self, data: bytes) -> bytes:
        new, n = self.regex.subn(MARK, data)
        self.replaced += n
        return new

    def blob(self, sha: bytes, path: str) -> bytes:
        if sha not in self.blobs:
            data = self.repo.object_store[sha].as_raw_string()
            if self.regex.search(data):
                b = Blob.from_string(self._sub(data))
                self.repo.object_store.add_object(b)
                self.blobs[sha] = b.id
            else:
                self.blobs[sha] = sha
        if self.blobs[sha] != sha:
            self.files.add(path)
        return self.blobs[sha]

    def tree(self, sha: bytes, base: str = "") -> bytes:
        if sha in self.trees:
            return self.trees[sha]
        old = self.repo.object_store[sha]
        new = Tree()
        changed = False
        for entry in old.iteritems():
            path = base + entry.path.decode("utf-8", "replace")
            if entry.mode & 0o170000 == 0o040000:
                nsha = self.tree(entry.sha, path + "/")
            elif entry.mode & 0o170000 == 0o160000:
                nsha = entry.sha  # a gitlink: not an object here
            else:
                nsha = self.blob(entry.sha, path)
            changed |= nsha != entry.sha
            new.add(entry.path, entry.mode, nsha)
        if changed:
            self.repo.object_store.add_object(new)
            self.trees[sha] = new.id
        else:
            self.trees[sha] = sha
        return self.trees[sha]

    def commit(self, sha: bytes) -> bytes:
        # Iterative post-order (parents first): histories are long, recursion would not do.
        stack = [sha]
        while stack:
            top = stack[-1]
            if top in self.commits:
                stack.pop()
                continue
            c = self.repo.object_store[top]
            todo = [p for p in c.parents if p not in self.commits]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            tree = self.tree(c.tree)
            parents = [self.commits[p] for p in c.parents]
            message = self._sub(c.message) if self.regex.search(c.message) else c.message
            if tree == c.tree and parents == list(c.parents) and message == c.message:
                self.commits[top] = top
                continue
            n = Commit()
            n.tree, n.parents, n.message = tree, parents, message
            n.author, n.committer = c.author, c.committer
            n.author_time, n.author_timezone = c.author_time, c.author_timezone
            n.commit_time, n.commit_timezone = c.commit_time, c.commit_timezone
            n.encoding = c.encoding
            self.repo.object_store.add_object(n)
            self.commits[top] = n.id
            self.changed_commits += 1
        return self.commits[sha]

    def tag(self, sha: bytes) -> bytes:
        t = self.repo.object_store[sha]
        kind, target = t.object
        new_target = self.commit(target) if kind is Commit else target
        message = self._sub(t.message) if self.regex.search(t.message or b"") else t.message
        if new_target == target and message == t.message:
            return sha
        n = Tag()
        n.object = (kind, new_target)
        n.name, n.tagger, n.tag_time, n.tag_timezone, n.message = t.name, t.tagger, t.tag_time, t.tag_timezone, message
        self.repo.object_store.add_object(n)
        return n.id


def compile_purge(pattern: str | None, literal: str | None) -> re.Pattern[bytes]:
    if (pattern is None) == (literal is None):
        raise ValidationError("pattern", "give exactly one of a regular expression (PATTERN) or --literal TEXT")
    text = literal if literal is not None else pattern
    if not text:
        raise ValidationError("pattern", "must not be empty")
    if literal is not None:
        return re.compile(re.escape(literal.encode("utf-8")))
    try:
        return re.compile(pattern.encode("utf-8"))
    except re.error as exc:
        raise ValidationError("pattern", f"{pattern!r} is not a valid regular expression ({exc})") from None


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, text=True, timeout=600)


def prune_unreachable(git_dir: str) -> bool:
    """Drop objects no ref reaches any more (reflogs included); False when git is not installed."""
    if shutil.which("git") is None:
        return False
    _git("--git-dir", git_dir, "reflog", "expire", "--expire=now", "--all")
    r = _git("--git-dir", git_dir, "-c", "gc.auto=0", "gc", "--prune=now", "-q")
    return r.returncode == 0


def purge_history(store, pattern: str | None = None, literal: str | None = None, dry_run: bool = False,
                  remotes: list[str] | None = None) -> dict:
    """``remotes``: None = none; [] = every configured backup remote; else these names/paths/URLs."""
    from .service_lock import service_running

    regex = compile_purge(pattern, literal)
    other = service_running(store)
    if other and not other.get("self"):
        raise Busy(f"the AtoCore service (pid {other.get('pid', '?')}) serves this store; stop it first: the purge "
                   "rewrites main and its index")
    fingerprint = hashlib.sha256(regex.pattern).hexdigest()[:12]
    report: dict = {"dry_run": dry_run, "pattern_sha256": fingerprint, "refs": {}, "commits_rewritten": 0,
                    "occurrences": 0, "files": [], "pruned": False, "index": None, "remotes": []}
    with store.lock():
        repo = store.repo
        refs = {name: sha for name, sha in repo.get_refs().items() if name.startswith(_REFS)}
        rw = Rewriter(repo, regex)
        moves: dict[bytes, tuple[bytes, bytes]] = {}
        for name, sha in sorted(refs.items()):
            obj = repo.object_store[sha]
            new = rw.tag(sha) if isinstance(obj, Tag) else rw.commit(sha) if isinstance(obj, Commit) else sha
            if new != sha:
                moves[name] = (sha, new)
        report.update(commits_rewritten=rw.changed_commits, occurrences=rw.replaced, files=sorted(rw.files),
                      refs={n.decode(): {"old": o.decode(), "new": nw.decode()} for n, (o, nw) in moves.items()})
        if dry_run or not moves:
            return report
        for name, (old, new) in moves.items():
            if not repo.refs.set_if_equals(name, old, new):
                raise Busy(f"{name.decode()} moved during the purge; run it again")
        store._commit_trees.clear()
        store._trees.clear()
        main_move = report["refs"].get("refs/heads/main")
        store.commit({}, "Purge a secret from history\n\n"
                         f"Rewrote {rw.changed_commits} commit(s) and {len(moves)} ref(s); replaced {rw.replaced} "
                         f"occurrence(s) in {len(rw.files)} file(s) with [REDACTED:purged].\n"
                         f"Pattern fingerprint (sha256, first 12): {fingerprint}\n"
                         + (f"main was {main_move['old']}, rewritten as {main_move['new']}\n" if main_move else ""),
                     allow_empty=True)
    report["pruned"] = prune_unreachable(str(store.path))
    # The index still holds the secret: the caller rebuilds it (atocore.cli.follow.purge_history).
    if remotes is not None:
        report["remotes"] = purge_remotes(store, remotes)
    return report


def purge_remotes(store, names: list[str]) -> list[dict]:
    """Force-push the rewritten refs to every configured backup remote; prune local-path ones."""
    from pathlib import Path

    from .remotes import resolve_remote

    out = []
    if shutil.which("git") is None:
        return [{"ok": False, "error": "git is not installed; force-push the store's refs by hand"}]
    chosen = [r for n in names for r in resolve_remote(store, n)] if names else resolve_remote(store, None)
    for r in chosen:
        entry = {"remote": r.name, "url": r.url, "ok": False, "pruned": False}
        push = _git("--git-dir", str(store.path), "push", "--force", "--quiet", r.url,
                    "+refs/heads/*:refs/heads/*", "+refs/tags/backup/*:refs/tags/backup/*")
        if push.returncode != 0:
            entry["error"] = push.stderr.strip()[-500:]
            out.append(entry)
            continue
        entry["ok"] = True
        local = r.url[len("file://"):] if r.url.startswith("file://") else r.url
        if Path(local).is_dir():
            entry["pruned"] = prune_unreachable(local)
        else:
            entry["todo"] = ("the old objects stay on this server until its garbage collection: run "
                             "'git reflog expire --expire=now --all && git gc --prune=now' there")
        out.append(entry)
    return out
