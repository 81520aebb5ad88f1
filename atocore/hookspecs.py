"""Hook specifications: the extension points of AtoCore.

Plugins are modules that implement some of these hooks with ``@atocore.hookimpl``. The
built-in ones (:mod:`atocore.default_plugins`) are always registered; third-party ones declare
an entry point in the ``atocore`` group. The ``register`` argument style follows llm's
plugins: a plugin calls ``register(thing)`` once per thing it provides.
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


@hookspec
def register_commands(cli, install, uninstall):
    """Add command-line pieces (click), like llm's ``register_commands``.

    ``cli`` is the ``atocore`` group (new top-level commands); ``install`` and ``uninstall``
    are the groups behind ``atocore install NAME`` / ``atocore uninstall NAME``, where an
    assistant's plugin adds the subcommand that wires AtoCore into that assistant:
    ``@install.command(name="my-assistant")``. An implementation takes only the arguments it
    needs.
    """
