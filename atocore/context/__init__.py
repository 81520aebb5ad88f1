"""Context build and output formats."""

from .build import DEFAULT_BUDGET, build_context, load_last_build, save_last_build
from .formats import OutputFormat, format_names, get_format, get_formats, render
from .model import ContextBuild, ContextItem

__all__ = ["DEFAULT_BUDGET", "build_context", "load_last_build", "save_last_build", "OutputFormat",
           "format_names", "get_format", "get_formats", "render", "ContextBuild", "ContextItem"]
