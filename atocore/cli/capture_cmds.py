"""Capture commands: hook, install, uninstall, import, extract, redact.

``atocore hook`` runs on every assistant prompt, so this module imports only click at the
top; everything else is imported inside the command that needs it.
"""

from __future__ import annotations

import click

from . import echo_json, pass_state


@click.command()
@click.argument("source")
@click.pass_context
def hook(ctx: click.Context, source: str) -> None:
    """Run as an assistant's hook: event JSON on stdin (e.g. `atocore hook claude-code`).

    Context events print the supplement in the assistant's format; finished turns are
    recorded through $ATOCORE_URL (or straight into $ATOCORE_STORE when no server answers).
    Always exits 0 and prints nothing when anything goes wrong; see ~/.atocore/logs/hook.log.
    """
    from ..capture.hook import run

    # --store (or $ATOCORE_STORE): where turns go when the server is unreachable
    ctx.exit(run(source, store=getattr(ctx.obj, "store_path", None)))


class IntegrationGroup(click.Group):
    """``atocore install NAME`` / ``atocore uninstall NAME``: each assistant's plugin adds its own
    subcommand through the ``register_commands`` hook (see atocore/hookspecs.py)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        load_plugin_commands()
        return super().get_command(ctx, name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and not args[0].startswith("-") and self.get_command(ctx, args[0]) is None:
            raise click.UsageError(f"{args[0]!r} is not an assistant AtoCore knows (installed: "
                                   f"{', '.join(self.list_commands(ctx))})", ctx)
        return super().resolve_command(ctx, args)


@click.group(cls=IntegrationGroup)
def install() -> None:
    """Wire AtoCore into an assistant: `atocore install claude-code --user`, `atocore install openclaw`."""


@click.group(cls=IntegrationGroup)
def uninstall() -> None:
    """Take AtoCore out of an assistant again (only what `atocore install` added)."""


def load_plugin_commands() -> None:
    """Let every plugin add its commands (once per plugin manager)."""
    from .. import cli as top
    from ..plugins import call_each, get_plugin_manager

    pm = get_plugin_manager()
    if _loaded_for[0] is not pm:
        _loaded_for[0] = pm
        call_each(pm, "register_commands", cli=top.cli, install=install, uninstall=uninstall)


_loaded_for: list = [None]


@click.command("import")
@click.argument("source")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--project", help="Project id for every imported turn (default: inferred).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def import_(st, source: str, paths: tuple[str, ...], project: str | None, as_json: bool) -> None:
    """Import transcripts: `atocore import openclaw ~/.openclaw/agents/main/sessions/*.jsonl`.

    Idempotent: a turn already in the store (same message id) is not stored again.
    """
    from ..capture.importer import import_transcripts
    from ..capture.sources import find_source, source_names

    src = find_source(source)
    if src is None:
        raise click.BadParameter(f"{source!r} is not a capture source (installed: {', '.join(source_names())})",
                                 param_hint="SOURCE")
    report = import_transcripts(st.store, src, paths, project=project)
    if as_json:
        echo_json(report)
        return
    click.echo(f"Imported {report['created']} new turn(s), {report['existing']} already stored, "
               f"{report['skipped']} skipped, from {len(paths)} file(s)")
    for problem in report["problems"][:20]:
        click.echo(f"  ! {problem}", err=True)


@click.command()
@click.option("--session", help="Only turns of this session.")
@click.option("--dry-run", is_flag=True, help="Show what would be proposed; write nothing.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def extract(st, session: str | None, dry_run: bool, as_json: bool) -> None:
    """Propose candidate memories from explicit signals in captured turns (for review)."""
    from ..capture.extract import iter_interactions, propose_candidates

    results = propose_candidates(st.store, iter_interactions(st.store, session), dry_run=dry_run)
    if as_json:
        echo_json(results)
        return
    if not results:
        click.echo("no new candidate memories", err=True)
    for r in results:
        verb = "would propose" if dry_run else "proposed"
        click.echo(f"{r['review']}: {verb} {len(r['memories'])} candidate(s) from {r['source']}")
        for m in r["memories"]:
            click.echo(f"  - [{m['type']}] {m['text']}")
    if results and not dry_run:
        click.echo("review with: atocore review show <id>; atocore review approve <id>")


@click.command()
@click.option("--history", "pattern", metavar="PATTERN", default=None,
              help="Purge every match of this regular expression from the store's whole history.")
@click.option("--literal", metavar="TEXT", default=None, help="Purge this exact text from the whole history.")
@click.option("--remotes", "all_remotes", is_flag=True,
              help="Also force-push the rewritten history to every configured backup remote (and prune "
                   "local-path remotes).")
@click.option("--remote", "remote", multiple=True, metavar="NAME|PATH|URL",
              help="Force-push the rewritten history to this remote (repeatable).")
@click.option("--dry-run", is_flag=True, help="Say what would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def redact(ctx: click.Context, pattern: str | None, literal: str | None, all_remotes: bool, remote: tuple[str, ...],
           dry_run: bool, as_json: bool) -> None:
    """Redact stdin to stdout, or purge a secret that got into the store (--history/--literal).

    The purge rewrites main, review branches and backup snapshots so that no reachable object holds
    the secret, records what it did on main, prunes the old objects and rebuilds the index. Stop
    the service first. See docs/capture.md ("Purging a secret").
    """
    import sys

    if pattern is None and literal is None:
        from ..redact import redact as redact_text

        sys.stdout.write(redact_text(sys.stdin.read()))
        return
    from .follow import purge_history  # purge, then rebuild the index (it holds the secret too)

    state = ctx.obj
    report = purge_history(state.store, pattern=pattern, literal=literal, dry_run=dry_run,
                           remotes=list(remote) if remote else ([] if all_remotes else None))
    if as_json:
        echo_json(report)
        return
    verb = "would rewrite" if dry_run else "rewrote"
    click.echo(f"{verb} {report['commits_rewritten']} commit(s) and {len(report['refs'])} ref(s); "
               f"{report['occurrences']} occurrence(s) in {len(report['files'])} file(s)")
    for path in report["files"]:
        click.echo(f"  {path}")
    if dry_run or not report["refs"]:
        return
    click.echo("old objects pruned" if report["pruned"] else
               "old objects NOT pruned (git not found): run 'git reflog expire --expire=now --all && git gc --prune=now'")
    idx = report["index"] or {}
    click.echo("index rebuilt" if idx.get("rebuilt") else f"index: {idx.get('error')}")
    for r in report["remotes"]:
        if r.get("ok"):
            click.echo(f"remote {r['remote']}: force-pushed" + (", pruned" if r.get("pruned") else f"; {r.get('todo')}"))
        else:
            click.echo(f"remote {r.get('remote', '?')}: FAILED: {r.get('error')}")
    if not report["remotes"]:
        click.echo("backup remotes still hold the secret: run again with --remotes (force-push), or force-push "
                   "refs/heads/* and refs/tags/backup/* yourself and gc each remote")
