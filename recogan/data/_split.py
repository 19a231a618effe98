"""Train / validation / test splits that never leak future events into training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recogan.data._dataset import Dataset

#: Seconds in a day (day-based windows cut at midnight, UTC).
DAY = 86_400


def _secs(x) -> int:
    return int(x) if isinstance(x, (int, np.integer)) else pd.Timestamp(x).value // 10**9


def _date(t) -> str:
    return str(pd.Timestamp(int(t), unit="s").date())


def _span(part: Dataset) -> str:
    """``first day - last day`` of a part's events ('' when it has none)."""
    t = part.times
    return f"{_date(t.min())} - {_date(t.max())}" if len(t) else ""


@dataclass(frozen=True)
class Split:
    """Three Datasets over one id space.

    ``train`` is what a model is fitted on while tuning; ``valid`` scores the tuning (and early
    stopping); ``test`` is scored once, by a model fitted on ``train_valid`` (train + valid).
    ``valid`` holds only users with ``train`` history; ``test`` only users with ``train_valid``
    history. ``dropped`` counts the events left out of ``valid``/``test`` for that reason (they
    stay in ``train_valid``: a model refitted for the test period knows them).
    """

    train: Dataset
    valid: Dataset
    test: Dataset
    protocol: str
    dropped: dict
    train_valid: Dataset
    #: Validation folds ``(train_k, valid_k)``, latest first, for tuning and early stopping;
    #: a plain split has one, ``(train, valid)``. Rolling-origin validation has several
    #: consecutive cut points, so one odd window cannot decide alone.
    folds: tuple = ()

    def __post_init__(self) -> None:
        if not self.folds:
            object.__setattr__(self, "folds", ((self.train, self.valid),))

    def summary(self) -> dict:
        return {
            "protocol": self.protocol,
            "train": self.train.n_interactions,
            "valid": self.valid.n_interactions,
            "test": self.test.n_interactions,
            "valid_users": len(self.valid.active_users()),
            "test_users": len(self.test.active_users()),
            "dropped_no_history": dict(self.dropped),
            "valid_folds": [
                {"train": tr.n_interactions, "valid": va.n_interactions, "dates": _span(va)}
                for tr, va in self.folds
            ],
            "test_dates": _span(self.test),
        }


def _keep_known_users(part: Dataset, history: Dataset) -> tuple[Dataset, int]:
    known = np.zeros(part.n_users, dtype=bool)
    known[history.user_idx] = True
    mask = known[part.user_idx]
    return part.subset(mask), int((~mask).sum())


def temporal_split(
    data: Dataset, test_frac: float = 0.1, valid_frac: float = 0.1, valid_folds: int = 1
) -> Split:
    """Global time cut: the latest ``test_frac`` of interactions are test, the ``valid_frac``
    before them validation, the rest train (``train < valid < test`` by time, strictly).

    With ``valid_folds = k > 1`` validation is rolling-origin: fold ``j`` (``j = 1..k``,
    latest first) validates on the ``valid_frac`` of events just before fold ``j - 1``'s
    window and trains on everything earlier, so the folds cover ``k · valid_frac`` of the
    time line before the test period. ``split.train``/``split.valid`` are the latest fold.

    Cut times are quantiles of the event times; events sharing the cut's timestamp all go to
    the later part, so no training event is at or after any test event.
    """
    if not (0 < test_frac < 1) or not (0 <= valid_frac < 1) or test_frac + valid_frac >= 1:
        raise ValueError(
            f"need 0 < test_frac, 0 <= valid_frac and test_frac + valid_frac < 1 "
            f"(got test_frac={test_frac}, valid_frac={valid_frac})"
        )
    if int(valid_folds) < 1 or test_frac + valid_folds * valid_frac >= 1:
        raise ValueError(
            f"valid_folds must be >= 1 and leave training data before the earliest fold "
            f"(got valid_folds={valid_folds}, valid_frac={valid_frac}, test_frac={test_frac})"
        )
    t = data.times
    t_test = np.quantile(t, 1.0 - test_frac, method="higher")
    folds, n_valid_drop, upper = [], 0, t_test
    for j in range(1, int(valid_folds) + 1):
        t_valid = np.quantile(t, 1.0 - test_frac - j * valid_frac, method="higher")
        suffix = "" if j == 1 else f"@{j}"
        train = data.subset(t < t_valid, name=f"{data.name}/train{suffix}")
        if train.n_interactions == 0:
            raise ValueError(
                f"{data.name}: temporal split leaves no training events before validation "
                f"fold {j} (too few distinct timestamps)"
            )
        valid, dropped = _keep_known_users(
            data.subset((t >= t_valid) & (t < upper), name=f"{data.name}/valid{suffix}"), train
        )
        if j > 1 and valid.n_interactions == 0:
            break  # too few distinct timestamps for another window
        n_valid_drop += dropped if j == 1 else 0
        folds.append((train, valid))
        upper = t_valid
    history = data.subset(t < t_test, name=f"{data.name}/train_valid")
    test, n_test_drop = _keep_known_users(
        data.subset(t >= t_test, name=f"{data.name}/test"), history
    )
    label = f"temporal(test_frac={test_frac}, valid_frac={valid_frac}"
    label += f", valid_folds={len(folds)})" if valid_folds > 1 else ")"
    return Split(
        folds[0][0],
        folds[0][1],
        test,
        protocol=label,
        dropped={"valid": n_valid_drop, "test": n_test_drop},
        train_valid=history,
        folds=tuple(folds),
    )


