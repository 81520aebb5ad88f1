"""The third-party retrieval quality suite: one command, one table, a JSON file for comparing runs.

    .venv/bin/pip install -e '.[bench]'                      # bm25s + PyStemmer, once
    .venv/bin/python bench/quality/run.py                    # every set, the default model
    .venv/bin/python bench/quality/run.py --sets docs,nfcorpus --model ../shared/models/m2v-minilm-nomic-tok-384
    .venv/bin/python bench/quality/run.py --no-model         # degraded mode: no embedding model

Sets (README.md beside this file has their licences and provenance):

- ``docs``: the documentation of four open-source projects (Marlin, MicroPython, PlatformIO,
  OctoPrint) with questions written against them (questions/docs.yaml), ingested like a user
  would: ``register_project(..., approve=True)``, ``propose_state(..., approve=True)``, ``refresh``.
- ``nfcorpus``: the NFCorpus test split (BEIR's 323 queries and 12,334 judgements), one
  markdown file per document, registered and refreshed the same way.
- ``devset`` / ``devset2``: the two dev sets of bench/devset and bench/devset2 (built by the
  scripts next to them).

For every set, in one run: the plain ``bm25s`` library (Lucene BM25, k1 1.5, b 0.75, English
stop words, Snowball stemmer) over the same store files split at headings (<= 1,500 chars, the
file stem prepended to each chunk); AtoCore's BM25 leg, vector leg and fused default through
``Retriever.search``. Documents are ranked by their best hit; metrics come from
``atocore.evaluation`` (nDCG@10, Recall@10, MRR@10, trec_eval conventions). The docs set also
gets the "project given" variant and the context path (``build_context``, the function behind
``POST /context/build``; ``--http``: over loopback from a real ``atocore serve``): project
accuracy, leakage, empty supplements, and trusted-state nDCG@10 through ``search_payload`` (the
function behind ``POST /search``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_MODEL = ROOT.parent / "shared" / "models" / "m2v-minilm-l6-256"
SETS = ("docs", "nfcorpus", "devset", "devset2")
HITS = 30  # hits asked of AtoCore per question: enough for 10 distinct documents
BENCH_FILES = ("LICENSE*", "PROVENANCE.md")  # kept beside each docs subset, not part of it
PUBLISHED = {"nfcorpus": ("BEIR paper (Thakur et al. 2021), BM25 nDCG@10", 0.325)}


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="embedding model folder (default: %(default)s)")
    ap.add_argument("--no-model", action="store_true", help="degraded mode: run without an embedding model")
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated subset of " + ", ".join(SETS))
    ap.add_argument("--out", default=None, help="JSON results file (default: bench/quality/results/<time>.json)")
    ap.add_argument("--no-context", action="store_true", help="skip the context-path measures of the docs set")
    ap.add_argument("--http", action="store_true",
                    help="context measures over HTTP from a real 'atocore serve' subprocess (default: in process)")
    ap.add_argument("--fusion", action="append", default=[], metavar="NAME=VALUE[,NAME=VALUE]",
                    help="add a row: the default fusion with these FusionParams changed (repeatable)")
    ap.add_argument("--against", metavar="JSON", default=None,
                    help="an earlier results file: print the nDCG@10 change per row and per-question wins/losses")
    return ap.parse_args()


ARGS = _args() if __name__ == "__main__" else None
if ARGS is not None:
    # the model is chosen through the environment before atocore reads its configuration
    os.environ["ATOCORE_EMBED_MODEL"] = (str(Path(tempfile.gettempdir()) / "atocore-bench-no-model")
                                         if ARGS.no_model else str(Path(ARGS.model).resolve()))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from atocore import evaluation as ev  # noqa: E402
from atocore.retrieval import open_retriever  # noqa: E402
from atocore.retrieval.fusion import DEFAULT  # noqa: E402


# --------------------------------------------------------------------------- the sets


@dataclass
class Question:
    id: str
    kind: str
    text: str
    project: str | None
    grades: dict[str, int]  # document id ("project/source") -> grade


@dataclass
class BenchSet:
    name: str
    store: object
    retriever: object
    questions: list[Question]
    index_seconds: float
    context: bool = False  # has projects, aliases, state and off-topic prompts
    empties: bool = False  # off-topic prompts only (the dev sets): measure empty supplements
    notes: list[str] = field(default_factory=list)


def _ingest(store, projects: dict[str, dict]) -> None:
    """Register every project (approved), put its trusted state in, stage its files."""
    from atocore.projects.refresh import refresh
    from atocore.projects.registry import register_project
    from atocore.state import propose_state

    for pid, p in projects.items():
        root = {"path": str(p["source"]), "exclude": list(BENCH_FILES)}
        register_project(store, pid, [root], name=p.get("name"), aliases=p.get("aliases", ()),
                         description=p.get("description", ""), approve=True)
        for key, value in (p.get("state") or {}).items():
            propose_state(store, pid, key, value, category="fact", source="bench", approve=True)
    refresh(store)


def _indexed(name: str, store, questions: list[Question], context: bool = False, empties: bool = False) -> BenchSet:
    r = open_retriever(store)
    t0 = time.perf_counter()
    info = r.update()
    seconds = time.perf_counter() - t0
    # the store's own stay-empty line (computed in the background when a service first needs it):
    # computed here, before any question, so every prompt meets the same line
    cal = r.calibrate(wait=True) or {}
    line = f"stay-empty line {cal['line']:.2f}" if cal.get("line") else "stay-empty line fixed"
    return BenchSet(name, store, r, questions, seconds, context, empties,
                    [f"{info.get('chunks', '?')} chunks", line])


def _offtopic_dev(set_name: str) -> list[Question]:
    """The hand-written off-topic prompts for a dev-set corpus (questions/offtopic_dev.yaml)."""
    import yaml

    spec = yaml.safe_load((HERE / "questions" / "offtopic_dev.yaml").read_text())
    return [Question(f"{set_name}-off-{n}", "offtopic", text, None, {}) for n, text in enumerate(spec[set_name])]


def build_docs(tmp: Path) -> BenchSet:
    import yaml

    from atocore.store import init_store

    spec = yaml.safe_load((HERE / "questions" / "docs.yaml").read_text())
    store, _ = init_store(tmp / "docs-store")
    projects = {pid: {**p, "source": HERE / "data" / "docs" / pid} for pid, p in spec["projects"].items()}
    _ingest(store, projects)
    qs = [Question(q["id"], q["kind"], q["text"], q["project"],
                   {f"{q['project']}/{r}": 1 for r in q["relevant"]}) for q in spec["questions"]]
    return _indexed("docs", store, qs, context=True)


def build_nfcorpus(tmp: Path) -> BenchSet:
    from atocore.store import init_store

    data = HERE / "data" / "nfcorpus"
    src = tmp / "nfcorpus-src"
    src.mkdir()
    for line in (data / "corpus.tsv").read_text().splitlines():
        doc_id, text = line.split("\t", 1)
        (src / f"{doc_id}.md").write_text(f"# {doc_id}\n\n{text}\n")
    grades: dict[str, dict[str, int]] = {}
    for line in (data / "qrels-test.tsv").read_text().splitlines():
        qid, _, doc_id, g = line.split("\t")
        grades.setdefault(qid, {})[f"nfcorpus/{doc_id}.md"] = int(g)
    qs = []
    for line in (data / "queries-test.tsv").read_text().splitlines():
        qid, text = line.split("\t", 1)
        if qid in grades:  # BEIR keeps the 323 queries that have judgements
            qs.append(Question(qid, "beir", text, "nfcorpus", grades[qid]))
    store, _ = init_store(tmp / "nfcorpus-store")
    _ingest(store, {"nfcorpus": {"source": src, "name": "NFCorpus", "description": "medical abstracts (BEIR NFCorpus)"}})
    return _indexed("nfcorpus", store, qs)


def build_devset(tmp: Path) -> BenchSet:
    import eval_generalisation as eg
    import eval_retrieval as er

    qs = [Question(f"d1-{n}", q.type, q.text, None, dict(q.grades)) for n, q in enumerate(eg.devset1_doc_queries())]
    return _indexed("devset", er.build_store(tmp), qs + _offtopic_dev("devset"), empties=True)


def build_devset2(tmp: Path) -> BenchSet:
    import eval_generalisation as eg

    qs = [Question(f"d2-{n}", q.type, q.text, None, dict(q.grades))
          for n, q in enumerate(eg.load_devset2(eg.pyref_topics()))]
    return _indexed("devset2", eg.build_store2(tmp), qs + _offtopic_dev("devset2"), empties=True)


BUILDERS: dict[str, Callable[[Path], BenchSet]] = {"docs": build_docs, "nfcorpus": build_nfcorpus,
                                                   "devset": build_devset, "devset2": build_devset2}


# --------------------------------------------------------------------------- the plain library baseline

_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+<>_:.])\1{2,}\s*$")
_MD_HEADING = re.compile(r"^ {0,3}#{1,6}\s")
MAX_CHUNK = 1500


def split_sections(text: str) -> list[str]:
    """Split at markdown ATX headings and reStructuredText section titles (title + underline)."""
    lines = text.splitlines()
    starts = [0]
    fence = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        if fence:
            continue
        if _MD_HEADING.match(line) and i:
            starts.append(i)
        elif (i and _RST_UNDERLINE.match(line) and lines[i - 1].strip()
              and len(line.rstrip()) >= len(lines[i - 1].rstrip()) and not _RST_UNDERLINE.match(lines[i - 1])):
            start = i - 1
            if start >= 1 and _RST_UNDERLINE.match(lines[start - 1]):  # overlined title
                start -= 1
            if start:
                starts.append(start)
    starts = sorted(set(starts))
    return ["\n".join(lines[a:b]) for a, b in zip(starts, starts[1:] + [len(lines)])]


def pack(section: str, limit: int = MAX_CHUNK) -> list[str]:
    """Pieces of at most ``limit`` characters, cut between paragraphs where possible."""
    if len(section) <= limit:
        return [section] if section.strip() else []
    out, cur = [], ""
    for para in re.split(r"\n\s*\n", section):
        while len(para) > limit:
            if cur:
                out.append(cur)
                cur = ""
            out.append(para[:limit])
            para = para[limit:]
        if cur and len(cur) + 2 + len(para) > limit:
            out.append(cur)
            cur = para
        else:
            cur = f"{cur}\n\n{para}" if cur else para
    if cur.strip():
        out.append(cur)
    return out


class Baseline:
    """``bm25s`` over the set's store files (and trusted-state entries), chunked as above."""

    def __init__(self, store):
        import bm25s
        import Stemmer

        from atocore.state import get_state, list_state_projects

        self.bm25s, self.stemmer = bm25s, Stemmer.Stemmer("english")
        texts: list[str] = []
        self.doc_of: list[str] = []
        for path, sha in sorted(store.files("main", "sources").items()):
            doc = path.split("/", 1)[1]  # sources/<project>/<source> -> <project>/<source>
            stem = Path(path).stem
            body = store.read_blob(sha).decode("utf-8", "replace")
            for sec in split_sections(body):
                for piece in pack(sec):
                    texts.append(f"{stem}\n{piece}")
                    self.doc_of.append(doc)
        for project in list_state_projects(store):
            for e in get_state(store, project).entries:
                texts.append(f"{project} {e.category}: {e.key.replace('_', ' ')}\n{e.value}")
                self.doc_of.append(f"{project}/state/{project}.yaml#{e.key}")
        self.index = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
        self.index.index(bm25s.tokenize(texts, stopwords="en", stemmer=self.stemmer, show_progress=False),
                         show_progress=False)
        self.n = len(texts)

    def search(self, query: str, project: str | None = None, depth: int = 200) -> list[str]:
        q = self.bm25s.tokenize([query], stopwords="en", stemmer=self.stemmer, return_ids=False, show_progress=False)
        if not q[0]:
            return []
        res, scores = self.index.retrieve(q, k=min(depth, self.n), show_progress=False)
        docs = [self.doc_of[i] for i, s in zip(res[0], scores[0]) if s > 0]
        if project is not None:
            docs = [d for d in docs if d.startswith(project + "/")]
        return ev.documents(docs)


