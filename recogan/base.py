"""The model contract shared by the GAN and every baseline.

Every model is fitted on a :class:`~recogan.data.Dataset` and answers, batch-first::

    model.fit(train, valid=None) -> model
    model.recommend(user_idx, n=10, exclude_seen=True, candidates=None) -> (items, scores)
    model.recommend_history(histories, n=10, ...) -> (items, scores)   # anonymous baskets
    model.save(path);  Model.load(path)  /  recogan.artifacts.load_model(path)

``items`` is int64 ``(B, n)`` of item indices, ``scores`` float32 ``(B, n)``, best first. When
fewer than ``n`` items are allowed (exclusion, candidates), rows are padded with item ``-1`` and
score ``-inf``. ``candidates`` is a 1-D array of allowed item indices (for every user) or a 2-D
``(B, C)`` array of per-user candidates (``-1`` entries are padding).

Dense models implement :meth:`Model.score_users` and :meth:`Model.score_histories` (full score
rows) and inherit everything else; models with their own retrieval (the GAN) override
``recommend``/``recommend_history``. Evaluation, batch scoring and the service API use only
this contract.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from recogan.data import Dataset, IdMap

log = logging.getLogger(__name__)

#: Model names (CLI ``--models``) → "module:Class"; imported lazily so `import recogan` is cheap.
MODEL_REGISTRY: dict[str, str] = {
    "pop": "recogan.baselines:Popularity",
    "itemknn": "recogan.baselines:ItemKNN",
    "ease": "recogan.baselines:EASE",
    "ials": "recogan.baselines:IALS",
    "gan": "recogan.model:GANRecommender",
}

#: Window (days before the end of training) for the recent-popularity prior every model keeps.
RECENT_DAYS = 30.0


def model_class(name: str) -> type[Model]:
    """The model class registered under ``name`` (``gan``, ``ease``, ...) or its class name."""
    import importlib

    key = name.lower()
    if key not in MODEL_REGISTRY:
        by_class = {v.split(":")[1].lower(): k for k, v in MODEL_REGISTRY.items()}
        if key not in by_class:
            raise ValueError(f"unknown model {name!r} (known: {', '.join(MODEL_REGISTRY)})")
        key = by_class[key]
    module, cls = MODEL_REGISTRY[key].split(":")
    return getattr(importlib.import_module(module), cls)


class NotFittedError(RuntimeError):
    """A model was used before ``fit`` (or ``load``)."""


class Model:
    """Base class of every recommender. Subclasses set ``name`` and ``Config`` (a dataclass);
    hyperparameters are constructor arguments, learned state (attributes ending in ``_``) is
    set by ``fit``.
    """

    name: ClassVar[str] = "model"
    Config: ClassVar[type] = type(None)

    def __init__(self, config: Any = None, **kwargs: Any) -> None:
        from recogan._config import check_config

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
    def fit(self, train: Dataset, valid: Dataset | None = None) -> Model:
        """Learn from ``train`` (``valid`` is for early stopping where a model uses it)."""
        if train.n_interactions == 0:
            raise ValueError(f"cannot fit {self.name} on an empty dataset ({train.name})")
        self._remember(train)
        self._fit(train, valid)
        return self

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

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "seen_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load()")

    # ------------------------------------------------------------------ scoring (dense models)
    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        """Scores of every item for each user: float32 ``(B, n_items)``."""
        raise NotImplementedError

    def score_histories(self, X: sp.csr_matrix, times: Sequence | None = None) -> np.ndarray:
        """Scores of every item for histories given as rows of a ``(B, n_items)`` matrix."""
        raise NotImplementedError

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
        self._check_fitted()
        X = self.history_matrix(histories)
        n = self.check_n(n, candidates)
        scores = self.score_histories(X, times)
        return topn(scores, n, exclude=X if exclude_seen else None, candidates=candidates)

    # ------------------------------------------------------------------ input checks
    def check_users(self, user_idx) -> np.ndarray:
        self._check_fitted()
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

    def torch_state(self) -> dict[str, dict] | None:
        """torch ``state_dict``s to save (name → state dict), or None."""
        return None

    def set_torch_state(self, states: dict[str, dict], device: str = "cpu") -> None:
        """Restore what :meth:`torch_state` returned."""

    def save(self, path, *, force: bool = False) -> None:
        """Write a verified model bundle (see :mod:`recogan.artifacts`). ``path`` must be
        absent, empty or a bundle; ``force=True`` replaces anything else."""
        from recogan.artifacts import save_model

        save_model(self, path, force=force)

    @classmethod
    def load(cls, path, device: str = "cpu") -> Model:
        """Load a bundle written by :meth:`save` (checksums verified, no pickle)."""
        from recogan.artifacts import load_model

        model = load_model(path, device=device)
        if not isinstance(model, cls):
            raise TypeError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    # ------------------------------------------------------------------ catalogue changes
    #: Products added and withdrawn since training (a :class:`recogan.catalog.CatalogChanges`;
    #: None: none). Changed through :mod:`recogan.catalog`, saved with the bundle.
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
        from recogan.catalog import CannotPlaceItemsError

        raise CannotPlaceItemsError(
            f"{type(self).__name__} cannot place products it was not trained on: its scores "
            "come from purchases, and nobody has bought a new product yet. Retrain with the "
            "new products, or use the GAN (model 'gan'), which places them from their catalog "
            "rows (title, category, price). Withdrawing products works with every model."
        )

    def withdraw_items(self, items: np.ndarray) -> None:
        """The model's part of withdrawing products (e.g. leaving them out of a retrieval
        index); the service API and batch scoring filter withdrawn products for every model."""

    def restore_items(self, items: np.ndarray) -> None:
        """Undo :meth:`withdraw_items` for these item indices."""


# ---------------------------------------------------------------------- shared helpers
def recent_popularity(train: Dataset, days: float) -> np.ndarray:
    """Distinct users per item in the last ``days`` of ``train``, ties broken by all-time
    popularity (float64; higher is more popular)."""
    t = train.times
    recent = train.subset(t >= t.max() - days * 86400.0) if len(t) else train
    all_time = train.item_popularity().astype(np.float64)
    return recent.item_popularity() + all_time / (all_time.max() + 1.0)


def topn(
    scores: np.ndarray,
    n: int,
    *,
    exclude: sp.csr_matrix | None = None,
    candidates: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n`` of dense score rows, best first, with seen-item exclusion and candidates.

    ``scores`` is ``(B, n_items)``; ``exclude`` a ``(B, n_items)`` sparse matrix whose non-zeros
    are removed; ``candidates`` a 1-D allow-list or a 2-D ``(B, C)`` per-row candidate array
    (``-1`` = padding). Results are deterministic for the same input (ties within the top-n are
    ordered by item index).
    Returns int64 items and float32 scores, ``(B, n)``, padded with ``-1`` / ``-inf``.
    """
    scores = np.array(scores, dtype=np.float32, copy=True)
    B, n_items = scores.shape
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        rows = np.repeat(np.arange(B), np.diff(exclude.indptr))
        scores[rows, exclude.indices] = -np.inf
    if candidates is not None:
        cand = np.asarray(candidates, dtype=np.int64)
        if cand.ndim == 1:
            keep = np.full(n_items, -np.inf, dtype=np.float32)
            keep[cand] = 0.0
            scores += keep[None, :]
        else:
            if cand.shape[0] != B:
                raise ValueError(f"candidates has {cand.shape[0]} rows for {B} users")
            valid = cand >= 0
            sub = np.where(valid, np.take_along_axis(scores, np.maximum(cand, 0), 1), -np.inf)
            return _topn_of(sub.astype(np.float32), np.where(valid, cand, -1), n)
    return _topn_of(scores, None, n)


def _topn_of(scores: np.ndarray, ids: np.ndarray | None, n: int):
    B, m = scores.shape
    k = min(n, m)
    if k < m:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(m), (B, m)).copy()
    part_scores = np.take_along_axis(scores, part, 1)
    # sort by score desc, then index asc (deterministic ties)
    order = np.lexsort((part, -part_scores), axis=1)
    top = np.take_along_axis(part, order, 1)
    top_scores = np.take_along_axis(part_scores, order, 1)
    items = top if ids is None else np.take_along_axis(ids, top, 1)
    items = np.where(np.isfinite(top_scores), items, -1).astype(np.int64)
    top_scores = np.where(items >= 0, top_scores, -np.inf).astype(np.float32)
    if k < n:
        items = np.pad(items, ((0, 0), (0, n - k)), constant_values=-1)
        top_scores = np.pad(top_scores, ((0, 0), (0, n - k)), constant_values=-np.inf)
    return items, top_scores
