"""Hybrid retrieval derived from the store: tantivy BM25 + usearch vectors over model2vec.

See ``docs/retrieval.md``. Heavy libraries (tantivy, usearch, model2vec, numpy) are imported
inside functions, so importing this package is cheap.
"""

from .chunking import Chunk, chunks_for_file, split_document
from .fusion import DEFAULT as DEFAULT_FUSION
from .fusion import FusionParams
from .hits import Hit
from .retriever import KINDS, Retriever, open_retriever

__all__ = ["Chunk", "chunks_for_file", "split_document", "FusionParams", "DEFAULT_FUSION", "KINDS", "Hit",
           "Retriever", "open_retriever"]
