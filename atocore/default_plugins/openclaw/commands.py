"""``atocore install openclaw`` / ``atocore uninstall openclaw`` (added through the
``register_commands`` hook; imported only when the CLI asks for them)."""

from __future__ import annotations

from pathlib import Path

import click

from atocore.cli import echo_json

NAME = "openclaw"


def plugin_dir() -> Path:
    """The OpenClaw plugin folder shipped with AtoCore (what ``openclaw plugins install`` takes)."""
    return Path(__file__).resolve().parent / "openclaw-plugin"


# The options Claude Code's install takes are accepted (and ignored) here, as they always were.
@click.command(NAME)
@click.option("--project", "project_dir", type=click.Path(file_okay=False), hidden=True)
@click.option("--local", is_flag=True, hidden=True)
@click.option("--user", is_flag=True, hidden=True)
@click.option("--url", hidden=True)
@click.option("--command", "command", hidden=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@click.option("--print-dir", is_flag=True, help="Only print the folder to give OpenClaw: its plugin folder.")
def install(project_dir: str | None, local: bool, user: bool, url: str | None, command: str | None,
            as_json: bool, print_dir: bool) -> None:
    """Show how to add the OpenClaw plugin (OpenClaw installs it itself)."""
    folder = plugin_dir()
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


@click.command(NAME)
@click.option("--project", "project_dir", type=click.Path(file_okay=False), hidden=True)
@click.option("--local", is_flag=True, hidden=True)
@click.option("--user", is_flag=True, hidden=True)
@click.option("--json", "as_json", is_flag=True, hidden=True)
def uninstall(project_dir: str | None, local: bool, user: bool, as_json: bool) -> None:
    """Say how to remove the OpenClaw plugin."""
    click.echo("Remove it with: openclaw plugins uninstall atocore (and drop plugins.entries.atocore).")
