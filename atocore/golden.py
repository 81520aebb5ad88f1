"""``atocore eval``: a person's own golden questions, run through the live search and context path.

The questions are a record in the store (``eval/golden.yaml`` by default, validated by
``records.parse_golden`` like every other record, so a bad file cannot land through review).
A run is pinned to the store commit it read and the model of the index it searched; its result
is kept under the index folder (``<index>/eval/<commit>.<model>.<golden blob>.json``, derived
data like the index itself) so ``--compare REV`` can show what changed since an earlier commit:
the result kept for REV when there is one (the code and model of that time), else REV is
evaluated now in a throw-away store that borrows this store's objects (same code, same model).
See docs/retrieval.md, "Evaluating your own questions".
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import evaluation as ev
from .errors import NotFound, ValidationError
from .records import GoldenQuestion, parse_golden

DEFAULT_FILE = "eval/golden.yaml"
RESULTS_DIR = "eval"


@dataclass
class QuestionResult:
    index: int
    id: str | None
    question: str
    project: str | None
    expected: list[str]
    found: list[str]  # the top-10 documents of /search
    ndcg: float
    recall: float
    mrr: float
    context_project: str | None
    in_supplement: float  # share of the expected documents the context supplement carries

    def key(self) -> str:
        return self.id or f"#{self.index + 1}"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "question": self.question, "project": self.project,
                "expected": self.expected, "found": self.found, "ndcg@10": round(self.ndcg, 4),
                "recall@10": round(self.recall, 4), "mrr@10": round(self.mrr, 4),
                "context_project": self.context_project, "in_supplement": round(self.in_supplement, 4)}


@dataclass
class EvalRun:
    file: str
    golden_blob: str
    commit: str
    index_commit: str | None
    model: str | None  # model id of the index searched (None: BM25 only, degraded)
    questions: list[QuestionResult] = field(default_factory=list)
    source: str = "now"  # "now" | "kept" (read back from an earlier run)
    version: str = ""

    def by_project(self) -> dict[str, dict[str, Any]]:
        groups: dict[str, list[QuestionResult]] = {}
        for q in self.questions:
            groups.setdefault(q.project or "(any)", []).append(q)
        groups["all"] = list(self.questions)
        out = {}
        for name, qs in groups.items():
            n = len(qs)
            with_project = [q for q in qs if q.project]
            out[name] = {
                "questions": n,
                "ndcg@10": round(sum(q.ndcg for q in qs) / n, 4),
                "recall@10": round(sum(q.recall for q in qs) / n, 4),
                "mrr@10": round(sum(q.mrr for q in qs) / n, 4),
                "context_project_right": (round(sum(q.context_project == q.project for q in with_project)
                                                / len(with_project), 4) if with_project else None),
                "in_supplement": round(sum(q.in_supplement for q in qs) / n, 4),
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "golden_blob": self.golden_blob, "commit": self.commit,
                "index_commit": self.index_commit, "model": self.model, "version": self.version,
                "source": self.source, "projects": self.by_project(),
                "questions": [q.to_dict() for q in self.questions]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EvalRun":
        qs = [QuestionResult(q["index"], q.get("id"), q["question"], q.get("project"), q["expected"], q["found"],
                             q["ndcg@10"], q["recall@10"], q["mrr@10"], q.get("context_project"),
                             q.get("in_supplement", 0.0)) for q in d["questions"]]
        return cls(d["file"], d["golden_blob"], d["commit"], d.get("index_commit"), d.get("model"), qs,
                   "kept", d.get("version", ""))


def load_golden(store, path: str = DEFAULT_FILE, rev: str = "main") -> tuple[list[GoldenQuestion], str]:
    """The questions of ``path`` at ``rev`` and the file's blob id; clear errors when missing or invalid."""
    blob = store.blob_id(path, rev)
    if blob is None:
        raise NotFound(f"{path} is not in the store at {rev}; add a golden-questions file there "
                       f"(see docs/retrieval.md, 'Evaluating your own questions')")
    try:
        return parse_golden(store.read_blob(blob), path), blob
    except ValidationError as exc:
        raise ValidationError(f"{path}: {exc.field}", exc.message, exc.allowed) from None


def _doc(project: str | None, source: str) -> str:
    """A document's id: memories and other project-less records by their source alone."""
    return f"{project}/{source}" if project else source


def expected_docs(q: GoldenQuestion) -> list[str]:
    docs = [s if (q.project is None or s.startswith("memories/")) else f"{q.project}/{s}" for s in q.sources]
    return docs + [f"{q.project}/state/{q.project}.yaml#{k}" for k in q.state]


def _hit_doc(project: str | None, source: str, q: GoldenQuestion) -> str:
    # memories are named by their own path; a question without a project is judged on the
    # source path alone, wherever it was found
    if source.startswith("memories/") or (q.project is None and not source.startswith("state/")):
        return source
    return _doc(project, source)


