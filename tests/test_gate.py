"""The gate (issue 12, review side): hostile review branches, written with the real git CLI and
with dulwich objects directly, are refused with reasons by review list/show and approve alike;
nothing approved can break ``git clone``, ``git fsck --strict``, the index or the drill."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atocore.backup.drill import drill
from atocore.config import load_config
from atocore.errors import Conflict, ValidationError
from atocore.review import approve_review, get_review, list_reviews, propose, reject_review
from atocore.store import init_store
from atocore.store.objects import object_id
from tests.conftest import run_cli
from tests.fixtures_server import serve_store, two_projects  # noqa: F401 (fixture)
from tests.fixtures_store import fsck, git

BOB = "Bob Reviewer <bob@example.org>"
SECRET = "ghp_" + "A1b2C3d4" * 5  # a GitHub token shape the redactor knows (built here, never a real one)


@pytest.fixture
def clone(store, tmp_path):
    work = tmp_path / "clone"
    git("clone", "-q", str(store.path), str(work), cwd=tmp_path)
    git("config", "user.name", "Pat Person", cwd=work)
    git("config", "user.email", "pat@example.org", cwd=work)
    return work


# --------------------------------------------------------------------------- crafting objects


def put(store, kind: bytes, raw: bytes) -> str:
    sha = object_id(kind, raw)
    store.writer.write(sha, kind, raw)
    return sha


def blob(store, content: bytes) -> str:
    return put(store, b"blob", content)


def raw_tree(store, entries: list[tuple[bytes, bytes, str]], canonical: bool = True) -> str:
    """A tree from ``(mode, name, sha)``; ``canonical=False`` keeps the given order as is."""
    if canonical:
        entries = sorted(entries, key=lambda e: e[1] + (b"/" if e[0] == b"40000" else b""))
    return put(store, b"tree", b"".join(m + b" " + n + b"\0" + bytes.fromhex(s) for m, n, s in entries))


def tree_from(store, files: dict[tuple[bytes, ...], tuple[bytes, str]], base: str | None = None) -> str:
    """Nested tree from ``{(segment, ...): (mode, sha)}`` laid over main's root tree ``base``."""
    from dulwich.objects import parse_tree

    node: dict = {}
    if base is not None:
        _t, raw = store._raw(base)
        for name, mode, sha in parse_tree(raw, 20):
            node[name] = (b"%o" % mode, sha.decode())
    for parts, leaf in files.items():
        cur = node
        for part in parts[:-1]:
            nxt = cur.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                if isinstance(cur.get(part), tuple) and cur[part][0] == b"40000":
                    _t, raw = store._raw(cur[part][1])
                    for name, mode, sha in parse_tree(raw, 20):
                        nxt[name] = (b"%o" % mode, sha.decode())
                cur[part] = nxt
            cur = nxt
        cur[parts[-1]] = leaf

    def build(d: dict) -> str:
        entries = []
        for name, v in d.items():
            if isinstance(v, dict):
                entries.append((b"40000", name, build(v)))
            else:
                entries.append((v[0], name, v[1]))
        return raw_tree(store, entries)

    return build(node)


def raw_commit(store, tree: str, parents: list[str], message: str = "A change\n",
               author: bytes = b"Pat Person <pat@example.org> 1764550000 +0000") -> str:
    lines = [b"tree " + tree.encode()] + [b"parent " + p.encode() for p in parents]
    lines += [b"author " + author, b"committer " + author]
    return put(store, b"commit", b"\n".join(lines) + b"\n\n" + message.encode())


def branch(store, name: str, commits: list[dict], base: str | None = None) -> str:
    """Commits (each ``{(segments): (mode, sha)}`` laid over main's tree) on ``review/<name>``."""
    parent = base or store.head()
    for files in commits:
        tree = tree_from(store, files, store.tree_id(parent))
        parent = raw_commit(store, tree, [parent])
    store.set_ref(b"refs/heads/review/" + name.encode(), None, parent)
    return parent


def refused(store, rid: str, *needles: str) -> list[str]:
    """The review is refused in list and show, approve refuses with the same words, main unmoved."""
    main = store.head()
    (listed,) = [p for p in list_reviews(store) if p.id == rid]
    shown = get_review(store, rid)
    assert not listed.approvable and not shown.approvable and listed.problems == shown.problems
    assert shown.to_dict()["refused"] is True
    text = "\n".join(shown.problems)
    for needle in needles:
        assert needle in text, text
    with pytest.raises(Conflict) as exc:
        approve_review(store, rid, BOB)
    for problem in shown.problems:
        assert problem in str(exc.value)  # one validator: the same words
    assert store.head() == main
    return shown.problems


