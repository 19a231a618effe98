"""The GAN's repeat head: how likely a customer is to buy again, within the coming
``repeat_horizon_days``, an item they bought before (:class:`Repeats`, part of
:class:`~recogan.gan.model.GANRecommender`).

The generator learns what a customer buys next among all products; whether a product bought
before is due again depends on when it was bought last and on its cycle, which a behaviour
embedding does not hold. The head reads, per (customer, item) pair of the history:

- the days since the customer last bought it (the age);
- how many distinct days they bought it on;
- their own cycle for it (days between the first and the last purchase over the gaps), and
  the age against it;
- the item's cycle over all its repeat buyers (median) and the age against it, and the share
  of its buyers who bought it again;
- the customer's number of shopping days, the share of them that include the item, and the
  item's purchase days in the last ``RECENT_DAYS`` (the personal frequency and recency that
  P-Pop and TIFU-KNN rank by).

Each is cut into bins and one-hot coded, and a logistic regression (scikit-learn) learns the
probability of a purchase in the ``repeat_horizon_days`` after a cut point from the training
purchases themselves: at ``repeat_cuts`` cut points spaced one horizon apart and ending one
horizon before the end of training, the pairs bought before the cut, labelled by whether
they were bought again in the horizon after it. A customer who buys an item every 7 days is
at the ratio 1 of their cycle on day 7, which is where such pairs were bought again.

At recommend time, with seen items allowed (``mixed`` and ``buy_again`` lists, targets
``all``/``repeat``), the customer's bought items join the re-rank's candidates and each
gains ``repeat_weight × p + repeat_offset``: the weight lifts what is due, the offset (<= 0)
sets how bought items stand against new ones. Both are chosen on validation with every
purchase a target (``choose_repeat``): the weight first (0 included, the grid growing at its
top), then the offset (0 included). With seen items excluded (``discover``) nothing changes.
Where nobody buys an item twice (ratings) the head is a constant, a very low probability,
and validation picks an offset that keeps bought items out of ``mixed`` lists.

The gain is a probability, not its log-odds: scoring bought items by ``w × log(p/(1-p))``
ranks an unbought item as if it had p = 1/2 and pushed the many bought items with low p
below them; on Online Retail's validation window that lost 40% against no head at all
(benchmarks/RESULTS.md, "Buy again and discover").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

from recogan.features import DAY
from recogan.metrics import validation_ndcg, validation_scorer

log = logging.getLogger(__name__)

#: Bin edges of the age (days since the last purchase) and of a cycle (days).
AGE_EDGES = np.array([1, 2, 3, 5, 7, 10, 14, 21, 30, 45, 60, 90, 120, 180, 270, 365.0])
#: Bin edges of log2(age / cycle): 0 is "due now".
RATIO_EDGES = np.array([-3, -2, -1.5, -1, -0.6, -0.3, 0.3, 0.6, 1, 1.5, 2, 3.0])
#: Bin edges of the number of distinct purchase days, and of the item's repeat share.
COUNT_EDGES = np.array([2, 3, 4, 6, 10, 20.0])
SHARE_EDGES = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.5])
#: Bin edges of the customer's shopping days, of the share of them with the item, and of
#: the item's purchase days in the last ``RECENT_DAYS``.
DAYS_EDGES = np.array([2, 4, 8, 16, 32, 64.0])
FREQ_EDGES = np.array([0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9])
RECENT_EDGES = np.array([1, 2, 3, 5.0])
RECENT_DAYS = 28.0
#: Feature blocks: (name, bins) with one bin more for "missing" where a block can be.
BLOCKS = (
    ("age", len(AGE_EDGES) + 1),
    ("own_ratio", len(RATIO_EDGES) + 2),
    ("item_ratio", len(RATIO_EDGES) + 2),
    ("count", len(COUNT_EDGES) + 1),
    ("share", len(SHARE_EDGES) + 1),
    ("own_cycle", len(AGE_EDGES) + 2),
    ("shopping_days", len(DAYS_EDGES) + 1),
    ("frequency", len(FREQ_EDGES) + 1),
    ("recent", len(RECENT_EDGES) + 1),
)
N_FEATURES = sum(n for _, n in BLOCKS)


@dataclass
class PairStats:
    """Per (customer, item) pair bought: the first and last purchase time, the number of
    distinct purchase days and of those in the ``RECENT_DAYS`` before the reference time, in
    CSR order (``indptr`` over customers, ``indices`` items); per customer, the number of
    distinct shopping days."""

    indptr: np.ndarray
    indices: np.ndarray
    first: np.ndarray
    last: np.ndarray
    count: np.ndarray
    recent: np.ndarray
    user_days: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def of(cls, users, items, times, shape, now) -> PairStats:
        """The stats of the purchases ``(users, items, times)`` at the reference times
        ``now`` (a scalar, or one per customer)."""
        users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
        times = np.asarray(times, np.float64)
        n_users, n_items = shape
        if not len(users):
            z = np.zeros(0)
            ptr = np.zeros(n_users + 1, np.int64)
            return cls(ptr, z.astype(np.int64), z, z, z, z, np.zeros(n_users), shape)
        all_days = np.floor(times / DAY).astype(np.int64)
        span = int(all_days.max() - all_days.min()) + 1
        shop = np.unique(users * span + (all_days - all_days.min()))
        user_days = np.bincount(shop // span, minlength=n_users).astype(np.float64)
        key = users * n_items + items
        order = np.lexsort((times, key))
        key, times = key[order], times[order]
        start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        day = all_days[order]
        new_day = np.r_[True, (key[1:] != key[:-1]) | (day[1:] != day[:-1])]
        count = np.add.reduceat(new_day.astype(np.float64), start)
        since = np.broadcast_to(np.asarray(now, np.float64), (n_users,)) - RECENT_DAYS * DAY
        fresh = new_day & (times > since[key // n_items])
        recent = np.add.reduceat(fresh.astype(np.float64), start)
        end = np.r_[start[1:], len(key)] - 1
        pair = key[start]
        indptr = np.r_[0, np.cumsum(np.bincount(pair // n_items, minlength=n_users))]
        return cls(
            indptr, pair % n_items, times[start], times[end], count, recent, user_days, shape
        )

    def rows(self, users: np.ndarray) -> PairStats:
        """The stats of ``users``' pairs (a customer a row, in that order)."""
        users = np.asarray(users, np.int64)
        lo, counts = self.indptr[users], np.diff(self.indptr)[users]
        indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
        take = np.repeat(lo - indptr[:-1], counts) + np.arange(indptr[-1], dtype=np.int64)
        return PairStats(
            indptr,
            self.indices[take],
            self.first[take],
            self.last[take],
            self.count[take],
            self.recent[take],
            self.user_days[users],
            (len(users), self.shape[1]),
        )

    def own_cycle(self) -> np.ndarray:
        """Each pair's own cycle in days (NaN for a pair bought on one day only)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                self.count > 1, (self.last - self.first) / DAY / (self.count - 1), np.nan
            )

    def item_cycles(self) -> tuple[np.ndarray, np.ndarray]:
        """Per item: the median own cycle of its repeat buyers (NaN without any) and the share
        of its buyers who bought it on more than one day."""
        n_items = self.shape[1]
        buyers = np.bincount(self.indices, minlength=n_items).astype(np.float64)
        again = self.count > 1
        repeaters = np.bincount(self.indices[again], minlength=n_items)
        share = np.divide(repeaters, buyers, out=np.zeros(n_items), where=buyers > 0)
        cycle = np.full(n_items, np.nan)
        items, cyc = self.indices[again], self.own_cycle()[again]
        if len(items):
            order = np.lexsort((cyc, items))
            items, cyc = items[order], cyc[order]
            start = np.flatnonzero(np.r_[True, items[1:] != items[:-1]])
            n = np.diff(np.r_[start, len(items)])
            lo, hi = start + (n - 1) // 2, start + n // 2
            cycle[items[start]] = (cyc[lo] + cyc[hi]) / 2
        return cycle, share


def _bins(values: np.ndarray, edges: np.ndarray, missing: bool) -> np.ndarray:
    b = np.digitize(values, edges)
    return np.where(np.isnan(values), len(edges) + 1, b) if missing else b


def features(
    stats: PairStats, item_cycle: np.ndarray, item_share: np.ndarray, now: np.ndarray
) -> sp.csr_matrix:
    """The one-hot features ``(pairs, N_FEATURES)`` of ``stats``' pairs at times ``now``
    (one per customer row); items beyond the item arrays (placed after the fit) count as
    items without repeat buyers."""
    rows = np.repeat(np.arange(stats.shape[0]), np.diff(stats.indptr))
    age = np.maximum(np.asarray(now, np.float64)[rows] - stats.last, 0.0) / DAY
    known = stats.indices < len(item_cycle)
    idx = np.where(known, stats.indices, 0)
    icyc = np.where(known, item_cycle[idx], np.nan)
    share = np.where(known, item_share[idx], 0.0)
    own = stats.own_cycle()
    with np.errstate(invalid="ignore", divide="ignore"):
        own_ratio = np.log2(np.maximum(age, 0.5) / own)
        item_ratio = np.log2(np.maximum(age, 0.5) / np.maximum(icyc, 0.5))
    days = stats.user_days[rows]
    cols = [
        _bins(age, AGE_EDGES, False),
        _bins(own_ratio, RATIO_EDGES, True),
        _bins(item_ratio, RATIO_EDGES, True),
        _bins(stats.count, COUNT_EDGES, False),
        _bins(share, SHARE_EDGES, False),
        _bins(own, AGE_EDGES, True),
        _bins(days, DAYS_EDGES, False),
        _bins(stats.count / np.maximum(days, 1.0), FREQ_EDGES, False),
        _bins(stats.recent, RECENT_EDGES, False),
    ]
    offsets = np.cumsum([0] + [n for _, n in BLOCKS[:-1]])
    col = np.stack([c + o for c, o in zip(cols, offsets)], axis=1)
    n = len(age)
    return sp.csr_matrix(
        (np.ones(col.size, np.float32), col.ravel(), np.arange(0, col.size + 1, len(BLOCKS))),
        shape=(n, N_FEATURES),
    )


def training_rows(train_events, shape, end: float, horizon_days: float, cuts: int):
    """The head's training set: features and labels of the pairs bought before each of
    ``cuts`` cut points (``end - k × horizon``, k = 1..cuts, those with a purchase before
    them), labelled 1 where the pair was bought again in the horizon after the cut."""
    users, items, times = (np.asarray(a) for a in train_events)
    h = horizon_days * DAY
    X, y = [], []
    for k in range(1, cuts + 1):
        cut = end - k * h
        before = times <= cut
        if not before.any():
            break
        stats = PairStats.of(users[before], items[before], times[before], shape, cut)
        cycle, share = stats.item_cycles()
        X.append(features(stats, cycle, share, np.full(shape[0], cut)))
        after = (times > cut) & (times <= cut + h)
        bought = sp.csr_matrix(
            (np.ones(after.sum()), (users[after], items[after])), shape=shape
        ).astype(bool)
        rows = np.repeat(np.arange(shape[0]), np.diff(stats.indptr))
        y.append(np.asarray(bought[rows, stats.indices]).ravel())
    if not X:
        return None, None
    return sp.vstack(X).tocsr(), np.concatenate(y).astype(np.int8)


@dataclass
class RepeatHead:
    """The fitted head: logistic regression weights over :func:`features`."""

    coef: np.ndarray  # (N_FEATURES,)
    intercept: float

    @classmethod
    def fit(cls, train_events, shape, end, horizon_days, cuts, max_rows, seed):
        """Fitted on the training purchases (see the module's docstring); None when no cut
        point has purchases before it. Where every pair behaves alike (nobody bought an item
        again, as on data of ratings) the head is a constant: the smoothed share
        ``(k + 1) / (n + 2)`` of the ``n`` pairs bought again."""
        X, y = training_rows(train_events, shape, end, horizon_days, cuts)
        if X is None:
            return None
        if len(y) > max_rows:
            keep = np.sort(np.random.default_rng(seed).choice(len(y), max_rows, replace=False))
            X, y = X[keep], y[keep]
        log.info("repeat head: %d pairs, %.4f bought again", len(y), y.mean())
        if y.min() == y.max():
            rate = (y.sum() + 1.0) / (len(y) + 2.0)
            return cls(np.zeros(N_FEATURES), float(np.log(rate / (1.0 - rate))))
        lr = LogisticRegression(C=1.0, max_iter=1000).fit(X, y)
        return cls(lr.coef_.ravel().astype(np.float64), float(lr.intercept_[0]))

    def log_odds(self, X: sp.csr_matrix) -> np.ndarray:
        """The log-odds of a purchase within the horizon, per row of ``X``."""
        return X @ self.coef + self.intercept

    def probability(self, X: sp.csr_matrix) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.log_odds(X)))


class Repeats:
    """The repeat head of the GAN: fitted with it, saved in its bundle, and the evidence its
    re-rank adds for items bought before."""

    def _fit_repeats(self, train) -> None:
        c = self.config
        shape = (self.n_users_, self.n_items_)
        events = (train.user_idx, train.item_idx, train.times)
        self.repeat_pairs_ = PairStats.of(*events, shape, float(self.train_end_))
        self.repeat_head_ = (
            RepeatHead.fit(
                events,
                shape,
                float(self.train_end_),
                c.repeat_horizon_days,
                c.repeat_cuts,
                c.repeat_max_rows,
                c.seed,
            )
            if c.repeat_cuts > 0
            else None
        )
        self.repeat_item_cycle_, self.repeat_item_share_ = self.repeat_pairs_.item_cycles()

    def _repeats_on(self) -> bool:
        c = self.config
        on = bool(c.repeat_weight) or bool(c.repeat_offset)
        return on and getattr(self, "repeat_head_", None) is not None

    def _repeat_matrix(self, stats: PairStats, now: np.ndarray) -> sp.csr_matrix:
        """``(B, n_items)``: what each of the rows' bought items gains in the re-rank,
        ``repeat_weight × p + repeat_offset``."""
        c = self.config
        X = features(stats, self.repeat_item_cycle_, self.repeat_item_share_, now)
        p = self.repeat_head_.probability(X) if X.shape[0] else np.zeros(0)
        gain = c.repeat_weight * p + c.repeat_offset
        return sp.csr_matrix((gain, stats.indices, stats.indptr), shape=stats.shape)

    def _known_repeats(self, users: np.ndarray) -> sp.csr_matrix | None:
        """:meth:`_repeat_matrix` of known customers at the end of training (None: off)."""
        if not self._repeats_on():
            return None
        now = np.full(len(users), float(self.train_end_))
        return self._repeat_matrix(self.repeat_pairs_.rows(users), now)

    def _history_repeats(self, histories, times) -> sp.csr_matrix | None:
        """:meth:`_repeat_matrix` of given histories; None when off or without their times
        (the head reads when each item was bought)."""
        if times is None or not self._repeats_on():
            return None
        lens = [len(np.ravel(h)) for h in histories]
        rows = np.repeat(np.arange(len(histories)), lens)
        items = np.concatenate([np.ravel(h) for h in histories] or [np.zeros(0)])
        t = np.concatenate([np.ravel(x) for x in times] or [np.zeros(0)])
        end = float(self.train_end_)
        now = np.array([max(end, float(np.max(x, initial=end))) for x in times])
        shape = (len(histories), self.n_items_)
        stats = PairStats.of(rows, items.astype(np.int64), t, shape, now)
        return self._repeat_matrix(stats, now)

    def choose_repeat(self, valid) -> None:
        """Choose ``repeat_weight`` among ``repeat_weights``, then ``repeat_offset`` among
        ``repeat_offsets``, on ``valid`` with every purchase a target and bought items kept
        (the lists they change); the fit's own scorer when it already counts repeats."""
        self.repeat_scores_, self.repeat_offset_scores_ = {}, {}
        if getattr(self, "repeat_head_", None) is None:
            return
        c = self.config
        saved = self._scorer
        if not _counts_repeats(saved):
            self._scorer = validation_scorer("all")
        try:
            self.repeat_scores_ = self._choose_knob(
                valid, "repeat_weight", c.repeat_weights, grow=True
            )
            self.repeat_offset_scores_ = self._choose_knob(valid, "repeat_offset", c.repeat_offsets)
        finally:
            self._scorer = saved

    def repeat_state(self) -> dict[str, np.ndarray]:
        head = getattr(self, "repeat_head_", None)
        if head is None:
            return {}
        s = self.repeat_pairs_
        return {
            "repeat_indptr": s.indptr,
            "repeat_indices": s.indices,
            "repeat_first": s.first,
            "repeat_last": s.last,
            "repeat_count": s.count,
            "repeat_recent": s.recent,
            "repeat_user_days": s.user_days,
            "repeat_item_cycle": self.repeat_item_cycle_,
            "repeat_item_share": self.repeat_item_share_,
            "repeat_coef": np.r_[head.coef, head.intercept],
        }

    def set_repeat_state(self, arrays) -> None:
        """Restores :meth:`repeat_state`; a bundle without it (saved before the head existed,
        or from data without repeats) has no head, and its lists rank as before."""
        self.repeat_head_ = None
        if "repeat_coef" not in arrays:
            return
        a = {k: np.asarray(arrays[k]) for k in arrays if k.startswith("repeat_")}
        self.repeat_pairs_ = PairStats(
            a["repeat_indptr"].astype(np.int64),
            a["repeat_indices"].astype(np.int64),
            a["repeat_first"].astype(np.float64),
            a["repeat_last"].astype(np.float64),
            a["repeat_count"].astype(np.float64),
            a["repeat_recent"].astype(np.float64),
            a["repeat_user_days"].astype(np.float64),
            (len(a["repeat_indptr"]) - 1, self.n_items_),
        )
        self.repeat_item_cycle_ = a["repeat_item_cycle"].astype(np.float64)
        self.repeat_item_share_ = a["repeat_item_share"].astype(np.float64)
        coef = a["repeat_coef"].astype(np.float64)
        self.repeat_head_ = RepeatHead(coef[:-1], float(coef[-1]))


def check_repeat_config(c) -> None:
    """A clear error for a repeat-head setting out of range."""
    if not c.repeat_weight >= 0 or any(not w >= 0 for w in c.repeat_weights):
        raise ValueError(
            "repeat_weight and repeat_weights must be >= 0, got "
            f"{c.repeat_weight} and {tuple(c.repeat_weights)}"
        )
    if not c.repeat_offset <= 0 or any(not w <= 0 for w in c.repeat_offsets):
        raise ValueError(
            "repeat_offset and repeat_offsets must be <= 0, got "
            f"{c.repeat_offset} and {tuple(c.repeat_offsets)}"
        )
    if not c.repeat_horizon_days > 0:
        raise ValueError(f"repeat_horizon_days must be > 0, got {c.repeat_horizon_days}")
    if c.repeat_cuts < 0:
        raise ValueError(f"repeat_cuts must be >= 0, got {c.repeat_cuts}")
    if c.repeat_max_rows < 2:
        raise ValueError(f"repeat_max_rows must be >= 2, got {c.repeat_max_rows}")


def _counts_repeats(scorer) -> bool:
    """Whether ``scorer`` is the validation NDCG with repeat purchases among its targets."""
    keywords = getattr(scorer, "keywords", None) or {}
    return getattr(scorer, "func", None) is validation_ndcg and keywords.get("targets") in (
        "all",
        "repeat",
    )
