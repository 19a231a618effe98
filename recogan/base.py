"""The model contract shared by the GAN and every baseline: the abstract class :class:`Model`.

Every model is fitted on a :class:`~recogan.data.Dataset` and answers, batch-first::

    model.fit(train, valid=None, *, scorer=None) -> model
    model.recommend(user_idx, n=10, exclude_seen=True, candidates=None) -> (items, scores)
    model.recommend_history(histories, n=10, ...) -> (items, scores)   # anonymous baskets
    recogan.artifacts.save_model(model, path);  recogan.artifacts.load_model(path)

``items`` is int64 ``(B, n)`` of item indices, ``scores`` float32 ``(B, n)``, best first. When
fewer than ``n`` items are allowed (exclusion, candidates), rows are padded with item ``-1`` and
score ``-inf``. ``candidates`` is a 1-D array of allowed item indices (for every user) or a 2-D
``(B, C)`` array of per-user candidates (``-1`` entries are padding).

A model implements ``_fit`` and either the dense scorers :meth:`Model.score_users` and
:meth:`Model.score_histories` (full score rows; everything else is inherited) or its own
``recommend``/``recommend_history`` (the GAN, models that retrieve through an item index).
Everything else a caller may ask of a model is a hook declared here with a default, so no
caller probes for optional methods:

==========================  =========================================================
``search_space()``          hyperparameter grid the tuner samples (default: none)
``early_stopping_params``   settings ``fit`` chooses by early stopping (default: none)
``refit_params()``          settings to refit on train + valid without validation
``recommend_params()``      config fields that change ``recommend`` without a refit
``noise_draws_param()``     which of those sets the number of noise draws (or None)
``tradeoff_param()``        the knob of the report's coverage-vs-accuracy curve (or None)
``diversity_param()``       the model's own setting for ``diversity`` in [0, 1] (or None:
                            MMR re-ranking, :mod:`recogan.diversity`)
``with_diversity(d)``       a copy whose own mechanism is set to ``d`` (default: through
                            ``diversity_param()``)
``search_depth(n)``         how deep the model searches to answer a top-``n`` (default n)
``validation_notes()``     what the fit chose on validation and why, for people (default:
                            none)
``generation_quality_``     quality of generated vectors, shown in the report (or None)
``measure_generation(d)``   that quality measured on a period (default: None)
``device_``                 where the model computes (default ``cpu``)
``item_vectors()``          unit item vectors for similarity (default: None)
``state_arrays()`` / ...    learned numpy and torch state saved in a bundle
``write_files(dir)`` / ...  extra files of a bundle (e.g. an item index)
``place_items(rows)``       the model's part of adding products (default: refuses)
``withdraw_items(idx)``     the model's part of withdrawing products (and
``restore_items(idx)``      undoing it; default: nothing, callers filter)
==========================  =========================================================

Evaluation, batch scoring and the service API use only this contract, through one serving
pipeline (:mod:`recogan.serving`); bundles are written and read by :mod:`recogan.artifacts`
(``save_model``/``load_model``); :mod:`recogan.testing` checks a model against the contract.
This module imports only :mod:`recogan.data`, :mod:`recogan._topk` and
:mod:`recogan._config`: the contract sits below everything that uses it.
"""

from __future__ import annotations

import abc
import copy
import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from recogan._config import check_config
from recogan._topk import topn
from recogan.data import Dataset, IdMap

log = logging.getLogger(__name__)

__all__ = [
    "RECENT_DAYS",
    "CannotPlaceItemsError",
    "Model",
    "NotFittedError",
    "Scorer",
    "recent_popularity",
]

#: Window (days before the end of training) for the recent-popularity prior every model keeps.
RECENT_DAYS = 30.0

#: ``(fitted model, validation data) -> score``, higher is better: how a model that early-stops
#: judges itself on ``valid`` (:data:`recogan.fitting.DEFAULT_SCORER`, mean NDCG@10, is what
#: fitting and tuning pass).
Scorer = Callable[[Any, Dataset], float]


class NotFittedError(RuntimeError):
    """A model was used before ``fit`` (or ``load``)."""


