"""The gate's verdict cache (issue 14): a backup push asks the gate about every open review
branch, so verdicts are kept on disk per (head, merge bases, main's settings, gate code). A
cached verdict must equal a fresh one, and any change of what it depends on must recompute it;
a damaged cache file is ignored. Also the push's pack re-hash policy (docs/backup-restore.md)."""

from __future__ import annotations

import json
import os

import yaml

from atocore import gate, review
from atocore.backup import push
from atocore.backup.state import load_state
from atocore.memories import add_memory
from atocore.review import gate_problems, propose
from tests.test_gate import SECRET, blob, branch

from .fixtures_backup import bare_remote  # noqa: F401 (fixture)


def fresh(store, head: str) -> list[str]:
    return gate.check_branch(store, head, store.head()).problems


def cached(store, head: str) -> list[str]:
    """Through the cache, with the in-process copy dropped (a new CLI process reads the disk)."""
    review._VERDICTS.clear()
    review._BASES.clear()
    return gate_problems(store, head, store.head())


def verdict_files(store) -> list:
    folder = store.index_dir / gate.VERDICT_DIR
    return sorted(folder.glob("*.json")) if folder.exists() else []


def secret_branch(store, name: str) -> str:
    return branch(store, name, [{(b"sources", b"p", f"{name}.md".encode()):
                                 (b"100644", blob(store, f"token {SECRET}\n".encode()))}])


def test_cached_verdict_equals_a_fresh_one(store):
    ok = propose(store, {"sources/p/a.md": b"# fine\n"}, "A fine change")
    bad = secret_branch(store, "leaky")
    for head in (store.head(f"refs/heads/review/{ok.id}".encode()), bad):
        first = gate_problems(store, head, store.head())
        assert first == fresh(store, head)
    assert len(verdict_files(store)) == 2
    assert cached(store, bad) == fresh(store, bad) and any("secret" in p for p in cached(store, bad))
    assert cached(store, store.head(f"refs/heads/review/{ok.id}".encode())) == []
    # main moving on with unrelated commits keeps the key (same merge base): no new file
    add_memory(store, "unrelated", "knowledge")
    assert cached(store, bad) == fresh(store, bad)
    assert len(verdict_files(store)) == 2


def test_a_planted_verdict_is_used_so_the_key_is_what_is_trusted(store):
    """The cache really answers (the file is read), which is what the tests below rely on."""
    bad = secret_branch(store, "leaky")
    gate_problems(store, bad, store.head())
    (f,) = verdict_files(store)
    d = json.loads(f.read_text())
    f.write_text(json.dumps({"key": d["key"], "problems": ["planted"]}))
    assert cached(store, bad) == ["planted"]


def test_a_changed_branch_is_checked_again(store):
    head = branch(store, "grows", [{(b"sources", b"p", b"a.md"): (b"100644", blob(store, b"# fine\n"))}])
    assert cached(store, head) == []
    head2 = branch(store, "grows-more", [{(b"sources", b"p", b"b.md"): (b"100644", blob(store, f"{SECRET}\n".encode()))}],
                   base=head)
    assert cached(store, head2) == fresh(store, head2) and any("secret" in p for p in cached(store, head2))


def test_changed_limits_or_patterns_on_main_are_checked_again(store):
    head = branch(store, "sized", [{(b"sources", b"p", b"a.md"): (b"100644", blob(store, b"x" * 120 + b"\n"))}])
    assert cached(store, head) == []
    cfg = yaml.safe_load(store.read("atocore.yaml"))
    cfg["limits"] = {"max_file_bytes": 100}
    store.commit({"atocore.yaml": yaml.safe_dump(cfg).encode()}, "Tight caps")
    assert any("over the 100-byte cap" in p for p in cached(store, head))
    assert cached(store, head) == fresh(store, head)
    cfg["limits"] = {"max_file_bytes": 10_000}
    cfg.setdefault("capture", {})["redact_patterns"] = ["x{50}"]
    store.commit({"atocore.yaml": yaml.safe_dump(cfg).encode()}, "A house pattern")
    assert any("secret" in p for p in cached(store, head))
    assert cached(store, head) == fresh(store, head)


def test_main_taking_the_branchs_commits_is_checked_again(store):
    bad = secret_branch(store, "leaky")
    assert cached(store, bad)
    # main now contains the branch's commit (moved there by hand): the branch has nothing of its
    # own left, so its verdict is no longer the old one
    store.set_ref(b"refs/heads/main", store.head(), bad)
    assert fresh(store, bad) == [] and cached(store, bad) == []
    # and in the same process, where the merge bases are carried forward in memory
    bad2 = secret_branch(store, "leaky2")
    assert gate_problems(store, bad2, store.head())
    store.set_ref(b"refs/heads/main", store.head(), bad2)
    assert gate_problems(store, bad2, store.head()) == []


def test_damaged_cache_files_are_ignored(store):
    bad = secret_branch(store, "leaky")
    want = fresh(store, bad)
    gate_problems(store, bad, store.head())
    (f,) = verdict_files(store)
    key = json.loads(f.read_text())["key"]
    for damage in (b"", b"{not json", b"\x00\xff" * 10, json.dumps({"key": key, "problems": "x"}).encode(),
                   json.dumps({"key": "0" * 40, "problems": []}).encode(), json.dumps([1, 2]).encode(),
                   json.dumps({"key": key, "problems": [1]}).encode()):
        f.write_bytes(damage)
        assert cached(store, bad) == want
        assert json.loads(f.read_text()) == {"key": key, "problems": want}  # rewritten
    f.unlink()
    (store.index_dir / gate.VERDICT_DIR).chmod(0o500)  # read-only: still answers, uncached
    try:
        if os.geteuid() != 0:
            assert cached(store, bad) == want
    finally:
        (store.index_dir / gate.VERDICT_DIR).chmod(0o700)