# --------------------------------------------------------------------------- rows 6, 8: paths and modes


@pytest.mark.parametrize("segments", [
    (b"sources", b"p", b".GIT", b"config"),           # row 6: case-insensitive .git
    (b"sources", b"p", b".git", b"config"),
    (b"sources", b"p", b".Git.", b"hooks"),           # NTFS strips the trailing dot
    (b"sources", b"p", b".g\xe2\x80\x8cit", b"x"),   # HFS+ ignores U+200C
    (b"sources", b"GIT~1", b"config"),                 # NTFS short name
    (b"sources", b"p", b".gitmodules"),
    (b".gitattributes",),                              # row 8
    (b".gitmodules",),
    (b"hooks", b"post-receive"),
    (b"evil", b"run.sh"),
    (b"memories", b"..", b"x.md"),
    (b"sources", b"p", b"a\nb.md"),
    (b"sources", b"p", b"back\\slash.md"),
])
def test_reserved_and_out_of_layout_paths_are_refused(store, segments):
    content = b"[submodule \"x\"]\n\tpath = x\n\turl = ext::sh -c touch% /tmp/pwned\n"
    branch(store, "bad", [{segments: (b"100644", blob(store, content))}])
    problems = refused(store, "bad")
    assert problems


@pytest.mark.parametrize("mode,what", [(b"120000", "a symlink"), (b"160000", "a submodule"),
                                       (b"100755", "an executable file")])
def test_symlinks_submodules_and_executables_are_refused(store, mode, what):
    target = blob(store, b"../../atocore.yaml") if mode != b"160000" else "1" * 40
    branch(store, "modes", [{(b"sources", b"p", b"x.md"): (mode, target)}])
    refused(store, "modes", what)


def test_row8_files_pushed_with_git_cli_are_refused(store, clone):
    git("checkout", "-q", "-b", "review/pat-evil", cwd=clone)
    (clone / "evil").mkdir()
    (clone / "evil" / "run.sh").write_text("#!/bin/sh\nrm -rf ~\n")
    (clone / "evil" / "run.sh").chmod(0o755)
    (clone / "hooks").mkdir()
    (clone / "hooks" / "post-receive").write_text("#!/bin/sh\n")
    (clone / ".gitattributes").write_text("* filter=evil\n")
    (clone / ".gitmodules").write_text('[submodule "x"]\n\tpath = x\n\turl = ext::sh -c touch% /tmp/pwned\n')
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "Helpful tooling", cwd=clone)
    git("push", "-q", "origin", "review/pat-evil", cwd=clone)
    refused(store, "pat-evil", "evil/run.sh", "hooks", ".gitattributes", ".gitmodules")
    out = run_cli("review", "list", store=store).stdout
    assert "pat-evil" in out and "refused by the gate" in out
    res = run_cli("review", "approve", "pat-evil", "--reviewer", BOB, store=store, check=False)
    assert res.returncode == 1 and res.stderr.startswith("Error: ") and "refused by the gate" in res.stderr
    assert "Traceback" not in res.stderr
    for path in ("evil/run.sh", "hooks/post-receive", ".gitattributes", ".gitmodules"):
        assert store.read(path) is None


def clone_and_fsck(store, dest: Path) -> None:
    """What a backup or a new machine gets: a real clone (reachable objects only), fsck --strict clean."""
    git("clone", "-q", "--no-local", "--bare", str(store.path), str(dest), cwd=dest.parent)
    fsck(dest)
    git("clone", "-q", str(dest), str(dest.parent / (dest.name + "-work")), cwd=dest.parent)


def _git_in(cwd: Path, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "GIT_AUTHOR_NAME": "Pat Person",
           "GIT_AUTHOR_EMAIL": "pat@example.org", "GIT_COMMITTER_NAME": "Pat Person",
           "GIT_COMMITTER_EMAIL": "pat@example.org"}
    proc = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True, env=env,
                          timeout=60, check=True)
    return proc.stdout.strip()


