"""A benchmark-only model of the contract: score = user vector · item vector, retrieved through
an exact :class:`~recogan.index.ItemIndex` with :func:`recogan.index.retrieve` (seen items
excluded inside the search), the retrieval every vector model of recogan uses.

Registered at run time as ``dot`` (``register()``); built directly from factor matrices by
``make_bundle`` so a million-user bundle needs no training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recogan.artifacts import save_model
from recogan.base import Model
from recogan.data import IdMap
from recogan.index import ItemIndex, retrieve
from recogan.registry import register as register_model


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
        seen = self.seen_[users] if exclude_seen else None
        return retrieve(self.index_, self.U_[users], n, exclude=seen, candidates=candidates)

    def state_arrays(self):
        return {"U": self.U_, "V": self.V_}

    def set_state_arrays(self, arrays) -> None:
        self.U_ = np.ascontiguousarray(arrays["U"], dtype=np.float32)
        self.V_ = np.ascontiguousarray(arrays["V"], dtype=np.float32)
        self.index_ = ItemIndex(kind="exact", device="cpu").build(self.V_)


def register() -> None:
    register_model("dot", "_dot_model:DotModel")


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
    save_model(m, path)
    return path
