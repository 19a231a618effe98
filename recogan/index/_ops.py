# ruff: noqa: E741  (D, I: faiss's names for scores and ids)
"""Helpers of :class:`~recogan.index.ItemIndex`: a readers-writer lock, exclusion pairs,
exact top-k."""

from __future__ import annotations

import os
import threading

import numpy as np
import scipy.sparse as sp


class RWLock:
    """Many concurrent searches, one exclusive mutation (add/remove/compact)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    def read(self):
        return _Held(self, False)

    def write(self):
        return _Held(self, True)


class _Held:
    def __init__(self, lock: RWLock, write: bool) -> None:
        self.lock, self.write = lock, write

    def __enter__(self):
        c = self.lock._cond
        with c:
            if self.write:
                c.wait_for(lambda: not self.lock._writer and self.lock._readers == 0)
                self.lock._writer = True
            else:
                c.wait_for(lambda: not self.lock._writer)
                self.lock._readers += 1

    def __exit__(self, *exc):
        c = self.lock._cond
        with c:
            if self.write:
                self.lock._writer = False
            else:
                self.lock._readers -= 1
            c.notify_all()
        return False


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def pairs(exclude, B: int) -> tuple[np.ndarray, np.ndarray]:
    """(query row, id) pairs of an exclusion given as sparse rows or per-query id arrays."""
    if exclude is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if sp.issparse(exclude):
        m = sp.csr_matrix(exclude)
        if m.shape[0] != B:
            raise ValueError(f"exclude has {m.shape[0]} rows for {B} queries")
        rows = np.repeat(np.arange(B, dtype=np.int64), np.diff(m.indptr))
        return rows, m.indices.astype(np.int64)
    if len(exclude) != B:
        raise ValueError(f"exclude has {len(exclude)} entries for {B} queries")
    arrays = [np.asarray(e, dtype=np.int64).ravel() for e in exclude]
    rows = np.repeat(np.arange(B, dtype=np.int64), [len(a) for a in arrays])
    cols = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
    return rows, cols


def rows_of(exclude, rows: np.ndarray):
    if exclude is None:
        return None
    if sp.issparse(exclude):
        return sp.csr_matrix(exclude)[rows]
    return [exclude[r] for r in rows]


def top(scores: np.ndarray, ids: np.ndarray, k: int):
    """Best ``k`` columns per row (score desc, id asc), mapped to ``ids``, padded."""
    B, C = scores.shape
    kk = min(k, C)
    part = (
        np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        if kk < C
        else np.tile(np.arange(C), (B, 1))
    )
    ps = np.take_along_axis(scores, part, 1)
    order = np.lexsort((ids[part], -ps), axis=1)
    top = np.take_along_axis(part, order, 1)
    D = np.take_along_axis(ps, order, 1).astype(np.float32)
    I = np.where(np.isfinite(D), ids[top], -1).astype(np.int64)
    D = np.where(I >= 0, D, -np.inf).astype(np.float32)
    if kk < k:
        D = np.pad(D, ((0, 0), (0, k - kk)), constant_values=-np.inf)
        I = np.pad(I, ((0, 0), (0, k - kk)), constant_values=-1)
    return D, I
