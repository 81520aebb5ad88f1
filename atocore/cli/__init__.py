"""The ``atocore`` command line.

Commands live in small modules under ``atocore.cli`` and are imported only when run, so a
quick command (notably ``atocore hook ...``, which runs on every assistant prompt) never pays
for importing the web server, the model or the indexes.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import click

from .. import __version__
from ..errors import AtoCoreError

# command name -> "module:attribute" (module relative to atocore.cli)
COMMANDS: dict[str, str] = {
    "init": "store_cmds:init",
    "status": "store_cmds:status",
    "memory": "store_cmds:memory",
    "state": "store_cmds:state",
    "review": "store_cmds:review",
    "log": "store_cmds:log",
    "show": "store_cmds:show",
    "index": "index_cmds:index",
    "search": "index_cmds:search",
    "project": "service_cmds:project",
    "refresh": "service_cmds:refresh",
    "context": "service_cmds:context",
    "debug-context": "service_cmds:debug_context",
    "serve": "service_cmds:serve",
    "up": "service_cmds:up",
    "hook": "capture_cmds:hook",
    "install": "capture_cmds:install",
    "uninstall": "capture_cmds:uninstall",
    "extract": "capture_cmds:extract",
    "import": "capture_cmds:import_",
    "redact": "capture_cmds:redact",
    "backup": "backup_cmds:backup",
    "restore": "backup_cmds:restore",
    "drill": "backup_cmds:drill",
    "mcp": "mcp_cmds:mcp",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            mod = importlib.import_module(f"atocore.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"atocore.cli.{module}":
                return None  # not built yet
            raise
        return getattr(mod, attr, None)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AtoCoreError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", "store_path", envvar="ATOCORE_STORE", type=click.Path(file_okay=False),
              help="The store to use (default: $ATOCORE_STORE).")
@click.version_option(__version__, prog_name="atocore")
@click.pass_context
def cli(ctx: click.Context, store_path: str | None) -> None:
    """AtoCore: trusted project context and memory for LLM assistants.

    The store (a git repository) is --store PATH or $ATOCORE_STORE.
    """
    ctx.obj = CliState(store_path)


class CliState:
    def __init__(self, store_path: str | None):
        self.store_path = store_path
        self._store = None

    @property
    def store(self):
        if self._store is None:
            from ..store import open_store

            self._store = open_store(self.store_path)
        return self._store


pass_state = click.make_pass_decorator(CliState)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="atocore")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
