"""Fitting a model for use: early-stop on validation windows, then refit on everything.

A model that early-stops (``early_stopping_params``, e.g. the GAN's epochs) learns some of its
settings from a validation window, and a model for serving or for the test period must be
fitted on all the data, leaving no window to stop on. The procedure, shared by
``recogan train`` and the tuner of ``recogan evaluate``:

1. :func:`fit_folds`: fit on each fold's training part with its validation part passed for
   early stopping, and score that part (NDCG@10 unless told otherwise);
2. :func:`combine_refit`: one setting from the folds' ``refit_params()`` (the median epochs);
3. :func:`fit_for_serving`: refit on all the data with those settings, no validation.

Folds are ``(train_k, valid_k)`` pairs: :attr:`recogan.data.Split.folds` (rolling-origin
validation), or :func:`holdout` (the latest share of the interactions, as ``recogan train``
uses).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from recogan.base import Model, Scorer
from recogan.data import Dataset, temporal_split
from recogan.metrics import validation_ndcg

log = logging.getLogger(__name__)

Fold = tuple[Dataset, Dataset]

#: How a model that early-stops judges itself on a validation window unless told otherwise:
#: mean NDCG@10 (:func:`recogan.metrics.validation_ndcg`). Fitting and tuning pass it to
#: ``Model.fit(train, valid, scorer=)``; the contract (:mod:`recogan.base`) has no default.
DEFAULT_SCORER: Scorer = validation_ndcg


@dataclass
class FoldFits:
    """What fitting on the validation folds found."""

    #: The validation score of each fold (folds in the order given; NaN where none).
    scores: list[float]
    #: Settings to refit on all the data: the folds' ``refit_params()`` combined.
    refit: dict
    #: Seconds spent fitting (not scoring).
    seconds: float = 0.0
    #: The fitted fold models (only when asked for: ``keep_models=True``).
    models: list[Model] = field(default_factory=list, repr=False)


def holdout(data: Dataset, valid_frac: float) -> list[Fold]:
    """One fold: all but the latest ``valid_frac`` of the interactions, validated on them."""
    split = temporal_split(data, test_frac=valid_frac, valid_frac=0.0)
    return [(split.train, split.test)]


def combine_refit(params: list[dict]) -> dict:
    """One refit setting from several folds' ``refit_params``: values the folds agree on are
    kept; numbers that differ take their median (an int stays an int)."""
    out = dict(params[0])
    for key in out:
        values = [p.get(key) for p in params]
        if all(v == values[0] for v in values):
            continue
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            med = float(np.median(values))
            out[key] = round(med) if all(isinstance(v, int) for v in values) else med
    return out


def fit_folds(
    cls: type[Model],
    params: dict,
    folds: Sequence[Fold],
    *,
    scorer: Scorer = DEFAULT_SCORER,
    keep_models: bool = False,
) -> FoldFits:
    """Fit ``cls(**params)`` on every fold's training part, early-stopping on (and then
    scored by ``scorer`` on) its validation part."""
    scores, refits, models, fit_s = [], [], [], 0.0
    for fold in folds:
        one = fit_fold(cls, params, fold, scorer=scorer)
        scores.append(one.scores[0])
        refits.append(one.refit)
        fit_s += one.seconds
        if keep_models:
            models.append(one.models[0])
    return FoldFits(scores, combine_refit(refits), fit_s, models)


def fit_fold(
    cls: type[Model], params: dict, fold: Fold, *, scorer: Scorer = validation_ndcg
) -> FoldFits:
    """One fold of :func:`fit_folds`: its score, its own ``refit_params()`` (not combined),
    the fit's seconds and the fitted model."""
    train, valid = fold
    t0 = time.perf_counter()
    model = cls(**params).fit(train, valid, scorer=scorer)
    seconds = time.perf_counter() - t0
    return FoldFits([float(scorer(model, valid))], model.refit_params(), seconds, [model])


def fit_for_serving(
    cls: type[Model],
    params: dict,
    data: Dataset,
    folds: Sequence[Fold] = (),
    *,
    fitted: FoldFits | None = None,
    on_folds: Callable[[FoldFits], None] | None = None,
    scorer: Scorer = DEFAULT_SCORER,
) -> tuple[Model, FoldFits]:
    """``cls`` fitted on all of ``data`` with what early stopping learned on ``folds``.

    A model that early-stops is first fitted on the folds (:func:`fit_folds`; or ``fitted``,
    their result when the caller has it already, e.g. from tuning) and ``on_folds`` sees that
    result before the final fit; other models are fitted once, with ``params``. ``scorer``:
    what early stopping judges by (e.g. :func:`recogan.metrics.validation_scorer`).
    """
    if fitted is None:
        if cls.early_stopping_params and folds:
            fitted = fit_folds(cls, params, folds, scorer=scorer, keep_models=on_folds is not None)
        else:
            fitted = FoldFits([], dict(params))
    if on_folds is not None and fitted.scores:
        on_folds(fitted)
    return cls(**fitted.refit).fit(data, None), fitted
