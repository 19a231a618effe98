"""A small test-only model with item vectors: truncated SVD of the purchase matrix, retrieval
through an ItemIndex. It exercises the service API's vector paths (index search, item-vector
similarity) without depending on the GAN."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from recogan.base import Model
from recogan.index import ItemIndex, retrieve
from recogan.registry import MODEL_REGISTRY


@dataclass
class VectorModelConfig:
    #: factors kept
    dim: int = 8
    #: index kind for retrieval
    kind: str = "exact"
    seed: int = 0


class VectorModel(Model):
    name = "vector"
    Config = VectorModelConfig

    def _fit(self, train, valid) -> None:
        X = self.seen_.toarray()
        _, s, vt = np.linalg.svd(X, full_matrices=False)
        items = vt[: self.config.dim].T * np.sqrt(s[: self.config.dim])
        self.item_vecs_ = _unit(items).astype(np.float32)
        self.user_vecs_ = _unit(X @ self.item_vecs_).astype(np.float32)
        self._build()

    def _build(self) -> None:
        self.index_ = ItemIndex(kind=self.config.kind, device="cpu").build(self.item_vecs_)

    def item_vectors(self):
        return self.item_vecs_

    def score_users(self, user_idx):
        return self.user_vecs_[user_idx] @ self.item_vecs_.T

    def score_histories(self, X, times=None):
        return _unit(X @ self.item_vecs_) @ self.item_vecs_.T

    def recommend(self, user_idx, n=10, exclude_seen=True, candidates=None):
        users = self.check_users(user_idx)
        n = self.check_n(n, candidates)
        exclude = self.seen_[users] if exclude_seen else None
        return retrieve(
            self.index_, self.user_vecs_[users], n, exclude=exclude, candidates=candidates
        )

    def state_arrays(self):
        return {"item_vecs": self.item_vecs_, "user_vecs": self.user_vecs_}

    def set_state_arrays(self, arrays):
        self.item_vecs_ = arrays["item_vecs"]
        self.user_vecs_ = arrays["user_vecs"]

    # the index travels in the bundle (hashed and verified with the other files)
    def write_files(self, directory):
        self.index_.save(directory, "index")

    def read_files(self, directory):
        self.index_ = ItemIndex.load(directory, "index", device="cpu")


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


@pytest.fixture(autouse=True)
def vector_model_registered(monkeypatch):
    """Import this fixture into a test module to make bundles of VectorModel loadable."""
    monkeypatch.setitem(MODEL_REGISTRY, "vector", "tests.vector_model:VectorModel")
