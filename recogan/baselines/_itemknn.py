"""ItemKNN: item-item cosine similarity with shrinkage, top-k neighbours per item kept."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recogan._config import require
from recogan._similarity import neighbour_matrix
from recogan._sparse import csr_from_state, csr_state
from recogan.base import Model


@dataclass
class ItemKNNConfig:
    #: Neighbours kept per item (the rest of its similarity row is dropped).
    k: int = 100
    #: Shrinkage added to the cosine denominator: damps similarities backed by few co-buyers.
    shrinkage: float = 10.0
    #: Rows of the similarity matrix computed at once (bounds memory: block × n_items floats).
    block_size: int = 1024

    def __post_init__(self) -> None:
        require(self, "k", ge=1)
        require(self, "shrinkage", ge=0)
        require(self, "block_size", ge=1)


class ItemKNN(Model):
    """score(u, j) = Σ_{i ∈ history(u)} sim(i, j), where j is among i's ``k`` nearest items and
    sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrinkage)."""

    name = "itemknn"
    Config = ItemKNNConfig

    @classmethod
    def search_space(cls) -> dict[str, list]:
        # k chose 3, the old bottom, on Online Retail (issue 23): the grid runs down to 1
        return {
            "k": [1, 2, 3, 5, 10, 20, 50, 100, 200],
            "shrinkage": [0.0, 5.0, 20.0, 50.0, 100.0],
        }

    def _fit(self, train, valid) -> None:
        cfg = self.config
        if cfg.k <= 0:
            raise ValueError(f"ItemKNN k must be positive, got {cfg.k}")
        if cfg.shrinkage < 0:
            raise ValueError(f"ItemKNN shrinkage must be >= 0, got {cfg.shrinkage}")
        self.similarity_ = neighbour_matrix(self.seen_, cfg.k, cfg.shrinkage, cfg.block_size)

    def score_histories(self, X, times=None) -> np.ndarray:
        return np.asarray((sp.csr_matrix(X) @ self.similarity_).toarray(), dtype=np.float32)

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return self.score_histories(self.seen_[user_idx])

    def state_arrays(self) -> dict[str, np.ndarray]:
        return csr_state("sim", self.similarity_)

    def set_state_arrays(self, arrays) -> None:
        self.similarity_ = csr_from_state(arrays, "sim", (self.n_items_, self.n_items_))
