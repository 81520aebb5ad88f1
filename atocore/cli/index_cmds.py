"""``atocore index status|rebuild`` and ``atocore search``."""

from __future__ import annotations

import click

from . import echo_json, pass_state


@click.group()
def index() -> None:
    """The derived search index (rebuildable from the store at any time)."""


@index.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@pass_state
def status(state, as_json: bool) -> None:
    """Show which commit and model the index reflects, and whether it is stale or degraded."""
    from ..retrieval import open_retriever

    st = open_retriever(state.store).status()
    if as_json:
        echo_json(st)
        return
    c = st["counts"]
    click.echo(f"index commit: {st['commit'] or '-'}{'  (stale: main is ' + str(st['head']) + ')' if st['stale'] else ''}")
    click.echo(f"model:        {st['model']}" + (f"  DEGRADED: {st['degraded_reason']}" if st["degraded"] else ""))
    click.echo(f"entries:      {c['chunk']} chunks, {c['memory']} memories, {c['state']} state entries")
    click.echo(f"size on disk: {st['size_bytes'] / 1e6:.1f} MB")
    for bad in st["invalid"]:
        click.echo(f"invalid:      {bad['path']}: {bad['error']}")


@index.command("rebuild")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_state
def rebuild(state, as_json: bool) -> None:
    """Rebuild the index from main (a new index is swapped in when complete)."""
    from ..retrieval import open_retriever

    info = open_retriever(state.store).rebuild()
    if as_json:
        echo_json(info)
    else:
        click.echo(f"rebuilt at {info.get('commit')}: {info.get('chunks', 0)} entries from {info.get('files', 0)} files "
                   f"in {info['seconds']:.2f} s" + (f" ({info['invalid']} invalid files skipped)" if info.get("invalid") else ""))


@index.command("update")
@pass_state
def update(state) -> None:
    """Bring the index up to main (incremental when possible)."""
    from ..retrieval import open_retriever

    info = open_retriever(state.store).update()
    click.echo(f"{info['action']}: {info['reason']} ({info['seconds']:.3f} s)")


@click.command()
@click.argument("query")
@click.option("--project", default=None, help="Only this project's results.")
@click.option("-k", "k", type=click.IntRange(1, 200), default=10, show_default=True, help="How many results.")
@click.option("--json", "as_json", is_flag=True, help="Print the same object as POST /search.")
@pass_state
def search(state, query: str, project: str | None, k: int, as_json: bool) -> None:
    """Search memories, trusted state and source chunks."""
    from ..api import Api

    payload = Api.for_store(state.store).search(query, project=project, k=k)
    if as_json:
        echo_json(payload)
        return
    if not payload["hits"]:
        click.echo("no results")
    for n, h in enumerate(payload["hits"], 1):
        where = h["source"] + (f":{h['lines'][0]}-{h['lines'][1]}" if h.get("lines") else "")
        click.echo(f"{n:2}. [{h['kind']}] {h['project'] or '-'}  {where}  ({h['score']:.3f})")
        if h.get("title"):
            click.echo(f"    {h['title']}")
        snippet = " ".join(h["text"].split())
        click.echo(f"    {snippet[:200]}{'…' if len(snippet) > 200 else ''}")
