"""``atocore backup ...``, ``atocore restore`` and ``atocore drill``."""

from __future__ import annotations

import sys

import click

from . import echo_json, pass_state


def _exit(ok: bool) -> None:
    if not ok:
        sys.exit(1)


@click.group()
def backup() -> None:
    """Back the store up to remotes, check them, manage snapshot tags."""


@backup.command("push")
@click.argument("remote", required=False)
@click.option("--deep", is_flag=True, help="Verify every object on the remote, not only the new ones.")
@click.option("--create", is_flag=True, help="Create the bare repository if REMOTE is a path that has none.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_state
def push_cmd(state, remote: str | None, deep: bool, create: bool, as_json: bool) -> None:
    """Push main, review branches and backup tags to REMOTE (a configured name, a path or a URL;
    default: every remote in atocore.yaml), then verify the remote holds them."""
    from ..backup import push

    report = push(state.store, remote, deep=deep, create=create)
    if as_json:
        echo_json(report)
    else:
        for r in report["results"]:
            if r["ok"]:
                v = r["verify"]
                click.echo(f"ok   {r['remote']}: main {r['main'][:12]}, {len(r['updated'])} refs updated, "
                           f"{len(r['deleted'])} removed; verified ({v['method']}, {v['objects_checked']} objects) "
                           f"in {r['ms']:.0f} ms")
                if r["foreign"]:
                    click.echo(f"     left alone on the remote (not from this store): {', '.join(r['foreign'])}")
                for ref, why in sorted((r.get("left_out") or {}).items()):
                    click.echo(f"     not backed up: {ref} (refused by the gate: {why})")
                if v.get("not_checked"):
                    click.echo(f"     not checked: {v['not_checked']}")
            else:
                click.echo(f"FAIL {r['remote']}: {r['error']}", err=True)
        if report.get("snapshot"):
            click.echo(f"snapshot: {report['snapshot']}")
    _exit(report["ok"])


@backup.command("verify")
@click.argument("remote", required=False)
@click.option("--quick", is_flag=True, help="Compare refs only (plus new objects); default checks every object.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def verify_cmd(state, remote: str | None, quick: bool, as_json: bool) -> None:
    """Check, without pushing, that REMOTE holds exactly this store's refs and their objects."""
    from ..backup import verify_remote

    report = verify_remote(state.store, remote, deep=not quick)
    if as_json:
        echo_json(report)
    else:
        for r in report["results"]:
            click.echo(f"ok   {r['remote']}: {r['verify']['objects_checked']} objects checked" if r["ok"]
                       else f"FAIL {r['remote']}: {r['error']}")
    _exit(report["ok"])


@backup.command("status")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def status_cmd(state, as_json: bool) -> None:
    """Per remote: last verified push, commits behind, last error."""
    from ..backup import status

    report = status(state.store)
    if as_json:
        echo_json(report)
        return
    if not report["remotes"]:
        click.echo("no backup remotes: add one under 'remotes:' in atocore.yaml, or run 'atocore backup push PATH'")
    for r in report["remotes"]:
        behind = r["commits_behind"]
        click.echo(f"{r['remote']} ({r['url']})")
        click.echo(f"  last verified push: {r['last_verified'] or 'never'}"
                   + (f" (main {r['verified_main'][:12]})" if r["verified_main"] else ""))
        click.echo(f"  commits behind:     {'unknown' if behind is None else behind}")
        if r["last_error"]:
            click.echo(f"  last error ({r['last_attempt']}): {r['last_error']}")


@backup.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def list_cmd(state, as_json: bool) -> None:
    """Snapshot tags (backup/<timestamp>), newest first."""
    from ..backup import list_snapshots

    snaps = [s.to_dict() for s in list_snapshots(state.store)]
    if as_json:
        echo_json(snaps)
        return
    for s in snaps:
        click.echo(f"{s['tag']}  {s['commit'][:12]}  {s['reason']}")


@backup.command("snapshot")
@click.option("--reason", default="manual snapshot", show_default=True)
@pass_state
def snapshot_cmd(state, reason: str) -> None:
    """Tag main now as backup/<timestamp> (retention applies)."""
    from ..backup import snapshot

    click.echo(snapshot(state.store, reason))


@backup.command("prune")
@click.option("--dry-run", is_flag=True, help="Only show which tags the retention policy would delete.")
@pass_state
def prune_cmd(state, dry_run: bool) -> None:
    """Delete snapshot tags the retention policy no longer keeps (commits are never deleted)."""
    from ..backup import prune_snapshots

    for tag in prune_snapshots(state.store, dry_run=dry_run):
        click.echo(("would delete " if dry_run else "deleted ") + tag)


@click.command()
@click.argument("rev")
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def restore(state, rev: str, dry_run: bool, as_json: bool) -> None:
    """Make main's content equal REV's, as a new commit (history kept), then re-index."""
    from .follow import restore as do_restore  # the restore commit, then the index brought to it

    report = do_restore(state.store, rev, dry_run=dry_run)
    if as_json:
        echo_json(report)
        return
    for key, mark in (("added", "+"), ("changed", "~"), ("removed", "-")):
        for path in report[key]:
            click.echo(f"{mark} {path}")
    if report["nothing_to_do"]:
        click.echo(f"main already has the content of {rev}; nothing to restore")
    elif dry_run:
        click.echo(f"dry run: restoring {rev} ({report['target'][:12]}) would change "
                   f"{len(report['added']) + len(report['changed']) + len(report['removed'])} paths")
    else:
        click.echo(f"restored {rev}: new main {report['commit'][:12]} (safety snapshot {report['snapshot']})")
        idx = report.get("index") or {}
        if not idx.get("ok"):
            hint = f"; {idx['hint']}" if idx.get("hint") else ""
            click.echo(f"index not updated: {idx.get('reason') or idx.get('error')}{hint}", err=True)


@click.command()
@click.option("--keep", is_flag=True, help="Keep the scratch folder for inspection.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def drill(state, keep: bool, as_json: bool) -> None:
    """Rehearse backup, verify, restore and recovery on a scratch copy; pass/fail per step."""
    from ..backup import drill as run_drill

    def show(step) -> None:
        if not as_json:
            mark = {True: "PASS", False: "FAIL", None: "SKIP"}[step.ok]
            click.echo(f"{mark} {step.name} ({step.seconds:.2f} s){': ' + step.detail if step.detail else ''}")

    report = run_drill(state.store, keep=keep, on_step=show)
    if as_json:
        echo_json(report)
    else:
        click.echo("drill passed" if report["ok"] else "drill FAILED")
        if report.get("scratch"):
            click.echo(f"scratch copy kept at {report['scratch']}")
    _exit(report["ok"])
