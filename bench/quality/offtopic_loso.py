"""Leave-one-set-out check of the stay-empty lines (issue 9 item 6), from offtopic_fit.py's dump.

For each set of the dump, the two lines of ``context.build._no_match`` (``coverage + 1.5 x known``
below LINE, or below NAMED when the prompt names something no chunk has) are chosen on the OTHER
sets (the most off-topic prompts left empty with at most CAP of their answerable prompts empty),
then scored on the left-out set. Also prints the shipped lines' figures per set.

Then the same for the store-calibrated line (``atocore/retrieval/calibration.py``): each store's
line is the QUANTILE of its own pseudo-query scores (``<dump>.pseudo.json``, the mean over three
samples), so the one number chosen on the other sets is the quantile, not a line.

    .venv/bin/python bench/quality/offtopic_fit.py --out /tmp/feat.json
    .venv/bin/python bench/quality/offtopic_loso.py /tmp/feat.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from atocore.context.build import NO_MATCH_BELOW, NO_MATCH_KNOWN_WEIGHT, NO_MATCH_NAMED_BELOW  # noqa: E402
from atocore.retrieval.calibration import QUANTILE, quantile  # noqa: E402

# prompts per set (off-topic, answerable): prompts naming a project never reach the decision, so
# the dump has fewer rows than the set has prompts
TOTALS = {"docs": (35, 136), "devset": (21, 170), "devset2": (21, 194)}
GRID = [round(0.8 + 0.05 * i, 2) for i in range(33)]  # 0.80 .. 2.40
QGRID = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1, 0.12, 0.15]


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
    side = Path(sys.argv[1]).with_suffix(".pseudo.json")
    if side.is_file():
        calibrated(rows, json.loads(side.read_text()), sets)


def calibrated(rows: list[dict], pseudo: dict, sets: list[str]) -> None:
    def line(s: str, q: float) -> float:
        return sum(quantile(v, q) for v in pseudo[s]["scores"]) / len(pseudo[s]["scores"])

    def emp(s: str, q: float) -> tuple[int, int]:  # as context.build: the store's line, at most the names line
        return empties([r for r in rows if r["set"] == s], min(line(s, q), NO_MATCH_NAMED_BELOW), NO_MATCH_NAMED_BELOW)

    def fmt(s: str, off: int, ans: int) -> str:
        return f"{off / TOTALS[s][0]:.0%} / {ans / TOTALS[s][1]:.1%}"

    print("\nstore-calibrated line (at most the names line, 1.8); line per set in brackets, before that cap")
    print("| quantile | " + " | ".join(f"{s} off-topic / answerable empty" for s in sets) + " |")
    print("|---" * (len(sets) + 1) + "|")
    for q in QGRID:
        print(f"| {q:.0%}{' (shipped)' if q == QUANTILE else ''} | "
              + " | ".join(f"{fmt(s, *emp(s, q))} ({line(s, q):.2f})" for s in sets) + " |")
    for cap in (0.01, 0.015, 0.02):
        cells = []
        for held in sets:
            others = [s for s in sets if s != held]
            answerable = sum(TOTALS[s][1] for s in others)
            best = None
            for q in QGRID:
                off = sum(emp(s, q)[0] for s in others)
                ans = sum(emp(s, q)[1] for s in others)
                if ans <= cap * answerable and (best is None or (off, -ans) > best[0]):
                    best = ((off, -ans), q)
            q = best[1] if best else QGRID[0]
            cells.append(f"{fmt(held, *emp(held, q))} (q {q:.0%})")
        print(f"| quantile chosen on the other sets, answerable-empty <= {cap:.1%} there | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
