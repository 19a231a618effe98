"""A small deterministic personalised model for the batch tests (registered as ``cooc``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from recogan.base import Model


@dataclass
class CoocConfig:
    #: Deterministic "noise draws": the per-item jitter is the mean of this many seeded draws,
    #: so the setting changes the ranking the way a generator's noise draws would.
    n_draws: int = 1
    #: Seconds slept per ``score_users`` call (crash tests: a run long enough to be killed).
    delay: float = 0.0


class Cooc(Model):
    """Scores = the user's history × item co-occurrence, plus a tiny seeded jitter."""

    name = "cooc"
    Config = CoocConfig

    @classmethod
    def noise_draws_param(cls):
        return "n_draws"

    def _fit(self, train, valid) -> None:
        X = self.seen_.astype(np.float32)
        C = (X.T @ X).toarray()
        np.fill_diagonal(C, 0.0)
        self.C_ = C.astype(np.float32)

    def score_users(self, user_idx):
        if self.config.delay:
            time.sleep(self.config.delay)
        jitter = np.mean(
            [np.random.default_rng(d).random(self.n_items_) for d in range(self.config.n_draws)],
            axis=0,
        )
        S = np.asarray(self.seen_[user_idx] @ self.C_)
        return (S + 0.01 * jitter[None, :]).astype(np.float32)

    def state_arrays(self):
        return {"C": self.C_}

    def set_state_arrays(self, arrays) -> None:
        self.C_ = arrays["C"].astype(np.float32)


def register() -> None:
    from recogan.registry import MODEL_REGISTRY

    MODEL_REGISTRY["cooc"] = "tests.batch_models:Cooc"
