"""Store commands: init, status, memory, state, review, log, show.

Human output by default; ``--json`` where a script would want it. Read commands take
``--at REV`` (a sha, ``main~3``, a tag...) to look at any point in history.
"""

from __future__ import annotations

import datetime as _dt
import difflib

import click

from . import CliState, echo_json, pass_state

AUTHOR_HELP = "Who is writing, as 'Name <email>' (default: $ATOCORE_AUTHOR or 'AtoCore <atocore@localhost>')."
AT_HELP = "Read at this revision (a sha, branch, tag or e.g. main~3) instead of main."


def _when(ts: int) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _short(text: str, limit: int = 70) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# --------------------------------------------------------------------------- init / status


@click.command()
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--from", "from_url", metavar="URL", help="Recover the store from a backup remote (path or URL) "
              "and rebuild its indexes.")
@click.option("--author", help=AUTHOR_HELP)
def init(path: str, from_url: str | None, author: str | None) -> None:
    """Create a store at PATH (a bare git repository with a first commit).

    PATH must be new or empty; an existing store is left as it is. With --from URL the
    store is cloned from a backup instead.
    """
    if from_url:
        from .follow import init_from  # recover, then rebuild the indexes

        store = init_from(from_url, path)
        click.echo(f"Recovered store at {store.path} from {from_url} (main {(store.head() or '-')[:12]})")
        return
    from ..store import init_store

    store, created = init_store(path, author=author)
    if created:
        click.echo(f"Created store at {store.path} (main {store.head()[:12]})")
        click.echo(f"Use it with: export ATOCORE_STORE={store.path}")
    else:
        click.echo(f"{store.path} is already an AtoCore store (main {(store.head() or '-')[:12]}); left unchanged")


def store_summary(store) -> dict:
    """Head, counts per record type, invalid files and pending reviews (used by ``status``)."""
    from ..config import config_problem
    from ..errors import ValidationError
    from ..records import parse_memory, parse_project, parse_state
    from ..review import list_reviews
    from ..store.parsecache import ParseCache

    head = store.head()
    files = store.files("main") if head else {}
    memories: dict[str, int] = {}
    state_projects = state_entries = projects = interactions = sources = other = 0
    invalid: list[str] = []
    # Parsing every record is what costs; results are cached by blob sha (store/parsecache.py).
    cache = ParseCache(store.index_dir, "status-cache.json")

    def check(parse, raw_sha: str, path: str):
        def compute():
            try:
                return ["ok", parse(store.read_blob(raw_sha), path)]
            except ValidationError as exc:
                return ["invalid", str(exc) if str(exc).startswith(path) else f"{path}: {exc}"]
        # the path is part of the key: a file whose name does not match its id is invalid
        return cache.get(f"{raw_sha}:{path}", compute)

    for path, sha in sorted(files.items()):
        if path.startswith("memories/") and path.endswith(".md"):
            verdict = check(lambda raw, p: parse_memory(raw, p).status, sha, path)
        elif path.startswith("state/") and path.endswith(".yaml"):
            verdict = check(lambda raw, p: len(parse_state(raw, p).entries), sha, path)
        elif path.startswith("projects/") and path.endswith(".yaml"):
            verdict = check(lambda raw, p: parse_project(raw, p).id, sha, path)
        elif path.startswith("interactions/") and path.endswith(".jsonl"):
            interactions += 1
            continue
        elif path.startswith("sources/"):
            sources += 1
            continue
        else:
            other += 1
            continue
        if verdict[0] != "ok":
            invalid.append(verdict[1])
        elif path.startswith("memories/"):
            memories[verdict[1]] = memories.get(verdict[1], 0) + 1
        elif path.startswith("state/"):
            state_entries += verdict[1]
            state_projects += 1
        else:
            projects += 1
    cache.save()
    reviews = list_reviews(store) if head else []
    info = store.info(head) if head else None
    return {
        "store": str(store.path),
        "head": head,
        "head_summary": info.summary if info else None,
        "head_time": info.time if info else None,
        "counts": {"memories": sum(memories.values()), "memories_by_status": memories,
                   "state_projects": state_projects, "state_entries": state_entries, "projects": projects,
                   "interaction_files": interactions, "source_files": sources, "other_files": other},
        "invalid": invalid,
        "config_problem": config_problem(store),
        "reviews": [{"id": p.id, "title": p.title, "kind": p.kind, "author": p.author, "approvable": p.approvable}
                    for p in reviews],
    }


