"""Refresh: one commit listing what changed, idempotent, skipped files reported, one at a time."""

from __future__ import annotations

import os
import threading

import pytest

from atocore.errors import Busy
from atocore.cli.follow import refresh  # stage, then bring the index to main: what `atocore refresh` runs
from atocore.projects import register_project
from atocore.projects.refresh import MAX_FILE_BYTES, refresh_lock
from atocore.retrieval import open_retriever
from tests.conftest import run_cli
from tests.fixtures_server import OPTICS_DOCS, write_tree


@pytest.fixture
def p04(store, tmp_path):
    docs = write_tree(tmp_path / "docs", OPTICS_DOCS)
    register_project(store, "p04", [docs], approve=True)
    return docs


def test_refresh_stages_one_commit_then_is_idempotent(store, p04):
    before = store.head()
    [r] = refresh(store, "p04")
    assert sorted(r.added) == sorted(OPTICS_DOCS) and r.commit and store.log("main", limit=1)[0].parents == (before,)
    files = store.files("main", "sources/p04")
    assert set(files) == {f"sources/p04/{k}" for k in OPTICS_DOCS}
    assert store.read("sources/p04/notes.txt") == OPTICS_DOCS["notes.txt"].encode()
    msg = store.info(r.commit).message
    assert "3 added, 0 changed, 0 removed" in msg and "polishing.md" in msg
    assert r.index["commit"] == store.head()
    head = store.head()
    [again] = refresh(store, "p04")
    assert again.commit is None and again.unchanged == 3 and store.head() == head


def test_refresh_lists_changed_and_removed(store, p04):
    refresh(store, "p04")
    (p04 / "notes.txt").write_text("Alignment now uses an autocollimator.\n")
    (p04 / "polishing.md").unlink()
    (p04 / "new.rst").write_text("New\n===\n\ntext\n")
    [r] = refresh(store, "p04")
    assert (r.added, r.changed, r.removed) == (["new.rst"], ["notes.txt"], ["polishing.md"])
    msg = store.info(r.commit).message
    assert "Added:\n  new.rst" in msg and "Changed:\n  notes.txt" in msg and "Removed:\n  polishing.md" in msg
    assert store.read("sources/p04/polishing.md") is None
    hits = open_retriever(store).search("autocollimator", project="p04")
    assert hits and hits[0].source == "notes.txt"


def test_skipped_files_are_counted_with_reasons(store, p04):
    (p04 / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    (p04 / "big.txt").write_bytes(b"a" * (MAX_FILE_BYTES + 1))
    (p04 / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    os.symlink(p04 / "does-not-exist.md", p04 / "dangling.md")
    (p04 / "ignored.pdf").write_bytes(b"%PDF")  # not included by the globs: neither staged nor reported
    [r] = refresh(store, "p04")
    reasons = {s["path"]: s["reason"] for s in r.skipped}
    assert reasons["image.md"] == "binary"
    assert reasons["big.txt"].startswith("larger than")
    assert reasons["latin1.txt"] == "not UTF-8 text"
    assert reasons["dangling.md"] == "symlink (not followed)"
    assert "ignored.pdf" not in reasons and sorted(r.added) == sorted(OPTICS_DOCS)
    assert sum(r.skipped_counts.values()) == 4
    assert "Skipped:" in store.info(r.commit).message


def test_exclude_globs_and_skip_dirs(store, tmp_path):
    docs = write_tree(tmp_path / "d", {"a.md": "# A\n\nalpha\n", "drafts/b.md": "# B\n", ".git/c.md": "x",
                                       "sub/c.tmp.md": "tmp"})
    register_project(store, "px", [{"path": str(docs), "exclude": ["drafts/**", "*.tmp.md"]}], approve=True)
    [r] = refresh(store, "px", update_index=False)
    assert r.added == ["a.md"]


def test_one_refresh_at_a_time(store, p04):
    with refresh_lock(store):
        with pytest.raises(Busy, match="refresh in progress"):
            refresh(store, "p04")
        errors = []
        t = threading.Thread(target=lambda: errors.append(run_cli("refresh", "p04", store=store, check=False)))
        t.start()
        t.join()
        assert errors[0].returncode != 0 and "refresh in progress" in errors[0].stderr
    [r] = refresh(store, "p04")
    assert r.commit


def test_refresh_cli_reports(store, p04):
    (p04 / "bin.md").write_bytes(b"\x00\x01")
    out = run_cli("refresh", "p04", store=store).stdout
    assert "3 added" in out and "skipped 1: 1 binary" in out and "bin.md: binary" in out
    out = run_cli("refresh", store=store).stdout
    assert "nothing changed, no commit" in out


def test_writers_write_and_the_index_follows_main(store, p04):
    """A refresh only commits; the index stays where it was until the CLI's step after its own
    write (atocore.cli.follow) or the service's watcher brings it to main. No writer imports
    retrieval, context, the server or the CLI."""
    import subprocess
    import sys

    from atocore.projects.refresh import refresh as stage

    r = open_retriever(store)
    r.update()
    before = r.status()["commit"]
    [rep] = stage(store, "p04")
    assert rep.commit and rep.index is None
    assert r.status()["commit"] == before and r.status()["stale"]
    [again] = refresh(store, "p04")  # the CLI's refresh: nothing new to stage, the index catches up
    assert again.commit is None and again.index["commit"] == store.head() and not r.status()["stale"]
    probe = ("import sys; import atocore.capture.record, atocore.projects.refresh, atocore.backup.restore, "
             "atocore.backup.recover, atocore.backup.purge, atocore.store.snapshots; "
             "print(sorted(m for m in sys.modules if m.startswith(('atocore.retrieval', 'atocore.context', "
             "'atocore.server', 'atocore.cli'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
