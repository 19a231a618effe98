"""Item-item similarity, one implementation for the service API (``similar_items``,
``explain``) and the evaluation (intra-list diversity): cosine of the model's item vectors when
it has them (searched through an :class:`~recogan.index.ItemIndex`), else co-purchase cosine
from its training matrix ``seen_``."""

from __future__ import annotations

import threading

import numpy as np
import scipy.sparse as sp

from recogan._topk import topn
from recogan.index import ItemIndex


class ItemSimilarity:
    reason = "similarity"

    @staticmethod
    def of(model, device: str = "auto", index_options: dict | None = None) -> ItemSimilarity:
        vectors = model.item_vectors()
        if vectors is None:
            return CoPurchase(model.seen_)
        return VectorSimilarity(vectors, device, index_options or {})

    def top(self, i: int, m: int, candidates: np.ndarray | None):
        """(items, scores) ``(1, m)``: items most similar to item ``i`` (itself excluded)."""
        raise NotImplementedError

    def between(self, i: int, items: np.ndarray) -> np.ndarray:
        """Similarity of item ``i`` to each of ``items``."""
        raise NotImplementedError

    def matrix(self, items: np.ndarray) -> np.ndarray:
        """Pairwise similarities ``(m, m)`` among ``items``."""
        raise NotImplementedError

    def pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Row-wise similarities ``(B, M)``: of item ``a[r]`` to each item of ``b[r]``
        (``a`` ``(B,)``, ``b`` ``(B, M)``; valid indices, callers mask their padding)."""
        raise NotImplementedError


class VectorSimilarity(ItemSimilarity):
    reason = "item-vector similarity"

    def __init__(self, vectors: np.ndarray, device: str, index_options: dict) -> None:
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim != 2:
            raise ValueError(f"item_vectors() must be 2-D (n_items, d), got shape {v.shape}")
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        self.v = np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)  # cosine
        self._device, self._index_options = device, index_options
        self._index = None
        self._lock = threading.Lock()

    @property
    def index(self):
        """Built on first use: evaluation needs only :meth:`matrix`."""
        with self._lock:
            if self._index is None:
                self._index = ItemIndex(device=self._device, **self._index_options).build(self.v)
        return self._index

    def top(self, i, m, candidates):
        D, I = self.index.search(self.v[i][None], m, exclude=[[i]], allowed=candidates)  # noqa: E741
        return I, D

    def between(self, i, items):
        return self.v[items] @ self.v[i]

    def matrix(self, items):
        V = self.v[items].astype(np.float64)
        return V @ V.T

    def pairs(self, a, b):
        return np.einsum("bmd,bd->bm", self.v[b], self.v[a])  # (B, M)

    def add(self, vectors: np.ndarray) -> None:
        """Append the vectors of new items (indices ``len(v)..``); not thread-safe with
        searches (the service API holds its catalogue write lock)."""
        v = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        v = np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
        with self._lock:
            n = len(self.v)
            self.v = np.vstack([self.v, v])
            if self._index is not None:
                self._index.add(v, np.arange(n, n + len(v)))


class CoPurchase(ItemSimilarity):
    """cos(i, j) = |buyers(i) ∩ buyers(j)| / sqrt(|buyers(i)| · |buyers(j)|)."""

    reason = "co-purchase cosine"

    def __init__(self, seen) -> None:
        self.X = seen.tocsr()
        self.Xc = seen.tocsc()
        self.deg = np.diff(self.Xc.indptr).astype(np.float64)

    def row(self, i: int) -> np.ndarray:
        buyers = self.Xc.indices[self.Xc.indptr[i] : self.Xc.indptr[i + 1]]
        co = np.asarray(self.X[buyers].sum(axis=0), dtype=np.float64).ravel()
        denom = np.sqrt(self.deg[i] * self.deg)
        cos = np.divide(co, denom, out=np.zeros_like(co), where=denom > 0)
        cos[i] = 0.0
        return cos

    def top(self, i, m, candidates):
        cos = self.row(i)
        scores = np.where(cos > 0, cos, -np.inf)[None, :]  # never-co-bought items are not similar
        return topn(scores, m, candidates=candidates)

    def between(self, i, items):
        return self.row(i)[items]

    def matrix(self, items):
        cols = self.Xc[:, items].astype(np.float64)
        co = (cols.T @ cols).toarray()
        n = np.sqrt(np.outer(self.deg[items], self.deg[items]))
        return np.divide(co, n, out=np.zeros_like(co), where=n > 0)

    def pairs(self, a, b):
        ua, ia = np.unique(a, return_inverse=True)
        ub, ib = np.unique(b, return_inverse=True)
        A = self.Xc[:, ua].astype(np.float64)
        co = (A.T @ self.Xc[:, ub].astype(np.float64)).toarray()  # (|ua|, |ub|)
        n = np.sqrt(np.outer(self.deg[ua], self.deg[ub]))
        cos = np.divide(co, n, out=np.zeros_like(co), where=n > 0)
        return cos[ia.reshape(-1, 1), ib.reshape(b.shape)]


#: Most dense similarity values :func:`neighbour_matrix` holds at once (float64: 256 MB).
BLOCK_VALUES = 32_000_000


def neighbour_matrix(X, k: int, shrinkage: float, block_size: int = 1024) -> sp.csr_matrix:
    """Item-kNN's similarity graph of the purchase matrix ``X`` (users x items, binary):
    sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrinkage), each row cut to its ``k``
    largest positive entries, an item never its own neighbour. ``(n_items, n_items)``
    float32 CSR, built ``block_size`` rows at a time, fewer on a catalogue so large that a
    block would pass ``BLOCK_VALUES`` values."""
    X = sp.csr_matrix(X, dtype=np.float64)
    co = (X.T @ X).tocsr()  # co-buyer counts, sparse (n_items, n_items)
    norms = np.sqrt(np.asarray(co.diagonal(), dtype=np.float64))
    n = X.shape[1]
    block_size = max(1, min(int(block_size), BLOCK_VALUES // max(n, 1)))
    k = min(int(k), n - 1) if n > 1 else 0
    rows, cols, vals = [], [], []
    for start in range(0, n if k else 0, block_size):
        block = co[start : start + block_size].toarray()
        idx = np.arange(start, start + block.shape[0])
        denom = norms[idx, None] * norms[None, :] + shrinkage
        sim = np.divide(block, denom, out=np.zeros_like(block), where=denom > 0)
        sim[np.arange(len(idx)), idx] = 0.0  # an item is not its own neighbour
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        top_sim = np.take_along_axis(sim, top, 1)
        keep = top_sim > 0
        rows.append(np.repeat(idx, k).reshape(-1, k)[keep])
        cols.append(top[keep])
        vals.append(top_sim[keep])

    def cat(parts, dt):
        return np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt)

    return sp.csr_matrix(
        (cat(vals, np.float32), (cat(rows, np.int64), cat(cols, np.int64))), shape=(n, n)
    )
