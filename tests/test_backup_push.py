"""Push to bare repositories on disk, verified with the real git CLI."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from atocore.backup import push, status, verify_remote
from atocore.backup.push import local_refs
from atocore.errors import ValidationError
from atocore.memories import add_memory
from atocore.store.repo import MAIN

from .conftest import run_cli
from .fixtures_backup import bare_remote, fsck, git, make_bare, rev_parse  # noqa: F401


def _configure(store, **remotes) -> None:
    cfg = yaml.safe_load(store.read("atocore.yaml"))
    cfg["remotes"] = {k: str(v) for k, v in remotes.items()}
    store.commit({"atocore.yaml": yaml.safe_dump(cfg).encode()}, "Configure backup remotes")


def test_push_to_bare_repo_is_verified_by_git(store, bare_remote):
    add_memory(store, "The interferometer table is floated at 80 psi", "knowledge")
    store.commit({"sources/p/x.txt": b"review content\n"}, "Propose", ref=b"refs/heads/review/r1")
    rep = push(store, str(bare_remote))
    assert rep["ok"], rep
    res = rep["results"][0]
    assert res["verify"]["objects_checked"] > 0
    assert rev_parse(bare_remote, "refs/heads/main") == store.head()
    assert rev_parse(bare_remote, "refs/heads/review/r1") == store.head(b"refs/heads/review/r1")
    assert rev_parse(bare_remote, f"refs/tags/{rep['snapshot']}^{{commit}}") == store.head()
    fsck(bare_remote)
    # A plain clone of the laptop copy checks main out (HEAD was pointed at main).
    work = bare_remote.parent / "work"
    git("clone", "-q", str(bare_remote), str(work))
    assert (work / "atocore.yaml").is_file()


def test_incremental_push_and_status(store, bare_remote):
    assert push(store, str(bare_remote))["ok"]
    st = status(store)["remotes"][0]
    assert st["commits_behind"] == 0 and st["last_error"] is None and st["last_verified"]
    add_memory(store, "one more", "knowledge")
    add_memory(store, "and another", "knowledge")
    assert status(store)["remotes"][0]["commits_behind"] == 2
    rep = push(store, str(bare_remote))
    assert rep["ok"]
    # Only the objects new since the last verified push are re-read: a memory commit is a
    # handful of objects (commit, root tree, memories tree, blob, tag), not the whole store.
    assert rep["results"][0]["verify"]["objects_checked"] < 15
    assert status(store)["remotes"][0]["commits_behind"] == 0
    fsck(bare_remote)
    assert verify_remote(store, str(bare_remote), deep=True)["ok"]


def test_named_remotes_from_config_and_file_url(store, tmp_path):
    a = make_bare(tmp_path / "a.git")
    b = make_bare(tmp_path / "b.git")
    _configure(store, laptop=a, nas=f"file://{b}")
    rep = push(store)
    assert rep["ok"] and [r["remote"] for r in rep["results"]] == ["laptop", "nas"]
    assert rev_parse(a, "main") == rev_parse(b, "main") == store.head()
    assert push(store, "nas")["results"][0]["url"].startswith("file://")
    with pytest.raises(ValidationError) as err:
        push(store, "nope")
    assert "laptop" in str(err.value) and "nas" in str(err.value)


def test_no_remote_configured_is_a_clear_error(store):
    with pytest.raises(ValidationError, match="no backup remote configured"):
        push(store)


def test_missing_remote_repo_fails_with_advice(store, tmp_path):
    rep = push(store, str(tmp_path / "nothing.git"))
    assert not rep["ok"]
    assert "git init --bare" in rep["results"][0]["error"]
    assert push(store, str(tmp_path / "nothing.git"), create=True)["ok"]
    fsck(tmp_path / "nothing.git")


def test_diverged_remote_is_refused_not_overwritten(store, bare_remote, tmp_path):
    assert push(store, str(bare_remote))["ok"]
    # Someone else pushes to the laptop copy from their own clone.
    work = tmp_path / "elsewhere"
    git("clone", "-q", str(bare_remote), str(work))
    (work / "notes.md").write_text("written elsewhere\n")
    git("add", "notes.md", cwd=work)
    git("commit", "-q", "-m", "Elsewhere", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    theirs = rev_parse(bare_remote, "main")
    add_memory(store, "local progress", "knowledge")
    rep = push(store, str(bare_remote))
    res = rep["results"][0]
    assert not rep["ok"] and res["error_kind"] == "diverged"
    assert "diverged" in res["error"] and "never overwrites" in res["error"]
    assert rev_parse(bare_remote, "main") == theirs  # their history is intact
    st = status(store)["remotes"][0]
    assert "diverged" in st["last_error"] and st["commits_behind"] >= 1


def test_closed_reviews_and_pruned_tags_are_removed_foreign_refs_kept(store, bare_remote, tmp_path):
    store.commit({"sources/p/r.txt": b"x\n"}, "Propose", ref=b"refs/heads/review/gone")
    assert push(store, str(bare_remote))["ok"]
    assert rev_parse(bare_remote, "refs/heads/review/gone")
    # Someone pushes their own review branch straight to the laptop copy.
    work = tmp_path / "w"
    git("clone", "-q", str(bare_remote), str(work))
    (work / "p.md").write_text("their proposal\n")
    git("add", "p.md", cwd=work)
    git("commit", "-q", "-m", "Their proposal", cwd=work)
    git("push", "-q", "origin", "HEAD:refs/heads/review/theirs", cwd=work)
    with store.lock():
        store.set_ref(b"refs/heads/review/gone", store.head(b"refs/heads/review/gone"), None)
    add_memory(store, "after the review closed", "knowledge")
    rep = push(store, str(bare_remote))
    res = rep["results"][0]
    assert rep["ok"], res
    assert "refs/heads/review/gone" in res["deleted"]
    assert res["foreign"] == ["refs/heads/review/theirs"]
    assert rev_parse(bare_remote, "refs/heads/review/gone") is None
    assert rev_parse(bare_remote, "refs/heads/review/theirs")
    fsck(bare_remote)


def test_corrupt_or_missing_object_on_remote_fails_verification(store, bare_remote):
    add_memory(store, "precious", "knowledge")
    assert push(store, str(bare_remote))["ok"]
    # Lose the objects on the laptop side (a damaged disk): keep the refs, drop the packs.
    for f in (bare_remote / "objects" / "pack").iterdir():
        f.unlink()
    rep = verify_remote(store, str(bare_remote), deep=True)
    assert not rep["ok"] and "missing" in rep["results"][0]["error"]
    # A push re-sends nothing the remote claims to have, so its verification must catch it too.
    add_memory(store, "later", "knowledge")
    rep = push(store, str(bare_remote), deep=True)
    assert not rep["ok"] and rep["results"][0]["error_kind"] == "unverified"
    assert "could not be verified" in rep["results"][0]["error"]


def test_cli_push_status_list(store, tmp_path):
    remote = tmp_path / "cli.git"
    proc = run_cli("backup", "push", str(remote), "--create", store=store)
    assert proc.stdout.startswith("ok ") and "verified" in proc.stdout
    assert rev_parse(remote, "main") == store.head()
    st = run_cli("backup", "status", store=store)
    assert "commits behind:     0" in st.stdout
    lst = run_cli("backup", "list", store=store)
    assert lst.stdout.startswith("backup/") and "push to" in lst.stdout
    bad = run_cli("backup", "push", str(tmp_path / "missing.git"), store=store, check=False)
    assert bad.returncode == 1 and "git init --bare" in bad.stderr


def test_pushed_refs_equal_local(store, bare_remote):
    store.commit({"sources/p/a": b"1"}, "r", ref=b"refs/heads/review/a")
    assert push(store, str(bare_remote))["ok"]
    out = git("for-each-ref", "--format=%(refname) %(objectname)", git_dir=bare_remote)
    remote = dict(line.split() for line in out.splitlines())
    assert remote == {k.decode(): v.decode() for k, v in local_refs(store).items()}
    assert MAIN.decode() in remote


@pytest.mark.parametrize("round_", range(4))  # commit-time ties change the walk order: try several
def test_new_object_finder_matches_dulwich(store, round_):
    """The fast finder used for pushing and verifying returns every object dulwich's full
    MissingObjectFinder does (and only reachable ones)."""
    from dulwich.object_store import MissingObjectFinder

    from atocore.backup import restore, snapshot
    from atocore.backup.objects import new_objects

    objs = store.repo.object_store
    add_memory(store, "m0", "knowledge")
    base = local_refs(store)
    start = store.head()
    for i in range(5):
        add_memory(store, f"memory {i}", "knowledge")
        store.commit({f"sources/p/d{i % 2}/f{i}.md": f"# {i}\n".encode()}, f"file {i}")
    store.commit({"sources/x/y/z.md": b"deep\n"}, "Review", ref=b"refs/heads/review/old", parents=[start])
    snapshot(store, "tag")
    restore(store, start)
    wants = list(local_refs(store).values())
    for haves in ([], list(base.values()), [start.encode()]):
        ours = set(new_objects(objs, wants, haves))
        theirs = {sha for sha, _ in MissingObjectFinder(objs, haves=haves, wants=wants)}
        assert theirs <= ours, theirs - ours
        everything = {sha for sha, _ in MissingObjectFinder(objs, haves=[], wants=wants)}
        assert ours <= everything


def test_replaced_remote_gets_everything_again(store, tmp_path):
    import shutil

    remote = make_bare(tmp_path / "laptop.git")
    add_memory(store, "first", "knowledge")
    assert push(store, str(remote))["ok"]
    shutil.rmtree(remote)  # the laptop was reinstalled; an empty repository at the same place
    make_bare(remote)
    rep = push(store, str(remote))
    assert rep["ok"], rep
    # Nothing from the earlier verification is trusted: every object was checked again.
    total = sum(1 for _ in __import__("dulwich.object_store", fromlist=["x"]).MissingObjectFinder(
        store.repo.object_store, haves=[], wants=list(local_refs(store).values())))
    assert rep["results"][0]["verify"]["objects_checked"] >= total
    fsck(remote)


def test_corrupt_pack_on_remote_is_caught_by_deep_verify(store, bare_remote):
    from .fixtures_backup import random_files

    store.commit(random_files(20, 4000), "Some sources")
    assert push(store, str(bare_remote))["ok"]
    pack = next(p for p in (bare_remote / "objects" / "pack").iterdir() if p.suffix == ".pack")
    data = bytearray(pack.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):  # a bad sector in the middle of the pack
        data[i] ^= 0xFF
    pack.write_bytes(bytes(data))
    rep = verify_remote(store, str(bare_remote), deep=True)
    assert not rep["ok"] and "corrupt" in rep["results"][0]["error"]
    # git agrees that the laptop copy is damaged
    assert subprocess.run(["git", "--git-dir", str(bare_remote), "fsck", "--strict"],
                          capture_output=True).returncode != 0


def test_push_while_the_store_is_repacked(store, bare_remote):
    """A background ``git repack -d`` moves objects from loose files into a pack while a push
    reads them: every push still completes and verifies."""
    from .fixtures_backup import random_files

    assert push(store, str(bare_remote))["ok"]
    for round_ in range(3):
        store.commit(random_files(300, 2000, prefix=f"sources/bulk/r{round_}"), f"Bulk {round_}")
        repack = subprocess.Popen(["git", "--git-dir", str(store.path), "repack", "-a", "-d", "-q"])
        rep = push(store, str(bare_remote))
        repack.wait(timeout=120)
        assert rep["ok"], rep
    assert verify_remote(store, str(bare_remote), deep=True)["ok"]
    fsck(bare_remote)


def test_remote_kinds_and_bad_urls(tmp_path):
    from atocore.backup.remotes import make_remote

    assert make_remote("a", str(tmp_path / "x.git")).kind == "local"
    assert make_remote("a", f"file://{tmp_path}/x.git").local_path == tmp_path / "x.git"
    for url in ("ssh://me@laptop/srv/a.git", "git://127.0.0.1:9418/a.git", "me@laptop:backups/a.git"):
        assert make_remote("a", url).kind == "network", url
    with pytest.raises(ValidationError, match="unsupported scheme 'ftp'"):
        make_remote("a", "ftp://host/a.git")


def test_damaged_state_file_is_reported_and_rewritten(store, bare_remote):
    (store.path / "atocore-backup.json").write_text("{not json")
    assert status(store)["state_damaged"]
    assert push(store, str(bare_remote))["ok"]
    st = status(store)
    assert not st["state_damaged"] and st["remotes"][0]["commits_behind"] == 0


def test_cli_verify(store, bare_remote):
    assert push(store, str(bare_remote))["ok"]
    out = run_cli("backup", "verify", str(bare_remote), store=store).stdout
    assert out.startswith("ok ") and "objects checked" in out
    add_memory(store, "not pushed yet", "knowledge")
    proc = run_cli("backup", "verify", str(bare_remote), "--quick", store=store, check=False)
    assert proc.returncode == 1 and "refs/heads/main" in proc.stdout


def test_writers_are_not_blocked_while_a_push_transfers(store, bare_remote, monkeypatch):
    import importlib
    import threading

    push_mod = importlib.import_module("atocore.backup.push")  # the module (the package exports push())

    started, release = threading.Event(), threading.Event()
    real_transport = push_mod.transport

    def stalled_transport(remote):  # a remote that stalls mid-push until released
        client, path = real_transport(remote)
        send_pack = client.send_pack

        def stalled(*args, **kwargs):
            started.set()
            release.wait(30)
            return send_pack(*args, **kwargs)

        client.send_pack = stalled
        return client, path

    monkeypatch.setattr(push_mod, "transport", stalled_transport)
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(push(store, str(bare_remote))))
    t.start()
    try:
        assert started.wait(30)
        with store.lock(timeout=5):  # Busy here if the push still held the writer lock
            add_memory(store, "written while a push is in flight", "knowledge")
    finally:
        release.set()
        t.join(60)
    assert out["ok"], out
    assert rev_parse(bare_remote, "refs/heads/main") == store.log()[1].sha  # main as it was when the push began