def split_at_times(data: Dataset, test_start, valid_starts, *, name: str = "") -> Split:
    """A temporal split at given times (epoch seconds or anything ``pd.Timestamp`` reads):
    test is ``t >= test_start``; validation fold ``j`` is ``[valid_starts[j], end_j)``, where
    ``end_0 = test_start`` and ``end_j = valid_starts[j - 1]`` (latest first, each strictly
    earlier), trained on everything before its start. For splits a fraction cannot express,
    such as a validation period that is a known seasonal peak."""
    t_test = _secs(test_start)
    starts = [_secs(v) for v in valid_starts]
    if not starts or any(b >= a for a, b in zip([t_test, *starts], starts)):
        raise ValueError(
            f"valid_starts must be non-empty, each earlier than the one before it and than "
            f"test_start (got {list(valid_starts)}, test_start={test_start})"
        )
    label = f"split_at_times(test_start={test_start}, valid_starts={list(valid_starts)})"
    return _cut(data, t_test, list(zip(starts, [t_test, *starts])), name or label)


def day_split(
    data: Dataset,
    test_days: int,
    valid_days: int,
    windows: int = 1,
    *,
    spread: bool = False,
    min_train_frac: float = 0.3,
) -> Split:
    """A temporal split in whole days (UTC calendar days of the event times): test is the
    last ``test_days`` days of the data (0: no test period, the latest validation window
    ends with the data, as for choosing a model to serve); each of the ``windows``
    validation windows is ``valid_days`` days, latest first, trained on everything before
    its first day. Side by side just before the test period (``spread=False``), or spread
    evenly between the day where ``min_train_frac`` of the events lie behind and the test
    period (``spread=True``; the latest still ends where the test begins). Every cut is at
    midnight: all of a day's events go to the same part."""
    for what, v, low in (("test_days", test_days, 0), ("valid_days", valid_days, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"{what} must be an integer >= {low}, got {v!r}")
    if isinstance(windows, bool) or not isinstance(windows, (int, np.integer)) or windows < 1:
        raise ValueError(f"windows must be an integer >= 1, got {windows!r}")
    t = data.times
    if len(t) == 0:
        raise ValueError(f"{data.name}: no events to split")
    last = int(t.max()) // DAY * DAY
    t_test = last + (1 - int(test_days)) * DAY
    span = int(valid_days) * DAY
    if spread and windows > 1:
        first = int(np.quantile(t, min_train_frac, method="higher")) // DAY * DAY
        latest = t_test - span
        if first > latest:
            raise ValueError(
                f"{data.name}: no room for {valid_days}-day validation windows spread from "
                f"{_date(first)} ({min_train_frac:.0%} of the events before it) to the test "
                f"period starting {_date(t_test)}; use shorter windows"
            )
        offsets = np.round(np.linspace(0, (latest - first) // DAY, windows)).astype(np.int64)
        if len(set(offsets.tolist())) < windows:
            raise ValueError(
                f"{data.name}: {windows} spread validation windows need {windows} distinct "
                f"start days between {_date(first)} and {_date(latest)}; use fewer windows"
            )
        bounds = [(latest - int(o) * DAY, latest - int(o) * DAY + span) for o in offsets]
        kind = f"{windows} spread validation windows of {valid_days} days"
    else:
        bounds = [(t_test - j * span, t_test - (j - 1) * span) for j in range(1, windows + 1)]
        kind = f"{windows} validation window{'s' if windows > 1 else ''} of {valid_days} days"
    dates = ", ".join(f"{_date(a)} - {_date(b - 1)}" for a, b in bounds)
    test = (
        f"test the last {test_days} days ({_date(t_test)} - {_date(last)})"
        if test_days
        else ("no test period")
    )
    label = f"days({test}; {kind}, latest first: {dates})"
    return _cut(data, t_test, bounds, label, need_test=test_days > 0)


def _cut(data: Dataset, t_test: int, bounds, label: str, *, need_test: bool = True) -> Split:
    """The split with test ``t >= t_test`` and validation windows ``[start, end)`` (epoch
    seconds, latest first), each trained on everything before its start."""
    t = data.times
    folds = []
    for j, (start, end) in enumerate(bounds, 1):
        suffix = "" if j == 1 else f"@{j}"
        train = data.subset(t < start, name=f"{data.name}/train{suffix}")
        valid, dropped = _keep_known_users(
            data.subset((t >= start) & (t < end), name=f"{data.name}/valid{suffix}"), train
        )
        window = f"validation window {j} ({_date(start)} - {_date(end - 1)})"
        if train.n_interactions == 0:
            raise ValueError(
                f"{data.name}: {window} leaves no training events before it (the data begin "
                f"{_date(t.min())}); use fewer or shorter validation windows"
            )
        if valid.n_interactions == 0:
            raise ValueError(
                f"{data.name}: {window} has no events of customers who bought before it"
            )
        folds.append((train, valid, dropped))
    history = data.subset(t < t_test, name=f"{data.name}/train_valid")
    test, n_test_drop = _keep_known_users(
        data.subset(t >= t_test, name=f"{data.name}/test"), history
    )
    if need_test and test.n_interactions == 0:
        raise ValueError(
            f"{data.name}: no test events (of customers who bought before) at or after "
            f"{_date(t_test)} (test_start={t_test})"
        )
    return Split(
        folds[0][0],
        folds[0][1],
        test,
        protocol=label,
        dropped={"valid": folds[0][2], "test": n_test_drop},
        train_valid=history,
        folds=tuple((tr, va) for tr, va, _ in folds),
    )


def leave_last_out(data: Dataset, *, valid: bool = True) -> Split:
    """Per user, the last purchase event (all items at the user's latest timestamp, i.e. the
    last basket) is test; with ``valid=True`` the basket before it is validation.

    Users with fewer baskets than parts keep their events in train, so every test and
    validation user has history. Per user, train is strictly earlier than valid and test.
    """
    u, t = data.user_idx, data.times
    n = data.n_users
    order = np.lexsort((t, u))
    us, ts = u[order], t[order]
    # distinct (user, time) baskets, ranked from the end per user
    new_basket = np.ones(len(us), dtype=bool)
    new_basket[1:] = (us[1:] != us[:-1]) | (ts[1:] != ts[:-1])
    basket_id = np.cumsum(new_basket) - 1
    n_baskets = np.bincount(us[new_basket], minlength=n)
    first_basket = np.concatenate([[0], np.cumsum(n_baskets)[:-1]])
    rank_from_end = n_baskets[us] - 1 - (basket_id - first_basket[us])
    parts = 2 if valid else 1
    part = np.zeros(len(us), dtype=np.int8)  # 0 train, 1 valid, 2 test
    has_enough = n_baskets[us] > parts
    part[(rank_from_end == 0) & has_enough] = 2
    if valid:
        part[(rank_from_end == 1) & has_enough] = 1
    label = np.empty(len(us), dtype=np.int8)
    label[order] = part
    return Split(
        data.subset(label == 0, name=f"{data.name}/train"),
        data.subset(label == 1, name=f"{data.name}/valid"),
        data.subset(label == 2, name=f"{data.name}/test"),
        protocol=f"leave_last_out(valid={valid})",
        dropped={"users_too_short": int((n_baskets <= parts).sum())},
        train_valid=data.subset(label < 2, name=f"{data.name}/train_valid"),
    )
