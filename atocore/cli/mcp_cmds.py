"""``atocore mcp``: AtoCore's MCP tools over stdio, for assistants that start MCP servers (docs/mcp.md)."""

from __future__ import annotations

import os

import click

from . import pass_state

DEFAULT_URL = "http://127.0.0.1:8100"


@click.command("mcp")
@click.option("--url", default=None, help="The AtoCore service (default: $ATOCORE_URL, else " + DEFAULT_URL + ").")
@click.option("--mode", type=click.Choice(["auto", "service", "store"]), default="auto", show_default=True,
              help="auto: the service when it answers, else the store; service / store: only that one.")
@pass_state
def mcp(state, url: str | None, mode: str) -> None:
    """Serve AtoCore's MCP tools (search, context, project_state, list_projects, remember) on stdio.

    Answers come from the running service at --url / $ATOCORE_URL (writes send $ATOCORE_TOKEN),
    or, when it does not answer, straight from the store (--store / $ATOCORE_STORE). Stdout is
    the MCP wire: nothing else is printed there.
    """
    import logging

    logging.basicConfig(level=os.environ.get("ATOCORE_LOG_LEVEL", "WARNING"),
                        format="atocore mcp: %(levelname)s %(name)s: %(message)s")  # stderr
    from ..mcp.backends import AutoBackend
    from ..mcp.server import build_server

    url = url or os.environ.get("ATOCORE_URL") or DEFAULT_URL
    token = os.environ.get("ATOCORE_TOKEN") or None
    store = state.store_path
    if mode == "store" and not store:
        raise click.UsageError("--mode store needs --store or $ATOCORE_STORE")
    backend = AutoBackend(None if mode == "store" else url, None if mode == "service" else store, token=token)
    build_server(backend).run("stdio")
