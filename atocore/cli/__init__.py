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
    "eval": "eval_cmds:eval_",
}


class LazyGroup(click.Group):
    """Built-in commands import their module only when run; plugins' commands (hook
    ``register_commands``) are loaded only when a name is not a built-in one, or for --help."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        _plugin_commands()
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            _plugin_commands()
            return self.commands.get(name)
        module, attr = target.split(":")
        return getattr(importlib.import_module(f"atocore.cli.{module}"), attr)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AtoCoreError as exc:
            raise click.ClickException(str(exc)) from None
        except BrokenPipeError:
            raise
        except OSError as exc:  # the environment, not a bug: say what and where, no traceback
            raise click.ClickException(environment_error(exc)) from None
        except UnicodeError as exc:
            raise click.ClickException(f"text that is not valid UTF-8 ({exc.reason}); AtoCore stores UTF-8 text "
                                       "only: check the arguments and the files given") from None


def environment_error(exc: OSError) -> str:
    """An OS error as a sentence a user can act on."""
    import errno

    where = f": {exc.filename}" if exc.filename else ""
    what = exc.strerror or str(exc)
    hints = {
        errno.EROFS: "the store is on a read-only file system; reading works, writing needs a writable mount",
        errno.EACCES: "permission denied; run as the store's owner or fix the permissions",
        errno.EPERM: "operation not permitted here",
        errno.ENOSPC: "no space left on the device; free some space and try again",
        errno.ENOENT: "a folder on the way does not exist or cannot hold files (e.g. /proc, /sys)",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EEXIST: "it already exists",
    }
    hint = hints.get(exc.errno or 0)
    return f"{what}{where}" + (f" ({hint})" if hint else "")


def _check_argv(args: list[str]) -> None:
    for i, arg in enumerate(args):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            click.echo(f"Error: argument {i + 1} ({shown!r}) is not valid UTF-8 text; AtoCore accepts "
                       "UTF-8 arguments only", err=True)
            sys.exit(1)


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


def _plugin_commands() -> None:
    from .capture_cmds import load_plugin_commands

    load_plugin_commands()


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    _check_argv(args)
    cli.main(args=args, prog_name="atocore")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
