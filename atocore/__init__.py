"""AtoCore: a self-hosted, git-native context engine and machine memory for LLM assistants."""

from .hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
