"""Leave-one-set-out check of the stay-empty lines (issue 9 item 6), from offtopic_fit.py's dump.

For each set of the dump, the two lines of ``context.build._no_match`` (``coverage + 1.5 x known``
below LINE, or below NAMED when the prompt names something no chunk has) are chosen on the OTHER
sets (the most off-topic prompts left empty with at most CAP of their answerable prompts empty),
then scored on the left-out set. Also prints the shipped lines' figures per set.

    .venv/bin/python bench/quality/offtopic_fit.py --out /tmp/feat.json
    .venv/bin/python bench/quality/offtopic_loso.py /tmp/feat.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from atocore.context.build import NO_MATCH_BELOW, NO_MATCH_KNOWN_WEIGHT, NO_MATCH_NAMED_BELOW  # noqa: E402

# prompts per set (off-topic, answerable): prompts naming a project never reach the decision, so
# the dump has fewer rows than the set has prompts
TOTALS = {"docs": (35, 136), "devset": (21, 170), "devset2": (21, 194)}
GRID = [round(0.8 + 0.05 * i, 2) for i in range(33)]  # 0.80 .. 2.40


def score(r: dict) -> float:
    return r["f"]["coverage"] + NO_MATCH_KNOWN_WEIGHT * r["f"]["known"]


def empties(rows: list[dict], line: float, named: float) -> tuple[int, int]:
    e = [r for r in rows if score(r) < (named if r["f"]["names"] else line)]
    return sum(r["off"] for r in e), sum(not r["off"] for r in e)


def fit(rows: list[dict], cap: float) -> tuple[float, float]:
    answerable = sum(TOTALS[s][1] for s in {r["set"] for r in rows})
    best = None
    for a in GRID:
        for b in (x for x in GRID if x >= a):
            off, ans = empties(rows, a, b)
            if ans <= cap * answerable:
                key = (off, -ans, -abs(a - NO_MATCH_BELOW) - abs(b - NO_MATCH_NAMED_BELOW))
                if best is None or key > best[0]:
                    best = (key, a, b)
    return best[1], best[2]


def main() -> None:
    rows = json.loads(Path(sys.argv[1]).read_text())
    sets = [s for s in TOTALS if any(r["set"] == s for r in rows)]

    def fmt(s: str, off: int, ans: int) -> str:
        return f"{off / TOTALS[s][0]:.0%} / {ans / TOTALS[s][1]:.1%}"

    print(f"| lines | " + " | ".join(f"{s} off-topic / answerable empty" for s in sets) + " |")
    print("|---" * (len(sets) + 1) + "|")
    print(f"| shipped {NO_MATCH_BELOW} / {NO_MATCH_NAMED_BELOW} | "
          + " | ".join(fmt(s, *empties([r for r in rows if r["set"] == s], NO_MATCH_BELOW, NO_MATCH_NAMED_BELOW))
                       for s in sets) + " |")
    for cap in (0.01, 0.015, 0.02):
        cells = []
        for held in sets:
            a, b = fit([r for r in rows if r["set"] != held], cap)
            cells.append(f"{fmt(held, *empties([r for r in rows if r['set'] == held], a, b))} ({a} / {b})")
        print(f"| fitted on the other sets, answerable-empty <= {cap:.1%} there | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
