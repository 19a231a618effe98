"""A benchmark-only model of the contract: score = user vector · item vector, retrieved with a
FAISS ``IndexFlatIP`` (the same search the ceiling measures), seen items filtered after search.

Registered at run time as ``dot`` (``register()``); built directly from factor matrices by
``make_bundle`` so a million-user bundle needs no training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recogan.base import Model, topn
from recogan.data import IdMap

#: Users with more seen items than this are scored densely instead of by a deep search.
HEAVY = 64


@dataclass
class DotConfig:
    #: Vector dimension (informational: the factors carry it).
    d: int = 64


class DotModel(Model):
    name = "dot"
    Config = DotConfig

    def _fit(self, train, valid) -> None:  # pragma: no cover - built by make_bundle
        raise NotImplementedError("DotModel is built from factors by make_bundle")

    def score_users(self, user_idx):
        return self.U_[user_idx] @ self.V_.T

    def recommend(self, user_idx, n=10, exclude_seen=True, candidates=None):
        users = self.check_users(user_idx)
        n = self.check_n(n, candidates)
        if candidates is not None:  # allow-lists take the dense path of the base class
            return super().recommend(users, n, exclude_seen, candidates)
        seen = self.seen_[users] if exclude_seen else None
        if seen is not None and users.size:
            # customers with long histories would need a deep search: score them densely
            counts = np.diff(seen.indptr)
            heavy = counts > HEAVY
            if heavy.any():
                items = np.empty((users.size, n), np.int64)
                scores = np.empty((users.size, n), np.float32)
                h, light = np.flatnonzero(heavy), np.flatnonzero(~heavy)
                items[h], scores[h] = topn(self.U_[users[h]] @ self.V_.T, n, exclude=seen[h])
                if light.size:
                    items[light], scores[light] = self._search(users[light], n, seen[light])
                return items, scores
        return self._search(users, n, seen)

    def _search(self, users, n, seen):
        B = users.size
        extra = int(np.diff(seen.indptr).max()) if seen is not None and B else 0
        k = min(n + extra, self.n_items_)
        D, I = self.index_.search(self.U_[users], k)  # noqa: E741  (B, k), best first
        drop = I < 0
        if seen is not None and seen.nnz:
            rows = np.repeat(np.arange(B, dtype=np.int64), np.diff(seen.indptr))
            seen_keys = rows * self.n_items_ + seen.indices
            keys = np.arange(B, dtype=np.int64)[:, None] * self.n_items_ + I
            drop |= np.isin(keys, seen_keys)
        order = np.argsort(drop, axis=1, kind="stable")[:, :n]  # keeps the search order
        items = np.take_along_axis(I, order, 1).astype(np.int64)
        scores = np.take_along_axis(D, order, 1).astype(np.float32)
        dropped = np.take_along_axis(drop, order, 1)
        items[dropped], scores[dropped] = -1, -np.inf
        if items.shape[1] < n:
            items = np.pad(items, ((0, 0), (0, n - k)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, n - k)), constant_values=-np.inf)
        return items, scores

    def state_arrays(self):
        return {"U": self.U_, "V": self.V_}

    def set_state_arrays(self, arrays) -> None:
        import faiss

        self.U_ = np.ascontiguousarray(arrays["U"], dtype=np.float32)
        self.V_ = np.ascontiguousarray(arrays["V"], dtype=np.float32)
        self.index_ = faiss.IndexFlatIP(self.V_.shape[1])
        self.index_.add(self.V_)


def register() -> None:
    from recogan.base import MODEL_REGISTRY

    MODEL_REGISTRY["dot"] = "_dot_model:DotModel"


def make_bundle(path, U, V, seen: sp.csr_matrix, user_ids=None, item_ids=None, name="synthetic"):
    """Save a DotModel bundle from factors ``U`` (users × d), ``V`` (items × d) and the
    seen-items matrix."""
    m = DotModel(d=int(U.shape[1]))
    m.users_ = IdMap(np.arange(U.shape[0]) if user_ids is None else user_ids)
    m.items_ = IdMap(np.arange(V.shape[0]) if item_ids is None else item_ids)
    m.n_users_, m.n_items_ = U.shape[0], V.shape[0]
    m.catalog_ = None
    m.seen_ = sp.csr_matrix(seen, dtype=np.float32)
    m.popularity_ = np.asarray(seen.sum(0), dtype=np.float64).ravel()
    m.fingerprint_ = f"{name}-{U.shape[0]}x{V.shape[0]}"
    m.dataset_name_ = name
    m.train_end_ = 0
    m.U_ = np.ascontiguousarray(U, dtype=np.float32)
    m.V_ = np.ascontiguousarray(V, dtype=np.float32)
    m.save(path)
    return path