# --------------------------------------------------------------------------- running


def _doc_ids(hits) -> list[str]:
    return ev.documents(f"{h.project}/{h.source}" for h in hits)


def run_method(qs: list[Question], fn: Callable[[Question], list[str]]) -> dict:
    per, times = {}, []
    for q in qs:
        t0 = time.perf_counter()
        ranked = fn(q)
        times.append((time.perf_counter() - t0) * 1000)
        s = ev.score(ranked, q.grades)
        if s is not None:
            per[q.id] = s
    m = ev.mean(per.values())
    return {"mean": m.to_dict() if m else None, "p50_ms": round(ev.percentile(times, 50), 2) if times else None,
            "n": len(per), "per_question": {k: v.to_dict() for k, v in per.items()}}


def parse_fusion(spec: str):
    """``w_bm25=0.6,adaptive=false`` -> the default FusionParams with those fields changed."""
    from dataclasses import fields

    types = {f.name: f.type for f in fields(DEFAULT)}
    kw = {}
    for item in filter(None, (x.strip() for x in spec.split(","))):
        name, _, raw = item.partition("=")
        if name not in types:
            raise SystemExit(f"--fusion: {name!r} is not a FusionParams field; choose from {', '.join(types)}")
        cur = getattr(DEFAULT, name)
        kw[name] = (raw.lower() in ("1", "true", "yes") if isinstance(cur, bool) else type(cur)(raw)
                    if cur is not None else raw)
    return DEFAULT.with_(**kw)