class CannotPlaceItemsError(NotImplementedError):
    """The model cannot place products it was not trained on (retrain, or use the GAN)."""


class Model(abc.ABC):
    """Base class of every recommender. Subclasses set ``name`` and ``Config`` (a dataclass);
    hyperparameters are constructor arguments, learned state (attributes ending in ``_``) is
    set by ``fit``.
    """

    name: ClassVar[str] = "model"
    Config: ClassVar[type] = type(None)
    #: The settings ``fit`` chooses by early stopping on ``valid`` (e.g. ``("epochs",)``; empty:
    #: the model does not early-stop). :meth:`refit_params` returns them for a refit without
    #: validation, so a model for serving is first fitted with a validation window
    #: (:func:`recogan.fitting.fit_for_serving`).
    early_stopping_params: ClassVar[tuple[str, ...]] = ()
    #: The scorer of the current :meth:`fit` (None: none was given).
    _scorer: Scorer | None = None
    #: Where the model computes (``cpu``, ``cuda``, ...): a torch model sets it when fitted or
    #: loaded; the others always compute on the CPU.
    device_: str = "cpu"

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        if config is None:
            config = self.Config()
        elif isinstance(config, dict):
            self._check_keys(config)
            config = self.Config(**config)
        elif not isinstance(config, self.Config):
            raise TypeError(
                f"{type(self).__name__} takes a {self.Config.__name__} or a dict as config, "
                f"not {type(config).__name__}"
            )
        if kwargs:
            self._check_keys(kwargs)
            config = dataclasses.replace(config, **kwargs)
        check_config(config)  # field types and finite numbers; ranges in each Config
        self.config = config

    def _check_keys(self, params: dict) -> None:
        fields = {f.name for f in dataclasses.fields(self.Config)}
        bad = sorted(set(params) - fields, key=str)
        if bad:
            raise TypeError(
                f"{type(self).__name__} got unknown parameter(s) {bad} (known: {sorted(fields)})"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params()})"

    def params(self) -> dict:
        """Hyperparameters as a JSON-friendly dict."""
        return json.loads(json.dumps(dataclasses.asdict(self.config), default=str))

    # ------------------------------------------------------------------ fitting
    def fit(
        self, train: Dataset, valid: Dataset | None = None, *, scorer: Scorer | None = None
    ) -> Model:
        """Learn from ``train``. ``valid`` is for early stopping where a model uses it, judged
        by ``scorer(model, valid)`` (e.g. :data:`recogan.fitting.DEFAULT_SCORER`, mean
        NDCG@10, which :func:`recogan.fitting.fit_folds` passes)."""
        if train.n_interactions == 0:
            raise ValueError(f"cannot fit {self.name} on an empty dataset ({train.name})")
        self._scorer = scorer
        self._remember(train)
        try:
            self._fit(train, valid)
        except BaseException:
            del self.seen_  # a failed fit leaves no model that claims to be fitted
            raise
        return self

    def validation_score(self, valid: Dataset) -> float:
        """This model's score on ``valid`` by the scorer given to :meth:`fit` (higher is
        better): what a model that early-stops calls after each epoch."""
        if self._scorer is None:
            raise ValueError(
                f"{type(self).__name__} was given a validation set but no scorer to judge it "
                "by: fit(train, valid, scorer=recogan.fitting.DEFAULT_SCORER) (mean NDCG@10), "
                "or fit through recogan.fitting"
            )
        return float(self._scorer(self, valid))

    def _remember(self, train: Dataset) -> None:
        """What every fitted model knows about its training data."""
        self.n_users_ = train.n_users
        self.n_items_ = train.n_items
        self.users_: IdMap = train.users
        self.items_: IdMap = train.items
        self.catalog_ = train.catalog
        self.seen_: sp.csr_matrix = train.csr(binary=True)
        self.fingerprint_ = train.fingerprint()
        self.dataset_name_ = train.name
        self.train_end_ = int(train.times.max())
        self.popularity_ = recent_popularity(train, RECENT_DAYS)

    @abc.abstractmethod
    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        """Learn the model's own state (``_remember`` has run: ``seen_``, ``n_items_``, ...)."""

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "seen_")

    def check_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless the model is fitted (or loaded)."""
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load()")

    _check_fitted = check_fitted

    # ------------------------------------------------------------------ hooks with defaults
    @classmethod
    def search_space(cls) -> dict[str, list]:
        """Hyperparameters the tuner searches: ``{config field: [values]}`` (default: none, so
        only the defaults are tried)."""
        return {}

    def refit_params(self) -> dict:
        """Settings to refit on train + valid, without a validation split, after a fit that
        early-stopped on valid (e.g. the epoch count it chose). Default: its own settings."""
        return {f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config)}

    @classmethod
    def recommend_params(cls) -> tuple[str, ...]:
        """Config fields that change what ``recommend`` returns without refitting
        (recommend-time knobs; set them with :meth:`set_recommend_params`). Default: the
        knobs named by :meth:`noise_draws_param`, :meth:`tradeoff_param` and
        :meth:`diversity_param`."""
        tradeoff = cls.tradeoff_param()
        names = (cls.noise_draws_param(), tradeoff[0] if tradeoff else None, cls.diversity_param())
        return tuple(dict.fromkeys(n for n in names if n is not None))

    @classmethod
    def judged_params(cls, targets: str) -> dict:
        """Settings for fits whose lists are judged only on ``targets`` (an evaluation's
        :data:`recogan.metrics.TARGETS`): choices that change no list counted there are
        switched off, as they cost time and change nothing scored. Default: none."""
        return {}

    @classmethod
    def noise_draws_param(cls) -> str | None:
        """The recommend-time knob that sets the number of noise draws per user (None: the
        model draws no noise; batch scoring's ``noise_draws`` then does not apply)."""
        return None

    @classmethod
    def tradeoff_param(cls) -> tuple[str, list] | None:
        """``(recommend-time knob, values)`` whose coverage-vs-accuracy curve the report draws
        (None: the model is a point)."""
        return None

    @classmethod
    def diversity_param(cls) -> str | None:
        """The recommend-time setting through which the model makes its lists more varied
        itself (e.g. by its noise draws): it takes the ``diversity`` value in [0, 1] of every
        interface (``Recommender.recommend(..., diversity=)``, ``batch-score --diversity``,
        the report's curve), 0 meaning the model's plain ranking. None (the default): callers
        re-rank the model's lists by maximal marginal relevance (:mod:`recogan.diversity`)."""
        return None

    def with_diversity(self, diversity: float) -> Model:
        """A shallow copy of this model that makes its lists more varied by ``diversity`` in
        [0, 1] through its own mechanism; the model itself is unchanged (so concurrent
        callers are safe). The serving pipeline calls it once per request with
        ``diversity > 0`` when :meth:`diversity_param` is not None. Default: the copy's
        :meth:`diversity_param` setting takes the value; a model without one raises."""
        knob = self.diversity_param()
        if knob is None:
            raise ValueError(
                f"{type(self).__name__} has no diversity setting of its own: its lists are "
                "re-ranked by MMR (recogan.diversity.mmr) instead"
            )
        clone = copy.copy(self)
        clone.set_recommend_params(**{knob: float(diversity)})
        return clone

    def validation_notes(self) -> list[str]:
        """Lines saying what the last fit chose on its validation split beyond early stopping
        and why (``recogan train`` prints them). Default: none."""
        return []

    def search_depth(self, n: int) -> int:
        """How many items the model ranks internally to answer a top-``n`` request (e.g. a
        re-rank depth): the serving pipeline's plan records it next to its own fetch depth.
        Default: ``n``."""
        return int(n)

    def set_recommend_params(self, **values: Any) -> None:
        """Change recommend-time knobs (:meth:`recommend_params`) of a fitted model."""
        unknown = sorted(set(values) - set(self.recommend_params()))
        if unknown:
            known = ", ".join(self.recommend_params()) or "none"
            raise ValueError(
                f"{type(self).__name__} has no recommend-time setting(s) {unknown} (has: {known})"
            )
        if values:
            self.config = dataclasses.replace(self.config, **values)

    # ------------------------------------------------------------------ scoring (dense models)
    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        """Scores of every item for each user: float32 ``(B, n_items)``. Dense models implement
        it; models with their own retrieval override :meth:`recommend` instead."""
        raise NotImplementedError(
            f"{type(self).__name__} implements neither score_users nor its own recommend"
        )

    def score_histories(self, X: sp.csr_matrix, times: Sequence | None = None) -> np.ndarray:
        """Scores of every item for histories given as rows of a ``(B, n_items)`` matrix."""
        raise NotImplementedError(
            f"{type(self).__name__} implements neither score_histories nor its own "
            "recommend_history"
        )

    def item_vectors(self) -> np.ndarray | None:
        """Optional: unit-length item vectors ``(n_items, d)`` whose inner products measure
        item-item similarity (used by the service API's ``similar_items`` and ``explain``).
        ``None`` (the default) makes callers fall back to co-purchase cosine from ``seen_``."""
        return None

    # ------------------------------------------------------------------ the contract
    def recommend(
        self,
        user_idx,
        n: int = 10,
        exclude_seen: bool = True,
        candidates: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items for each user index (batch-first; see the module docstring)."""
        users = self.check_users(user_idx)
        n = self.check_n(n, candidates)
        scores = self.score_users(users)
        exclude = self.seen_[users] if exclude_seen else None
        return topn(scores, n, exclude=exclude, candidates=candidates)

    def recommend_history(
        self,
        histories: Sequence[Sequence[int]],
        n: int = 10,
        exclude_seen: bool = True,
        candidates: np.ndarray | None = None,
        times: Sequence[Sequence[float]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` for purchase histories (lists of item indices, oldest first) of customers
        the model was not fitted on; ``times`` (epoch seconds) per event where known."""
        self.check_fitted()
        X = self.history_matrix(histories)
        n = self.check_n(n, candidates)
        scores = self.score_histories(X, times)
        return topn(scores, n, exclude=X if exclude_seen else None, candidates=candidates)

    # ------------------------------------------------------------------ input checks
    def check_users(self, user_idx) -> np.ndarray:
        self.check_fitted()
        users = np.atleast_1d(np.asarray(user_idx))
        if users.ndim != 1:
            raise ValueError(f"user_idx must be a scalar or 1-D array, got shape {users.shape}")
        if users.size and not np.issubdtype(users.dtype, np.integer):
            raise ValueError(f"user_idx must be integer indices, got dtype {users.dtype}")
        users = users.astype(np.int64)
        bad = (users < 0) | (users >= self.n_users_)
        if bad.any():
            raise IndexError(
                f"user index {int(users[bad][0])} out of range: the model knows "
                f"{self.n_users_} users (0..{self.n_users_ - 1})"
            )
        return users

    def check_n(self, n, candidates=None) -> int:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"n must be an int, got {type(n).__name__}")
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        if n > self.n_items_:
            raise ValueError(f"n={n} exceeds the catalog size ({self.n_items_} items)")
        if candidates is not None:
            c = np.asarray(candidates)
            lowest = 0 if c.ndim == 1 else -1  # -1 pads 2-D candidate rows
            if c.size and (c.max() >= self.n_items_ or c.min() < lowest):
                raise IndexError(f"candidate item indices must be in 0..{self.n_items_ - 1}")
        return int(n)

    def history_matrix(self, histories: Sequence[Sequence[int]]) -> sp.csr_matrix:
        """Rows of a binary ``(B, n_items)`` matrix from lists of item indices."""
        if isinstance(histories, (str, bytes)) or not hasattr(histories, "__len__"):
            raise TypeError(
                f"histories must be a list of item-index lists, got {type(histories).__name__}"
            )
        rows, cols = [], []
        for i, h in enumerate(histories):
            if isinstance(h, (str, bytes)) or np.ndim(h) > 1:
                raise TypeError(f"history {i} must be a list of item indices, got {h!r:.40}")
            h = np.asarray(h).ravel()
            if h.size and not np.issubdtype(h.dtype, np.integer):
                raise TypeError(f"history {i} must hold integer item indices, got {h.dtype}")
            h = h.astype(np.int64)
            if h.size and (h.min() < 0 or h.max() >= self.n_items_):
                raise IndexError(f"history {i} has item indices outside 0..{self.n_items_ - 1}")
            rows.append(np.full(h.size, i))
            cols.append(h)
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        X = sp.csr_matrix(
            (np.ones(r.size, np.float32), (r, c)), shape=(len(histories), self.n_items_)
        )
        X.sum_duplicates()
        X.data[:] = 1.0
        return X

    # ------------------------------------------------------------------ persistence
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Learned numpy state to save (beyond what ``_remember`` keeps)."""
        return {}

    def set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_arrays` returned."""
        return None

    def torch_state(self) -> dict[str, dict] | None:
        """torch ``state_dict``s to save (name → state dict), or None."""
        return None

    def set_torch_state(self, states: dict[str, dict], device: str = "cpu") -> None:
        """Restore what :meth:`torch_state` returned (``device``: ``cpu``, ``cuda`` or
        ``auto``, the model's choice of where to run)."""
        return None

    def write_files(self, directory) -> None:
        """Write extra files of a bundle into ``directory`` (hashed and verified with the
        rest; e.g. an item index). Default: none."""
        return None

    def read_files(self, directory) -> None:
        """Read what :meth:`write_files` wrote (the files are verified before this runs)."""
        return None

    #: How good the vectors a generative model draws are, set by its ``fit`` (None: the
    #: model generates none): a dict of numbers, or a DataFrame (e.g. one row per epoch,
    #: the last row the fitted model's), as :func:`recogan.vector_quality.generation_quality`
    #: summarises them. The evaluation report shows it under "Generated vectors".
    generation_quality_: Any = None

    def measure_generation(self, data: Dataset) -> dict | None:
        """The quality of the model's generated vectors measured on ``data`` (e.g. the test
        period), as :func:`recogan.vector_quality.generation_quality` summarises it (an
        empty dict: nothing could be measured). None (the default): the model generates
        none, or measures only while fitting (:attr:`generation_quality_`)."""
        return None

    # ------------------------------------------------------------------ catalogue changes
    #: Products added and withdrawn since training (a :class:`recogan.catalog.CatalogChanges`;
    #: None: none). Changed through :mod:`recogan.catalog`, saved with the bundle by
    #: :mod:`recogan.artifacts`.
    catalog_changes_: Any = None

    def place_items(self, catalog, prior: float | None = None):
        """The model's part of adding products it was not trained on.

        ``catalog`` holds the new products' attributes (``title``, ``category``, ``price``;
        any may be absent), one row per product, in the order of their new indices
        ``n_items_, n_items_ + 1, ...``; ``prior``: their prior score where the model has one
        (None: the model's default). Computes everything first and returns a function that
        commits it, so a failure leaves the model unchanged. :func:`recogan.catalog.add_items`
        grows the parts every model shares (ids, ``seen_``, ``popularity_``, catalog).

        The default refuses: a model whose scores come only from purchases cannot place a
        product nobody has bought.
        """
        raise CannotPlaceItemsError(
            f"{type(self).__name__} cannot place products it was not trained on: its scores "
            "come from purchases, and nobody has bought a new product yet. Retrain with the "
            "new products, or use the GAN (model 'gan'), which places them from their catalog "
            "rows (title, category, price). Withdrawing products works with every model."
        )

    def withdraw_items(self, items: np.ndarray) -> None:
        """The model's part of withdrawing products (e.g. leaving them out of a retrieval
        index); the service API and batch scoring filter withdrawn products for every model."""
        return None

    def restore_items(self, items: np.ndarray) -> None:
        """Undo :meth:`withdraw_items` for these item indices."""
        return None


# ---------------------------------------------------------------------- shared helpers
def recent_popularity(train: Dataset, days: float) -> np.ndarray:
    """Distinct users per item in the last ``days`` of ``train``, ties broken by all-time
    popularity (float64; higher is more popular)."""
    t = train.times
    recent = train.subset(t >= t.max() - days * 86400.0) if len(t) else train
    all_time = train.item_popularity().astype(np.float64)
    return recent.item_popularity() + all_time / (all_time.max() + 1.0)
