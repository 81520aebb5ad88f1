"""The embedding model: model2vec ``StaticModel.from_pretrained(name_or_path)``.

Loading is attempted once per process and model name. A hub name is fetched with short
timeouts (and not at all when ``HF_HUB_OFFLINE`` is set); when nothing can be loaded the
failure is remembered, retrieval runs on BM25 alone and reports itself degraded. The query
path never tries to load a model.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_lock = threading.Lock()
_cache: dict[str, "Embedder | str"] = {}  # name -> Embedder, or the error message of a failed load


WORD_CACHE_MAX = 400_000


@dataclass
class Embedder:
    """Encodes text exactly as ``StaticModel.encode`` does (mean of token embeddings, normalised),
    but tokenizes each distinct whitespace-separated word once and caches its token ids.

    The BERT-style pre-tokenizers of model2vec models split on whitespace before anything else,
    so a word's tokens never depend on its neighbours; caching them makes encoding several times
    faster than tokenizing whole chunks, which is what bounds a full rebuild. Models with a
    token mapping or per-token weights, and texts longer than the model's ``max_length`` tokens,
    go through ``StaticModel.encode`` itself.
    """

    name: str
    model_id: str  # name plus a fingerprint of the weights: a changed model means a rebuild
    dims: int
    model: Any
    _table: Any = None
    _words: dict = field(default_factory=dict)
    _lock: Any = field(default_factory=threading.Lock)

    def _fast_ok(self) -> bool:
        m = self.model
        return getattr(m, "token_mapping", None) is None and getattr(m, "weights", None) is None

    def encode(self, texts: list[str], batch_size: int = 1024):
        import numpy as np

        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        if not self._fast_ok():
            vecs = np.asarray(self.model.encode(texts, batch_size=batch_size, use_multiprocessing=False,
                                                show_progress_bar=False), dtype=np.float32).reshape(len(texts), -1)
        else:
            vecs = self._encode_fast(texts)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vecs / norms

    def prepare(self) -> None:
        """Make the float32 token table the fast path reads (~0.15 s for a 30k-token model), so the
        first query does not pay for it."""
        import numpy as np

        if self._table is None and self._fast_ok():
            self._table = np.asarray(self.model.embedding, dtype=np.float32)

    def _encode_fast(self, texts: list[str]):
        import numpy as np
        from itertools import chain

        if self._table is None:
            self._table = np.asarray(self.model.embedding, dtype=np.float32)
        table = self._table
        splits = [t.split() for t in texts]
        words = self._words
        with self._lock:
            if len(words) > WORD_CACHE_MAX:
                words.clear()
            missing = list({w for ws in splits for w in ws if w not in words})
            if missing:
                unk = self.model.unk_token_id
                for w, enc in zip(missing, self.model.tokenizer.encode_batch_fast(missing, add_special_tokens=False)):
                    ids = enc.ids
                    words[w] = tuple(i for i in ids if i != unk) if unk is not None and unk in ids else tuple(ids)
            get = words.__getitem__
            id_lists = [list(chain.from_iterable(map(get, ws))) for ws in splits]
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        max_len = getattr(self.model, "max_length", None)
        long = []
        for i, ids in enumerate(id_lists):
            if max_len and len(ids) > max_len:
                long.append(i)
            elif ids:
                out[i] = table[ids].mean(axis=0)
        if long:
            out[long] = np.asarray(self.model.encode([texts[i] for i in long], use_multiprocessing=False),
                                   dtype=np.float32).reshape(len(long), -1)
        return out

    def forget_words(self) -> None:
        with self._lock:
            self._words.clear()

    def encode_query(self, text: str):
        return self.encode([text])[0]


def _fingerprint(folder: Path) -> str:
    h = hashlib.sha1()
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        p = folder / name
        if p.is_file():
            st = p.stat()
            h.update(f"{name}:{st.st_size}".encode())
            with p.open("rb") as f:  # head of each file: cheap, and differs for different weights
                h.update(f.read(1 << 16))
    return h.hexdigest()[:12]


def _set_fast_failure_defaults() -> None:
    # huggingface_hub reads these at import time; a home server without network must fail fast.
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "3")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")


def load_embedder(name: str) -> tuple["Embedder | None", str | None]:
    """(embedder, None) or (None, why it could not be loaded). Tried once per process and name."""
    with _lock:
        cached = _cache.get(name)
        if isinstance(cached, Embedder):
            return cached, None
        if isinstance(cached, str):
            return None, cached
        try:
            emb = _load_bounded(name)
        except Exception as exc:  # any failure means degraded, never a crash
            msg = f"embedding model {name!r} could not be loaded: {type(exc).__name__}: {exc}".splitlines()[0]
            _cache[name] = msg
            return None, msg
        _cache[name] = emb
        return emb, None


def _load_bounded(name: str) -> Embedder:
    """Load a local folder directly; give a hub download a hard deadline (a hung DNS lookup or
    connection is not covered by the HTTP timeouts), after which it counts as failed."""
    if Path(name).expanduser().is_dir():
        return _load(name)
    result: list = []

    def run() -> None:
        try:
            result.append(_load(name))
        except BaseException as exc:
            result.append(exc)

    t = threading.Thread(target=run, daemon=True, name="atocore-model-load")
    t.start()
    t.join(float(os.environ.get("ATOCORE_MODEL_LOAD_TIMEOUT", "60")))
    if not result:
        raise TimeoutError("model download did not finish in time (offline?)")
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def _load(name: str) -> Embedder:
    _set_fast_failure_defaults()
    folder = Path(name).expanduser()
    local = folder.is_dir()
    if not local and (name.startswith(("/", ".", "~")) or os.sep in name and name.count("/") != 1):
        raise FileNotFoundError(f"no model folder at {name}")
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(str(folder) if local else name)
    dims = int(model.dim) if hasattr(model, "dim") else int(model.embedding.shape[1])
    fp = _fingerprint(folder) if local else _hub_fingerprint(name)
    return Embedder(name=name, model_id=f"{name}@{fp}", dims=dims, model=model)


def _hub_fingerprint(name: str) -> str:
    try:
        from huggingface_hub import try_to_load_from_cache

        p = try_to_load_from_cache(name, "model.safetensors")
        if isinstance(p, str):
            return _fingerprint(Path(p).parent)
    except Exception:
        pass
    return "hub"


def forget(name: str | None = None) -> None:
    """Drop cached models (tests; or after an operator installs a model)."""
    with _lock:
        if name is None:
            _cache.clear()
        else:
            _cache.pop(name, None)