def measure(bs: BenchSet, base: Baseline, variants: dict | None = None) -> dict:
    r = bs.retriever
    has_vec = r.status().get("model_id") is not None if hasattr(r, "status") else True
    answerable = [q for q in bs.questions if q.grades]
    legs: dict[str, Callable[[Question], list[str]]] = {
        "bm25s baseline": lambda q: base.search(q.text),
        "AtoCore BM25 leg": lambda q: _doc_ids(r.search(q.text, k=HITS, fusion=DEFAULT.with_(method="bm25"))),
    }
    if has_vec:
        legs["AtoCore vector leg"] = lambda q: _doc_ids(r.search(q.text, k=HITS, fusion=DEFAULT.with_(method="vector")))
    legs["AtoCore fused (default)"] = lambda q: _doc_ids(r.search(q.text, k=HITS))
    for label, params in (variants or {}).items():
        legs[f"fused {label}"] = lambda q, p=params: _doc_ids(r.search(q.text, k=HITS, fusion=p))
    out = {"rows": {name: run_method(answerable, fn) for name, fn in legs.items()}}
    if bs.context:
        given = {
            "bm25s baseline": lambda q: base.search(q.text, project=q.project),
            "AtoCore BM25 leg": lambda q: _doc_ids(r.search(q.text, project=q.project, k=HITS,
                                                            fusion=DEFAULT.with_(method="bm25"))),
        }
        if has_vec:
            given["AtoCore vector leg"] = lambda q: _doc_ids(r.search(q.text, project=q.project, k=HITS,
                                                                      fusion=DEFAULT.with_(method="vector")))
        given["AtoCore fused (default)"] = lambda q: _doc_ids(r.search(q.text, project=q.project, k=HITS))
        for label, params in (variants or {}).items():
            given[f"fused {label}"] = lambda q, p=params: _doc_ids(r.search(q.text, project=q.project, k=HITS,
                                                                            fusion=p))
        out["rows_project_given"] = {name: run_method(answerable, fn) for name, fn in given.items()}
    return out


