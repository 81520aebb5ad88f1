"""record_interaction: validation, redaction before commit, idempotence, one commit; the index follows."""

from __future__ import annotations

import subprocess
import threading

import pytest

from atocore.capture.record import derive_id, record_interaction
from atocore.errors import ValidationError
from atocore.records import parse_interactions
from tests.fixtures_capture import store_turns

AWS = "AKIAQ3EGVBMPLKJX7Y2Z"
GH = "ghp_Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0Lmaaaa"


def turn(**kw):
    base = {"source": "claude-code", "session_id": "7f3c9a10-5b2e-4c1d-9e8f-0a1b2c3d4e5f",
            "prompt": "why does the login test fail?", "response": "The fixture token was stale; I regenerated it."}
    return {**base, **kw}


def all_objects_text(store) -> str:
    """Every object in the repository (reachable or not), as git itself sees them."""
    out = subprocess.run(["git", "--git-dir", str(store.path), "cat-file", "--batch-all-objects", "--batch"],
                         capture_output=True, check=True).stdout
    return out.decode("utf-8", "replace")


def test_records_one_line_in_one_commit(store):
    head = store.head()
    inter, created = record_interaction(store, turn(created="2026-08-01T09:12:03Z"))
    assert created
    assert inter.id.startswith("h-")
    log = store.log()
    assert log[0].parents == (head,) and len(log) == 2
    assert "Capture claude-code turn" in log[0].summary
    path = "interactions/2026/08/7f3c9a10-5b2e-4c1d-9e8f-0a1b2c3d4e5f.jsonl"
    assert store.diff(head, store.head())[0].path == path
    [stored] = parse_interactions(store.read(path), path)
    assert stored == inter


def test_same_turn_twice_is_stored_once(store):
    a, created_a = record_interaction(store, turn())
    head = store.head()
    b, created_b = record_interaction(store, turn())
    assert created_a and not created_b
    assert a.id == b.id and store.head() == head
    # a client id wins, and is idempotent too
    c, _ = record_interaction(store, turn(id="cc-1234", prompt="another"))
    d, again = record_interaction(store, turn(id="cc-1234", prompt="another, edited"))
    assert c.id == d.id == "cc-1234" and not again and d.prompt == "another"
    assert len(store_turns(store)) == 2


def test_retry_with_a_new_timestamp_next_month_is_still_stored_once(store):
    record_interaction(store, turn(id="cc-x", created="2026-08-31T23:59:59Z"))
    _, created = record_interaction(store, turn(id="cc-x", created="2026-09-01T00:00:05Z"))
    assert not created


def test_concurrent_writers_store_a_turn_once(store):
    results = []

    def work():
        results.append(record_interaction(store, turn(id="cc-race"))[1])

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    assert len(store_turns(store)) == 1


def test_secrets_never_reach_any_git_object(store):
    prompt = f"deploy with AWS key {AWS} and token {GH} please"
    meta = {"cwd": "/tmp/x", "note": f"env had OPENAI_API_KEY=sk-proj-{'Ab12' * 10}"}
    inter, _ = record_interaction(store, turn(prompt=prompt, response=f"Done; I used {GH}.", meta=meta))
    assert AWS not in inter.prompt and "[REDACTED:aws-access-key-id]" in inter.prompt
    assert "sk-proj-" not in inter.meta["note"]
    blob = all_objects_text(store)
    for secret in (AWS, GH, "sk-proj-Ab12"):
        assert secret not in blob
    assert subprocess.run(["git", "--git-dir", str(store.path), "fsck", "--strict"], capture_output=True).returncode == 0


def test_derived_id_does_not_depend_on_secret_text(store):
    a = record_interaction(store, turn(prompt=f"key {AWS}"))[0]
    assert a.id == derive_id("claude-code", a.session_id, a.prompt, a.response)


def test_extra_patterns_from_store_config(store):
    cfg = store.read("atocore.yaml").decode().replace("redact_patterns: []", "redact_patterns: ['ACME-\\d{5}']")
    store.commit({"atocore.yaml": cfg.encode()}, "Redact ticket ids")
    inter, _ = record_interaction(store, turn(prompt="see ticket ACME-12345"))
    assert inter.prompt == "see ticket [REDACTED:custom]"


def test_private_only_turn_is_refused_and_nothing_written(store):
    head = store.head()
    with pytest.raises(ValidationError) as err:
        record_interaction(store, turn(prompt="<private>all of it</private>", response=""))
    assert "nothing to record" in str(err.value)
    assert store.head() == head


