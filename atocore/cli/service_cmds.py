"""Commands of the projects / context / service area: project, refresh, context, debug-context, serve, up.

Only click and light atocore modules at top level; the server, indexes and model are imported
inside the commands.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import echo_json, pass_state

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8100


def _proposal_line(p) -> str:
    if p.status == "approved":
        return f"approved: {p.title} (review {p.id}, main {str(p.result)[:12]})"
    return f"proposed for review {p.id}: {p.title}\napprove with: atocore review approve {p.id}"


# --------------------------------------------------------------------------- project


@click.group()
def project() -> None:
    """Project registrations (reviewed): register, list, show, update."""


@project.command("register")
@click.argument("project_id", metavar="ID")
@click.option("--source", "sources", multiple=True, required=True, type=click.Path(file_okay=False),
              help="A folder of the project's documents (repeatable).")
@click.option("--alias", "aliases", multiple=True, help="A nickname or code name (repeatable).")
@click.option("--name", default=None, help="Human name (default: the id).")
@click.option("--description", default="", help="One or two sentences on what the project is.")
@click.option("--include", "include", multiple=True, help="Include glob (default: markdown, text and reStructuredText files).")
@click.option("--exclude", "exclude", multiple=True, help="Exclude glob (repeatable).")
@click.option("--approve", is_flag=True, help="Approve at once (you are the reviewer).")
@click.option("--json", "as_json", is_flag=True, help="Print the proposal as JSON.")
@pass_state
def project_register(state, project_id, sources, aliases, name, description, include, exclude, approve, as_json):
    """Propose registering project ID with its source folders."""
    from ..projects.registry import register_project

    roots = [{"path": s, "include": list(include) or None, "exclude": list(exclude) or None} for s in sources]
    p = register_project(state.store, project_id, roots, name=name, aliases=aliases, description=description,
                         approve=approve)
    if as_json:
        echo_json(p.to_dict())
    else:
        click.echo(_proposal_line(p))
        if approve:
            click.echo(f"stage its documents with: atocore refresh {project_id}")


@project.command("list")
@click.option("--pending/--no-pending", default=True, help="Also show registrations waiting for review.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def project_list(state, pending, as_json):
    """Registered projects (and pending registrations)."""
    from ..api import Api

    rows = Api.for_store(state.store).projects(pending=pending)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no projects registered; atocore project register ID --source DIR")
    for r in rows:
        extra = f"  [pending review {r['review']}]" if r["review"] else ""
        aliases = f"  aliases: {', '.join(r['aliases'])}" if r["aliases"] else ""
        click.echo(f"{r['id']}  {r['name']}{aliases}{extra}")


@project.command("show")
@click.argument("project_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def project_show(state, project_id, as_json):
    """One registration, with what is staged for it."""
    from ..projects.registry import get_project

    p = get_project(state.store, project_id)
    staged = len(state.store.files("main", f"sources/{p.id}"))
    data = {**p.to_dict(), "staged_files": staged}
    if as_json:
        echo_json(data)
        return
    click.echo(f"{p.id}: {p.name}")
    if p.description:
        click.echo(f"  {p.description}")
    click.echo(f"  aliases: {', '.join(p.aliases) or '-'}")
    for r in p.sources:
        click.echo(f"  source: {r.path}\n    include: {', '.join(r.include)}\n    exclude: {', '.join(r.exclude) or '-'}")
    click.echo(f"  staged files: {staged}")


@project.command("update")
@click.argument("project_id", metavar="ID")
@click.option("--name", default=None)
@click.option("--description", default=None)
@click.option("--alias", "add_aliases", multiple=True, help="Add an alias (repeatable).")
@click.option("--remove-alias", "remove_aliases", multiple=True, help="Remove an alias (repeatable).")
@click.option("--source", "add_sources", multiple=True, type=click.Path(file_okay=False), help="Add a source folder.")
@click.option("--remove-source", "remove_sources", multiple=True, help="Remove a source folder.")
@click.option("--include", "include", multiple=True, help="Replace the include globs of every source.")
@click.option("--exclude", "exclude", multiple=True, help="Replace the exclude globs of every source.")
@click.option("--approve", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def project_update(state, project_id, name, description, add_aliases, remove_aliases, add_sources, remove_sources,
                   include, exclude, approve, as_json):
    """Propose a refined registration (aliases, globs, description, sources)."""
    from ..projects.registry import update_project

    p = update_project(state.store, project_id, name=name, description=description, add_aliases=add_aliases,
                       remove_aliases=remove_aliases, add_sources=add_sources, remove_sources=remove_sources,
                       include=list(include) or None, exclude=list(exclude) or None, approve=approve)
    echo_json(p.to_dict()) if as_json else click.echo(_proposal_line(p))


# --------------------------------------------------------------------------- refresh


def _print_report(r) -> None:
    d = r.to_dict()
    what = f"commit {d['commit'][:12]}" if d["commit"] else "nothing changed, no commit"
    click.echo(f"{d['project']}: {len(d['added'])} added, {len(d['changed'])} changed, {len(d['removed'])} removed, "
               f"{d['unchanged']} unchanged ({what})")
    if d.get("redacted"):
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(d["redacted_counts"].items()))
        click.echo(f"  redacted secrets in {len(d['redacted'])} files before committing: {kinds}")
    if d["skipped"]:
        counts = ", ".join(f"{n} {reason}" for reason, n in sorted(d["skipped_counts"].items()))
        click.echo(f"  skipped {len(d['skipped'])}: {counts}")
        for s in d["skipped"][:20]:
            click.echo(f"    {s['path']}: {s['reason']}")
        if len(d["skipped"]) > 20:
            click.echo(f"    ... and {len(d['skipped']) - 20} more")


@click.command()
@click.argument("project_id", metavar="[ID]", required=False)
@click.option("--wait", default=0.0, type=float, help="Seconds to wait if another refresh runs (default: fail).")
@click.option("--no-index", is_flag=True, help="Stage only; the index catches up later.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def refresh(state, project_id, wait, no_index, as_json):
    """Stage the project's sources (all projects without ID) and re-index."""
    from .follow import refresh as do_refresh  # stage, then bring the index to main

    reports = do_refresh(state.store, project_id, wait=wait, update_index=not no_index)
    if as_json:
        echo_json([r.to_dict() for r in reports])
        return
    for r in reports:
        _print_report(r)
    if reports and reports[0].index is not None:
        idx = reports[0].index
        click.echo(f"index: {idx.get('action', '?')} at {str(idx.get('commit'))[:12]} "
                   f"({reports[0].seconds:.2f} s in all)")