def run_questions(store, retriever, questions: list[GoldenQuestion], path: str, blob: str) -> EvalRun:
    """Every question through ``search_payload`` (POST /search) and ``build_context`` (POST /context/build)."""
    from . import __version__
    from .context.build import build_context
    from .api import search_payload

    retriever.update()
    st = retriever.status()
    run = EvalRun(path, blob, store.head() or "", st.get("commit"), st.get("index_model") if not st.get("degraded")
                  else None, version=__version__)
    for i, q in enumerate(questions):
        want = expected_docs(q)
        grades = {d: 1 for d in want}
        hits = search_payload(retriever, q.question, k=ev.K)["hits"]
        found = ev.documents(_hit_doc(h["project"], h["source"], q) for h in hits)
        s = ev.score(found, grades) or ev.Scores(0.0, 0.0, 0.0)
        b = build_context(store, retriever, q.question)
        carried = {_hit_doc(it.project, it.source, q) for it in b.items}
        run.questions.append(QuestionResult(i, q.id, q.question, q.project, want, found[: ev.K], s.ndcg, s.recall,
                                            s.mrr, b.project, sum(d in carried for d in want) / len(want)))
    return run


# --------------------------------------------------------------------------- kept results


def _model_key(model: str | None) -> str:
    return hashlib.sha1((model or "none").encode()).hexdigest()[:12]


def results_dir(store) -> Path:
    return Path(store.index_dir) / RESULTS_DIR


def keep(store, run: EvalRun) -> Path:
    d = results_dir(store)
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{run.commit}.{_model_key(run.model)}.{run.golden_blob[:12]}.json"
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(run.to_dict(), indent=1))
    os.replace(tmp, p)
    return p


def kept(store, commit: str, golden_blob: str, model: str | None) -> EvalRun | None:
    """The kept run of ``commit`` for these questions: with ``model`` if there is one, else the newest."""
    d = results_dir(store)
    exact = d / f"{commit}.{_model_key(model)}.{golden_blob[:12]}.json"
    cands = [exact] if exact.is_file() else sorted(d.glob(f"{commit}.*.{golden_blob[:12]}.json"),
                                                   key=lambda p: p.stat().st_mtime, reverse=True)
    for p in cands:
        try:
            return EvalRun.from_dict(json.loads(p.read_text()))
        except (OSError, ValueError, KeyError):
            continue  # a damaged result is derived data: evaluate again
    return None


# --------------------------------------------------------------------------- evaluating an earlier commit


def store_at(store, commit: str, folder: Path):
    """A throw-away store in ``folder`` whose main is ``commit``, borrowing ``store``'s objects
    (git alternates): nothing is copied, and the real store is not touched."""
    from dulwich.repo import Repo

    from .store import Store

    Repo.init_bare(str(folder), mkdir=False).close()
    info = folder / "objects" / "info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "alternates").write_text(str(Path(store.objects_dir).resolve()) + "\n")
    (folder / "refs" / "heads").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "heads" / "main").write_text(commit + "\n")
    (folder / "HEAD").write_text("ref: refs/heads/main\n")
    return Store(folder)


def evaluate_at(store, rev: str, questions: list[GoldenQuestion], path: str, blob: str) -> EvalRun:
    """Evaluate the questions against the store as it was at ``rev`` (index built in a temp folder)."""
    from .retrieval.retriever import Retriever

    commit = store.resolve(rev)
    folder = Path(tempfile.mkdtemp(prefix="atocore-eval-"))
    try:
        old = store_at(store, commit, folder)
        run = run_questions(old, Retriever(old, progress=False), questions, path, blob)
        run.commit = commit
        return run
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def compare(before: EvalRun, after: EvalRun) -> dict[str, Any]:
    """Per project and per question: what changed from ``before`` to ``after``."""
    b, a = before.by_project(), after.by_project()
    projects = {}
    for name in sorted(set(a) | set(b), key=lambda n: (n == "all", n)):
        pa, pb = a.get(name), b.get(name)
        projects[name] = {m: {"before": pb[m] if pb else None, "after": pa[m] if pa else None}
                          for m in ("ndcg@10", "recall@10", "in_supplement")}
    old = {q.key(): q for q in before.questions}
    changed = []
    for q in after.questions:
        o = old.get(q.key())
        if o is not None and (abs(o.ndcg - q.ndcg) > 1e-9 or abs(o.recall - q.recall) > 1e-9):
            changed.append({"question": q.key(), "text": q.question, "ndcg_before": round(o.ndcg, 4),
                            "ndcg_after": round(q.ndcg, 4), "found_before": o.found[:3], "found_after": q.found[:3]})
    changed.sort(key=lambda c: c["ndcg_after"] - c["ndcg_before"])
    return {"before": {"commit": before.commit, "model": before.model, "source": before.source},
            "after": {"commit": after.commit, "model": after.model, "source": after.source},
            "projects": projects, "changed": changed}


__all__ = ["DEFAULT_FILE", "EvalRun", "QuestionResult", "compare", "evaluate_at", "expected_docs", "keep", "kept",
           "load_golden", "run_questions", "store_at"]
