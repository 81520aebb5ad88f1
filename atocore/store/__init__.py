"""The git-native store: truth for everything AtoCore knows."""

from .repo import MAIN, REVIEW_PREFIX, Change, CommitInfo, Store
from .setup import init_store, open_store

__all__ = ["MAIN", "REVIEW_PREFIX", "Change", "CommitInfo", "Store", "init_store", "open_store"]
