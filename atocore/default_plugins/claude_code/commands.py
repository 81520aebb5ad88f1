"""``atocore install claude-code`` / ``atocore uninstall claude-code`` (added through the
``register_commands`` hook; imported only when the CLI asks for them, never by the hook)."""

from __future__ import annotations

from pathlib import Path

import click

from atocore.cli import echo_json

from . import install as settings

NAME = "claude-code"


def plugin_dir() -> Path:
    """The Claude Code plugin marketplace (``.claude-plugin/marketplace.json``) shipped with AtoCore."""
    return Path(__file__).resolve().parent


def _edit_settings(edit, project_dir: str | None, user: bool, local: bool, **kw) -> dict:
    """``edit(path, **kw)`` (install or uninstall) on the settings file the flags name."""
    if project_dir and user:
        raise click.UsageError("choose one of --project DIR and --user")
    try:
        return edit(settings.settings_path(project_dir, user=user or not project_dir, local=local), **kw)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@click.command(NAME)
@click.option("--project", "project_dir", type=click.Path(file_okay=False),
              help="Install into DIR/.claude/settings.json (shared with the project).")
@click.option("--local", is_flag=True, help="With --project: use .claude/settings.local.json (not shared).")
@click.option("--user", is_flag=True, help="Install into ~/.claude/settings.json ($CLAUDE_CONFIG_DIR honoured). Default.")
@click.option("--url", help="Server URL written into the hook commands (else $ATOCORE_URL at run time).")
@click.option("--command", "command", help="The hook command (default: this installation's `atocore hook claude-code`).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@click.option("--print-dir", is_flag=True, help="Only print the folder to give Claude Code: its plugin marketplace.")
def install(project_dir: str | None, local: bool, user: bool, url: str | None, command: str | None,
            as_json: bool, print_dir: bool) -> None:
    """Merge AtoCore's hooks into a Claude Code settings file."""
    if print_dir:
        click.echo(str(plugin_dir()))
        return
    # A project's .claude/settings.json is committed: keep this machine's paths out of it.
    shared = bool(project_dir) and not local and not user
    report = _edit_settings(settings.install, project_dir, user, local, command=command, url=url, shared=shared)
    if as_json:
        echo_json(report)
    else:
        click.echo(f"Installed AtoCore hooks ({', '.join(report['events'])}) in {report['settings']}")
        click.echo("Claude Code reads ATOCORE_URL / ATOCORE_TOKEN from its environment; problems are logged "
                   "to ~/.atocore/logs/hook.log.")


@click.command(NAME)
@click.option("--project", "project_dir", type=click.Path(file_okay=False))
@click.option("--local", is_flag=True)
@click.option("--user", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
def uninstall(project_dir: str | None, local: bool, user: bool, as_json: bool) -> None:
    """Remove AtoCore's hooks (only ours) from a Claude Code settings file."""
    report = _edit_settings(settings.uninstall, project_dir, user, local)
    if as_json:
        echo_json(report)
    else:
        click.echo(f"Removed {report['removed']} AtoCore hook(s) from {report['settings']}")