def index_summary(store) -> dict:
    """The retrieval index's status (or why it is unavailable)."""
    from ..retrieval import open_retriever

    try:
        return open_retriever(store).status()
    except Exception as exc:  # the index is derived data: report, never fail `status` over it
        return {"unavailable": f"{type(exc).__name__}: {exc}"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.option("--no-index", is_flag=True, help="Skip the index status.")
@pass_state
def status(state: CliState, as_json: bool, no_index: bool) -> None:
    """Show the store's head, record counts, invalid files, pending reviews and the index."""
    store = state.store
    out = store_summary(store)
    out["index"] = None if no_index else index_summary(store)
    if as_json:
        echo_json(out)
        return
    c = out["counts"]
    click.echo(f"store:    {out['store']}")
    if out["head"]:
        click.echo(f"head:     {out['head'][:12]}  {out['head_summary']}  ({_when(out['head_time'])})")
    else:
        click.echo("head:     (no commits)")
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(c["memories_by_status"].items())) or "none"
    click.echo(f"memories: {c['memories']} ({by_status})")
    click.echo(f"state:    {c['state_entries']} entries in {c['state_projects']} projects")
    click.echo(f"projects: {c['projects']}")
    click.echo(f"captured: {c['interaction_files']} interaction files;  sources: {c['source_files']} files")
    if out["invalid"]:
        click.echo(f"invalid:  {len(out['invalid'])} files fail validation (not indexed):")
        for line in out["invalid"]:
            click.echo(f"  - {line}")
    if out.get("config_problem"):
        click.echo(f"config:   INVALID: {out['config_problem']}")
    click.echo(f"reviews:  {len(out['reviews'])} pending")
    for r in out["reviews"]:
        flag = "" if r["approvable"] else "  [cannot be approved: see 'atocore review show ID']"
        click.echo(f"  {r['id']}  {r['kind']:<8} {_short(r['title'], 60)}{flag}")
    idx = out["index"]
    if idx is None:
        click.echo("index:    (skipped)")
    elif "unavailable" in idx:
        click.echo(f"index:    unavailable: {idx['unavailable']}")
    else:
        stale = " (stale: run 'atocore index update')" if idx.get("stale") else ""
        counts = ", ".join(f"{n} {k}" for k, n in (idx.get("counts") or {}).items() if k != "total")
        click.echo(f"index:    at {str(idx.get('commit') or '-')[:12]}{stale}; {counts}")
        click.echo(f"model:    {idx.get('model')}" + (f"  DEGRADED (BM25 only): {idx.get('degraded_reason')}"
                                                      if idx.get("degraded") else ""))


# --------------------------------------------------------------------------- memories


def _memory_line(m) -> str:
    proj = m.project or "-"
    return f"{m.id}  {m.type:<11} {m.status:<10} {proj:<16} {_short(m.text, 60)}"


@click.group()
def memory() -> None:
    """Add, list, show, supersede and invalidate memories (written straight to main)."""


@memory.command("add")
@click.argument("text")
@click.option("--type", "type_", required=True, metavar="TYPE",
              help="identity, preference, project, episodic, knowledge or adaptation.")
