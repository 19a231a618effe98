"""Time-aware baselines: neighbourhood models over a time-decayed history, blended with recent
popularity, and the personal-frequency baseline P-Pop.

- :class:`ItemKNNTD` and :class:`EASETD`: the item-item weights of :class:`ItemKNN` /
  :class:`EASE`, fitted as usual, applied to a *time-decayed* history: item ``i`` of a
  customer weighs ``0.5 ** (age / half_life_days)``, its age the days from their last purchase
  of it to the end of training (Ding & Li, CIKM 2005, time-weighted collaborative filtering;
  the decayed-history scoring of "Recency matters", Anelli et al. 2019, is the same idea).
  The score is blended with recent popularity:
  ``(1 - pop_weight) · s / max|s| + pop_weight · p / max p``, ``p`` the distinct buyers of the
  last ``pop_window_days`` of training; ``pop_weight = 0`` is the neighbourhood model alone.
- :class:`PPop` (personal popularity; the "P-Pop" of the Next Basket Recommendation Reality
  Check, Li et al., ACM TOIS 2023): a customer's own items ranked by their time-decayed
  purchase count, then everything else by popularity. It recommends repeats, so it is useful
  only with ``exclude_seen=False``; with ``exclude_seen=True`` every personal item is
  excluded and it *is* popularity (the ranking of :class:`Popularity` over the fallback window).

Anonymous histories (``recommend_history``) are decayed to the later of the end of training and
their own latest time when ``times`` are given, and weigh every item 1 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from recogan._config import require
from recogan._sparse import csr_from_state, csr_state
from recogan._topk import topn
from recogan.base import Model, recent_popularity
from recogan.baselines._ease import EASE, EASEConfig
from recogan.baselines._itemknn import ItemKNN, ItemKNNConfig

DAY = 86400.0

#: Half-lives (days) searched, log-spaced from a day to a year.
HALF_LIVES = [1.0, 3.0, 7.0, 14.0, 30.0, 60.0, 120.0, 365.0]
#: Blend weights of recent popularity searched (0: none).
POP_WEIGHTS = [0.0, 0.01, 0.03, 0.1, 0.3]
#: Recent-popularity windows (days) searched.
POP_WINDOWS = [7.0, 14.0, 30.0, 60.0]


def decay(age_days: np.ndarray, half_life_days: float | None) -> np.ndarray:
    """``0.5 ** (age / half_life)`` (1 everywhere without a half-life); negative ages count
    as 0."""
    age = np.maximum(np.asarray(age_days, dtype=np.float64), 0.0)
    if half_life_days is None:
        return np.ones_like(age)
    return np.exp2(-age / half_life_days)


def decayed_matrix(
    users: np.ndarray,
    items: np.ndarray,
    times: np.ndarray,
    shape: tuple[int, int],
    now: float | np.ndarray,
    half_life_days: float | None,
    how: str,
) -> sp.csr_matrix:
    """``(rows, items)`` matrix of decayed events: per (row, item) the weight of the *last*
    event (``how="last"``) or the *sum* over distinct event times (``how="sum"``). ``now``: the
    reference time (epoch seconds), one for all rows or one per row."""
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    times = np.asarray(times, dtype=np.float64)
    if users.size == 0:
        return sp.csr_matrix(shape, dtype=np.float64)
    # distinct (row, item, time): a basket's repeated scans count once
    key = np.stack([users, items, times.astype(np.int64)], 1)
    key = np.unique(key, axis=0)
    users, items, times = key[:, 0], key[:, 1], key[:, 2].astype(np.float64)
    if np.ndim(now) == 1:  # one reference time per row
        now_arr = np.asarray(now, dtype=np.float64)[users]
    else:
        now_arr = np.full(len(key), float(now))
    w = decay((now_arr - times) / DAY, half_life_days)
    if how == "last":  # np.unique sorted by (row, item, time): the last of each pair wins
        last = np.ones(len(key), dtype=bool)
        last[:-1] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
        users, items, w = users[last], items[last], w[last]
    elif how != "sum":
        raise ValueError(f"how must be 'last' or 'sum', not {how!r}")
    M = sp.csr_matrix((w, (users, items)), shape=shape, dtype=np.float64)
    M.sum_duplicates()
    return M


def _history_events(model: Model, histories, times):
    """``(X, rows, items, times, now)`` of anonymous histories: ``X`` the binary matrix (checks
    the indices), ``now`` per row the later of the end of training and the row's latest time.
    Rows without times get ``times = now`` (every item weighs 1)."""
    X = model.history_matrix(histories)
    rows, items, ts = [], [], []
    now = np.full(len(histories), float(model.train_end_))
    for r, h in enumerate(histories):
        h = np.asarray(h, dtype=np.int64).ravel()
        t = None if times is None else np.asarray(times[r], dtype=np.float64).ravel()
        if t is not None and t.size != h.size:
            raise ValueError(f"times[{r}] has {t.size} entries for a history of {h.size} items")
        if t is not None and t.size:
            now[r] = max(now[r], float(t.max()))
        rows.append(np.full(h.size, r))
        items.append(h)
        ts.append(t if t is not None else np.full(h.size, np.nan))
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    i = np.concatenate(items) if items else np.zeros(0, np.int64)
    t = np.concatenate(ts) if ts else np.zeros(0)
    t = np.where(np.isnan(t), now[r] if r.size else t, t)
    return X, r, i, t, now


class _DecayedNeighbourhood:
    """What the time-decayed neighbourhood models share (mixed into ItemKNN / EASE)."""

    config: ItemKNNTDConfig | EASETDConfig
    TIME_SPACE: ClassVar[dict[str, list]] = {
        "half_life_days": HALF_LIVES,
        "pop_weight": POP_WEIGHTS,
        "pop_window_days": POP_WINDOWS,
    }

    @classmethod
    def search_space(cls) -> dict[str, list]:
        return {**super().search_space(), **cls.TIME_SPACE}

    def _fit(self, train, valid) -> None:
        super()._fit(train, valid)
        self._fit_time(train)

    def _item_scores(self, H) -> np.ndarray:
        # the neighbourhood model's own scores of a (decayed) history matrix: the class after
        # this mixin in the MRO (ItemKNN or EASE), whose score_users this mixin overrides
        return super().score_histories(H)

    def _fit_time(self, train) -> None:
        c = self.config
        self.history_ = decayed_matrix(
            train.user_idx,
            train.item_idx,
            train.times,
            (self.n_users_, self.n_items_),
            float(self.train_end_),
            c.half_life_days,
            "last",
        ).astype(np.float32)
        self.pop_scores_ = recent_popularity(train, c.pop_window_days).astype(np.float32)

    def _blend(self, s: np.ndarray) -> np.ndarray:
        beta = float(self.config.pop_weight)
        s = np.asarray(s, dtype=np.float64)
        scale = np.abs(s).max(1, keepdims=True)
        s = np.divide(s, scale, out=np.zeros_like(s), where=scale > 0)
        if beta == 0.0:
            return s.astype(np.float32)
        p = self.pop_scores_.astype(np.float64)
        p = p / max(float(p.max()), 1e-12)
        return ((1.0 - beta) * s + beta * p[None]).astype(np.float32)

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return self._blend(self._item_scores(self.history_[user_idx]))

    def recommend_history(self, histories, n=10, exclude_seen=True, candidates=None, times=None):
        self.check_fitted()
        X, r, i, t, now = _history_events(self, histories, times)
        n = self.check_n(n, candidates)
        H = decayed_matrix(r, i, t, X.shape, now, self.config.half_life_days, "last").astype(
            np.float32
        )
        scores = self._blend(self._item_scores(H))
        return topn(scores, n, exclude=X if exclude_seen else None, candidates=candidates)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {
            **super().state_arrays(),
            **csr_state("history", self.history_),
            "pop_scores": self.pop_scores_,
        }

    def set_state_arrays(self, arrays) -> None:
        super().set_state_arrays(arrays)
        self.history_ = csr_from_state(arrays, "history", (self.n_users_, self.n_items_))
        self.pop_scores_ = arrays["pop_scores"].astype(np.float32)


def _check_time_fields(cfg) -> None:
    require(cfg, "half_life_days", gt=0, optional=True)
    require(cfg, "pop_weight", ge=0, le=1)
    require(cfg, "pop_window_days", gt=0)


@dataclass
class ItemKNNTDConfig(ItemKNNConfig):
    #: Half-life (days) of an item's weight in the history (None: no decay, plain ItemKNN).
    half_life_days: float | None = 30.0
    #: Weight of recent popularity in the blend (0: the neighbourhood model alone).
    pop_weight: float = 0.0
    #: Window (days before the end of training) of the recent popularity.
    pop_window_days: float = 30.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_time_fields(self)


@dataclass
class EASETDConfig(EASEConfig):
    #: Half-life (days) of an item's weight in the history (None: no decay, plain EASE).
    half_life_days: float | None = 30.0
    #: Weight of recent popularity in the blend (0: the neighbourhood model alone).
    pop_weight: float = 0.0
    #: Window (days before the end of training) of the recent popularity.
    pop_window_days: float = 30.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_time_fields(self)


class ItemKNNTD(_DecayedNeighbourhood, ItemKNN):
    """ItemKNN scoring a time-decayed history, blended with recent popularity."""

    name = "itemknn_td"
    Config = ItemKNNTDConfig


class EASETD(_DecayedNeighbourhood, EASE):
    """EASE scoring a time-decayed history, blended with recent popularity."""

    name = "ease_td"
    Config = EASETDConfig


# ---------------------------------------------------------------------- P-Pop
@dataclass
class PPopConfig:
    #: Half-life (days) of a purchase in the personal count (None: plain counts).
    half_life_days: float | None = 30.0
    #: Window (days) of the popularity the list falls back to (None: all of training).
    pop_window_days: float | None = None

    def __post_init__(self) -> None:
        require(self, "half_life_days", gt=0, optional=True)
        require(self, "pop_window_days", gt=0, optional=True)


class PPop(Model):
    """Personal popularity: the customer's own items by time-decayed purchase count (each
    distinct purchase time counted once), then the rest by popularity. Useful only with
    ``exclude_seen=False``; with seen items excluded it ranks exactly as popularity."""

    name = "ppop"
    Config = PPopConfig

    @classmethod
    def search_space(cls) -> dict[str, list]:
        return {
            "half_life_days": [None, *HALF_LIVES],
            "pop_window_days": [None, 7.0, 30.0, 120.0],
        }

    def _fit(self, train, valid) -> None:
        c = self.config
        self.personal_ = decayed_matrix(
            train.user_idx,
            train.item_idx,
            train.times,
            (self.n_users_, self.n_items_),
            float(self.train_end_),
            c.half_life_days,
            "sum",
        ).astype(np.float32)
        if c.pop_window_days is None:
            self.pop_scores_ = train.item_popularity().astype(np.float32)
        else:
            self.pop_scores_ = recent_popularity(train, c.pop_window_days).astype(np.float32)

    def _scores(self, P: sp.csr_matrix) -> np.ndarray:
        # personal items score 1 + count (>= 1), the others popularity scaled into [0, 1)
        p = self.pop_scores_.astype(np.float64)
        base = p / (p.max() + 1.0) if p.size and p.max() > 0 else np.zeros_like(p)
        out = np.broadcast_to(base, (P.shape[0], self.n_items_)).astype(np.float32)
        P = sp.csr_matrix(P)
        rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
        out[rows, P.indices] = 1.0 + P.data
        return out

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return self._scores(self.personal_[user_idx])

    def recommend_history(self, histories, n=10, exclude_seen=True, candidates=None, times=None):
        self.check_fitted()
        X, r, i, t, now = _history_events(self, histories, times)
        n = self.check_n(n, candidates)
        P = decayed_matrix(r, i, t, X.shape, now, self.config.half_life_days, "sum")
        scores = self._scores(P)
        return topn(scores, n, exclude=X if exclude_seen else None, candidates=candidates)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {**csr_state("personal", self.personal_), "pop_scores": self.pop_scores_}

    def set_state_arrays(self, arrays) -> None:
        self.personal_ = csr_from_state(arrays, "personal", (self.n_users_, self.n_items_))
        self.pop_scores_ = arrays["pop_scores"].astype(np.float32)
