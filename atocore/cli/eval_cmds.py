"""``atocore eval``: score retrieval on the person's own golden questions (atocore/golden.py)."""

from __future__ import annotations

import click

from . import echo_json, pass_state


def _pct(v) -> str:
    return "-" if v is None else f"{v:.0%}"


def _table(projects: dict) -> list[str]:
    rows = ["| project | questions | nDCG@10 | Recall@10 | MRR@10 | context: project right | expected in supplement |",
            "|---|---|---|---|---|---|---|"]
    for name, p in projects.items():
        rows.append(f"| {name} | {p['questions']} | {p['ndcg@10']:.3f} | {p['recall@10']:.3f} | {p['mrr@10']:.3f} "
                    f"| {_pct(p['context_project_right'])} | {_pct(p['in_supplement'])} |")
    return rows


def _pin(run) -> str:
    return (f"store commit {run.commit[:12]} · index {str(run.index_commit or '-')[:12]} · "
            f"model {run.model or 'none (BM25 only)'}")


def _arrow(a, b, fmt="{:.3f}") -> str:
    if a is None or b is None:
        return f"{'-' if a is None else fmt.format(a)} -> {'-' if b is None else fmt.format(b)}"
    d = b - a
    return f"{fmt.format(a)} -> {fmt.format(b)} ({d:+.3f})"


@click.command("eval")
@click.argument("file", required=False, default=None, metavar="[FILE]")
@click.option("--compare", "compare_rev", metavar="REV", default=None,
              help="Also show what changed since REV (a commit, branch or main~N).")
@click.option("--propose", "propose_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Put a local YAML file into the store as FILE (validated; reviewed like any record).")
@click.option("--approve", is_flag=True, help="With --propose: approve at once (you are the reviewer).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_state
def eval_(state, file, compare_rev, propose_file, approve, as_json):
    """Score search and context on your golden questions (default FILE: eval/golden.yaml in the store).

    \b
    The file lists what you ask and what should come back:
      questions:
        - question: how do we home the printer?
          project: printer            # optional: the project the answer is in
          sources: [docs/homing.md]   # paths in the project's source folder
          state: [homing-speed]       # and/or trusted-state keys of the project
    """
    from ..golden import (DEFAULT_FILE, compare, evaluate_at, keep, kept, load_golden, run_questions)
    from ..records import GOLDEN_PREFIX, parse_golden
    from ..retrieval import open_retriever

    path = file or DEFAULT_FILE
    store = state.store
    if propose_file is not None:
        from ..errors import ValidationError
        from ..review import propose

        if not path.startswith(GOLDEN_PREFIX) or not path.endswith((".yaml", ".yml")):
            raise ValidationError("FILE", f"golden questions live at {GOLDEN_PREFIX}<name>.yaml in the store, got {path!r}")
        raw = open(propose_file, "rb").read()
        try:
            parse_golden(raw, path)
        except ValidationError as exc:
            raise ValidationError(f"{propose_file}: {exc.field}", exc.message, exc.allowed) from None
        p = propose(store, {path: raw}, f"Golden questions {path}", kind="change", approve=approve)
        click.echo(f"{'approved' if p.status == 'approved' else 'proposed for review ' + p.id}: {p.title}")
        if p.status != "approved":
            click.echo(f"approve with: atocore review approve {p.id}")
        return
    questions, blob = load_golden(store, path)
    retriever = open_retriever(store)
    run = run_questions(store, retriever, questions, path, blob)
    keep(store, run)
    before = None
    if compare_rev is not None:
        commit = store.resolve(compare_rev)
        before = kept(store, commit, blob, run.model) or evaluate_at(store, commit, questions, path, blob)
    if as_json:
        out = run.to_dict()
        if before is not None:
            out["compare"] = compare(before, run)
        echo_json(out)
        return
    click.echo(f"{path}: {len(questions)} questions · {_pin(run)}")
    for line in _table(run.by_project()):
        click.echo(line)
    worst = sorted(run.questions, key=lambda q: (q.ndcg, q.recall))[:5]
    worst = [q for q in worst if q.ndcg < 1.0]
    if worst:
        click.echo("\nweakest questions:")
        for q in worst:
            click.echo(f"  {q.ndcg:.2f}  {q.key()}  {q.question[:70]!r}  top: {', '.join(q.found[:2]) or 'nothing'}")
    if before is not None:
        c = compare(before, run)
        how = "kept result" if before.source == "kept" else "evaluated now in a temporary index"
        click.echo(f"\ncompared with {compare_rev} ({how}): {_pin(before)}")
        click.echo("| project | nDCG@10 | Recall@10 | expected in supplement |\n|---|---|---|---|")
        for name, m in c["projects"].items():
            click.echo(f"| {name} | {_arrow(m['ndcg@10']['before'], m['ndcg@10']['after'])} "
                       f"| {_arrow(m['recall@10']['before'], m['recall@10']['after'])} "
                       f"| {_arrow(m['in_supplement']['before'], m['in_supplement']['after'])} |")
        if c["changed"]:
            click.echo(f"\n{len(c['changed'])} questions changed (worst first):")
            for ch in c["changed"][:10]:
                click.echo(f"  {ch['ndcg_before']:.2f} -> {ch['ndcg_after']:.2f}  {ch['question']}  {ch['text'][:60]!r}")
        else:
            click.echo("no question changed")
