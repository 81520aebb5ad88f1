"""Recovery from nothing but the backup: clone it, rebuild every index, same answers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from atocore.backup import push, status
from atocore.cli.follow import init_from  # recover, then rebuild the indexes: `atocore init --from`
from atocore.errors import StoreError
from atocore.memories import add_memory
from atocore.store import open_store

from .conftest import run_cli
from .fixtures_backup import fsck, git, git_daemon, make_bare, rev_parse  # noqa: F401

QUERIES = ["periscope mirror alignment laser", "vacuum chamber pump down time", "who prefers metric units",
           "cryostat coldhead vibration", "thermal drift of the optical table"]


@pytest.fixture
def rich_store(tmp_path):
    src = tmp_path / "optics-src"
    (src / "docs").mkdir(parents=True)
    (src / "docs" / "align.md").write_text(
        "# Alignment\n\nThe periscope mirrors are aligned with a HeNe laser at 632.8 nm.\n\n"
        "## Thermal drift\n\nThe optical table drifts 2 um per kelvin; wait an hour after opening the enclosure.\n")
    (src / "docs" / "vacuum.md").write_text(
        "# Vacuum\n\nThe chamber pumps down to 1e-6 mbar in about two hours with the turbo on.\n")
    (src / "notes.txt").write_text("Cryostat notes.\n\nThe coldhead vibration couples into the table at 1.2 Hz.\n")
    path = tmp_path / "original"
    run_cli("init", str(path))
    run_cli("project", "register", "optics", "--source", str(src), "--alias", "bench", "--approve", store=path)
    run_cli("refresh", "optics", store=path)
    store = open_store(path)
    add_memory(store, "The operator prefers metric units in every report", "preference")
    add_memory(store, "Cryostat coldhead was serviced in May; vibration dropped by half", "episodic",
               project="optics")
    run_cli("state", "propose", "optics", "focus", "thermal drift of the table", "--category", "focus",
            "--approve", store=path)
    store.commit({"sources/p/r.md": b"proposal\n"}, "A pending proposal", ref=b"refs/heads/review/pending")
    return store


def _search(path: Path, query: str) -> list[tuple]:
    out = json.loads(run_cli("search", query, "--json", "-k", "5", store=path).stdout)
    return [(h["id"], h["kind"], h["source"], h["text"], round(h["score"], 3)) for h in out["hits"]]


def test_recover_from_bare_backup_gives_the_same_answers(rich_store, tmp_path):
    laptop = make_bare(tmp_path / "laptop" / "atocore.git")
    assert push(rich_store, str(laptop))["ok"]
    before = {q: _search(rich_store.path, q) for q in QUERIES}
    assert all(before.values())

    target = tmp_path / "new-server" / "store"
    proc = run_cli("init", str(target), "--from", str(laptop))
    assert "Recovered" in proc.stdout
    new = open_store(target)
    assert new.head() == rich_store.head()
    assert new.refs(b"refs/heads/review/") == rich_store.refs(b"refs/heads/review/")
    assert new.refs(b"refs/tags/backup/") == rich_store.refs(b"refs/tags/backup/")
    assert (new.index_dir).is_dir()  # indexes rebuilt by the recovery, not on first search
    fsck(target)
    after = {q: _search(target, q) for q in QUERIES}
    for q in QUERIES:
        assert after[q] == before[q], (q, before[q], after[q])
    # The recovered store knows where it came from: pushing back is an up-to-date fast-forward.
    st = status(new)["remotes"][0]
    assert st["commits_behind"] == 0
    add_memory(new, "written after the recovery", "knowledge")
    assert push(new, str(laptop))["ok"]
    assert rev_parse(laptop, "main") == new.head()
    new.repo.close()


def test_recover_over_git_daemon(rich_store, git_daemon, tmp_path):
    make_bare(git_daemon.base / "atocore.git")
    url = git_daemon.url("atocore.git")
    assert push(rich_store, url)["ok"]
    new = init_from(url, tmp_path / "recovered")
    assert new.head() == rich_store.head() and new.recovery["index_seconds"] >= 0
    _search(rich_store.path, QUERIES[0])
    for q in QUERIES[:2]:
        assert _search(new.path, q) == _search(rich_store.path, q)
    new.repo.close()


def test_recover_refuses_non_empty_target_and_non_store(tmp_path, store):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "file").write_text("x")
    with pytest.raises(StoreError, match="not empty"):
        init_from(str(store.path), busy)
    # A git repository that is not an AtoCore backup: clear message, nothing left behind.
    other = tmp_path / "other"
    other.mkdir()
    git("init", "-q", "-b", "main", str(other))
    (other / "README").write_text("hello\n")
    git("add", "README", cwd=other)
    git("commit", "-q", "-m", "x", cwd=other)
    with pytest.raises(StoreError, match="not an AtoCore store"):
        init_from(str(other), tmp_path / "target")
    assert not (tmp_path / "target").exists()
    empty = make_bare(tmp_path / "empty.git")
    with pytest.raises(StoreError, match="has no main branch"):
        init_from(str(empty), tmp_path / "target2")
    assert not (tmp_path / "target2").exists()


def test_damaged_backup_is_refused_and_nothing_left(store, tmp_path):
    add_memory(store, "something worth keeping", "knowledge")
    laptop = make_bare(tmp_path / "laptop.git")
    assert push(store, str(laptop))["ok"]
    for f in (laptop / "objects" / "pack").iterdir():
        f.unlink()
    with pytest.raises(StoreError, match="incomplete or corrupt"):
        init_from(str(laptop), tmp_path / "target")
    assert not (tmp_path / "target").exists()


@pytest.mark.parametrize("with_git", [True, False], ids=["git-fsck", "python-walk"])
def test_backup_with_a_corrupt_object_is_refused(store, tmp_path, monkeypatch, with_git):
    """An object whose content no longer matches its name (a flipped bit on the laptop's disk)
    is refused whether the real git CLI checks the clone or, without git, the Python walk."""
    import zlib

    add_memory(store, "something worth keeping intact", "knowledge")
    laptop = make_bare(tmp_path / "laptop.git")
    assert push(store, str(laptop))["ok"]
    packs = laptop / "objects" / "pack"
    moved = tmp_path / "moved"
    moved.mkdir()
    for f in packs.iterdir():
        f.rename(moved / f.name)
    for f in moved.glob("*.pack"):  # every object as a loose file, so one can be damaged alone
        with f.open("rb") as fh:
            subprocess.run(["git", "--git-dir", str(laptop), "unpack-objects", "-q"], stdin=fh, check=True)
    blob = store.repo[store.repo[store.repo[store.head().encode()].tree][b"atocore.yaml"][1]]
    loose = laptop / "objects" / blob.id[:2].decode() / blob.id[2:].decode()
    assert loose.is_file()
    loose.unlink()
    loose.write_bytes(zlib.compress(b"blob %d\0" % len(blob.data) + blob.data.replace(b"a", b"b", 1)))
    if not with_git:
        monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    with pytest.raises(StoreError, match="incomplete or corrupt.*corrupt"):
        init_from(str(laptop), tmp_path / "target")
    assert not (tmp_path / "target").exists()
