"""Every validation rule, table-driven: the message names the field (and the allowed values),
and nothing is written (no ref moves, no object is added)."""

from __future__ import annotations

import pytest

from atocore.errors import ValidationError
from atocore.ids import check_capture_id, check_record_id, check_slug
from atocore.projects import register_project
from atocore.memories import add_memory, get_memory
from atocore.records import (interaction_from_dict, memory_path, parse_interactions, state_path,
                             validate_path)
from atocore.review import check_review_id, get_review, propose
from atocore.state import propose_state

MEM_OK = "---\nid: m1\ntype: project\n---\nThe lens mount is M42.\n"


def snapshot(store) -> tuple[dict, int]:
    objects = sum(1 for p in (store.path / "objects").rglob("*") if p.is_file())
    return store.refs(b"refs/"), objects


# (case id, callable(store), field in the message, text the message must contain)
API_CASES = [
    ("memory-type-choice", lambda s: add_memory(s, "x", "bogus"), "type",
     "'bogus' is not allowed (allowed: identity, preference, project, episodic, knowledge, adaptation)"),
    ("memory-status-choice", lambda s: add_memory(s, "x", "project", status="maybe"), "status",
     "allowed: candidate, active, superseded, invalid"),
    ("memory-confidence-type", lambda s: add_memory(s, "x", "project", confidence="high"), "confidence",
     "must be number, got str"),
    ("memory-confidence-range", lambda s: add_memory(s, "x", "project", confidence=1.5), "confidence",
     "must be between 0 and 1"),
    ("memory-project-traversal", lambda s: add_memory(s, "x", "project", project="../etc"), "project",
     "'../etc' is not a valid name"),
    ("memory-project-spaces", lambda s: add_memory(s, "x", "project", project="Optics Team"), "project",
     "is not a valid name"),
    ("memory-text-oversize", lambda s: add_memory(s, "a" * 8001, "project"), "text",
     "is too long (8001 characters; at most 8000)"),
    ("memory-text-empty", lambda s: add_memory(s, "   ", "project"), "text", "must not be empty"),
    ("memory-text-nul", lambda s: add_memory(s, "a\x00b", "project"), "text", "must not contain NUL"),
    ("memory-text-type", lambda s: add_memory(s, 42, "project"), "text", "must be text"),
    ("memory-tags-item", lambda s: add_memory(s, "x", "project", tags=[""]), "tags[0]", "non-empty text"),
    ("memory-tags-many", lambda s: add_memory(s, "x", "project", tags=[f"t{i}" for i in range(21)]), "tags",
     "is too long (21 items; at most 20)"),
    ("memory-source-oversize", lambda s: add_memory(s, "x", "project", source="s" * 201), "source",
     "at most 200"),
    ("memory-author", lambda s: add_memory(s, "x", "project", author="nobody"), "author",
     "must look like 'Name <email>'"),
    ("state-category", lambda s: propose_state(s, "optics", "lead", "Alice", category="gossip"), "category",
     "allowed: summary, decision, constraint, focus, status, fact, contact"),
    ("state-key-unsafe", lambda s: propose_state(s, "optics", "../lead", "Alice"), "key", "is not a valid name"),
    ("state-project-unsafe", lambda s: propose_state(s, "../../etc", "lead", "Alice"), "project",
     "is not a valid name"),
    ("state-value-oversize", lambda s: propose_state(s, "optics", "lead", "v" * 1001), "value",
     "is too long (1001 characters; at most 1000)"),
    ("state-value-empty", lambda s: propose_state(s, "optics", "lead", "  "), "value", "must not be empty"),
    ("state-value-type", lambda s: propose_state(s, "optics", "lead", 3), "value", "must be text, got int"),
    ("store-path-traversal", lambda s: s.commit({"../outside": b"x"}, "m"), "path", "is not a safe path"),
    ("store-path-absolute", lambda s: s.commit({"/etc/passwd": b"x"}, "m"), "path", "is not a safe path"),
    ("store-path-dotgit", lambda s: s.commit({"a/.git/config": b"x"}, "m"), "path", "is not a safe path"),
    ("store-path-empty-part", lambda s: s.commit({"a//b": b"x"}, "m"), "path", "is not a safe path"),
    ("store-message", lambda s: s.commit({"a": b"x"}, "  "), "message", "needs a message"),
    ("read-memory-traversal", lambda s: get_memory(s, "../../HEAD"), "memory_id", "is not a valid name"),
    ("review-id-traversal", lambda s: get_review(s, "../heads/main"), "review_id", "is not a review id"),
    ("propose-bad-memory", lambda s: propose(s, {"memories/m1.md": MEM_OK.replace("project", "rumour", 1).encode()},
                                             "t"), "memories/m1.md: type", "allowed: identity"),
    ("propose-config-delete", lambda s: propose(s, {"atocore.yaml": None}, "t"), "atocore.yaml", "cannot be deleted"),
    ("propose-kind", lambda s: propose(s, {"notes/a.md": b"x"}, "t", kind="whim"), "kind", "allowed: change"),
]


