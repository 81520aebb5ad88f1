"""Purging a secret that got into the store (issue 12, row 5 / issue 11 item 8): `atocore redact
--history/--literal` rewrites history, records what it did, rebuilds the index and force-pushes
to the backup remotes. Checked with the real git CLI over every object, reachable or not."""

from __future__ import annotations

import json
import subprocess

from atocore.ids import new_ulid
from atocore.records import Memory
from atocore.retrieval import open_retriever
from tests.conftest import run_cli
from tests.fixtures_backup import fsck, git, make_bare

SECRET = "Hunter2-Purge-Me-7731"


def all_objects(git_dir) -> bytes:
    return subprocess.run(["git", "--git-dir", str(git_dir), "cat-file", "--batch-all-objects", "--batch"],
                          capture_output=True, check=True).stdout


def reachable_grep(git_dir) -> str:
    revs = git("rev-list", "--all", git_dir=git_dir).split()
    return git("grep", "-I", "-F", SECRET, *revs, git_dir=git_dir, check=False)


def leak(store, tmp_path):
    """A secret that got in (as a push from a clone would bring it) and was deleted later."""
    mem = Memory(id=new_ulid(), type="knowledge", text=f"The NAS admin password is {SECRET} (temporary)")
    store.commit({mem.path: mem.dump()}, f"Add NAS note {SECRET}")  # in a message too
    ok = Memory(id=new_ulid(), type="knowledge", text="The NAS is in rack 2")
    store.commit({ok.path: ok.dump()}, "Another note")
    store.commit({mem.path: None}, "Remove the NAS note")
    remote = make_bare(tmp_path / "laptop.git")
    cfg = store.read("atocore.yaml").decode()
    store.commit({"atocore.yaml": (cfg.rstrip("\n") + f"\nremotes:\n  laptop: {remote}\n").encode()}, "Add a remote")
    run_cli("backup", "push", store=store)
    open_retriever(store).update()
    assert SECRET.encode() in all_objects(store.path) and SECRET.encode() in all_objects(remote)
    return remote


def test_purge_removes_the_secret_everywhere_and_records_it(store, tmp_path):
    remote = leak(store, tmp_path)
    head = store.head()
    dry = json.loads(run_cli("redact", "--literal", SECRET, "--dry-run", "--json", store=store).stdout)
    assert dry["commits_rewritten"] >= 3 and dry["occurrences"] >= 2 and store.head() == head

    out = run_cli("redact", "--literal", SECRET, "--remotes", "--json", store=store)
    report = json.loads(out.stdout)
    assert report["pruned"] and report["index"]["rebuilt"]
    assert [r["ok"] for r in report["remotes"]] == [True] and report["remotes"][0]["pruned"]
    for git_dir in (store.path, remote):
        assert reachable_grep(git_dir) == ""
        assert SECRET.encode() not in all_objects(git_dir)  # unreachable ones too: pruned
        fsck(git_dir)
    assert git("rev-parse", "main", git_dir=remote) == store.head()
    log = git("log", "-1", "--format=%B", "main", git_dir=store.path)
    assert log.startswith("Purge a secret from history") and SECRET not in log
    assert "[REDACTED:purged]" in git("log", "--format=%s", "main", git_dir=store.path)
    # The rebuilt index no longer finds it; what was not secret is still there.
    hits = run_cli("search", "NAS rack", "--json", store=store).stdout
    assert SECRET not in hits and "rack 2" in hits
    # A normal backup push afterwards works (the remote equals the store again).
    run_cli("backup", "push", store=store)


def test_purge_by_pattern_and_bad_input(store, tmp_path):
    leak(store, tmp_path)
    out = run_cli("redact", "--history", r"Hunter2-Purge-Me-\d+", store=store)
    assert "rewrote" in out.stdout and "backup remotes still hold the secret" in out.stdout
    assert reachable_grep(store.path) == ""
    bad = run_cli("redact", "--history", "(", store=store, check=False)
    assert bad.returncode != 0 and "not a valid regular expression" in bad.stderr


def test_redact_filters_stdin_without_history():
    out = run_cli("redact", input="DB_PASS=hunter2x and more\n")
    assert out.stdout == "DB_PASS=[REDACTED:secret] and more\n"