def test_row6_dotgit_variant_pushed_with_git_cli_is_refused_and_store_stays_clonable(store, clone, tmp_path):
    # `git add` refuses .GIT; the plumbing (hash-object, mktree, commit-tree) and push do not
    cfg = _git_in(clone, "hash-object", "-w", "--stdin", stdin="[core]\n\tworktree = /\n")
    dotgit = _git_in(clone, "mktree", stdin=f"100644 blob {cfg}\tconfig\n")
    proj = _git_in(clone, "mktree", stdin=f"040000 tree {dotgit}\t.GIT\n")
    sources = _git_in(clone, "mktree", stdin=f"040000 tree {proj}\tp\n")
    root = _git_in(clone, "ls-tree", "HEAD") + f"\n040000 tree {sources}\tsources\n"
    tree = _git_in(clone, "mktree", stdin=root)
    commit = _git_in(clone, "commit-tree", tree, "-p", "HEAD", "-m", "Config")
    _git_in(clone, "push", "-q", "origin", f"{commit}:refs/heads/review/pat-dotgit")
    refused(store, "pat-dotgit", "sources/p/.GIT", "reserved for git's own files")
    reject_review(store, "pat-dotgit", "a .GIT folder", BOB)
    clone_and_fsck(store, tmp_path / "again")  # main's history never saw it


def test_the_commit_path_refuses_reserved_names_in_any_case(store):
    for path in ("a/.GIT/config", "a/.Gitmodules", "a/x\ny", "a/.git./b"):
        with pytest.raises(ValidationError, match="not a safe path"):
            store.commit({path: b"x"}, "m")
    from atocore.gate import layout_problem
    from atocore.store.paths import path_problem

    assert path_problem("sources/p/notes.md") is None and layout_problem("sources/p/hooks/useFoo.md") is None


def test_malformed_tree_objects_are_refused(store):
    good = blob(store, b"fine\n")
    unsorted = raw_tree(store, [(b"100644", b"b.md", good), (b"100644", b"a.md", good)], canonical=False)
    dup = raw_tree(store, [(b"100644", b"a.md", good), (b"100644", b"a.md", good)], canonical=False)
    padded = put(store, b"tree", b"0100644 a.md\0" + bytes.fromhex(good))
    for name, sub in (("unsorted", unsorted), ("dup", dup), ("padded", padded)):
        branch(store, name, [{(b"sources", b"p"): (b"40000", sub)}])
        refused(store, name, "malformed")


def test_malformed_commit_header_is_refused(store):
    tree = tree_from(store, {(b"sources", b"p", b"a.md"): (b"100644", blob(store, b"a\n"))}, store.tree_id())
    sha = raw_commit(store, tree, [store.head()], author=b"no email here 1764550000 +0000")
    store.set_ref(b"refs/heads/review/badauthor", None, sha)
    refused(store, "badauthor", "malformed author")


# --------------------------------------------------------------------------- row 7: every commit


def test_row7_secret_added_then_deleted_is_refused(store, clone):
    git("checkout", "-q", "-b", "review/pat-oops", cwd=clone)
    (clone / "sources" / "p").mkdir(parents=True)
    (clone / "sources" / "p" / "deploy.md").write_text(f"Deploy with token {SECRET}\n")
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "Deploy notes", cwd=clone)
    (clone / "sources" / "p" / "deploy.md").write_text("Deploy with the token from the vault\n")
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "Remove the token again", cwd=clone)
    git("push", "-q", "origin", "review/pat-oops", cwd=clone)
    p = get_review(store, "pat-oops")
    assert SECRET.encode() not in p.files["sources/p/deploy.md"]  # the net diff looks clean...
    refused(store, "pat-oops", "sources/p/deploy.md", "secret", "github-token")  # ...every commit is not
    assert not any(SECRET in c.message for c in store.log())


def test_a_clean_branch_with_several_commits_is_approvable(store, clone):
    git("checkout", "-q", "-b", "review/pat-ok", cwd=clone)
    (clone / "sources" / "p").mkdir(parents=True)
    (clone / "sources" / "p" / "a.md").write_text("Alpha\n")
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "One", cwd=clone)
    (clone / "sources" / "p" / "b.md").write_text("Beta\n")
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "Two", cwd=clone)
    git("push", "-q", "origin", "review/pat-ok", cwd=clone)
    p = get_review(store, "pat-ok")
    assert p.approvable and p.to_dict()["refused"] is False
    approve_review(store, "pat-ok", BOB)
    assert store.read("sources/p/b.md") == b"Beta\n"
    fsck(store.path)


