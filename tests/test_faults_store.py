"""Fault injection (issue 12, store side): careless source folders, foreign and read-only stores,
hostile review branches in backups, a corrupted backup remote. Each test reproduces a row."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from atocore.backup import push
from atocore.errors import StoreError, ValidationError
from atocore.memories import add_memory, list_memories
from atocore.cli.follow import refresh  # stage, then bring the index to main: what `atocore refresh` runs
from atocore.projects import register_project
from atocore.retrieval import open_retriever
from atocore.store import init_store, open_store
from tests.conftest import run_cli
from tests.fixtures_backup import fsck, git, make_bare, rev_parse

SECRET = "ghp_" + "Z9y8X7w6" * 5  # a GitHub token shape (built here, never a real one)


def _set_config(store, **sections) -> None:
    cfg = yaml.safe_load(store.read("atocore.yaml"))
    cfg.update(sections)
    store.commit({"atocore.yaml": yaml.safe_dump(cfg).encode()}, "Configure")


@pytest.fixture
def docs(store, tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "guide.md").write_text("# Guide\n\nThe lens mount is torqued to 2 Nm.\n")
    register_project(store, "p1", [root], approve=True)
    return root


# --------------------------------------------------------------------------- row 1: symlinks out of the root


def test_row1_symlink_out_of_the_source_root_is_not_followed(store, docs, tmp_path):
    outside = tmp_path / "credentials"
    outside.write_text(f"aws_secret = very-private-{SECRET}\nroot:$6$saltsalt$hash:19000:0:99999:7:::\n")
    os.symlink(outside, docs / "creds.md")
    os.symlink(tmp_path, docs / "up")  # a folder symlink pointing above the root
    [r] = refresh(store, "p1")
    reasons = {s["path"]: s["reason"] for s in r.skipped}
    assert reasons["creds.md"] == "symlink (not followed)"
    assert store.read("sources/p1/creds.md") is None
    assert not any("credentials" in p or p.startswith("sources/p1/up/") for p in store.files())
    hits = open_retriever(store).search("very-private aws_secret", k=10)
    assert all("very-private" not in h.text for h in hits)


def test_row1_following_symlinks_is_opt_in_and_stays_inside_the_root(store, docs, tmp_path):
    _set_config(store, refresh={"follow_symlinks": True})
    (docs / "real.md").write_text("# Real\n\ninside the root\n")
    os.symlink(docs / "real.md", docs / "alias.md")
    outside = tmp_path / "outside.md"
    outside.write_text("outside the root\n")
    os.symlink(outside, docs / "escape.md")
    [r] = refresh(store, "p1", update_index=False)
    reasons = {s["path"]: s["reason"] for s in r.skipped}
    assert store.read("sources/p1/alias.md") == b"# Real\n\ninside the root\n"
    assert reasons["escape.md"] == "symlink pointing outside the source folder"
    assert store.read("sources/p1/escape.md") is None


def test_refresh_caps_entries_and_bytes_and_a_root_of_slash(store, docs, tmp_path):
    for i in range(30):
        (docs / f"n{i}.md").write_text(f"note {i}\n")
    _set_config(store, refresh={"max_files": 20})
    head = store.head()
    with pytest.raises(ValidationError, match="more than 20 entries"):
        refresh(store, "p1", update_index=False)
    assert store.head() == head  # nothing staged
    _set_config(store, refresh={"max_files": 1000, "max_bytes": 100})
    with pytest.raises(ValidationError, match="total more than 100 bytes"):
        refresh(store, "p1", update_index=False)
    # a source root of / is refused by the default caps, quickly and without reading the disk's files
    _set_config(store, refresh={"max_files": 2000})
    register_project(store, "everything", ["/"], approve=True)
    with pytest.raises(ValidationError, match="more than 2000 entries"):
        refresh(store, "everything", update_index=False)
    assert not store.files("main", "sources/everything")


def test_refresh_file_name_with_newline_cannot_inject_commit_lines(store, docs):
    (docs / "a\nReviewed-by: Mallory <m@evil>.md").write_text("x\n")
    (docs / "ok.md").write_text("fine\n")
    [r] = refresh(store, "p1", update_index=False)
    msg = store.info(r.commit).message
    assert not any(line.startswith("Reviewed-by") for line in msg.splitlines())
    assert any("name not allowed in the store" in s["reason"] for s in r.skipped)
    assert "ok.md" in r.added


def test_refresh_redacts_sources_before_committing_and_counts(store, docs):
    (docs / "env.md").write_text(f"# Deploy\n\nexport GITHUB_TOKEN={SECRET}\nthen run make.\n")
    [r] = refresh(store, "p1", update_index=False)
    staged = store.read("sources/p1/env.md")
    assert SECRET.encode() not in staged and b"[REDACTED:" in staged and b"then run make." in staged
    assert r.redacted and r.redacted[0]["path"] == "env.md" and r.to_dict()["redacted_counts"]
    assert "Redacted: " in store.info(r.commit).message
    [again] = refresh(store, "p1", update_index=False)
    assert again.commit is None  # redacted content compares equal: idempotent
    out = run_cli("refresh", "p1", "--no-index", store=store)
    assert out.returncode == 0


# --------------------------------------------------------------------------- row 10: foreign repositories


def test_row10_a_repository_atocore_did_not_create_is_refused(tmp_path):
    foreign = tmp_path / "project.git"
    make_bare(foreign)
    work = tmp_path / "work"
    git("clone", "-q", str(foreign), str(work))
    (work / "main.c").write_text("int main(void) { return 0; }\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "code", cwd=work)
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=work)
    before = rev_parse(foreign, "refs/heads/main")
    with pytest.raises(StoreError, match="AtoCore did not create"):
        open_store(foreign)
    with pytest.raises(StoreError, match="AtoCore did not create"):
        init_store(foreign)
    res = run_cli("--store", str(foreign), "memory", "add", "note", "--type", "knowledge", check=False)
    assert res.returncode == 1 and res.stderr.startswith("Error: ") and "did not create" in res.stderr
    res = run_cli("init", str(foreign), check=False)
    assert res.returncode == 1 and "did not create" in res.stderr
    assert rev_parse(foreign, "refs/heads/main") == before


def test_row10_stores_made_before_the_marker_still_open_and_get_it(store):
    git("config", "--unset", "atocore.store", git_dir=store.path)
    assert git("config", "atocore.store", git_dir=store.path, check=False) == ""
    add_memory(open_store(store.path), "still mine", "knowledge")
    assert git("config", "atocore.store", git_dir=store.path) == "true"
    again, created = init_store(store.path)
    assert not created and again.head() == store.head()


# --------------------------------------------------------------------------- row 12: environment problems


def test_row12_environment_problems_are_errors_not_tracebacks(store, tmp_path):
    env = {**os.environ, "ATOCORE_STORE": str(store.path)}
    bad = subprocess.run([sys.executable, "-m", "atocore", "memory", "add", b"caf\xe9", "--type", "knowledge"],
                         capture_output=True, env=env, timeout=120)
    assert bad.returncode == 1 and bad.stderr.startswith(b"Error: ") and b"not valid UTF-8" in bad.stderr
    for args in (["init", "/proc/atocore-x"], ["init", str(tmp_path / "f" / "x")]):
        if args[1].startswith(str(tmp_path)):
            (tmp_path / "f").write_text("a file, not a folder")
        res = run_cli(*args, check=False)
        assert res.returncode == 1 and res.stderr.startswith("Error: "), res.stderr
        assert "Traceback" not in res.stderr


def _readonly_available() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount --bind -o ro / /mnt 2>/dev/null || "
                            "mount --bind -o ro /tmp /tmp"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _readonly_available(), reason="needs unshare and bind mounts (user namespaces)")
def test_row12_reads_work_on_a_read_only_store(store):
    add_memory(store, "read me on a read-only mount", "knowledge")
    open_store(store.path)  # marker written while writable
    atocore = f"{sys.executable} -m atocore --store {store.path}"
    script = (f"mount --bind -o ro {store.path} {store.path} && cd {Path.cwd()} && "
              f"{atocore} memory list && {atocore} status --no-index && {atocore} log -n 1 && "
              f"{atocore} review list && {atocore} show atocore.yaml >/dev/null && echo READS-OK && "
              f"{atocore} memory add nope --type knowledge")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert "read me on a read-only mount" in proc.stdout and "READS-OK" in proc.stdout, proc.stderr
    assert proc.returncode == 1 and "Error: Read-only file system" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert [m.text for m in list_memories(store)] == ["read me on a read-only mount"]


# --------------------------------------------------------------------------- rows 9, 13: backups


def _hostile_branch(store) -> str:
    from tests.test_gate import blob, branch, raw_tree

    dotdot = raw_tree(store, [(b"100644", b"..", blob(store, b"x\n"))], canonical=False)
    return branch(store, "crafted", [{(b"sources", b"p"): (b"40000", dotdot)}])


def test_row9_backups_leave_out_review_branches_the_gate_refuses(store, tmp_path):
    remote = make_bare(tmp_path / "backup.git")
    store.commit({"sources/p/ok.md": b"fine\n"}, "Propose", ref=b"refs/heads/review/fine")
    _hostile_branch(store)
    rep = push(store, str(remote))
    assert rep["ok"], rep
    res = rep["results"][0]
    assert "refs/heads/review/crafted" in res["left_out"] and "'..'" in res["left_out"]["refs/heads/review/crafted"]
    assert rev_parse(remote, "refs/heads/review/crafted") is None
    assert rev_parse(remote, "refs/heads/review/fine") == store.head(b"refs/heads/review/fine")
    fsck(remote)
    git("clone", "-q", str(remote), str(tmp_path / "restored"))
    out = run_cli("backup", "push", str(remote), store=store)
    assert "not backed up: refs/heads/review/crafted" in out.stdout


def test_row9_a_refused_branch_pushed_earlier_is_removed_from_the_remote(store, tmp_path):
    remote = make_bare(tmp_path / "backup.git")
    head = _hostile_branch(store)
    git("push", "-q", str(remote), f"{head}:refs/heads/review/crafted", "main", cwd=store.path, check=False)
    rep = push(store, str(remote))
    assert rep["ok"], rep
    assert "refs/heads/review/crafted" in rep["results"][0]["deleted"]
    assert rev_parse(remote, "refs/heads/review/crafted") is None


def test_row13_a_normal_push_detects_a_corrupted_pack_on_the_remote(store, tmp_path):
    remote = make_bare(tmp_path / "backup.git")
    for i in range(5):
        add_memory(store, f"memory number {i} about the optical bench alignment", "knowledge")
    assert push(store, str(remote))["ok"]
    git("repack", "-a", "-d", "-q", git_dir=remote)
    (pack,) = (remote / "objects" / "pack").glob("*.pack")
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the pack
    pack.chmod(0o644)
    pack.write_bytes(bytes(data))
    add_memory(store, "one more", "knowledge")
    rep = push(store, str(remote))
    assert not rep["ok"]
    res = rep["results"][0]
    assert res["error_kind"] == "unverified" and "corrupt" in res["error"]
    out = run_cli("backup", "push", str(remote), store=store, check=False)
    assert out.returncode != 0 and "corrupt" in (out.stdout + out.stderr)


def test_row13_a_push_says_what_it_did_not_check(store, tmp_path):
    remote = make_bare(tmp_path / "backup.git")
    rep = push(store, str(remote))
    v = rep["results"][0]["verify"]
    assert "pack checksums" in v["method"] and v["not_checked"]
    out = run_cli("backup", "push", str(remote), store=store)
    assert "not checked:" in out.stdout
