"""Train / validation / test splits that never leak future events into training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recogan.data._dataset import Dataset


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
                {"train": tr.n_interactions, "valid": va.n_interactions} for tr, va in self.folds
            ],
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

    def secs(x) -> int:
        return int(x) if isinstance(x, (int, np.integer)) else pd.Timestamp(x).value // 10**9

    t = data.times
    t_test = secs(test_start)
    starts = [secs(v) for v in valid_starts]
    if not starts or any(b >= a for a, b in zip([t_test, *starts], starts)):
        raise ValueError(
            f"valid_starts must be non-empty, each earlier than the one before it and than "
            f"test_start (got {list(valid_starts)}, test_start={test_start})"
        )
    folds, upper = [], t_test
    for j, start in enumerate(starts, 1):
        suffix = "" if j == 1 else f"@{j}"
        train = data.subset(t < start, name=f"{data.name}/train{suffix}")
        valid, dropped = _keep_known_users(
            data.subset((t >= start) & (t < upper), name=f"{data.name}/valid{suffix}"), train
        )
        if train.n_interactions == 0 or valid.n_interactions == 0:
            raise ValueError(f"{data.name}: validation fold {j} has no training or no events")
        folds.append((train, valid, dropped))
        upper = start
    history = data.subset(t < t_test, name=f"{data.name}/train_valid")
    test, n_test_drop = _keep_known_users(
        data.subset(t >= t_test, name=f"{data.name}/test"), history
    )
    if test.n_interactions == 0:
        raise ValueError(f"{data.name}: no test events at or after test_start={test_start}")
    label = f"split_at_times(test_start={test_start}, valid_starts={list(valid_starts)})"
    return Split(
        folds[0][0],
        folds[0][1],
        test,
        protocol=name or label,
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
