"""Top-k selection over score rows, the one implementation behind every ranking.

:func:`top_k` picks the best ``k`` columns of each row (best first, deterministic ties);
:func:`topn` adds what ranking a catalog needs: seen-item exclusion and candidate lists.
Both return the contract's shapes: int64 items and float32 scores, ``(B, k)``, padded with
item ``-1`` and score ``-inf`` where fewer than ``k`` columns are eligible.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def top_k(
    scores: np.ndarray, k: int, ids: np.ndarray | None = None, *, ties_by_id: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` columns of each row of ``scores`` ``(B, C)``: ``(items, scores)``.

    Column ``c`` of row ``b`` stands for item ``ids[c]`` (1-D ``ids``), ``ids[b, c]`` (2-D) or
    ``c`` (no ``ids``). Equal scores are ordered by column, or by item id with ``ties_by_id``.
    Columns scored ``-inf`` are never returned: their slots, and slots beyond ``C``, hold item
    ``-1`` and score ``-inf``.
    """
    B, C = scores.shape
    kk = min(k, C)
    if kk < C:
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    else:
        part = np.broadcast_to(np.arange(C), (B, C)).copy()
    part_scores = np.take_along_axis(scores, part, 1)
    mapped = part if ids is None else _at(ids, part)
    order = np.lexsort((mapped if ties_by_id else part, -part_scores), axis=1)
    top_scores = np.take_along_axis(part_scores, order, 1).astype(np.float32)
    items = np.take_along_axis(mapped, order, 1)
    items = np.where(np.isfinite(top_scores), items, -1).astype(np.int64)
    top_scores = np.where(items >= 0, top_scores, -np.inf).astype(np.float32)
    if kk < k:
        items = np.pad(items, ((0, 0), (0, k - kk)), constant_values=-1)
        top_scores = np.pad(top_scores, ((0, 0), (0, k - kk)), constant_values=-np.inf)
    return items, top_scores


def _at(ids: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return ids[cols] if ids.ndim == 1 else np.take_along_axis(ids, cols, 1)


def topn(
    scores: np.ndarray,
    n: int,
    *,
    exclude: sp.csr_matrix | None = None,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n`` of dense score rows, best first, with seen-item exclusion and candidates.

    ``scores`` is ``(B, n_items)``; ``exclude`` a ``(B, n_items)`` sparse matrix whose non-zeros
    are removed; ``candidates`` a 1-D allow-list or a 2-D ``(B, C)`` per-row candidate array
    (``-1`` = padding). Results are deterministic for the same input (ties within the top-n are
    ordered by item index; among 2-D candidates, by their position in the row).
    Returns int64 items and float32 scores, ``(B, n)``, padded with ``-1`` / ``-inf``.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    B, n_items = scores.shape
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        rows = np.repeat(np.arange(B), np.diff(exclude.indptr))
        scores[rows, exclude.indices] = -np.inf
    if candidates is not None:
        cand = np.asarray(candidates, dtype=np.int64)
        if cand.ndim == 1:
            keep = np.full(n_items, -np.inf, dtype=np.float32)
            keep[cand] = 0.0
            scores += keep[None, :]
        else:
            if cand.shape[0] != B:
                raise ValueError(f"candidates has {cand.shape[0]} rows for {B} users")
            valid = cand >= 0
            sub = np.where(valid, np.take_along_axis(scores, np.maximum(cand, 0), 1), -np.inf)
            return top_k(sub.astype(np.float32), n, np.where(valid, cand, -1))
    return top_k(scores, n)
