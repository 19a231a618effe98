"""EASE (Steck, WWW 2019): a closed-form linear item-item model with a zero diagonal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from recogan._config import require
from recogan.base import Model


@dataclass
class EASEConfig:
    #: L2 penalty λ on the item-item weights (larger: smoother, more popularity-like).
    lam: float = 200.0

    def __post_init__(self) -> None:
        require(self, "lam", gt=0)


class EASE(Model):
    """B = I - P · diag(1 / diag(P)) with P = (XᵀX + λI)⁻¹, so diag(B) = 0; score = x_u B.

    The fit inverts an ``n_items × n_items`` matrix: fine up to ~20k items (memory n_items²)."""

    name = "ease"
    Config = EASEConfig

    @classmethod
    def search_space(cls) -> dict[str, list]:
        # λ chose 20,000, the old top, on MovieLens-1M (issue 23): the grid runs to 1e5
        return {
            "lam": [
                100.0,
                200.0,
                500.0,
                1000.0,
                2000.0,
                5000.0,
                10000.0,
                20000.0,
                50000.0,
                100000.0,
            ]
        }

    def _fit(self, train, valid) -> None:
        if self.config.lam <= 0:
            raise ValueError(f"EASE lam must be positive, got {self.config.lam}")
        X = self.seen_
        G = (X.T @ X).toarray().astype(np.float64)
        G[np.diag_indices_from(G)] += self.config.lam
        # G is symmetric positive definite: invert through its Cholesky factor
        c, low = scipy.linalg.cho_factor(G, overwrite_a=True, check_finite=False)
        P = scipy.linalg.cho_solve((c, low), np.eye(len(G)), check_finite=False)
        B = -P / np.diag(P)[None, :]
        B[np.diag_indices_from(B)] = 0.0
        self.weights_ = B.astype(np.float32)

    def score_histories(self, X, times=None) -> np.ndarray:
        return np.asarray(X @ self.weights_, dtype=np.float32)

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return self.score_histories(self.seen_[user_idx])

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_}

    def set_state_arrays(self, arrays) -> None:
        self.weights_ = arrays["weights"].astype(np.float32)
