"""The abstract model contract itself: declared hooks and their defaults, the registry,
fitting state, and the fit-for-serving procedure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from recogan import registry
from recogan.base import Model
from recogan.baselines import EASE, Popularity
from recogan.fitting import (
    DEFAULT_SCORER,
    FoldFits,
    combine_refit,
    fit_folds,
    fit_for_serving,
    holdout,
)
from recogan.metrics import validation_ndcg


@dataclass
class KnobConfig:
    draws: int = 1
    blend: float = 0.0
    fail: bool = False


class Knobs(Popularity):
    """Popularity with a declared noise knob and trade-off knob (neither does anything)."""

    name = "knobs"
    Config = KnobConfig

    @classmethod
    def noise_draws_param(cls):
        return "draws"

    @classmethod
    def tradeoff_param(cls):
        return "blend", [0.0, 1.0]

    def _fit(self, train, valid):
        if self.config.fail:
            raise RuntimeError("fit failed")
        self.scores_ = train.item_popularity().astype(np.float32)


def test_model_is_abstract():
    class NoFit(Model):
        Config = KnobConfig

    with pytest.raises(TypeError, match="abstract"):
        NoFit()


def test_hook_defaults():
    m = EASE()
    assert m.noise_draws_param() is None and m.tradeoff_param() is None
    assert m.recommend_params() == () and m.early_stopping_params == ()
    assert m.refit_params() == {"lam": 200.0}
    with pytest.raises(ValueError, match="no recommend-time setting"):
        m.set_recommend_params(lam=1.0)  # a training setting is not a knob


def test_declared_knobs_are_recommend_params(clustered):
    m = Knobs().fit(clustered)
    assert m.recommend_params() == ("draws", "blend")
    m.set_recommend_params(draws=4, blend=1.0)
    assert (m.config.draws, m.config.blend) == (4, 1.0)


def test_a_failed_fit_leaves_no_fitted_model(clustered):
    m = Knobs(fail=True)
    with pytest.raises(RuntimeError, match="fit failed"):
        m.fit(clustered)
    assert not m.is_fitted


def test_fit_passes_the_scorer(clustered_split):
    seen = []

    class Scored(Popularity):
        def _fit(self, train, valid):
            super()._fit(train, valid)
            seen.append(self.validation_score(valid))

    Scored().fit(clustered_split.train, clustered_split.valid, scorer=lambda m, v: 0.25)
    # the default is fitting's (mean NDCG@10): the contract itself has none
    fits = fit_folds(Scored, {}, [(clustered_split.train, clustered_split.valid)])
    assert seen[0] == 0.25 and 0.0 <= seen[1] <= 1.0 and seen[1] != 0.25
    assert fits.scores == [seen[1]] and DEFAULT_SCORER is validation_ndcg
    with pytest.raises(ValueError, match="no scorer"):
        Scored().fit(clustered_split.train, clustered_split.valid)


def test_registry_register_and_look_up(monkeypatch):
    monkeypatch.setattr(registry, "MODEL_REGISTRY", dict(registry.MODEL_REGISTRY))
    registry.register("knobs", Knobs)
    assert registry.MODEL_REGISTRY["knobs"] == "tests.test_base:Knobs"
    assert registry.model_class("knobs") is Knobs
    assert registry.model_class("Knobs") is Knobs  # by class name too
    with pytest.raises(ValueError, match="unknown model"):
        registry.model_class("nope")
    with pytest.raises(ValueError, match="module:Class"):
        registry.register("bad", "no-colon")


def test_fit_for_serving_without_early_stopping_fits_once(clustered):
    folds = holdout(clustered, 0.1)
    train, valid = folds[0]
    assert train.times.max() <= valid.times.min()
    model, fits = fit_for_serving(EASE, {"lam": 50.0}, clustered, folds)
    assert fits.scores == [] and fits.refit == {"lam": 50.0}  # EASE does not early-stop
    assert model.config.lam == 50.0 and model.seen_.nnz == clustered.csr().nnz


def test_fit_for_serving_uses_given_fold_results(clustered):
    model, fits = fit_for_serving(
        EASE, {"lam": 50.0}, clustered, fitted=FoldFits([0.1], {"lam": 7.0})
    )
    assert model.config.lam == 7.0 and fits.scores == [0.1]


def test_combine_refit_takes_the_median_of_what_differs():
    got = combine_refit(
        [{"epochs": 3, "lr": 0.1}, {"epochs": 8, "lr": 0.1}, {"epochs": 4, "lr": 0.1}]
    )
    assert got == {"epochs": 4, "lr": 0.1}
