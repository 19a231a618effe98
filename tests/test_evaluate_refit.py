"""The final refit on train + valid uses what early stopping learned (``refit_params``)."""

from dataclasses import dataclass

import pytest

from recogan.baselines import Popularity
from recogan.evaluate import evaluate
from recogan.registry import MODEL_REGISTRY

FITS: list[tuple[int, bool]] = []


@dataclass
class EarlyStoppingConfig:
    epochs: int = 20
    window_days: float | None = None
    seed: int = 0


class EarlyStopping(Popularity):
    """Popularity that 'early-stops' at epoch 3 when given a validation split."""

    name = "early"
    Config = EarlyStoppingConfig

    @classmethod
    def search_space(cls):
        return {"window_days": [None, 30.0]}

    def _fit(self, train, valid):
        FITS.append((self.config.epochs, valid is not None))
        self.best_epoch_ = 3 if valid is not None else self.config.epochs
        super()._fit(train, valid)

    def refit_params(self):
        return {**self.params(), "epochs": self.best_epoch_}


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(MODEL_REGISTRY, "early", f"{__name__}:EarlyStopping")
    FITS.clear()


@pytest.mark.parametrize("tune", [True, False])
def test_final_fit_uses_early_stopped_epochs(registered, clustered, tune):
    report = evaluate(clustered, models=["early"], tune=tune, budget=2, show_progress=False)
    final = FITS[-1]
    assert final == (3, False)  # refit without valid, for the epochs early stopping chose
    assert all(valid for _, valid in FITS[:-1])  # every earlier fit early-stopped on valid
    assert report.params["early"]["epochs"] == 3