# --------------------------------------------------------------------------- row 2: sizes


def test_row2_oversized_file_is_refused_without_being_read(store, clone):
    git("checkout", "-q", "-b", "review/pat-big", cwd=clone)
    (clone / "sources" / "p").mkdir(parents=True)
    big = ("lorem ipsum dolor sit amet " * 200_000).encode()  # 5.4 MB of text: over the 4 MB default
    (clone / "sources" / "p" / "big.md").write_bytes(big)
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "Big", cwd=clone)
    git("push", "-q", "origin", "review/pat-big", cwd=clone)
    from atocore.gate import object_size

    sha = store.blob_id("sources/p/big.md", "review/pat-big")
    assert object_size(store, sha) == len(big)  # read from the object header
    refused(store, "pat-big", "sources/p/big.md", f"{len(big)} bytes is over the 4000000-byte cap")
    p = get_review(store, "pat-big")
    assert p.files["sources/p/big.md"].startswith(b"(not shown")


def test_row2_caps_come_from_mains_config_not_the_proposal(store):
    cfg = yaml.safe_load(store.read("atocore.yaml"))
    cfg["limits"] = {"max_file_bytes": 100, "max_change_bytes": 150}
    store.commit({"atocore.yaml": yaml.safe_dump(cfg).encode()}, "Tight caps")
    raised = dict(cfg, limits={"max_file_bytes": 10**9})
    branch(store, "raise", [{(b"atocore.yaml",): (b"100644", blob(store, yaml.safe_dump(raised).encode())),
                             (b"sources", b"p", b"a.md"): (b"100644", blob(store, b"x" * 120 + b"\n"))}])
    refused(store, "raise", "over the 100-byte cap")
    branch(store, "many", [{(b"sources", b"p", f"{i}.md".encode()): (b"100644", blob(store, b"y" * 60 + b"%d" % i))
                            for i in range(3)}])
    refused(store, "many", "over the cap of 150 (limits.max_change_bytes)")
    with pytest.raises(ValidationError, match="refused by the gate"):
        propose(store, {"sources/p/b.md": b"z" * 200}, "Too big")


def test_row2_service_refuses_huge_approval_and_keeps_answering(two_projects, clone):

    store = two_projects
    git("pull", "-q", "origin", "main", cwd=clone)
    git("checkout", "-q", "-b", "review/pat-huge", cwd=clone)
    (clone / "sources" / "p").mkdir(parents=True, exist_ok=True)
    (clone / "sources" / "p" / "huge.md").write_bytes(b"z" * 6_000_000)
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "Huge", cwd=clone)
    git("push", "-q", "origin", "review/pat-huge", cwd=clone)
    with serve_store(store) as served, served.client() as c:
        (item,) = [x for x in c.get("/reviews").json() if x["id"] == "pat-huge"]
        assert item["refused"] is True and not item["approvable"]
        r = c.post("/reviews/pat-huge/approve", json={"reviewer": BOB})
        assert r.status_code == 409 and "refused by the gate" in r.text and "over the 4000000-byte cap" in r.text
        assert item["problems"][0] in r.json()["message"]
        assert c.post("/search", json={"query": "lens"}).status_code == 200
    assert store.read("sources/p/huge.md") is None


# --------------------------------------------------------------------------- row 3: atocore.yaml


@pytest.mark.parametrize("text,needle", [
    ("embedding: 5\n", "embedding: must be a mapping"),
    ("capture:\n  redact_patterns: ['(']\n", "is not a valid regular expression"),
    ("capture:\n  redact_patterns: ['x*']\n", "matches the empty string"),
    ("chunking:\n  max_chars: '1000'\n", "must be a whole number"),
    ("capture:\n  extract: 'yes'\n", "must be true or false"),
    ("remotes:\n  evil: 'ext::sh -c id'\n", "remote helper"),
    ("embeding:\n  model: x\n", "is not a known setting"),
    ("retention:\n  keep_last: -1\n", "out of range"),
])
def test_row3_bad_config_review_is_refused(store, text, needle):
    branch(store, "cfg", [{(b"atocore.yaml",): (b"100644", blob(store, b"schema: 1\n" + text.encode()))}])
    refused(store, "cfg", "atocore.yaml", needle)
    with pytest.raises(ValidationError, match=needle.split(":")[-1].strip()):
        propose(store, {"atocore.yaml": b"schema: 1\n" + text.encode()}, "Bad config")