def by_kind(bs: BenchSet, res: dict) -> dict[str, dict[str, float]]:
    kinds = sorted({q.kind for q in bs.questions if q.grades})
    out = {}
    for name, row in res["rows"].items():
        per = row["per_question"]
        out[name] = {}
        for kd in kinds:
            vals = [per[q.id]["ndcg@10"] for q in bs.questions if q.kind == kd and q.id in per]
            out[name][kd] = round(sum(vals) / len(vals), 4) if vals else None
    return out


class InProcess:
    """The functions the routes call: build_context (POST /context/build), search_payload (POST /search)."""

    def __init__(self, bs: BenchSet):
        self.bs = bs

    def build(self, prompt: str) -> dict:
        from atocore.context.build import build_context

        return build_context(self.bs.store, self.bs.retriever, prompt).to_dict()

    def search(self, query: str) -> dict:
        from atocore.api import search_payload

        return search_payload(self.bs.retriever, query, k=10)


class OverHttp:
    """A real ``atocore serve`` subprocess on a free loopback port, asked over HTTP."""

    def __init__(self, bs: BenchSet, timeout: float = 300):
        import socket

        import httpx

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "ATOCORE_STORE": str(bs.store.path)}
        self.proc = subprocess.Popen([sys.executable, "-m", "atocore", "serve", "--port", str(port)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        head, deadline = bs.store.head(), time.monotonic() + timeout
        while True:  # ready when the service's index has caught up with main
            if self.proc.poll() is not None:
                raise SystemExit(f"atocore serve exited ({self.proc.returncode}): {self.proc.stderr.read()[-2000:]}")
            try:
                if self.client.get("/health").json().get("index", {}).get("commit") == head:
                    break
            except (httpx.TransportError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.close()
                raise SystemExit(f"atocore serve was not ready within {timeout:.0f} s")
            time.sleep(0.1)

    def build(self, prompt: str) -> dict:
        r = self.client.post("/context/build", json={"prompt": prompt})
        r.raise_for_status()
        return r.json()

    def search(self, query: str) -> dict:
        r = self.client.post("/search", json={"query": query, "k": 10})
        r.raise_for_status()
        return r.json()

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def context_measures(bs: BenchSet, via) -> dict:
    """Project accuracy, leakage, empty supplements and trusted state on /search, no project given."""
    right = answer_n = judged_n = empty_answer = empty_off = off_n = leaked = items_n = 0
    times = []
    per: dict[str, dict] = {}
    for q in bs.questions:
        t0 = time.perf_counter()
        b = via.build(q.text)
        times.append((time.perf_counter() - t0) * 1000)
        items = b["items"]
        wrong = sum(1 for i in items if q.project and i["project"] not in (q.project, None))
        per[q.id] = {"kind": q.kind, "truth": q.project, "chosen": b["project"], "confidence": b["confidence"],
                     "items": [f"{i['section']}:{i['project']}/{i['source']}" for i in items],
                     "wrong_project_items": wrong}
        if q.kind == "offtopic":
            off_n += 1
            empty_off += not items
            continue
        answer_n += 1
        judged_n += q.project is not None  # the dev sets' questions name no true project
        right += q.project is not None and b["project"] == q.project
        empty_answer += not items
        items_n += len(items)
        leaked += wrong
    state_qs = [q for q in bs.questions if q.kind == "state"]
    state = {"mean": None} if not state_qs else run_method(state_qs, lambda q: ev.documents(
        f"{h['project']}/{h['source']}" for h in via.search(q.text)["hits"]))
    return {"via": "http" if isinstance(via, OverHttp) else "in-process",
            "project_accuracy": round(right / judged_n, 4) if judged_n else None,
            "leakage_items": round(leaked / max(items_n, 1), 4),
            "offtopic_empty": round(empty_off / max(off_n, 1), 4),
            "answerable_empty": round(empty_answer / max(answer_n, 1), 4),
            "offtopic_n": off_n, "answerable_n": answer_n,
            "state_search_ndcg@10": state["mean"]["ndcg@10"] if state["mean"] else None,
            "empties_only": not bs.context,
            "context_p50_ms": round(ev.percentile(times, 50), 2), "per_question": per}


# --------------------------------------------------------------------------- printing


def table(results: dict) -> str:
    lines = ["| set | method | nDCG@10 | Recall@10 | MRR@10 | p50 ms | n |", "|---|---|---|---|---|---|---|"]
    for set_name, res in results.items():
        for variant, label in (("rows", ""), ("rows_project_given", " (project given)")):
            for name, row in res.get(variant, {}).items():
                m = row["mean"] or {}
                lines.append(f"| {set_name}{label} | {name} | {m.get('ndcg@10', 0):.3f} | {m.get('recall@10', 0):.3f} "
                             f"| {m.get('mrr@10', 0):.3f} | {row['p50_ms']:.1f} | {row['n']} |")
    return "\n".join(lines)


def goals(results: dict) -> str:
    """The issue's bar, per set: fused >= baseline + 0.02 and >= AtoCore's BM25 leg; BM25 leg >= baseline."""
    lines = ["| set | fused - bm25s baseline (goal >= +0.020) | fused - BM25 leg (goal >= 0) "
             "| BM25 leg - baseline (goal >= 0) |", "|---|---|---|---|"]
    for set_name, res in results.items():
        for variant, label in (("rows", ""), ("rows_project_given", " (project given)")):
            rows = res.get(variant, {})
            nd = {k: (v["mean"] or {}).get("ndcg@10", 0.0) for k, v in rows.items()}
            if not nd:
                continue
            base, leg, fused = nd["bm25s baseline"], nd["AtoCore BM25 leg"], nd["AtoCore fused (default)"]
            mark = lambda d, goal: f"{d:+.3f} {'ok' if d >= goal - 1e-9 else 'MISSED'}"  # noqa: E731
            lines.append(f"| {set_name}{label} | {mark(fused - base, 0.02)} | {mark(fused - leg, 0.0)} "
                         f"| {mark(leg - base, 0.0)} |")
    for set_name, res in results.items():
        c = res.get("context")
        if c:
            ok = c["offtopic_empty"] >= 0.8 and c["answerable_empty"] <= 0.02
            lines.append(f"\n{set_name}: off-topic empty {c['offtopic_empty']:.1%} of {c['offtopic_n']} (goal >= 80%), "
                         f"answerable empty {c['answerable_empty']:.1%} of {c['answerable_n']} (goal <= 2%): "
                         f"{'ok' if ok else 'MISSED'}")
    cs = [r["context"] for r in results.values() if r.get("context")]
    if len(cs) > 1:
        off = sum(c["offtopic_empty"] * c["offtopic_n"] for c in cs) / max(1, sum(c["offtopic_n"] for c in cs))
        ans = sum(c["answerable_empty"] * c["answerable_n"] for c in cs) / max(1, sum(c["answerable_n"] for c in cs))
        lines.append(f"\npooled: off-topic empty {off:.1%}, answerable empty {ans:.1%}")
    return "\n".join(lines)


def against(results: dict, old: dict) -> str:
    """nDCG@10 now vs an earlier run, per set and row, with per-question wins / losses."""
    lines = [f"\nagainst {old.get('created', '?')} (commit {str(old.get('commit'))[:12]}, model {old.get('model')}):",
             "| set | method | nDCG@10 then | now | change | questions better / worse |", "|---|---|---|---|---|---|"]
    for set_name, res in results.items():
        for variant, label in (("rows", ""), ("rows_project_given", " (project given)")):
            for name, row in res.get(variant, {}).items():
                prev = old.get("results", {}).get(set_name, {}).get(variant, {}).get(name)
                if not prev or not prev.get("mean") or not row.get("mean"):
                    continue
                a, b = prev["mean"]["ndcg@10"], row["mean"]["ndcg@10"]
                pq, nq = prev["per_question"], row["per_question"]
                diffs = [nq[k]["ndcg@10"] - pq[k]["ndcg@10"] for k in nq if k in pq]
                lines.append(f"| {set_name}{label} | {name} | {a:.3f} | {b:.3f} | {b - a:+.3f} "
                             f"| {sum(d > 1e-9 for d in diffs)} / {sum(d < -1e-9 for d in diffs)} |")
    return "\n".join(lines)


def _git_head() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main() -> None:
    args = ARGS
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    bad = [s for s in sets if s not in BUILDERS]
    if bad:
        raise SystemExit(f"unknown set(s) {', '.join(bad)}; choose from {', '.join(SETS)}")
    variants = {spec: parse_fusion(spec) for spec in args.fusion}
    t_all = time.perf_counter()
    results: dict[str, dict] = {}
    model_id = None
    with tempfile.TemporaryDirectory(prefix="atocore-quality-", ignore_cleanup_errors=True) as tmp:  # a background repack may still write
        for name in sets:
            t0 = time.perf_counter()
            d = Path(tmp) / name
            d.mkdir()
            bs = BUILDERS[name](d)
            model_id = bs.retriever.status().get("model_id")
            base = Baseline(bs.store)
            res = measure(bs, base, variants)
            res["questions"] = len(bs.questions)
            res["index_seconds"] = round(bs.index_seconds, 2)
            res["notes"] = bs.notes + [f"baseline {base.n} chunks"]
            if bs.context:
                res["by_kind_ndcg@10"] = by_kind(bs, res)
            if (bs.context or bs.empties) and not args.no_context:
                via = OverHttp(bs) if args.http else InProcess(bs)
                try:
                    res["context"] = context_measures(bs, via)
                finally:
                    if isinstance(via, OverHttp):
                        via.close()
            res["seconds"] = round(time.perf_counter() - t0, 1)
            results[name] = res
            print(f"{name}: {len(bs.questions)} questions, {', '.join(res['notes'])}, "
                  f"indexed in {res['index_seconds']} s, measured in {res['seconds']} s", file=sys.stderr)
    print(f"\nmodel: {model_id or 'none (degraded mode: BM25 only)'}; commit {(_git_head() or '?')[:12]}; "
          f"{time.perf_counter() - t_all:.0f} s in all\n")
    print(table(results))
    print("\n" + goals(results))
    for name, res in results.items():
        if name in PUBLISHED:
            label, value = PUBLISHED[name]
            got = res["rows"]["bm25s baseline"]["mean"]["ndcg@10"]
            print(f"\n{name}: plain bm25s nDCG@10 {got:.3f} here; published {label}: {value:.3f}")
        if "by_kind_ndcg@10" in res:
            kinds = list(next(iter(res["by_kind_ndcg@10"].values())))
            print(f"\n{name}, nDCG@10 by question kind:\n| method | " + " | ".join(kinds) + " |\n|---|"
                  + "---|" * len(kinds))
            for method, row in res["by_kind_ndcg@10"].items():
                print(f"| {method} | " + " | ".join(f"{row[k]:.3f}" if row[k] is not None else "-" for k in kinds) + " |")
        if "context" in res:
            c = res["context"]
            acc = "-" if c["project_accuracy"] is None else f"{c['project_accuracy']:.1%}"
            print(f"\n{name}, context path ({c['via']}, no project given): project right {acc} of "
                  f"{c['answerable_n']} answerable; items from a wrong project {c['leakage_items']:.1%}; "
                  f"off-topic with an empty supplement {c['offtopic_empty']:.1%} of {c['offtopic_n']}; answerable "
                  f"with an empty supplement {c['answerable_empty']:.1%}; trusted-state nDCG@10 on /search "
                  + (f"{c['state_search_ndcg@10']:.3f}" if c['state_search_ndcg@10'] is not None else "-")
                  + f"; context build p50 {c['context_p50_ms']:.1f} ms")
    if args.against:
        print(against(results, json.loads(Path(args.against).read_text())))
    out = Path(args.out) if args.out else HERE / "results" / (
        datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + ("-no-model" if args.no_model else "") + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": model_id, "commit": _git_head(), "sets": sets,
                               "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "seconds": round(time.perf_counter() - t_all, 1), "results": results}, indent=1))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
