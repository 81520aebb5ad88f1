"""Output formats are pluggy plugins: built-ins always registered, third parties through an entry point."""

from __future__ import annotations

import json
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from atocore.context import ContextBuild, ContextItem, get_formats, render
from atocore.errors import ValidationError
from atocore.plugins import plugin_names, reset_plugin_manager


def sample_build() -> ContextBuild:
    b = ContextBuild(prompt="how is the mirror polished?", project="p04", commit="a" * 40, budget_chars=2000)
    b.items = [
        ContextItem("state", "p04:focus", "Finish <metrology> & alignment", "state/p04.yaml#focus",
                    "state/p04.yaml", "a" * 40, "p04", meta={"category": "focus", "key": "focus"}),
        ContextItem("memory", "01ABC", "Prefers cerium oxide", "memories/01ABC.md", "memories/01ABC.md",
                    "a" * 40, "p04", meta={"type": "preference"}),
        ContextItem("chunk", "c1", "The mirror is polished on a pitch lap.", "docs/polishing.md",
                    "sources/p04/docs/polishing.md", "a" * 40, "p04", title="Polishing", lines=(1, 3)),
    ]
    return b


def test_builtin_formats_always_registered():
    formats = get_formats()
    assert {"markdown", "json", "xml"} <= set(formats)
    assert "formats" in plugin_names() or any("atocore_formats" in n for n in plugin_names())


def test_markdown_is_default_and_orders_sections():
    text = render(sample_build())
    assert text == render(sample_build(), "markdown")
    assert text.index("Trusted project state") < text.index("Memories") < text.index("Relevant sources")
    assert "`[state/p04.yaml#focus]`" in text and "docs/polishing.md:1-3" in text


def test_json_format_is_valid_json_with_provenance():
    data = json.loads(render(sample_build(), "json"))
    assert data["project"] == "p04"
    assert [i["kind"] for i in data["items"]] == ["state", "memory", "chunk"]
    assert data["items"][2]["lines"] == [1, 3] and data["items"][2]["path"] == "sources/p04/docs/polishing.md"


def test_xml_format_parses_and_escapes():
    root = ET.fromstring(render(sample_build(), "xml"))
    assert root.tag == "atocore_context" and root.get("project") == "p04"
    entry = root.find("trusted_state/entry")
    assert entry.text == "Finish <metrology> & alignment" and entry.get("source") == "state/p04.yaml#focus"
    doc = root.find("documents/document")
    assert doc.get("source") == "docs/polishing.md" and doc.get("lines") == "1-3"


def test_empty_build_renders_empty_supplement():
    empty = ContextBuild(prompt="x", project=None)
    assert render(empty, "markdown") == "" and render(empty, "xml") == ""
    assert json.loads(render(empty, "json"))["items"] == []


def test_unknown_format_names_the_allowed_ones():
    with pytest.raises(ValidationError) as exc:
        render(sample_build(), "yaml")
    assert exc.value.field == "format" and {"markdown", "json", "xml"} <= set(exc.value.allowed)


def test_third_party_format_plugin_installs_through_an_entry_point(tmp_path, monkeypatch):
    site = tmp_path / "site"
    pkg = site / "atocore_shout"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        import atocore
        from atocore.context.formats import OutputFormat

        def _render(build):
            return " | ".join(item.text.upper() for item in build.items)

        @atocore.hookimpl
        def register_output_formats(register):
            register(OutputFormat("shout", "Upper-case one-liner", "text/plain", _render))
    """))
    dist = site / "atocore_shout-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: atocore-shout\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[atocore]\nshout = atocore_shout\n")
    monkeypatch.syspath_prepend(str(site))
    reset_plugin_manager()
    try:
        assert "shout" in get_formats()
        assert render(sample_build(), "shout").startswith("FINISH <METROLOGY>")
        assert "markdown" in get_formats()  # the built-ins are still there
    finally:
        monkeypatch.undo()
        sys.modules.pop("atocore_shout", None)
        reset_plugin_manager()
    assert "shout" not in get_formats()


@pytest.mark.parametrize("how", ["ATOCORE_DISABLE_PLUGINS", "no entry points (a checkout never installed)"])
def test_builtins_survive_disabled_plugins_and_an_uninstalled_checkout(how, monkeypatch, tmp_path):
    import importlib.metadata

    from atocore.capture.extract import extractors
    from atocore.capture.sources import source_names

    monkeypatch.setenv("ATOCORE_HOME", str(tmp_path))
    if how == "ATOCORE_DISABLE_PLUGINS":
        monkeypatch.setenv("ATOCORE_DISABLE_PLUGINS", "1")
    else:
        monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])
    reset_plugin_manager()
    try:
        assert {"markdown", "json", "xml"} <= set(get_formats())
        assert source_names() == ["claude-code", "openclaw"]
        assert "signals" in [e.name for e in extractors()]
    finally:
        monkeypatch.undo()
        reset_plugin_manager()


def test_a_plugin_that_raises_is_reported_by_name_and_the_others_still_load(tmp_path, monkeypatch, caplog):
    site = tmp_path / "site"
    pkg = site / "atocore_broken"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        import atocore

        @atocore.hookimpl
        def register_output_formats(register):
            raise RuntimeError("half-written plugin")
    """))
    dist = site / "atocore_broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: atocore-broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[atocore]\nbroken = atocore_broken\n")
    monkeypatch.syspath_prepend(str(site))
    reset_plugin_manager()
    try:
        with caplog.at_level("WARNING", logger="atocore.plugins"):
            assert {"markdown", "json", "xml"} <= set(get_formats())
        assert any("'broken'" in r.getMessage() and "half-written plugin" in r.getMessage() for r in caplog.records)
    finally:
        monkeypatch.undo()
        sys.modules.pop("atocore_broken", None)
        reset_plugin_manager()