# --------------------------------------------------------------------------- context


@click.command()
@click.argument("prompt")
@click.option("--project", default=None, help="Project id (default: inferred from the prompt and --cwd).")
@click.option("--format", "fmt", default="markdown", show_default=True, help="Output format (plugins).")
@click.option("--budget", "budget", default=None, type=int, help="Character budget.")
@click.option("--cwd", default=None, help="Working directory hint for project inference (default: here).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole build (items with provenance).")
@pass_state
def context(state, prompt, project, fmt, budget, cwd, as_json):
    """Build the context supplement for PROMPT (trusted state, memories, sources)."""
    from ..api import Api, context_args
    from ..context.build import MAX_BUDGET, MIN_BUDGET

    args = {"prompt": prompt, "project": project, "format": fmt, "cwd": cwd or os.getcwd()}
    if budget:
        args["budget_chars"] = max(MIN_BUDGET, min(budget, MAX_BUDGET))  # the CLI clamps; HTTP refuses
    data = Api.for_store(state.store).context(context_args(args))  # saved for `atocore debug-context`
    text = data.get("context") or ""
    if as_json:
        echo_json(data)
    elif text:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        click.echo("(nothing relevant in AtoCore for this prompt)", err=True)


@click.command("debug-context")
@click.option("--json/--text", "as_json", default=True, help="Whole build as JSON (default) or the text served.")
@pass_state
def debug_context(state, as_json):
    """The last context build (by the service or the CLI), whole."""
    from ..context.build import load_last_build

    data = load_last_build(state.store)
    if data is None:
        raise click.ClickException("no context has been built yet on this store")
    if as_json:
        echo_json(data)
    else:
        click.echo(data.get("context", ""))


