"""Capture: turning assistant sessions into interaction records (redacted before commit).

Kept import-light on purpose: ``atocore hook ...`` runs on every prompt, so this package
imports nothing at the top level. Use the submodules:

- :mod:`atocore.redact` (the floor below every writer) - ``redact(text, extra_patterns=())``
- :mod:`atocore.capture.record` - ``record_interaction(store, data, retriever=None)`` (commits;
  the retriever is only searched, for project inference)
- :mod:`atocore.capture.sources` - the ``CaptureSource`` plugin type and finding one fast
- :mod:`atocore.capture.hook` - the hook runtime (``atocore hook NAME``), with
  :mod:`~atocore.capture.client` (its HTTP client), :mod:`~atocore.capture.spool` (turns kept
  for later) and :mod:`~atocore.capture.home` (``$ATOCORE_HOME``, the hook log)
- :mod:`atocore.capture.importer` - whole transcripts (``atocore import``)
- :mod:`atocore.capture.extract` - candidate memories proposed by the registered extractors
"""

from __future__ import annotations

from typing import Any

__all__ = ["record_interaction", "redact"]


def __getattr__(name: str) -> Any:  # lazy re-exports (PEP 562)
    if name == "redact":
        from ..redact import redact

        return redact
    if name == "record_interaction":
        from .record import record_interaction

        return record_interaction
    raise AttributeError(name)
