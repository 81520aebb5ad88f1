"""Capture commands: hook, install, uninstall, import, extract.

``atocore hook`` runs on every assistant prompt, so this module imports only click at the
top; everything else is imported inside the command that needs it.
"""

from __future__ import annotations

import click

from . import echo_json, pass_state

INTEGRATIONS = ("claude-code", "openclaw")


@click.command()
@click.argument("source")
@click.pass_context
def hook(ctx: click.Context, source: str) -> None:
    """Run as an assistant's hook: event JSON on stdin (e.g. `atocore hook claude-code`).

    Context events print the supplement in the assistant's format; finished turns are
    recorded through $ATOCORE_URL (or straight into $ATOCORE_STORE when no server answers).
    Always exits 0 and prints nothing when anything goes wrong; see ~/.atocore/logs/hook.log.
    """
    import os

    from ..capture.hook import run

    store_path = getattr(ctx.obj, "store_path", None)
    if store_path and not os.environ.get("ATOCORE_STORE"):
        os.environ["ATOCORE_STORE"] = store_path  # --store: used when the server is unreachable
    ctx.exit(run(source))


def _edit_settings(edit, project_dir: str | None, user: bool, local: bool, **kw) -> dict:
    """``edit(path, **kw)`` (the plugin's install or uninstall) on the settings file the flags name."""
    if project_dir and user:
        raise click.UsageError("choose one of --project DIR and --user")
    from atocore_claude_code.install import settings_path

    try:
        return edit(settings_path(project_dir, user=user or not project_dir, local=local), **kw)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _claude_code_dir():
    """The Claude Code plugin marketplace (``.claude-plugin/marketplace.json``) shipped with AtoCore."""
    from pathlib import Path

    import atocore_claude_code

    return Path(atocore_claude_code.__file__).resolve().parent


def _openclaw_dir():
    from pathlib import Path

    import atocore_openclaw

    return Path(atocore_openclaw.__file__).resolve().parent / "openclaw-plugin"


@click.command()
@click.argument("integration", type=click.Choice(INTEGRATIONS))
@click.option("--project", "project_dir", type=click.Path(file_okay=False),
              help="Install into DIR/.claude/settings.json (shared with the project).")
@click.option("--local", is_flag=True, help="With --project: use .claude/settings.local.json (not shared).")
@click.option("--user", is_flag=True, help="Install into ~/.claude/settings.json ($CLAUDE_CONFIG_DIR honoured). Default.")
@click.option("--url", help="Server URL written into the hook commands (else $ATOCORE_URL at run time).")
@click.option("--command", "command", help="The hook command (default: this installation's `atocore hook claude-code`).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@click.option("--print-dir", is_flag=True,
              help="Only print the folder to give the assistant: Claude Code's plugin marketplace, "
                   "or OpenClaw's plugin folder.")
def install(integration: str, project_dir: str | None, local: bool, user: bool, url: str | None,
            command: str | None, as_json: bool, print_dir: bool) -> None:
    """Install an integration: merge Claude Code hooks, or show how to add the OpenClaw plugin."""
    if integration == "openclaw":
        folder = _openclaw_dir()
        if print_dir:
            click.echo(str(folder))
            return
        report = {"plugin_dir": str(folder), "steps": [
            f'openclaw plugins install "{folder}" --force --accept-capabilities',
            'openclaw config set plugins.entries.atocore "{\\"config\\": {\\"url\\": \\"$ATOCORE_URL\\"}, '
            '\\"hooks\\": {\\"allowConversationAccess\\": true}}" --strict-json --merge',
            "import earlier sessions: atocore import openclaw ~/.openclaw/agents/main/agent/openclaw-agent.sqlite",
        ]}
        if as_json:
            echo_json(report)
        else:
            click.echo(f"OpenClaw plugin folder: {folder}")
            for step in report["steps"]:
                click.echo(f"  - {step}")
        return
    from atocore_claude_code.install import install as do_install

    if print_dir:
        click.echo(str(_claude_code_dir()))
        return
    # A project's .claude/settings.json is committed: keep this machine's paths out of it.
    shared = bool(project_dir) and not local and not user
    report = _edit_settings(do_install, project_dir, user, local, command=command, url=url, shared=shared)
    if as_json:
        echo_json(report)
    else:
        click.echo(f"Installed AtoCore hooks ({', '.join(report['events'])}) in {report['settings']}")
        click.echo("Claude Code reads ATOCORE_URL / ATOCORE_TOKEN from its environment; problems are logged "
                   "to ~/.atocore/logs/hook.log.")


@click.command()
@click.argument("integration", type=click.Choice(INTEGRATIONS))
@click.option("--project", "project_dir", type=click.Path(file_okay=False))
@click.option("--local", is_flag=True)
@click.option("--user", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def uninstall(integration: str, project_dir: str | None, local: bool, user: bool, as_json: bool) -> None:
    """Remove AtoCore's hooks (only ours) from a Claude Code settings file."""
    if integration == "openclaw":
        click.echo("Remove it with: openclaw plugins uninstall atocore (and drop plugins.entries.atocore).")
        return
    from atocore_claude_code.install import uninstall as do_uninstall

    report = _edit_settings(do_uninstall, project_dir, user, local)
    if as_json:
        echo_json(report)
    else:
        click.echo(f"Removed {report['removed']} AtoCore hook(s) from {report['settings']}")


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
        from ..capture.redact import redact as redact_text

        sys.stdout.write(redact_text(sys.stdin.read()))
        return
    from ..store.purge import purge_history

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
