"""Snapshot tags ``refs/tags/backup/<timestamp>`` and their retention policy.

A snapshot is an annotated tag on main whose message says why it was taken (push, restore,
refresh). Retention deletes tags only: the commits stay in main's history, so nothing is
ever lost by pruning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from dulwich.objects import Commit, Tag

from ..config import load_config
from ..errors import StoreError
from .repo import BACKUP_TAG_PREFIX, MAIN, author_from_env

TAG_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Snapshot:
    tag: str        # "backup/20261126T021500Z"
    commit: str
    time: int       # unix seconds (UTC)
    reason: str

    @property
    def ref(self) -> bytes:
        return b"refs/tags/" + self.tag.encode()

    def to_dict(self) -> dict:
        out = asdict(self)
        out["iso"] = datetime.fromtimestamp(self.time, timezone.utc).isoformat(timespec="seconds")
        return out


def list_snapshots(store) -> list[Snapshot]:
    """Every backup tag, newest first."""
    out = []
    for ref, sha in store.repo.refs.as_dict(BACKUP_TAG_PREFIX).items():
        name = "backup/" + ref.decode()
        try:
            obj = store.repo.object_store[sha]
        except KeyError:
            continue
        if isinstance(obj, Tag):
            out.append(Snapshot(name, obj.object[1].decode(), obj.tag_time,
                                obj.message.decode("utf-8", "replace").strip()))
        elif isinstance(obj, Commit):  # a lightweight tag someone made by hand
            out.append(Snapshot(name, obj.id.decode(), obj.commit_time, ""))
    out.sort(key=lambda s: (s.time, s.tag), reverse=True)
    return out


def _free_name(store, when: datetime) -> str:
    base = "backup/" + when.astimezone(timezone.utc).strftime(TAG_FORMAT)
    name, n = base, 1
    while b"refs/tags/" + name.encode() in store.repo.refs:
        n += 1
        name = f"{base}-{n}"
    return name


def snapshot(store, reason: str, when: datetime | None = None, dedupe: bool = True,
             prune: bool = True) -> str:
    """Tag main as ``backup/<timestamp>`` and apply retention; return the tag name.

    With ``dedupe`` a snapshot of a main that the newest tag already marks returns that tag
    instead of adding another one (scheduled pushes of an idle store add nothing).
    """
    when = when or datetime.now(timezone.utc)
    with store.lock():
        head = store.head(MAIN)
        if head is None:
            raise StoreError("the store has no main branch yet; nothing to snapshot")
        if dedupe:
            snaps = list_snapshots(store)
            if snaps and snaps[0].commit == head:
                return snaps[0].tag
        name = _free_name(store, when)
        tag = Tag()
        tag.object = (Commit, head.encode())
        tag.name = name.encode()
        tag.tagger = author_from_env().encode()
        tag.tag_time = int(when.timestamp())
        tag.tag_timezone = 0
        tag.message = (reason.strip() or "snapshot").encode() + b"\n"
        # The store's writer: the object is fsynced before the ref points at it (as in Store.commit).
        store.writer.write(tag.id.decode(), b"tag", tag.as_raw_string())
        store.set_ref(b"refs/tags/" + name.encode(), None, tag.id.decode())
        if prune:
            prune_snapshots(store, now=when)
        return name


def select_kept(snaps: list[Snapshot], keep_last: int, daily_days: int, weekly_weeks: int,
                now: datetime) -> set[str]:
    """Tags the policy keeps: the newest ``keep_last``, the newest of each of the last
    ``daily_days`` days and the newest of each of the last ``weekly_weeks`` ISO weeks."""
    snaps = sorted(snaps, key=lambda s: (s.time, s.tag), reverse=True)
    keep = {s.tag for s in snaps[:max(keep_last, 0)]}
    today = now.astimezone(timezone.utc).date()
    days_seen: set = set()
    weeks_seen: set = set()
    week_start = today - timedelta(days=today.weekday())
    for s in snaps:
        day = datetime.fromtimestamp(s.time, timezone.utc).date()
        if 0 <= (today - day).days < daily_days and day not in days_seen:
            days_seen.add(day)
            keep.add(s.tag)
        monday = day - timedelta(days=day.weekday())
        if 0 <= (week_start - monday).days // 7 < weekly_weeks and monday not in weeks_seen:
            weeks_seen.add(monday)
            keep.add(s.tag)
    return keep


def prune_snapshots(store, now: datetime | None = None, dry_run: bool = False) -> list[str]:
    """Delete backup tags the retention policy no longer keeps; return their names."""
    policy = load_config(store).retention
    now = now or datetime.now(timezone.utc)
    with store.lock():
        snaps = list_snapshots(store)
        keep = select_kept(snaps, int(policy.get("keep_last", 20)), int(policy.get("daily_days", 14)),
                           int(policy.get("weekly_weeks", 8)), now)
        drop = [s for s in snaps if s.tag not in keep]
        if not dry_run:
            for s in drop:
                ref = s.ref
                current = store.repo.refs[ref] if ref in store.repo.refs else None
                if current is not None:
                    store.set_ref(ref, current.decode(), None)
        return [s.tag for s in drop]
