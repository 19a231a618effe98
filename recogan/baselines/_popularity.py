"""Popularity: the same ranking for everyone, by distinct buyers (optionally recent ones)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recogan._config import require
from recogan.base import Model, recent_popularity


@dataclass
class PopularityConfig:
    #: Count only the last ``window_days`` of training (None: all of it). Ties fall back to
    #: all-time popularity.
    window_days: float | None = None

    def __post_init__(self) -> None:
        require(self, "window_days", gt=0, optional=True)


class Popularity(Model):
    name = "pop"
    Config = PopularityConfig

    @classmethod
    def search_space(cls) -> dict[str, list]:
        return {"window_days": [None, 7.0, 14.0, 30.0, 60.0, 120.0]}

    def _fit(self, train, valid) -> None:
        if self.config.window_days is None:
            self.scores_ = train.item_popularity().astype(np.float32)
        else:
            self.scores_ = recent_popularity(train, self.config.window_days).astype(np.float32)

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.scores_, (len(user_idx), self.n_items_))

    def score_histories(self, X, times=None) -> np.ndarray:
        return np.broadcast_to(self.scores_, (X.shape[0], self.n_items_))

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"scores": self.scores_}

    def set_state_arrays(self, arrays) -> None:
        self.scores_ = arrays["scores"].astype(np.float32)

    def place_items(self, catalog, prior: float | None = None):
        """New products have no sales, so they rank after every sold product: score 0 (or
        ``prior``), ties with unsold products broken by index, i.e. after the older ones."""
        m = len(catalog)
        score = 0.0 if prior is None else float(prior)
        if not np.isfinite(score):
            raise ValueError(f"prior must be a finite number, got {prior!r}")

        def commit() -> None:
            self.scores_ = np.concatenate([self.scores_, np.full(m, score, np.float32)])

        return commit