def test_row3_bad_config_on_main_keeps_the_last_good_one_serving(two_projects):

    store = two_projects
    good = load_config(store)
    with serve_store(store) as served, served.client() as c:
        assert c.get("/health").json()["config"]["ok"] is True
        # a push straight to main (no review) with nonsense
        store.commit({"atocore.yaml": b"embedding: 5\ncapture:\n  redact_patterns: ['(']\n"}, "Break the config")
        served.service.poke()
        cfg = load_config(store)
        assert cfg.embed_model == good.embed_model and cfg.redact_patterns == good.redact_patterns
        health = c.get("/health").json()
        assert health["status"] == "degraded" and health["config"]["ok"] is False
        assert "embedding: must be a mapping" in health["config"]["problem"]
        assert any("invalid configuration" in p for p in health["problems"])
        assert c.post("/search", json={"query": "lens"}).status_code == 200
        r = c.post("/context/build", json={"prompt": "How is the lens mounted?"})
        assert r.status_code == 200
        r = c.post("/interactions", json={"id": "t-cfg-1", "source": "claude-code", "session_id": "s-cfg",
                                          "prompt": "hello", "response": "world"})
        assert r.status_code < 500
    out = run_cli("status", "--no-index", store=store)
    assert "config:   INVALID" in out.stdout and "Traceback" not in out.stderr
    assert run_cli("memory", "list", store=store).returncode == 0


# --------------------------------------------------------------------------- restore


def test_restore_goes_through_the_gate(store):
    from atocore.backup.restore import restore

    bad = branch(store, "x", [{(b"evil", b"run.sh"): (b"100644", blob(store, b"echo\n"))}])
    with pytest.raises(ValidationError, match="was never on main"):
        restore(store, bad, reindex_after=False)
    before = store.head()
    # content main had (its own history) restores fine
    store.commit({"sources/p/a.md": b"a\n"}, "Add a")
    rep = restore(store, before, reindex_after=False)
    assert rep["ok"] and store.read("sources/p/a.md") is None


# --------------------------------------------------------------------------- property: nothing approved breaks main

SEGMENTS = [b"sources", b"p", b"q", b"memories", b"state", b"projects", b"interactions", b"2026", b"01",
            b"notes.md", b"a.md", b"README.md", b"atocore.yaml", b".git", b".GIT", b".gitmodules", b"..", b".",
            b"hooks", b"evil", b"x\ny.md", b"git~1", b".git.", b"s.jsonl", b"run.sh", b"\xff.md", b"a/b",
            b"a\x00b"]
CONTENTS = [b"plain text\n", b"\x00binary", f"token {SECRET}\n".encode(), b"", b"# Title\n\nbody\n" * 3,
            b"schema: 1\nembedding: 5\n", b"schema: 1\n", b"not: [valid\n", b"\xff\xfe"]
MODES = [b"100644", b"100644", b"100644", b"100755", b"120000", b"160000"]

hostile = st.tuples(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=4),
                    st.sampled_from(MODES), st.sampled_from(CONTENTS))
wild_name = st.text(st.characters(blacklist_characters="\x00"), min_size=1, max_size=12).map(
    lambda t: t.encode("utf-8", "surrogatepass"))
wild = st.tuples(st.tuples(st.just(b"sources"), st.just(b"p"), wild_name),
                 st.just(b"100644"), st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
valid_name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,15}", fullmatch=True).map(lambda t: (t + ".md").encode())
valid = st.tuples(st.tuples(st.just(b"sources"), st.sampled_from([b"p", b"q"]), valid_name),
                  st.just(b"100644"), st.sampled_from(CONTENTS[:1] + CONTENTS[4:5]))