# --------------------------------------------------------------------------- serve / up


def _banner(host: str, port: int, token: str | None) -> str:
    from ..server.run import is_loopback

    url = f"http://{host}:{port}"
    return (f"AtoCore is serving on {url}  (API docs: {url}/docs)\n"
            f"try:\n  curl -s {url}/context/build -H 'content-type: application/json' \\\n"
            f"       -d '{{\"prompt\": \"How is the store backed up?\", \"project\": \"atocore\"}}'\n"
            + ("writes need: -H 'Authorization: Bearer $ATOCORE_TOKEN'\n" if token else "")
            + ("callers by IP address or localhost are answered; to be reached by a name such as "
               "atocore.lan, list it in ATOCORE_ALLOWED_HOSTS\n"
               if not is_loopback(host) and not os.environ.get("ATOCORE_ALLOWED_HOSTS") else ""))


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option("--log-level", default="warning", show_default=True)
@pass_state
def serve(state, host, port, log_level):
    """Run the HTTP service on the store (writes need $ATOCORE_TOKEN if set)."""
    from ..server.run import check_bind, serve as run

    token = os.environ.get("ATOCORE_TOKEN") or None
    check_bind(host, token)
    path = str(state.store.path)
    run(path, host=host, port=port, token=token, log_level=log_level,
        on_started=lambda server: click.echo(_banner(host, port, token)))


def default_store_path() -> Path:
    if os.environ.get("ATOCORE_STORE"):
        return Path(os.environ["ATOCORE_STORE"]).expanduser()
    if os.environ.get("ATOCORE_HOME"):
        return Path(os.environ["ATOCORE_HOME"]).expanduser() / "store"
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "atocore" / "store"


def own_docs() -> Path | None:
    """AtoCore's own docs/ folder (present in a checkout), found relative to the package."""
    docs = Path(__file__).resolve().parents[2] / "docs"
    return docs if docs.is_dir() else None


def prepare_default_store(path: Path, echo=click.echo):
    """Create the store if needed, register AtoCore's docs as project ``atocore`` and refresh it."""
    from .follow import refresh as do_refresh  # stage, then bring the index to main before serving
    from ..projects.registry import projects, register_project
    from ..store import init_store

    store, created = init_store(path)
    echo(f"{'created' if created else 'using'} store {store.path}")
    docs = own_docs()
    if docs is not None and "atocore" not in projects(store):
        register_project(store, "atocore", [docs], name="AtoCore",
                         aliases=["atocore docs", "this context engine"],
                         description="AtoCore itself: a git-native context engine and machine memory for LLM "
                                     "assistants (its design, service, retrieval, capture and backup docs).",
                         approve=True)
        echo(f"registered project atocore -> {docs}")
    if "atocore" in projects(store):
        try:
            for r in do_refresh(store, "atocore", wait=30):
                _print_report(r)
        except Exception as exc:  # the service must still start; it reports the index state on /health
            echo(f"refresh of atocore failed: {exc}", err=True)
    return store


@click.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option("--log-level", default="warning", show_default=True)
@click.pass_context
def up(ctx, host, port, log_level):
    """Create a default store if needed, ingest AtoCore's own docs, and serve."""
    from ..server.run import check_bind, serve as run

    token = os.environ.get("ATOCORE_TOKEN") or None
    check_bind(host, token)
    given = ctx.obj.store_path if ctx.obj is not None else None
    path = Path(given).expanduser() if given else default_store_path()
    store = prepare_default_store(path, echo=lambda m, err=False: click.echo(m, err=err))
    run(str(store.path), host=host, port=port, token=token, log_level=log_level,
        on_started=lambda server: click.echo(_banner(host, port, token)))