def test_push_leaves_out_what_the_gate_refuses_from_cache_too(store, bare_remote):
    propose(store, {"sources/p/a.md": b"# fine\n"}, "A fine change")
    secret_branch(store, "leaky")
    for _ in range(2):  # the second push answers from the cache
        review._VERDICTS.clear()
        rep = push(store, str(bare_remote))
        res = rep["results"][0]
        assert rep["ok"] and list(res["left_out"]) == ["refs/heads/review/leaky"]
        assert "secret" in res["left_out"]["refs/heads/review/leaky"]
    assert len(verdict_files(store)) == 2


# --------------------------------------------------------------------------- pack re-hashing


def _packs(remote) -> list:
    return sorted((remote / "objects" / "pack").glob("*.pack"))


def test_unchanged_packs_are_not_rehashed_but_a_changed_or_stale_one_is(store, bare_remote):
    for i in range(5):
        add_memory(store, f"memory {i} about the optical bench", "knowledge")
    first = push(store, str(bare_remote))["results"][0]
    assert first["verify"]["rehashed_bytes"] > 0
    add_memory(store, "one more", "knowledge")
    second = push(store, str(bare_remote))["results"][0]
    assert second["ok"]
    old_size = os.path.getsize(_packs(bare_remote)[0])
    assert second["verify"]["rehashed_bytes"] < sum(os.path.getsize(p) for p in _packs(bare_remote))
    assert "re-hashed by this push" in second["verify"]["method"]
    # a pack damaged in place (its file times change) is read again and caught
    big = max(_packs(bare_remote), key=os.path.getsize)
    data = bytearray(big.read_bytes())
    data[len(data) // 2] ^= 0xFF
    big.chmod(0o644)
    big.write_bytes(bytes(data))
    add_memory(store, "after the damage", "knowledge")
    rep = push(store, str(bare_remote))["results"][0]
    assert not rep["ok"] and "corrupt" in rep["error"]
    assert load_state(store)["remotes"][rep["remote"]]["hashed_packs"] == {}  # nothing trusted after a failure
    data[len(data) // 2] ^= 0xFF
    big.write_bytes(bytes(data))
    assert push(store, str(bare_remote))["ok"]
    # a record older than the re-hash period is not trusted either
    from atocore.backup.state import save_state

    state = load_state(store)
    entry = state["remotes"][rep["remote"]]
    for rec in entry["hashed_packs"].values():
        rec["at"] -= 25 * 3600
    save_state(store, state)
    add_memory(store, "a day later", "knowledge")
    later = push(store, str(bare_remote))["results"][0]
    assert later["ok"] and later["verify"]["rehashed_bytes"] >= old_size


def test_pushes_that_walk_only_the_moved_refs_send_everything(store, bare_remote):
    """An incremental push walks from the refs that moved down to where they (and main) were on
    the remote; a new branch off an old main, a restore and new snapshot tags still arrive whole."""
    from atocore.backup import verify_remote
    from atocore.backup.restore import restore

    from .fixtures_backup import fsck

    for i in range(3):
        add_memory(store, f"early {i}", "knowledge")
    old_main = store.head()
    assert push(store, str(bare_remote))["ok"]
    for i in range(3):
        add_memory(store, f"later {i}", "knowledge")
        assert push(store, str(bare_remote))["ok"]
    branch(store, "from-old", [{(b"sources", b"p", b"old.md"): (b"100644", blob(store, b"# based on an old main\n"))}],
           base=old_main)
    restore(store, old_main)
    rep = push(store, str(bare_remote))
    assert rep["ok"] and "refs/heads/review/from-old" in rep["results"][0]["updated"]
    assert verify_remote(store, str(bare_remote), deep=True)["ok"]
    fsck(bare_remote)


def test_a_full_push_reuses_the_stores_deltas_and_stands_alone(store, tmp_path, monkeypatch):
    """A large push reuses the deltas of the store's packs (only those whose base is sent too):
    the remote is about the store's size, passes git fsck --strict and a deep verification."""
    import importlib

    from atocore.backup import verify_remote

    push_mod = importlib.import_module("atocore.backup.push")

    from .fixtures_backup import fsck, git, make_bare

    import random

    rng = random.Random(14)
    text = "\n".join(" ".join(rng.choice(("lens", "mount", "torque", "seal", "vacuum", "drift", "gain", "pump"))
                               + str(rng.randrange(10**6)) for _ in range(12)) for _ in range(150))
    for i in range(30):
        store.commit({"sources/p/doc.md": f"{text}\nrevision {i}\n".encode()}, f"Revision {i}")
    git("repack", "-a", "-d", "-q", "--window=50", git_dir=store.path)
    sizes = {}
    for label, above in (("undeltified", 10**9), ("reused", 0)):
        monkeypatch.setattr(push_mod, "REUSE_DELTAS_ABOVE", above)
        remote = make_bare(tmp_path / f"{label}.git")
        assert push(store, str(remote))["ok"]
        assert verify_remote(store, str(remote), deep=True)["ok"]
        fsck(remote)
        sizes[label] = sum(p.stat().st_size for p in (remote / "objects" / "pack").glob("*.pack"))
    assert sizes["reused"] < sizes["undeltified"] / 3
