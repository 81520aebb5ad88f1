"""Importing whole transcripts (``atocore import SOURCE PATH...``): one commit per file.

Each turn goes through the same validation and redaction as ``POST /interactions``
(:func:`atocore.capture.record.prepare_interaction`), and turns already stored (same id in
the same session) are skipped, so importing a file twice stores nothing the second time.
"""

from __future__ import annotations

from typing import Iterable

from ..config import load_config
from ..errors import ValidationError
from ..records import Interaction, interaction_path
from .record import _infer_project, find_interaction, prepare_interaction
from .sources import CaptureSource


def import_transcripts(store, source: CaptureSource, paths: Iterable[str], project: str | None = None) -> dict:
    cfg = load_config(store)
    report = {"created": 0, "existing": 0, "skipped": 0, "files": 0, "commits": [], "problems": []}
    for path in paths:
        try:
            turns = source.parse_transcript(str(path))
        except (OSError, ValueError) as exc:
            report["problems"].append(f"{path}: {exc}")
            continue
        report["files"] += 1
        prepared: list[Interaction] = []
        for n, turn in enumerate(turns, 1):
            if project:
                turn = {**turn, "project": project}
            try:
                inter = prepare_interaction(turn, cfg.redact_patterns)
                if inter.project is None:
                    inter.project = _infer_project(store, inter, None)
                prepared.append(inter)
            except ValidationError as exc:
                report["skipped"] += 1
                report["problems"].append(f"{path}: turn {n}: {exc}")
        if not prepared:
            continue
        with store.lock():
            changes: dict[str, bytes] = {}
            seen: set[tuple[str, str]] = set()
            new = 0
            for inter in prepared:
                key = (inter.session_id, inter.id)
                if key in seen or find_interaction(store, inter) is not None:
                    report["existing"] += 1
                    continue
                seen.add(key)
                p = interaction_path(inter)
                if p not in changes:
                    old = store.read(p) or b""
                    changes[p] = old if not old or old.endswith(b"\n") else old + b"\n"
                changes[p] += inter.dump_line()
                new += 1
            if new:
                sha = store.commit(changes, f"Import {new} {source.name} turn(s) from {_name(path)}\n\n"
                                            "Secrets redacted before commit.")
                report["commits"].append(sha)
                report["created"] += new
    return report


def _name(path) -> str:
    import os

    return os.path.basename(str(path))
