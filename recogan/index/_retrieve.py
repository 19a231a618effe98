"""Retrieval for models that rank by inner product with item vectors: one function turning an
:class:`~recogan.index.ItemIndex` search into the model contract's answer.

Used by every model whose ``recommend`` is a nearest-neighbour search (the GAN's query
vectors, the test suite's vector model, the benchmarks' dot-product model), so the contract's
options mean the same for all of them: seen items are excluded inside the search, a 1-D
allow-list restricts it, 2-D per-row candidate lists are scored exactly.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recogan._topk import top_k
from recogan.index._index import ItemIndex


def retrieve(
    index: ItemIndex,
    queries: np.ndarray,
    n: int,
    *,
    exclude: sp.csr_matrix | None = None,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` items with the largest inner product with each query row, best first.

    ``exclude``: a sparse ``(B, n_items)`` matrix of items to leave out per row (seen items).
    ``candidates``: None, a 1-D allow-list of item ids, or ``(B, C)`` per-row candidates
    (``-1`` pads), scored from the index's stored vectors (ties keep the row's order).
    Returns ``(items, scores)``: int64 and float32 ``(B, n)``, padded with ``-1`` / ``-inf``.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if candidates is not None and np.ndim(candidates) == 2:
        return _score_candidates(index, queries, n, exclude, np.asarray(candidates, np.int64))
    D, I = index.search(queries, n, exclude=exclude, allowed=candidates)  # noqa: E741
    return I, D


def _score_candidates(index, queries, n, exclude, cand):
    if cand.shape[0] != len(queries):
        raise ValueError(f"candidates has {cand.shape[0]} rows for {len(queries)} queries")
    valid = cand >= 0
    safe = np.where(valid, cand, index.ids[0])  # padding looks up any stored vector
    V = index.vectors(safe.ravel()).reshape(*cand.shape, -1)  # (B, C, d)
    scores = np.einsum("bd,bcd->bc", queries, V)  # (B, C)
    if exclude is not None:
        rows = np.repeat(np.arange(len(cand)), cand.shape[1])
        seen = np.asarray(sp.csr_matrix(exclude)[rows, safe.ravel()]).reshape(cand.shape)
        valid &= seen == 0
    scores = np.where(valid, scores, -np.inf).astype(np.float32)
    return top_k(scores, n, np.where(valid, cand, -1))
