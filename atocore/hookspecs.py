"""Hook specifications: the extension points of AtoCore.

Plugins (built-in ones under ``plugins/`` and third-party ones alike) are packages that
declare an entry point in the ``atocore`` group and implement some of these hooks with
``@atocore.hookimpl``. The ``register`` argument style follows llm's plugins: a plugin calls
``register(thing)`` once per thing it provides.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("atocore")
hookimpl = pluggy.HookimplMarker("atocore")


@hookspec
def register_output_formats(register):
    """Register context output formats: call ``register(OutputFormat(...))``.

    ``OutputFormat`` lives in :mod:`atocore.context.formats`; its ``render(build)`` turns a
    context build into the text handed to the assistant.
    """


@hookspec
def register_capture_sources(register):
    """Register capture sources: call ``register(CaptureSource(...))``.

    ``CaptureSource`` lives in :mod:`atocore.capture.sources`; it turns an assistant's hook
    payload or transcript into interaction records.
    """


@hookspec
def register_extractors(register):
    """Register candidate-memory extractors: call ``register(Extractor(...))``.

    ``Extractor`` lives in :mod:`atocore.capture.extract`; it proposes candidate memories
    from a captured interaction.
    """