@pytest.mark.parametrize("call, field, text", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_write_api_rejects_bad_input_and_writes_nothing(store, call, field, text):
    before = snapshot(store)
    with pytest.raises(ValidationError) as err:
        call(store)
    assert err.value.field == field
    assert text in str(err.value)
    assert str(err.value).startswith(field)
    assert snapshot(store) == before


def _mem(**over) -> bytes:
    lines = {"id": "m1", "type": "project", **over}
    return ("---\n" + "".join(f"{k}: {v}\n" for k, v in lines.items() if v is not None) + "---\nBody.\n").encode()


_PROJECT = "id: optics\nname: Optics bench\n"
_STATE = "project: optics\nentries:\n- category: fact\n  key: lead\n  value: Alice\n"

# (case id, store path, raw bytes, field, message text)
FILE_CASES = [
    ("memory-unknown-field", "memories/m1.md", _mem(colour="red"), "colour",
     "unknown field (allowed: confidence, created, id, project"),
    ("memory-missing-type", "memories/m1.md", _mem(type=None), "type", "is required"),
    ("memory-wrong-type", "memories/m1.md", _mem(confidence='"high"'), "confidence", "must be number, got str"),
    ("memory-list-type", "memories/m1.md", _mem(tags="lens"), "tags", "must be list, got str"),
    ("memory-bad-timestamp", "memories/m1.md", _mem(created='"yesterday"'), "created", "is not an ISO-8601"),
    ("memory-non-utf8", "memories/m1.md", b"---\nid: m1\ntype: project\n---\n\xff\xfe broken", "memories/m1.md",
     "is not valid UTF-8 (bad byte at offset"),
    ("memory-oversize", "memories/m1.md", _mem().replace(b"Body.", b"b" * 8001), "text", "at most 8000"),
    ("memory-unsafe-id", "memories/m1.md", _mem(id='"../../etc/passwd"'), "id", "is not a valid name"),
    ("memory-id-mismatch", "memories/m1.md", _mem(id="m2"), "memories/m1.md: id", "does not match the file name"),
    ("memory-no-front-matter", "memories/m1.md", b"just text\n", "memories/m1.md", "YAML front matter"),
    ("memory-bad-yaml", "memories/m1.md", b"---\nid: [unclosed\n---\nx\n", "memories/m1.md", "is not valid YAML"),
    ("state-unknown-field", "state/optics.yaml", (_STATE + "  mood: good\n").encode(), "entries[0].mood",
     "unknown field (allowed: category, key, source, updated, value)"),
    ("state-missing-value", "state/optics.yaml", _STATE.replace("  value: Alice\n", "").encode(),
     "entries[0].value", "is required"),
    ("state-wrong-type", "state/optics.yaml", b"project: optics\nentries: lots\n", "entries", "must be list"),
    ("state-duplicate-key", "state/optics.yaml", (_STATE + "- category: fact\n  key: lead\n  value: Bob\n").encode(),
     "entries", "key 'lead' appears more than once"),
    ("state-oversize", "state/optics.yaml", _STATE.replace("Alice", "a" * 1001).encode(), "entries[0].value",
     "at most 1000"),
    ("state-non-utf8", "state/optics.yaml", b"project: optics\n# \xc3\x28\n", "state/optics.yaml", "not valid UTF-8"),
    ("state-name-mismatch", "state/optics.yaml", _STATE.replace("project: optics", "project: robot").encode(),
     "state/optics.yaml: project", "does not match the file name"),
    ("project-unknown-field", "projects/optics.yaml", (_PROJECT + "owner: me\n").encode(), "owner",
     "unknown field (allowed: aliases, created, description, id, name, sources, status)"),
    ("project-missing-name", "projects/optics.yaml", b"id: optics\n", "name", "is required"),
    ("project-status", "projects/optics.yaml", (_PROJECT + "status: maybe\n").encode(), "status",
     "allowed: proposed, approved"),
    ("project-glob-traversal", "projects/optics.yaml",
     (_PROJECT + "sources:\n- path: /data/optics\n  include: ['../**']\n").encode(), "sources[0].include[0]",
     "must be a relative glob without '..'"),
    ("project-source-unknown", "projects/optics.yaml", (_PROJECT + "sources:\n- path: x\n  depth: 3\n").encode(),
     "sources[0].depth", "unknown field"),
    ("project-aliases-type", "projects/optics.yaml", (_PROJECT + "aliases: optics\n").encode(), "aliases",
     "must be list"),
    ("project-description-oversize", "projects/optics.yaml", (_PROJECT + f"description: {'d' * 2001}\n").encode(),
     "description", "at most 2000"),
    ("project-unsafe-id", "projects/optics.yaml", b"id: ../optics\nname: x\n", "id", "is not a valid name"),
    ("interaction-bad-json", "interactions/2026/01/s.jsonl", b'{"id": "1"\n', "interactions/2026/01/s.jsonl:1",
     "is not valid JSON"),
    ("interaction-missing", "interactions/2026/01/s.jsonl",
     b'{"id": "1", "source": "claude-code", "session_id": "s", "prompt": "p"}\n',
     "interactions/2026/01/s.jsonl:1: response", "is required"),
    ("interaction-non-utf8", "interactions/2026/01/s.jsonl", b"\x80\n", "interactions/2026/01/s.jsonl",
     "not valid UTF-8"),
]


@pytest.mark.parametrize("path, raw, field, text", [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_file_validation(path, raw, field, text):
    with pytest.raises(ValidationError) as err:
        validate_path(path, raw)
    assert err.value.field == field, str(err.value)
    assert text in str(err.value)


@pytest.mark.parametrize("path, raw, field, text", [c[1:] for c in FILE_CASES if not c[1].startswith("interactions")],
                         ids=[c[0] for c in FILE_CASES if not c[1].startswith("interactions")])
def test_proposal_with_a_bad_file_is_refused_and_nothing_is_written(store, path, raw, field, text):
    before = snapshot(store)
    with pytest.raises(ValidationError) as err:
        propose(store, {path: raw}, "A proposal")
    assert text in str(err.value)
    assert str(err.value).startswith(path if not field.startswith(path) else field)
    assert snapshot(store) == before


INTERACTION = {"id": "t1", "source": "claude-code", "session_id": "s1", "prompt": "hi", "response": "hello"}

INTERACTION_CASES = [
    ("unknown-field", {"mood": "good"}, "mood", "unknown field"),
    ("source-unsafe", {"source": "../x"}, "source", "is not a valid name"),
    ("prompt-oversize", {"prompt": "p" * 200_001}, "prompt", "at most 200000"),
    ("prompt-type", {"prompt": 5}, "prompt", "must be text, got int"),
    ("meta-type", {"meta": []}, "meta", "must be mapping, got list"),
    ("both-empty", {"prompt": " ", "response": ""}, "prompt", "nothing to record"),
    ("created", {"created": "soon"}, "created", "is not an ISO-8601 timestamp"),
]


@pytest.mark.parametrize("over, field, text", [c[1:] for c in INTERACTION_CASES], ids=[c[0] for c in INTERACTION_CASES])
def test_interaction_validation(over, field, text):
    with pytest.raises(ValidationError) as err:
        interaction_from_dict({**INTERACTION, **over})
    assert err.value.field == field
    assert text in str(err.value)


def test_missing_interaction_field_names_it():
    data = dict(INTERACTION)
    del data["session_id"]
    with pytest.raises(ValidationError, match="session_id: is required"):
        interaction_from_dict(data)


def test_good_records_pass():
    assert validate_path("memories/m1.md", MEM_OK.encode()).type == "project"
    assert validate_path("state/optics.yaml", _STATE.encode()).get("lead").value == "Alice"
    assert validate_path("projects/optics.yaml", _PROJECT.encode()).status == "proposed"
    assert len(parse_interactions(b'{"id": "1", "source": "cc", "session_id": "s", "prompt": "p", "response": "r"}\n')) == 1
    assert validate_path("sources/optics/notes.md", b"\xff anything") is None


@pytest.mark.parametrize("bad", ["..", "../x", "a/b", ".hidden", "", "A" * 27, "x" * 65, "a\x00b", "con/../x"])
def test_ids_cannot_escape_their_folder(bad):
    with pytest.raises(ValidationError):
        memory_path(bad)
    with pytest.raises(ValidationError):
        state_path(bad)



# `$` also matches before a final newline: every identifier check must refuse "x\n" (a file name, a ref
# name or a YAML value that is not what it looked like).
@pytest.mark.parametrize("check, value", [(check_slug, "optics\n"), (check_record_id, "01JB8X5Q1M2V3W4X5Y6Z7A8B9C\n"),
                                          (check_capture_id, "turn-1\n"), (check_review_id, "state-1\n")],
                         ids=["slug", "record id", "capture id", "review id"])
def test_identifiers_with_a_trailing_newline_are_refused(check, value):
    check(value.rstrip("\n"))  # the same value without the newline is fine
    with pytest.raises(ValidationError):
        check(value)


def test_a_project_id_with_a_trailing_newline_writes_nothing(store, tmp_path):
    before = snapshot(store)
    with pytest.raises(ValidationError) as exc:
        register_project(store, "optics\n", [{"path": str(tmp_path)}], approve=True)
    assert "id" in str(exc.value)
    assert snapshot(store) == before
