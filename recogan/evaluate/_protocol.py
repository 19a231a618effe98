"""Evaluation protocols: how data is split and how each model's lists are scored.

- ``temporal`` (default): a global time cut (train < valid < test); a model is tuned on
  train → valid and scored, refitted on train + valid, on test. The cuts are shares of the
  events (``test_frac``, ``valid_frac``) or whole days (``test_days``, ``valid_days``: the
  last ``test_days`` days are test, each validation window ``valid_days`` days).
- ``leave-last-out``: each customer's last basket is test, the one before it validation.

What counts as a hit is ``targets`` (:data:`recogan.metrics.TARGETS`): ``new`` (default; the
items each customer had not bought before, ranked over the full catalog with their seen items
excluded), ``all`` (every test purchase) or ``repeat`` (only re-purchases); the last two rank
with the seen items kept and split each accuracy figure into its repeat and explore parts
(:func:`recogan.metrics.repeat_explore`). Sampled-negative ranking
(each user's targets among ``n_negatives`` random unseen items) is only used when asked for and
is labelled ``sampled`` wherever it is reported: it inflates every metric and can reorder models.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recogan import metrics
from recogan.data import Dataset, Split, day_split, leave_last_out, temporal_split
from recogan.evaluate._windows import spread_split
from recogan.metrics import check_targets

log = logging.getLogger(__name__)

PROTOCOLS = ("temporal", "leave-last-out")
#: Spread validation windows start after this share of the events (their training part).
SPREAD_MIN_TRAIN = 0.3


@dataclass(frozen=True)
class Protocol:
    """How a run splits and ranks."""

    #: ``temporal`` (global time cut) or ``leave-last-out`` (last basket per customer).
    name: str = "temporal"
    #: Temporal split: share of the latest events that are test.
    test_frac: float = 0.1
    #: Temporal split: share of the events before the test period in each validation window.
    valid_frac: float = 0.1
    #: Rolling-origin validation: consecutive validation windows (each ``valid_frac`` of the
    #: events, the latest just before the test period); tuning chooses by the median over
    #: them of each candidate's score relative to the window's best, and refits with the
    #: median early-stopped epoch count, so a seasonal peak in one window cannot decide
    #: alone. 1: a single window.
    valid_folds: int = 3
    #: Temporal split: spread the ``valid_folds`` windows evenly over the history (from
    #: ``SPREAD_MIN_TRAIN`` of the events to the test period; each ``valid_frac`` of the
    #: events, trained on everything before it) instead of placing them side by side just
    #: before the test (:func:`recogan.evaluate.spread_split`): a seasonal stretch before
    #: the test period is then one window among many, and a model is judged on how its
    #: advantage holds across many cut points.
    spread: bool = False
    #: Temporal split in whole days (UTC): test is the last ``test_days`` days of the data
    #: (replacing ``test_frac``) and each of the ``valid_folds`` validation windows is
    #: ``valid_days`` days (replacing ``valid_frac``), the latest ending where the test
    #: begins, each trained on everything before it (:func:`recogan.data.day_split`): the
    #: protocol of a retailer who judges "the last ten days". None (both): shares.
    test_days: int | None = None
    #: Days in each validation window of a day-based split (with ``test_days``).
    valid_days: int | None = None
    #: ``full`` (rank the whole catalog) or ``sampled`` (targets among random negatives).
    ranking: str = "full"
    #: Negatives per user for ``sampled`` ranking.
    n_negatives: int = 100
    #: Remove items the user already bought from the ranking (``all`` and ``repeat`` targets
    #: keep them: set to False for those).
    exclude_seen: bool = True
    #: What counts as a hit: ``new``, ``all`` or ``repeat`` (:data:`recogan.metrics.TARGETS`).
    targets: str = "new"

    def __post_init__(self) -> None:
        name = self.name.replace("_", "-")
        if name not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.name!r} (known: {', '.join(PROTOCOLS)})")
        object.__setattr__(self, "name", name)
        if self.ranking not in ("full", "sampled"):
            raise ValueError(f"ranking must be 'full' or 'sampled', got {self.ranking!r}")
        if int(self.valid_folds) < 1:
            raise ValueError(f"valid_folds must be >= 1, got {self.valid_folds}")
        self._check_days()
        check_targets(self.targets)
        if self.targets != "new":
            object.__setattr__(self, "exclude_seen", False)
        if self.ranking == "sampled" and self.n_negatives <= 0:
            raise ValueError(f"n_negatives must be positive, got {self.n_negatives}")

    def _check_days(self) -> None:
        days = {"test_days": self.test_days, "valid_days": self.valid_days}
        if all(v is None for v in days.values()):
            return
        if any(v is None for v in days.values()):
            raise ValueError(
                "test_days and valid_days go together (day-based windows need both), got "
                + ", ".join(f"{k}={v}" for k, v in days.items())
            )
        for k, v in days.items():
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{k} must be a whole number of days >= 1, got {v!r}")
            object.__setattr__(self, k, int(v))
        if self.name != "temporal":
            raise ValueError(
                f"test_days and valid_days go with the temporal protocol, not {self.name!r}"
            )

    @property
    def by_days(self) -> bool:
        """Whether the split is cut in whole days (``test_days``/``valid_days``)."""
        return self.test_days is not None

    @property
    def label(self) -> str:
        rank = "full-catalog" if self.ranking == "full" else f"sampled({self.n_negatives} neg)"
        seen = "seen excluded" if self.exclude_seen else "seen kept"
        valid = (
            f", rolling-origin validation ({self.valid_folds} folds)"
            if self.name == "temporal" and self.valid_folds > 1
            else ""
        )
        if self.name == "temporal" and self.spread:
            valid = f", validation windows spread over the history ({self.valid_folds})"
        if self.by_days:
            n = self.valid_folds
            where = "spread over the history" if self.spread and n > 1 else "before it"
            valid = (
                f", test the last {self.test_days} days, {n} validation "
                f"window{'s' if n > 1 else ''} of {self.valid_days} days {where}"
            )
        what = "" if self.targets == "new" else f", {self.targets} purchases as targets"
        return f"{self.name}, {rank}, {seen}{what}{valid}"

    def to_dict(self) -> dict:
        return {**asdict(self), "label": self.label}

    def split(self, data: Dataset) -> Split:
        if self.by_days:
            return day_split(
                data,
                self.test_days,
                self.valid_days,
                int(self.valid_folds),
                spread=self.spread,
                min_train_frac=SPREAD_MIN_TRAIN,
            )
        if self.name == "temporal" and self.spread:
            return spread_split(
                data,
                int(self.valid_folds),
                valid_frac=self.valid_frac,
                test_frac=self.test_frac,
                min_train_frac=SPREAD_MIN_TRAIN,
            )
        if self.name == "temporal":
            return temporal_split(
                data,
                test_frac=self.test_frac,
                valid_frac=self.valid_frac,
                valid_folds=self.valid_folds,
            )
        return leave_last_out(data, valid=True)


def sampled_candidates(
    users: np.ndarray, targets: sp.csr_matrix, seen: sp.csr_matrix, n_negatives: int, seed: int
) -> np.ndarray:
    """``(B, max_targets + n_negatives)`` candidates per user: the targets plus ``n_negatives``
    items drawn uniformly from those neither seen nor targets (``-1`` pads). Seeded."""
    rng = np.random.default_rng(seed)
    n_items = targets.shape[1]
    n_t = np.diff(targets.indptr)
    out = np.full((len(users), int(n_t.max(initial=0)) + n_negatives), -1, dtype=np.int64)
    for r, u in enumerate(users):
        tgt = targets.indices[targets.indptr[r] : targets.indptr[r + 1]]
        banned = np.zeros(n_items, dtype=bool)
        banned[seen.indices[seen.indptr[u] : seen.indptr[u + 1]]] = True
        banned[tgt] = True
        pool = np.flatnonzero(~banned)
        neg = rng.choice(pool, size=min(n_negatives, pool.size), replace=False)
        out[r, : tgt.size] = tgt
        out[r, tgt.size : tgt.size + neg.size] = neg
    return out


def score_model(
    model,
    test: Dataset,
    ks,
    protocol: Protocol | None = None,
    *,
    seed: int = 0,
    batch_size: int = 1024,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-user accuracy metrics of a fitted ``model`` on ``test`` and its ``(B, max K)`` lists,
    ranked as ``protocol`` says (:func:`recogan.metrics.score` with its options)."""
    protocol = protocol or Protocol()
    sampler = None
    if protocol.ranking == "sampled":

        def sampler(users, targets, seen):
            return sampled_candidates(users, targets, seen, protocol.n_negatives, seed)

    return metrics.score(
        model,
        test,
        ks,
        exclude_seen=protocol.exclude_seen,
        candidates=sampler,
        batch_size=batch_size,
        targets=protocol.targets,
    )


def split_line(split: dict | None) -> str:
    """The report's line on the split that ran (``Split.summary()``): its protocol and the
    dates of the test period and of every validation window, latest first."""
    if not split or not split.get("protocol"):
        return ""
    line = f"Split: {split['protocol']}"
    if str(split["protocol"]).startswith("days("):
        return line  # a day-based split's label names its windows' dates
    dates = [f.get("dates") for f in split.get("valid_folds") or [] if f.get("dates")]
    if split.get("test_dates"):
        line += f"; test {split['test_dates']}"
    if dates:
        line += "; validation windows (latest first): " + ", ".join(dates)
    return line
