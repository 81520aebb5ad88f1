"""Snapshot tags and the retention policy (tags only; commits are never lost)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import yaml

from atocore.backup import list_snapshots, prune_snapshots, snapshot
from atocore.store.snapshots import Snapshot, select_kept
from atocore.memories import add_memory

from .conftest import run_cli
from .fixtures_backup import fsck

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def _snap(hours_ago: float) -> Snapshot:
    t = NOW - timedelta(hours=hours_ago)
    return Snapshot(f"backup/{t:%Y%m%dT%H%M%SZ}", "c" * 40, int(t.timestamp()), "")


def test_select_kept_policy():
    snaps = [_snap(h) for h in range(0, 24 * 70, 6)]  # every 6 hours for 70 days
    keep = select_kept(snaps, keep_last=3, daily_days=7, weekly_weeks=4, now=NOW)
    newest = sorted(snaps, key=lambda s: s.time, reverse=True)
    assert {s.tag for s in newest[:3]} <= keep
    days = {datetime.fromtimestamp(s.time, timezone.utc).date() for s in snaps if s.tag in keep}
    # 7 calendar days (today included) + the newest of each of 4 ISO weeks (some coincide).
    assert all((NOW.date() - d).days < 28 for d in days)
    assert len([d for d in days if (NOW.date() - d).days < 7]) == 7
    assert 7 <= len(keep) <= 3 + 7 + 4
    assert select_kept(snaps, 0, 0, 0, NOW) == set()


def test_snapshot_tags_main_and_dedupes(store):
    t1 = snapshot(store, "before refresh")
    assert t1.startswith("backup/")
    assert snapshot(store, "again, nothing changed") == t1
    add_memory(store, "new", "knowledge")
    t2 = snapshot(store, "after memory", when=datetime.now(timezone.utc) + timedelta(seconds=1))
    snaps = list_snapshots(store)
    assert [s.tag for s in snaps] == [t2, t1]
    assert snaps[0].commit == store.head() and snaps[0].reason == "after memory"
    fsck(store.path)  # annotated tags are valid git objects


def test_retention_prunes_tags_never_commits(store):
    cfg = yaml.safe_load(store.read("atocore.yaml"))
    cfg["retention"] = {"keep_last": 2, "daily_days": 0, "weekly_weeks": 0}
    store.commit({"atocore.yaml": yaml.safe_dump(cfg).encode()}, "Tight retention")
    base = datetime.now(timezone.utc)
    commits = []
    for i in range(5):
        add_memory(store, f"memory {i}", "knowledge")
        commits.append(store.head())
        snapshot(store, f"s{i}", when=base + timedelta(minutes=i))
    snaps = list_snapshots(store)
    assert len(snaps) == 2 and [s.commit for s in snaps] == commits[:-3:-1]
    history = {c.sha for c in store.log()}
    assert set(commits) <= history  # every pruned snapshot's commit is still in main's history
    assert prune_snapshots(store) == []


def test_cli_snapshot_list_prune(store):
    tag = run_cli("backup", "snapshot", "--reason", "by hand", store=store).stdout.strip()
    out = run_cli("backup", "list", store=store).stdout
    assert tag in out and "by hand" in out
    assert run_cli("backup", "prune", "--dry-run", store=store).returncode == 0
