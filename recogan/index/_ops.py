"""Helpers of :class:`~recogan.index.ItemIndex`: a readers-writer lock, exclusion pairs."""

from __future__ import annotations

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
