"""A proposal's changes as a reviewer reads them: per record, old -> new, not raw YAML.

State files are compared entry by entry (category, value, source per key); memories by front
matter field and body; registrations by field. Anything else (or a file that does not parse)
falls back to a unified text diff, so a broken push is still shown exactly.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from ..records import parse_memory, parse_project, parse_state
from ..review import Proposal
from ..store import Store

MAX_DIFF_LINES = 400


@dataclass
class Row:
    label: str
    old: str | None
    new: str | None

    @property
    def change(self) -> str:
        if self.old == self.new:
            return "same"
        return "added" if self.old is None else "removed" if self.new is None else "changed"


@dataclass
class FileDiff:
    path: str
    kind: str                     # state | memory | project | text
    status: str                   # added | changed | removed
    rows: list[Row] = field(default_factory=list)
    old_body: str | None = None   # memories: the text before / after
    new_body: str | None = None
    text: list[tuple[str, str]] = field(default_factory=list)  # (css class, line) of a unified diff
    note: str = ""
    merged_by_entry: bool = False


def _decode(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "replace")


def _unified(path: str, old: bytes | None, new: bytes | None) -> list[tuple[str, str]]:
    a = (_decode(old) or "").splitlines()
    b = (_decode(new) or "").splitlines()
    out = []
    for line in difflib.unified_diff(a, b, f"a/{path}", f"b/{path}", lineterm="", n=3):
        cls = "add" if line.startswith("+") and not line.startswith("+++") else \
              "del" if line.startswith("-") and not line.startswith("---") else "hunk" if line.startswith("@@") else ""
        out.append((cls, line))
        if len(out) >= MAX_DIFF_LINES:
            out.append(("hunk", f"... diff cut at {MAX_DIFF_LINES} lines"))
            break
    return out


def _state_rows(old: bytes | None, new: bytes | None, path: str) -> list[Row]:
    before = {e.key: e for e in parse_state(old, path).entries} if old else {}
    after = {e.key: e for e in parse_state(new, path).entries} if new else {}
    rows = []
    for key in list(after) + [k for k in before if k not in after]:
        o, n = before.get(key), after.get(key)
        if o is not None and n is not None and (o.category, o.value, o.source) == (n.category, n.value, n.source):
            continue  # unchanged entries are not part of the proposal
        fmt = (lambda e: None if e is None else f"[{e.category}] {e.value}  (source: {e.source})")
        rows.append(Row(key, fmt(o), fmt(n)))
    return rows


def _fields(obj: Any, names: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for name in names:
        v = getattr(obj, name)
        if isinstance(v, list):
            v = ", ".join(str(x) for x in v)
        out[name] = "" if v is None else str(v)
    return out


MEMORY_FIELDS = ("type", "status", "project", "confidence", "source", "tags", "supersedes", "created", "updated")
PROJECT_FIELDS = ("name", "description", "aliases", "status")


def _rows(old: dict[str, str] | None, new: dict[str, str] | None, names: tuple[str, ...]) -> list[Row]:
    rows = [Row(n, None if old is None else old.get(n), None if new is None else new.get(n)) for n in names]
    return [r for r in rows if r.old or r.new]  # a field empty on both sides says nothing


def file_diff(store: Store, p: Proposal, path: str, old_sha: str | None, new: bytes | None) -> FileDiff:
    old = store.read_blob(old_sha) if old_sha else None
    status = "added" if old is None else "removed" if new is None else "changed"
    d = FileDiff(path=path, kind="text", status=status, merged_by_entry=path in p.resolved)
    try:
        if path.startswith("state/") and path.endswith(".yaml"):
            d.kind, d.rows = "state", _state_rows(old, new, path)
        elif path.startswith("memories/") and path.endswith(".md"):
            mo = parse_memory(old, path) if old else None
            mn = parse_memory(new, path) if new else None
            d.kind = "memory"
            d.rows = _rows(mo and _fields(mo, MEMORY_FIELDS), mn and _fields(mn, MEMORY_FIELDS), MEMORY_FIELDS)
            d.old_body, d.new_body = (mo.text if mo else None), (mn.text if mn else None)
            if mn is not None and mn.status == "candidate":
                d.note = "approving makes this candidate memory active (trusted)"
        elif path.startswith("projects/") and path.endswith(".yaml"):
            po = parse_project(old, path) if old else None
            pn = parse_project(new, path) if new else None
            d.kind = "project"
            d.rows = _rows(po and _fields(po, PROJECT_FIELDS), pn and _fields(pn, PROJECT_FIELDS), PROJECT_FIELDS)
            src = lambda pr: None if pr is None else "\n".join(  # noqa: E731
                s.path + (f"  include {', '.join(s.include)}" if s.include else "")
                + (f"  exclude {', '.join(s.exclude)}" if s.exclude else "") for s in pr.sources)
            d.rows.append(Row("sources", src(po), src(pn)))
        else:
            d.text = _unified(path, old, new)
    except ValidationError as exc:
        d.kind, d.rows, d.note = "text", [], f"cannot be read as a record: {exc}"
        d.text = _unified(path, old, new)
    return d


def proposal_diffs(store: Store, p: Proposal) -> list[FileDiff]:
    return [file_diff(store, p, c.path, c.old, p.files.get(c.path)) for c in p.changes]
