"""Built-in AtoCore output formats: markdown (default), json and an XML-tagged form for Claude.

Always registered by :mod:`atocore.plugins` (a default plugin, like llm's), under the name ``formats``.
Every format renders an empty string (json: an empty item list) when the build has no items,
so an assistant is never handed padding.
"""

from __future__ import annotations

import json
from xml.sax.saxutils import escape, quoteattr

import atocore
from atocore.context.formats import OutputFormat


def _short(commit: str | None) -> str:
    return commit[:10] if commit else "-"


def _where(item) -> str:
    where = item.source
    if item.lines:
        where += f":{item.lines[0]}-{item.lines[1]}"
    return where


def render_markdown(build) -> str:
    if not build.items:
        return ""
    head = f"## AtoCore context" + (f" — project {build.project}" if build.project else "")
    out = [head, f"_store commit {_short(build.commit)}; each item cites its source._", ""]
    state, memories, chunks = build.section("state"), build.section("memory"), build.section("chunk")
    if state:
        out.append("### Trusted project state")
        for it in state:
            cat = it.meta.get("category", "")
            out.append(f"- **{it.meta.get('key', it.id)}** ({cat}): {it.text} `[{it.source}]`")
        out.append("")
    if memories:
        out.append("### Memories")
        for it in memories:
            mtype = it.meta.get("type", "")
            out.append(f"- {it.text} `[{it.source}{', ' + mtype if mtype else ''}]`")
        out.append("")
    if chunks:
        out.append("### Relevant sources")
        for it in chunks:
            title = f" — {it.title}" if it.title else ""
            out.append(f"#### `{_where(it)}`{title} (commit {_short(it.commit)})")
            out.append(it.text)
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def render_json(build) -> str:
    data = {
        "project": build.project,
        "commit": build.commit,
        "items": [
            {k: v for k, v in {
                "kind": it.section, "id": it.id, "source": it.source, "path": it.path,
                "lines": list(it.lines) if it.lines else None, "commit": it.commit,
                "title": it.title or None, "text": it.text, **it.meta,
            }.items() if v is not None}
            for it in build.items
        ],
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _attrs(**kw) -> str:
    return "".join(f" {k}={quoteattr(str(v))}" for k, v in kw.items() if v not in (None, ""))


def render_xml(build) -> str:
    """Tagged form: Claude reads XML-delimited documents reliably and can cite `source`."""
    if not build.items:
        return ""
    out = [f"<atocore_context{_attrs(project=build.project, commit=_short(build.commit))}>"]
    state, memories, chunks = build.section("state"), build.section("memory"), build.section("chunk")
    if state:
        out.append("<trusted_state>")
        for it in state:
            out.append(f"<entry{_attrs(key=it.meta.get('key'), category=it.meta.get('category'), source=it.source)}>"
                       f"{escape(it.text)}</entry>")
        out.append("</trusted_state>")
    if memories:
        out.append("<memories>")
        for it in memories:
            out.append(f"<memory{_attrs(type=it.meta.get('type'), source=it.source)}>{escape(it.text)}</memory>")
        out.append("</memories>")
    if chunks:
        out.append("<documents>")
        for i, it in enumerate(chunks, 1):
            lines = f"{it.lines[0]}-{it.lines[1]}" if it.lines else None
            out.append(f"<document{_attrs(index=i, source=it.source, lines=lines, title=it.title, commit=_short(it.commit))}>")
            out.append(escape(it.text))
            out.append("</document>")
        out.append("</documents>")
    out.append("</atocore_context>")
    return "\n".join(out) + "\n"


@atocore.hookimpl
def register_output_formats(register):
    register(OutputFormat("markdown", "Markdown sections: trusted state, memories, sources (default)",
                          "text/markdown", render_markdown))
    register(OutputFormat("json", "Compact JSON: project, commit and the items with provenance",
                          "application/json", render_json))
    register(OutputFormat("xml", "XML-tagged documents with source attributes, suited to Claude",
                          "application/xml", render_xml))