valid_deep = st.tuples(st.tuples(st.just(b"sources"), st.just(b"p"), st.sampled_from([b"docs", b"a b", b"hooks"]),
                                 valid_name), st.just(b"100644"),
                       st.text(min_size=1, max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
entry = st.one_of(valid, valid, valid, valid_deep, valid_deep, wild, hostile)
commit_spec = st.lists(entry, min_size=1, max_size=3)


def _file_map(store, spec) -> dict:
    out = {}
    for segs, mode, content in spec:
        sha = "1" * 40 if mode == b"160000" else blob(store, content)
        out[tuple(segs)] = (mode, sha)
    # a file and a folder of the same name cannot both be written: keep the first
    keys = sorted(out, key=len)
    clean = {}
    for k in keys:
        if not any(k[:i] in clean for i in range(1, len(k))) and not any(o[:len(k)] == k for o in clean):
            clean[k] = out[k]
    return clean


_STATE: dict = {}


def _prop_store():
    if "store" not in _STATE:
        _STATE["dir"] = tempfile.TemporaryDirectory(prefix="atocore-gate-prop-")
        _STATE["store"], _ = init_store(Path(_STATE["dir"].name) / "store")
        _STATE["n"] = 0
    return _STATE["store"]


# ATOCORE_GATE_EXAMPLES=500 for a long hunt; the default keeps the suite quick
@settings(max_examples=int(os.environ.get("ATOCORE_GATE_EXAMPLES", "30")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(commits=st.lists(commit_spec, min_size=1, max_size=3), delete_in_last=st.sampled_from([False, False, True]),
       unsorted=st.sampled_from([False, False, False, False, True]))
def test_property_nothing_approved_breaks_clone_fsck_or_index(commits, delete_in_last, unsorted):
    store = _prop_store()
    _STATE["n"] += 1
    rid = f"prop-{_STATE['n']}"
    parent = store.head()
    for i, spec in enumerate(commits):
        files = _file_map(store, spec)
        if delete_in_last and i == len(commits) - 1 and i > 0:
            files = {}  # the last commit puts main's tree back: the net diff is empty
        # each commit lays its files over main's tree (a later commit drops what an earlier one
        # added: the "added, then deleted" case), so a garbage tree never becomes a base here
        tree = tree_from(store, files, store.tree_id(store.head()))
        if unsorted and files:
            _t, raw = store._raw(tree)
            from dulwich.errors import ObjectFormatException
            from dulwich.objects import parse_tree

            try:
                ents = list(parse_tree(raw, 20))
            except ObjectFormatException:  # a NUL inside a name already garbles the tree: push it as it is
                ents = None
            if ents is not None:
                tree = raw_tree(store, [(b"%o" % m, n, s.decode()) for n, m, s in reversed(ents)], canonical=False)
        parent = raw_commit(store, tree, [parent], message=f"commit {i}\n")
    store.set_ref(b"refs/heads/review/" + rid.encode(), None, parent)
    p = get_review(store, rid)
    assert p.approvable == (rid in {q.id for q in list_reviews(store) if q.approvable})
    if not p.approvable:
        with pytest.raises(Conflict) as exc:
            approve_review(store, rid, BOB)
        assert all(pr in str(exc.value) for pr in p.problems)
        store.set_ref(b"refs/heads/review/" + rid.encode(), parent, None)  # tidy: like a reject
        return
    approve_review(store, rid, BOB)
    with tempfile.TemporaryDirectory() as tmp:
        clone_and_fsck(store, Path(tmp) / "c")
    from atocore.retrieval import open_retriever

    r = _STATE.setdefault("retriever", open_retriever(store))
    r.update()
    r.search("plain text", k=3)


def test_drill_passes_with_hostile_review_branches_present(store):
    """Row 9 and the drill: refused branches (a '..' entry, a symlink, a secret) stay local."""
    good = blob(store, b"fine\n")
    dotdot = raw_tree(store, [(b"100644", b"..", good)], canonical=False)
    branch(store, "dotdot", [{(b"sources", b"p"): (b"40000", dotdot)}])
    branch(store, "link", [{(b"sources", b"p", b"l.md"): (b"120000", blob(store, b"/etc/shadow"))}])
    branch(store, "secret", [{(b"sources", b"p", b"s.md"): (b"100644", blob(store, f"{SECRET}\n".encode()))}])
    branch(store, "fine", [{(b"sources", b"p", b"f.md"): (b"100644", good)}])
    report = drill(store)
    assert report["ok"], report["steps"]
    assert all(s["ok"] is not False for s in report["steps"])


def test_stray_files_from_before_the_gate_can_be_deleted_through_review(store):
    store.commit({"notes/old.md": b"from an older version\n"}, "A file outside today's layout")
    p = propose(store, {"notes/old.md": None}, "Tidy up")
    assert p.approvable
    approve_review(store, p.id, BOB)
    assert store.read("notes/old.md") is None
