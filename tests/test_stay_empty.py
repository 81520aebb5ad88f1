"""Knowing when to stay empty, third round: the stay-empty line calibrated on the store's own text
(atocore/retrieval/calibration.py), and the relevance filter no longer undoing the decision.

Real store, real tantivy / usearch indexes, the real model2vec model. The calibrated store is
made of the standard library's docstrings (one markdown file per module, a section per function):
enough text (>= 200 chunks in >= 20 files) to calibrate on.
"""

from __future__ import annotations

import importlib
import inspect
import json

import pytest

from atocore.context.build import NO_MATCH_BELOW, NO_MATCH_KNOWN_WEIGHT, NO_MATCH_NAMED_BELOW, _relevant, build_context
from atocore.projects.refresh import refresh
from atocore.projects.registry import register_project
from atocore.retrieval import Retriever, calibration, open_retriever
from tests.fixtures_server import two_projects, write_tree  # noqa: F401

MODULES = ["json", "textwrap", "string", "collections", "itertools", "functools", "shutil", "pathlib", "random",
           "statistics", "fractions", "datetime", "calendar", "heapq", "bisect", "csv", "configparser", "argparse",
           "logging", "subprocess", "threading", "queue", "zipfile", "tarfile", "gzip", "base64", "difflib",
           "pprint", "inspect", "tokenize", "dataclasses", "enum", "contextlib", "copy", "pickle",
           "tempfile", "glob", "fnmatch", "shlex", "traceback", "warnings", "weakref", "operator", "sched"]


def _module_doc(name: str) -> str:
    mod = importlib.import_module(name)
    out = [f"# {name}\n\n{inspect.getdoc(mod) or ''}\n"]
    for attr, obj in sorted(vars(mod).items()):
        if attr.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if getattr(obj, "__module__", None) != name:
            continue
        doc = inspect.getdoc(obj)
        if doc and len(doc) > 80:
            out.append(f"## {attr}\n\n{doc}\n")
    return "\n".join(out)


@pytest.fixture
def docstore(store, tmp_path):
    """A store of the standard library's docstrings, indexed (a few seconds)."""
    src = write_tree(tmp_path / "stdlib", {f"{name}.md": _module_doc(name) for name in MODULES})
    register_project(store, "stdlib", [src], name="Python standard library", approve=True)
    refresh(store, None)
    r = open_retriever(store)
    r.update()
    return store, r, tmp_path


def test_the_score_weights_agree():
    assert calibration.KNOWN_WEIGHT == NO_MATCH_KNOWN_WEIGHT


def test_the_line_is_calibrated_on_the_store_and_kept_beside_the_index(docstore, monkeypatch):
    store, r, _ = docstore
    rec = r.calibrate(wait=True)
    assert rec["chunks"] >= calibration.MIN_CHUNKS and rec["samples"] >= calibration.SAMPLES // 4
    assert isinstance(rec["line"], float) and 0.5 < rec["line"] < 2.5
    on_disk = json.loads((r._gen.folder / calibration.FILE_NAME).read_text())
    assert on_disk == rec
    # another process (a fresh retriever, an emptied memory cache) reads it, computes nothing
    monkeypatch.setattr(calibration, "CALIBRATIONS", calibration.Calibrations())
    monkeypatch.setattr("atocore.retrieval.retriever.CALIBRATIONS", calibration.CALIBRATIONS)
    monkeypatch.setattr(calibration, "compute_line", lambda gen: pytest.fail("recomputed"))
    assert Retriever(store).calibrate(wait=False) == rec


def test_the_decision_uses_the_stores_own_line_and_says_so(docstore):
    store, r, _ = docstore
    line = r.calibrate(wait=True)["line"]
    prompt = "What is a good sourdough starter hydration for a rye loaf?"
    assert r.match_evidence(prompt, r.search(prompt))["line"] == line
    b = build_context(store, r, prompt)
    assert b.items == [] and b.project is None
    note = next(n for n in b.notes if n.startswith("no match in the store"))
    assert f"this store's line {line:.2f}, calibrated on its own text" in note
    # while an answerable prompt is answered from the store
    b = build_context(store, r, "shuffle the items of a list into a random order in place")
    assert any(i.source == "random.md" for i in b.items), [i.source for i in b.items]
    assert not any(n.startswith("no match") for n in b.notes)


