"""A query made only of identifiers finds the right file, on the BM25 leg alone (degraded mode,
no model): snake_case, dotted, flags, paths, ``::``, CONFIG keys, camelCase, versions, and the
characters a query parser would take for syntax. File names and paths are searchable.

The distractor file repeats every identifier's parts as plain words, so the right file must win
on the identifier itself, not on its parts. Real store and real tantivy index.
"""

from __future__ import annotations

import pytest

from atocore import records
from atocore.retrieval import Retriever
from atocore.retrieval.fusion import FusionParams
from atocore.retrieval.lexical import identifiers

FILES = {
    "docs/printer/motion.md": "# Motion\n\n## Steppers\n\nThe rotation_distance setting is how far the axis travels per full turn of the stepper.\n",
    "docs/web/templates.md": "# Templates\n\nThe main_body block wraps the page content of every template.\n",
    "docs/config/dotted.md": "# Dotted keys\n\nSet foo.bar.baz to true to turn the cache on.\n",
    "docs/cli/flags.md": "# Flags\n\nPass --dry-run to print what would be deployed, without deploying.\n",
    "src/app/main.py": "def serve():\n    return start_server(port=8080)\n",
    "docs/cpp/containers.md": "# Containers\n\nThe sample buffer is a std::vector of floats, resized once at start.\n",
    "docs/kernel/options.md": "# Kernel options\n\nCONFIG_FOO_BAR enables the driver for the sensor board.\n",
    "docs/js/naming.md": "# Naming\n\nThe helper getUserName returns the display name of the signed-in person.\n",
    "docs/releases/changelog.md": "# Changelog\n\n## v1.2.3\n\nFixed the crash on resume from suspend.\n",
    "docs/net/retry.md": "# Retries\n\nretry_limit caps how many times a request is sent again before it fails.\n",
    "ops/deploy_checklist.md": "# Before a release\n\nTag the commit, build the image, announce the window.\n",
    "scripts/deploy.sh": "#!/bin/sh\nset -e\nrsync -a build/ host:/srv/site/\n",
}
# every part of every identifier above as plain prose, many times, in one long distractor file
PARTS = ("rotation distance main body foo bar baz dry run src app main py std vector config foo bar "
         "get user name version 1 2 3 v1 retry limit deploy checklist sh kernel options templates")
DISTRACTOR = "# Miscellany\n\n" + "\n\n".join(f"## Topic {i}\n\n{PARTS} and more {PARTS}." for i in range(8))

CASES = [  # (query, expected source)
    ("rotation_distance", "docs/printer/motion.md"),
    ("main_body", "docs/web/templates.md"),
    ("foo.bar.baz", "docs/config/dotted.md"),
    ("--dry-run", "docs/cli/flags.md"),
    ("src/app/main.py", "src/app/main.py"),
    ("main.py", "src/app/main.py"),
    ("std::vector", "docs/cpp/containers.md"),
    ("CONFIG_FOO_BAR", "docs/kernel/options.md"),
    ("getUserName", "docs/js/naming.md"),
    ("v1.2.3", "docs/releases/changelog.md"),
    ('"retry_limit"', "docs/net/retry.md"),
    ("(retry_limit)", "docs/net/retry.md"),
    ("retry_limit:", "docs/net/retry.md"),
    ("title:rotation_distance", "docs/printer/motion.md"),
    ("main_body AND", "docs/web/templates.md"),
    ("OR foo.bar.baz", "docs/config/dotted.md"),
    ("-CONFIG_FOO_BAR", "docs/kernel/options.md"),
    ("+std::vector", "docs/cpp/containers.md"),
    ("getUserName*", "docs/js/naming.md"),
    ("rotation_distance^2", "docs/printer/motion.md"),
    ("~v1.2.3", "docs/releases/changelog.md"),
    ("deploy_checklist", "ops/deploy_checklist.md"),  # named only by its file name
    ("deploy.sh", "scripts/deploy.sh"),
]


@pytest.fixture
def degraded(store, monkeypatch, tmp_path):
    state = records.ProjectState("tools", [
        records.StateEntry("fact", "build-command", "make release, then upload the wheel"),
        records.StateEntry("fact", "mirror-host", "files go to the mirror at night"),
    ])
    store.commit({**{f"sources/tools/{p}": t.encode() for p, t in FILES.items()},
                  "sources/tools/notes/misc.md": DISTRACTOR.encode(), state.path: state.dump()}, "seed")
    monkeypatch.setenv("ATOCORE_EMBED_MODEL", str(tmp_path / "no-such-model"))
    r = Retriever(store)
    assert r.status()["degraded"] is True
    return r


@pytest.mark.parametrize("query,expected", CASES, ids=[q for q, _ in CASES])
def test_identifier_query_finds_its_file_without_a_model(degraded, query, expected):
    hits = degraded.search(query, k=5)
    assert hits, f"{query!r} returned nothing"
    assert hits[0].source == expected, [h.source for h in hits]


@pytest.mark.parametrize("query,expected", CASES[:6], ids=[q for q, _ in CASES[:6]])
def test_bm25_leg_alone_finds_identifiers(degraded, query, expected):
    hits = degraded.search(query, k=5, fusion=FusionParams(method="bm25"))
    assert hits and hits[0].source == expected


def test_state_key_is_an_identifier(degraded):
    hits = degraded.search("build-command", k=3)
    assert hits and hits[0].source == "state/tools.yaml#build-command"


@pytest.mark.parametrize("text,expected", [
    ("see src/app/main.py.", ["src/app/main.py", "main.py"]),
    ("run --dry-run, then std::vector", ["dry-run", "std::vector"]),
    ("plain words only", []),
    ("camelCase and CONFIG_X and v1.2", ["camelcase", "config_x", "v1.2"]),
])
def test_identifier_extraction(text, expected):
    assert identifiers(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("machine.time_pulse_us timeout_us", ["machine.time_pulse_us", "timeout_us"]),
    ("React useEffect cleanup", ["useEffect"]),
    ("see src/app/main.py.", ["src/app/main.py"]),
    ("omega-3 and low-fat diets, --dry-run", []),  # hyphenated words are prose too
    ("what is 3.5 mm, e.g. a jack", []),
])
def test_code_identifiers(text, expected):
    from atocore.retrieval.lexical import code_identifiers

    assert code_identifiers(text) == expected


@pytest.fixture
def with_model(store):
    store.commit({**{f"sources/tools/{p}": t.encode() for p, t in FILES.items()},
                  "sources/tools/notes/misc.md": DISTRACTOR.encode()}, "seed")
    r = Retriever(store)
    r.update()
    assert r.status()["degraded"] is False
    return r


@pytest.mark.parametrize("query", ["rotation_distance of the stepper", "getUserName display", "foo.bar.baz cache"])
def test_a_code_identifier_query_is_ranked_by_bm25_alone(with_model, query):
    # a static model sees an identifier as word pieces; the BM25 leg has it whole (docs/retrieval.md)
    fused = [(h.id, round(h.score, 6)) for h in with_model.search(query, k=10)]
    bm25 = [(h.id, round(h.score, 6)) for h in with_model.search(query, k=10, fusion=FusionParams(method="bm25"))]
    assert fused == bm25