@pytest.mark.parametrize("body, field", [
    ({"session_id": "s", "prompt": "p", "response": "r"}, "source"),
    ({"source": "Claude Code", "session_id": "s", "prompt": "p", "response": "r"}, "source"),
    ({"source": "x", "prompt": "p", "response": "r"}, "session_id"),
    ({"source": "x", "session_id": "s", "prompt": 3, "response": "r"}, "prompt"),
    ({"source": "x", "session_id": "s", "prompt": "p", "response": "r", "colour": "red"}, "colour"),
    ({"source": "x", "session_id": "s", "prompt": "p", "response": "r", "created": "yesterday"}, "created"),
    ({"source": "x", "session_id": "s", "prompt": "p" * 200_001, "response": "r"}, "prompt"),
])
def test_bad_bodies_name_the_field(store, body, field):
    head = store.head()
    with pytest.raises(ValidationError) as err:
        record_interaction(store, body)
    assert err.value.field == field
    assert store.head() == head


def test_not_a_mapping(store):
    with pytest.raises(ValidationError):
        record_interaction(store, ["not", "a", "dict"])  # type: ignore[arg-type]


def test_turn_is_searchable_after_the_index_update(store):
    from atocore.retrieval import open_retriever

    retriever = open_retriever(store)
    retriever.update()
    inter, _ = record_interaction(store, turn(prompt="how do we anneal the borosilicate blank?",
                                              response="Anneal the borosilicate blank at 560 C for six hours."),
                                  retriever=retriever)
    retriever.update()  # capture only commits; the index follows main (the watcher, `atocore index update`)
    hits = retriever.search("borosilicate blank anneal", k=5)
    assert any(inter.id in h.source for h in hits), [h.to_dict() for h in hits]


def test_lone_surrogates_and_nul_are_cleaned_not_refused(store):
    inter, created = record_interaction(store, turn(prompt="bad \ud800 byte and a \x00 NUL",
                                                    meta={"out": "x\udcff\x00y"}))
    assert created and inter.prompt == "bad \ufffd byte and a  NUL" and inter.meta["out"] == "x\ufffdy"
    [stored] = store_turns(store)
    assert stored["prompt"] == inter.prompt


@pytest.mark.parametrize("bad", ["x..y.lock", "a.lock", "-lead", ".hidden", "a/b", "a b", "a~1", "a^b", "a@{1}", "x:y?",
                                 "", "é", "a" * 201, "ends."])
def test_ids_that_would_break_git_refs_or_paths_are_refused(store, bad):
    """Issue 12, row 11: an accepted id later broke `atocore extract` for every session."""
    head = store.head()
    for field in ("id", "session_id"):
        with pytest.raises(ValidationError) as err:
            record_interaction(store, turn(**{field: bad}))
        assert err.value.field == field
    assert store.head() == head


def test_a_retry_months_away_is_still_the_same_turn(store):
    record_interaction(store, turn(id="cc-far", created="2026-01-03T10:00:00Z"))
    head = store.head()
    again, created = record_interaction(store, turn(id="cc-far", created="2027-06-20T10:00:00Z"))
    assert not created and again.created == "2026-01-03T10:00:00Z" and store.head() == head
    assert len(store_turns(store)) == 1


def test_posted_bad_id_is_a_422_and_extract_keeps_working(store):
    import json

    from tests.conftest import run_cli
    from tests.fixtures_server import serve_store

    with serve_store(store) as s, s.client() as c:
        r = c.post("/interactions", json=turn(id="x..y.lock", prompt="Remember that the NAS is in rack 2."))
        assert r.status_code == 422 and r.json()["field"] == "id"
        r = c.post("/interactions", json=turn(session_id="x..y.lock", prompt="Remember that the NAS is in rack 2."))
        assert r.status_code == 422 and r.json()["field"] == "session_id"
    # A turn stored before ids were checked (as the store has one) no longer breaks extract.
    line = json.dumps({"id": "x..y.lock", "source": "claude-code", "session_id": "s1", "created": "2026-08-01T09:00:00Z",
                       "prompt": "Remember that the NAS is in rack 2.", "response": "ok", "project": None, "meta": {}})
    store.commit({"interactions/2026/08/s1.jsonl": (line + "\n").encode()}, "an old capture")
    record_interaction(store, turn(id="cc-good", prompt="Remember that the backup disk is blue."))
    out = run_cli("extract", store=store, check=False)
    assert out.returncode == 0, out.stderr
    branches = subprocess.run(["git", "--git-dir", str(store.path), "for-each-ref", "--format=%(refname)"],
                              capture_output=True, text=True, check=True).stdout.split()
    reviews = [b for b in branches if b.startswith("refs/heads/review/extract-")]
    assert len(reviews) == 2, branches
    for ref in reviews:
        assert subprocess.run(["git", "check-ref-format", ref]).returncode == 0