def test_a_grown_store_is_calibrated_again(docstore):
    store, r, tmp_path = docstore
    first = r.calibrate(wait=True)
    more = write_tree(tmp_path / "more", {f"{name}.md": _module_doc(name)
                                          for name in ["email.utils", "urllib.parse", "html.parser", "getopt",
                                                       "optparse", "locale", "gettext", "codecs", "uuid", "hmac"]})
    register_project(store, "more", [more], name="More of the library", approve=True)
    refresh(store, None)
    r.update()
    again = r.calibrate(wait=True)
    assert again["chunks"] > first["chunks"] * (1 + calibration.STALE)
    assert json.loads((r._gen.folder / calibration.FILE_NAME).read_text())["chunks"] == again["chunks"]


def test_a_store_of_copies_keeps_the_fixed_line(store, tmp_path):
    # two versions of the same documents: every passage is also in another file, so leaving its
    # file out says nothing about text the store lacks (it would put the line at 2.5 and empty
    # nearly every prompt); copied passages are no samples, and here that leaves too few
    src = write_tree(tmp_path / "docs", {f"{v}/{name}.md": _module_doc(name) for name in MODULES for v in ("v1", "v2")})
    register_project(store, "docs", [src], name="Two versions of the docs", approve=True)
    refresh(store, None)
    r = open_retriever(store)
    r.update()
    rec = r.calibrate(wait=True)
    assert rec["chunks"] >= calibration.MIN_CHUNKS and rec["line"] is None, rec


def test_a_line_above_the_names_line_is_not_used(docstore, monkeypatch):
    store, r, _ = docstore
    prompt = "What is a good sourdough starter hydration for a rye loaf?"
    ev = r.match_evidence(prompt, r.search(prompt))
    monkeypatch.setattr(r, "match_evidence", lambda q, hits: {**ev, "line": 2.5})
    note = next(n for n in build_context(store, r, prompt).notes if n.startswith("no match in the store"))
    assert f"< {NO_MATCH_NAMED_BELOW:.2f}" in note


def test_a_small_store_keeps_the_fixed_line(two_projects):
    r = open_retriever(two_projects)
    rec = r.calibrate(wait=True)
    assert rec["line"] is None and "too small" in rec["why"]
    prompt = "How many hours should I bake a sourdough bread?"
    assert r.match_evidence(prompt, r.search(prompt))["line"] is None
    b = build_context(two_projects, r, prompt)
    assert b.items == []
    note = next(n for n in b.notes if n.startswith("no match in the store"))
    assert f"the fixed line {NO_MATCH_BELOW:.2f}" in note


# the decision weighed the hits and found a match; the relevance filter used to empty the
# supplement anyway when no hit shared two of a long prompt's words (its words in other forms:
# "navigating", "rovers", "grids" against "navigation", "rover", "grid")
MATCHED_LONG = "navigating: planning a path over the occupancy grids for rovers"


def test_a_matched_prompt_is_not_emptied_by_the_relevance_filter(two_projects):
    r = open_retriever(two_projects)
    hits = [h for h in r.search(MATCHED_LONG, k=12) if h.kind != "state"]
    assert _relevant(hits, MATCHED_LONG)[0] == []  # the old rule alone: nothing shares two words
    b = build_context(two_projects, r, MATCHED_LONG)
    assert not any(n.startswith("no match") for n in b.notes)
    assert any(i.section == "chunk" and i.source == "navigation.rst" for i in b.items), b.to_dict()["items"]


def test_vector_only_hits_are_still_dropped_when_no_hit_shares_a_word(two_projects):
    r = open_retriever(two_projects)
    prompt = "Which sourdough starter hydration suits a rye loaf best?"
    hits = [h for h in r.search(prompt, k=12) if h.kind != "state"]
    assert hits  # the vector leg always answers something
    assert _relevant(hits, prompt, matches=True)[0] == []


def test_a_started_service_calibrates_in_a_quiet_moment_without_a_prompt(docstore):
    """The service makes the line after its start (Service.after_start), so the first prompts
    neither wait for it nor compete with it for the interpreter."""
    import time

    from tests.fixtures_server import serve_store

    store, r, _ = docstore
    on_disk = r._gen.folder / calibration.FILE_NAME
    assert not on_disk.exists()
    with serve_store(store) as s, s.client() as c:
        assert c.get("/health").status_code == 200  # no /context/build, no search
        deadline = time.monotonic() + 60
        while not on_disk.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert on_disk.exists(), "the service did not calibrate after its start"
    assert json.loads(on_disk.read_text())["line"] is not None