@click.option("--project", help="The project this memory belongs to (a registered id).")
@click.option("--status", default="active", show_default=True, help="candidate or active.")
@click.option("--confidence", type=float, default=1.0, show_default=True, help="0 to 1.")
@click.option("--source", default="manual", show_default=True, help="Where the memory came from.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--author", help=AUTHOR_HELP)
@pass_state
def memory_add(state: CliState, text: str, type_: str, project: str | None, status: str, confidence: float,
               source: str, tags: tuple[str, ...], author: str | None) -> None:
    """Add a memory (one commit on main) and print its new id.

    \b
    Example:
      atocore memory add "Alice prefers metric units" --type preference --project optics
    """
    from ..memories import add_memory

    m = add_memory(state.store, text, type_, project=project, status=status, confidence=confidence, source=source,
                   tags=tags, author=author)
    click.echo(m.id)


@memory.command("list")
@click.option("--project", help="Only this project's memories.")
@click.option("--status", help="Only this status (candidate, active, superseded, invalid).")
@click.option("--type", "type_", help="Only this type.")
@click.option("--at", "rev", default="main", metavar="REV", help=AT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects (id, type, text, ...).")
@pass_state
def memory_list(state: CliState, project: str | None, status: str | None, type_: str | None, rev: str,
                as_json: bool) -> None:
    """List memories, oldest first."""
    from ..memories import list_memories

    mems = list_memories(state.store, project=project, status=status, type=type_, rev=rev)
    if as_json:
        echo_json([m.to_dict() for m in mems])
        return
    for m in mems:
        click.echo(_memory_line(m))
    if not mems:
        click.echo("no memories", err=True)


@memory.command("show")
@click.argument("memory_id")
@click.option("--at", "rev", default="main", metavar="REV", help=AT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_state
def memory_show(state: CliState, memory_id: str, rev: str, as_json: bool) -> None:
    """Show one memory."""
    from ..memories import get_memory

    m = get_memory(state.store, memory_id, rev=rev)
    if as_json:
        echo_json(m.to_dict())
    else:
        click.echo(m.dump().decode(), nl=False)


@memory.command("supersede")
@click.argument("memory_id")
@click.argument("text")
@click.option("--type", "type_", help="Type of the new memory (default: the old one's).")
@click.option("--confidence", type=float, help="Confidence of the new memory (default: the old one's).")
@click.option("--source", help="Source of the new memory (default: the old one's).")
@click.option("--author", help=AUTHOR_HELP)
@pass_state
def memory_supersede(state: CliState, memory_id: str, text: str, type_: str | None, confidence: float | None,
                     source: str | None, author: str | None) -> None:
    """Replace a memory with TEXT; the old one becomes superseded (one commit). Prints the new id."""
    from ..memories import supersede_memory

    fields = {k: v for k, v in (("type", type_), ("confidence", confidence), ("source", source)) if v is not None}
    m = supersede_memory(state.store, memory_id, text, author=author, **fields)
    click.echo(m.id)


@memory.command("invalidate")
@click.argument("memory_id")
@click.option("--reason", required=True, help="Why the memory is wrong (recorded in the commit).")
@click.option("--author", help=AUTHOR_HELP)
@pass_state
def memory_invalidate(state: CliState, memory_id: str, reason: str, author: str | None) -> None:
    """Mark a memory invalid: kept in history, never served again."""
    from ..memories import invalidate_memory

    m = invalidate_memory(state.store, memory_id, reason, author=author)
    click.echo(f"{m.id} is now invalid")


def _echo_log(entries, as_json: bool) -> None:
    if as_json:
        echo_json([c.to_dict() for c in entries])
        return
    for c in entries:
        merge = " (merge)" if len(c.parents) > 1 else ""
        click.echo(f"{c.sha[:12]}  {_when(c.time)}  {c.author}{merge}\n    {c.summary}")


@memory.command("history")
@click.argument("memory_id")
@click.option("-n", "--limit", type=int, help="At most this many commits.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of commits.")
@pass_state
def memory_history_cmd(state: CliState, memory_id: str, limit: int | None, as_json: bool) -> None:
    """Commits that touched a memory, newest first."""
    from ..memories import memory_history

    _echo_log(memory_history(state.store, memory_id, limit=limit), as_json)


# --------------------------------------------------------------------------- trusted state


@click.group("state")
def state() -> None:
    """Trusted project state: show it, or propose a change (goes through review)."""


@state.command("show")
@click.argument("project")
@click.option("--at", "rev", default="main", metavar="REV", help=AT_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@pass_state
def state_show(st: CliState, project: str, rev: str, as_json: bool) -> None:
    """Show PROJECT's trusted state."""
    from ..state import get_state

    ps = get_state(st.store, project, rev=rev)
    if as_json:
        echo_json({"project": ps.project, "entries": [e.to_dict() for e in ps.entries]})
        return
    if not ps.entries:
        click.echo(f"{project} has no trusted state", err=True)
    for e in ps.entries:
        click.echo(f"{e.category:<10} {e.key:<24} {e.value}  [{e.source}, {e.updated}]")


@state.command("propose")
@click.argument("project")
@click.argument("key")
@click.argument("value")
@click.option("--category", default="fact", show_default=True,
              help="summary, decision, constraint, focus, status, fact or contact.")
@click.option("--source", default="manual", show_default=True, help="Where the value comes from.")
@click.option("--approve", is_flag=True, help="Operator shortcut: approve at once (history keeps both steps).")
@click.option("--author", help=AUTHOR_HELP)
@click.option("--reviewer", help="Who approves with --approve (default: the author).")
@click.option("--json", "as_json", is_flag=True, help="Print the proposal as JSON.")
@pass_state
def state_propose(st: CliState, project: str, key: str, value: str, category: str, source: str, approve: bool,
                  author: str | None, reviewer: str | None, as_json: bool) -> None:
    """Propose setting PROJECT's KEY to VALUE, as a review/<id> branch.

    Trusted state changes only through review: approve it with 'atocore review approve ID',
    or pass --approve to record the proposal and its approval at once.

    \b
    Example:
      atocore state propose optics lead "Alice Martin" --category contact --approve
    """
    from ..state import propose_state

    p = propose_state(st.store, project, key, value, category=category, source=source, approve=approve,
                      author=author, reviewer=reviewer)
    if as_json:
        echo_json(p.to_dict())
    elif approve:
        click.echo(f"Approved review {p.id}: {p.title} (main {str(p.result)[:12]})")
    else:
        click.echo(f"Proposed review {p.id}: {p.title}\n  approve with: atocore review approve {p.id}")


@state.command("history")
@click.argument("project")
@click.option("-n", "--limit", type=int, help="At most this many commits.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of commits.")
@pass_state
def state_history_cmd(st: CliState, project: str, limit: int | None, as_json: bool) -> None:
    """Commits that changed PROJECT's trusted state, newest first."""
    from ..state import state_history

    _echo_log(state_history(st.store, project, limit=limit), as_json)


# --------------------------------------------------------------------------- review


@click.group()
def review() -> None:
    """Proposals waiting for review (review/* branches, including ones pushed from a clone)."""


@review.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_state
def review_list(st: CliState, as_json: bool) -> None:
    """List open proposals."""
    from ..review import list_reviews

    reviews = list_reviews(st.store)
    if as_json:
        echo_json([p.to_dict() for p in reviews])
        return
    if not reviews:
        click.echo("no open reviews", err=True)
    for p in reviews:
        flag = "" if p.approvable else (
            f"  [refused by the gate, {len(p.problems)} problem(s): {_short(p.problems[0], 80)}]"
            if p.problems else f"  [{len(p.conflicts)} conflict(s)]")
        click.echo(f"{p.id}  {p.kind:<8} {p.created}  {_short(p.author, 30)}  {_short(p.title, 50)}{flag}")


def _diff_text(store, p) -> str:
    lines: list[str] = []
    for ch in p.changes:
        old = store.read_blob(ch.old).decode("utf-8", "replace") if ch.old else ""
        new = (p.files.get(ch.path) or b"").decode("utf-8", "replace")
        lines.extend(difflib.unified_diff(old.splitlines(), new.splitlines(),
                                          "a/" + ch.path if ch.old else "/dev/null",
                                          "b/" + ch.path if ch.new else "/dev/null", lineterm=""))
    return "\n".join(lines)


@review.command("show")
@click.argument("review_id")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (with the new file contents).")
@pass_state
def review_show(st: CliState, review_id: str, as_json: bool) -> None:
    """Show a proposal: what it changes, and any problems that block approval."""
    from ..review import get_review

    p = get_review(st.store, review_id)
    if as_json:
        out = p.to_dict(with_files=True)
        out["diff"] = _diff_text(st.store, p)
        echo_json(out)
        return
    click.echo(f"review   {p.id}  ({p.kind})\ntitle    {p.title}\nauthor   {p.author}\ncreated  {p.created}")
    click.echo(f"branch   {p.ref} at {p.head[:12]} ({p.commits} commit(s), base {str(p.base)[:12]})")
    if p.body:
        click.echo("\n" + p.body)
    if p.problems or p.conflicts:
        click.echo("\nrefused by the gate -- problems (cannot be approved):" if p.problems
                   else "\nproblems (cannot be approved):")
        for line in p.problems:
            click.echo(f"  - {line}")
        for path in p.conflicts:
            click.echo(f"  - {path}: changed on main since the proposal (conflict)")
    for path in sorted(p.resolved):
        click.echo(f"note: main also changed {path}; the entries merge key by key (no conflict)")
    click.echo("")
    click.echo(_diff_text(st.store, p))
    if not (p.problems or p.conflicts):
        click.echo(f"\napprove exactly this with: atocore review approve {p.id} --head {p.head[:12]}")


@review.command("approve")
@click.argument("review_id")
@click.option("--reviewer", help="Who approves, as 'Name <email>' (default: $ATOCORE_AUTHOR).")
@click.option("--head", "expect_head", metavar="SHA",
              help="Only approve if the branch is still at SHA (the head 'review show' printed).")
@pass_state
def review_approve(st: CliState, review_id: str, reviewer: str | None, expect_head: str | None) -> None:
    """Merge a proposal into main with a Reviewed-by trailer."""
    from ..review import approve_review

    sha = approve_review(st.store, review_id, reviewer, expect_head=expect_head)
    click.echo(f"Approved {review_id}; main is now {sha[:12]}")


@review.command("reject")
@click.argument("review_id")
@click.option("--reason", required=True, help="Why (recorded in main's history).")
@click.option("--reviewer", help="Who rejects, as 'Name <email>' (default: $ATOCORE_AUTHOR).")
@pass_state
def review_reject(st: CliState, review_id: str, reason: str, reviewer: str | None) -> None:
    """Delete a proposal's branch and record why in main's history."""
    from ..review import reject_review

    sha = reject_review(st.store, review_id, reason, reviewer)
    click.echo(f"Rejected {review_id}; recorded in main at {sha[:12]}")


# --------------------------------------------------------------------------- log / show


@click.command()
@click.argument("rev", default="main")
@click.option("--path", help="Only commits that touched this path (e.g. memories/<id>.md or state/<project>.yaml).")
@click.option("-n", "--limit", type=int, default=20, show_default=True, help="At most this many commits (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of commits.")
@pass_state
def log(st: CliState, rev: str, path: str | None, limit: int, as_json: bool) -> None:
    """The store's history from REV (default main), newest first."""
    _echo_log(st.store.log(rev, path=path, limit=limit or None), as_json)


@click.command()
@click.argument("path")
@click.option("--at", "rev", default="main", metavar="REV", help=AT_HELP)
@pass_state
def show(st: CliState, path: str, rev: str) -> None:
    """Print the file at PATH in the store (e.g. state/<project>.yaml) as it is at --at REV."""
    from ..errors import NotFound

    raw = st.store.read(path.strip("/"), st.store.resolve(rev))
    if raw is None:
        raise NotFound(f"{path} does not exist at {rev}")
    click.echo(raw.decode("utf-8", "replace"), nl=False)
