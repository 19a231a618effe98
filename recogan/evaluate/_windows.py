"""Validation that one odd period cannot turn upside down: windows spread over the history,
a shift statistic per window, agreement between windows, and a model choice across them.

Rolling-origin validation (``Split.folds``) places its windows just before the test period;
when those weeks are a holiday season, every window sees the same odd weeks and they agree
with each other while all of them mislead. Here:

- :func:`spread_split`: validation windows spread over the whole history (each trained on
  everything before it), so a model's advantage is judged at many cut points;
- :func:`window_shift`: how far each window's purchases are from those of the other windows
  (Jensen-Shannon divergence of the item distributions), and which windows stand out;
- :func:`window_agreement`: rank correlations (Kendall's tau) of the models between every
  pair of windows, with a warning when windows disagree on the winner or on the order;
- :func:`window_scores` / :func:`choose_model`: each candidate fitted and scored on every
  window, and the candidate that holds up best across them (shifted windows down-weighted),
  with the reasons.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from recogan.data import Dataset, Split
from recogan.fitting import fit_folds

log = logging.getLogger(__name__)

#: A window is "shifted" when its divergence from the other windows exceeds this multiple of
#: the median divergence of the windows.
SHIFT_RATIO = 1.5
#: Weight of a shifted window in :func:`choose_model` (1 for the others).
SHIFTED_WEIGHT = 0.25
#: Windows "disagree" when their winners differ or when the lowest Kendall's tau between two
#: windows' model orders is below this (two windows ordering the models the opposite way
#: more than the same way); one swap among three models (tau 1/3) is not a disagreement.
AGREEMENT_TAU = 0.0


def _known(part: Dataset, history: Dataset) -> Dataset:
    known = np.zeros(part.n_users, dtype=bool)
    known[history.user_idx] = True
    return part.subset(known[part.user_idx])


def spread_split(
    data: Dataset,
    windows: int = 6,
    *,
    valid_frac: float = 0.05,
    test_frac: float = 0.1,
    min_train_frac: float = 0.3,
) -> Split:
    """A temporal split whose ``windows`` validation windows are spread evenly over the history
    between the first ``min_train_frac`` of the events and the test period (the latest
    ``test_frac``; 0: no test period, the latest window ends with the data, as for choosing
    a model to serve). Each window holds ``valid_frac`` of the events and is trained on
    everything before it; folds are latest first, the latest ending where the test begins.
    Cut times are event-time quantiles (events sharing a cut's time go to the later part)."""
    if windows < 1:
        raise ValueError(f"windows must be >= 1, got {windows}")
    if not (0 <= test_frac < 1 and 0 < valid_frac < 1 and 0 < min_train_frac < 1):
        raise ValueError(
            f"test_frac, valid_frac and min_train_frac must be in (0, 1) "
            f"(got {test_frac}, {valid_frac}, {min_train_frac})"
        )
    last_start = 1.0 - test_frac - valid_frac
    if last_start < min_train_frac:
        raise ValueError(
            f"no room for validation windows: min_train_frac={min_train_frac} + "
            f"valid_frac={valid_frac} + test_frac={test_frac} > 1"
        )
    t = data.times
    q = lambda f: np.quantile(t, f, method="higher")  # noqa: E731
    t_test = q(1.0 - test_frac) if test_frac > 0 else int(t.max()) + 1
    starts = (
        np.linspace(last_start, min_train_frac, windows) if windows > 1 else np.array([last_start])
    )
    folds = []
    for j, a in enumerate(starts, 1):
        lo = q(a)
        hi = t_test if j == 1 else q(a + valid_frac)
        train = data.subset(t < lo, name=f"{data.name}/train@{j}")
        valid = _known(data.subset((t >= lo) & (t < hi), name=f"{data.name}/valid@{j}"), train)
        if train.n_interactions == 0 or valid.n_interactions == 0:
            raise ValueError(f"{data.name}: spread window {j} has no training or no events")
        folds.append((train, valid))
    history = data.subset(t < t_test, name=f"{data.name}/train_valid")
    test = _known(data.subset(t >= t_test, name=f"{data.name}/test"), history)
    return Split(
        folds[0][0],
        folds[0][1],
        test,
        protocol=f"spread(windows={windows}, valid_frac={valid_frac}, test_frac={test_frac})",
        dropped={},
        train_valid=history,
        folds=tuple(folds),
    )


def _distribution(part: Dataset) -> np.ndarray:
    counts = np.bincount(part.item_idx, minlength=part.n_items).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of two distributions."""
    m = 0.5 * (p + q)

    def kl(a):
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def window_shift(folds: Sequence[tuple[Dataset, Dataset]]) -> pd.DataFrame:
    """Per validation window: the Jensen-Shannon divergence of its item distribution from the
    pooled other windows' (``shift``), from the last stretch of its own training period of the
    same number of events (``shift_vs_recent``), its ratio to the windows' median shift, and
    whether it is ``shifted`` (ratio above :data:`SHIFT_RATIO`)."""
    dists = [_distribution(va) for _, va in folds]
    sizes = [va.n_interactions for _, va in folds]
    rows = []
    for j, (tr, va) in enumerate(folds):
        others = [d * n for k, (d, n) in enumerate(zip(dists, sizes)) if k != j]
        row = {"window": j + 1, "start": _day(va.times.min()), "end": _day(va.times.max())}
        row["events"] = va.n_interactions
        if others:
            rest = np.sum(others, axis=0)
            row["shift"] = js_divergence(dists[j], rest / rest.sum())
        else:
            row["shift"] = np.nan
        recent = tr.subset(np.arange(tr.n_interactions) >= tr.n_interactions - va.n_interactions)
        row["shift_vs_recent"] = js_divergence(dists[j], _distribution(recent))
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("window")
    med = np.nanmedian(frame["shift"]) if frame["shift"].notna().any() else np.nan
    frame["ratio"] = frame["shift"] / med if med and np.isfinite(med) else np.nan
    frame["shifted"] = frame["ratio"] > SHIFT_RATIO
    return frame


def _day(t) -> str:
    return str(pd.Timestamp(int(t), unit="s").date())


def window_agreement(scores: pd.DataFrame) -> dict:
    """How alike the windows rank the models: ``scores`` has one row per model and one column
    per window. Returns the Kendall's tau of every pair of windows, the lowest and the mean,
    each window's winner and ``disagree`` (winners differ or the lowest tau is below
    :data:`AGREEMENT_TAU`)."""
    cols = list(scores.columns)
    winners = {c: str(scores[c].idxmax()) for c in cols if scores[c].notna().any()}
    taus = {}
    for a, b in itertools.combinations(cols, 2):
        pair = scores[[a, b]].dropna()
        if len(pair) >= 2:
            tau = kendalltau(pair[a], pair[b]).statistic
            taus[(a, b)] = float(tau) if np.isfinite(tau) else 0.0
    low = min(taus.values()) if taus else np.nan
    mean = float(np.mean(list(taus.values()))) if taus else np.nan
    disagree = len(set(winners.values())) > 1 or (bool(taus) and low < AGREEMENT_TAU)
    return {
        "taus": taus,
        "min_tau": low,
        "mean_tau": mean,
        "winners": winners,
        "disagree": disagree,
    }


def agreement_warning(scores: pd.DataFrame, metric: str = "NDCG@10") -> str | None:
    """A sentence for a report when the windows disagree (:func:`window_agreement`)."""
    if scores.shape[0] < 2 or scores.shape[1] < 2:
        return None
    a = window_agreement(scores)
    if not a["disagree"]:
        return None
    wins = pd.Series(a["winners"]).value_counts()
    return (
        f"the {scores.shape[1]} validation windows disagree on the models: winners "
        + ", ".join(f"{m} in {n}" for m, n in wins.items())
        + f"; lowest rank correlation between two windows (Kendall's tau of valid {metric}) "
        f"{a['min_tau']:+.2f}, mean {a['mean_tau']:+.2f}. A choice made on these windows is "
        "fragile: check windows spread over the history (recogan evaluate --spread, "
        "recogan.evaluate.spread_split)"
    )


def window_scores(
    candidates: Mapping[str, tuple[type, dict]],
    folds: Sequence[tuple[Dataset, Dataset]],
    *,
    show: bool = False,
) -> pd.DataFrame:
    """NDCG@10 of every candidate (``label -> (class, params)``) on every window (fitted on the
    window's training part, early-stopping on the window where the model does): one row per
    candidate, one column per window (1 = latest)."""
    rows = {}
    for label, (cls, params) in candidates.items():
        fits = fit_folds(cls, dict(params), folds)
        rows[label] = fits.scores
        if show:
            print(f"  {label}: " + ", ".join(f"{s:.4f}" for s in fits.scores), flush=True)
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=range(1, len(folds) + 1))
    frame.columns.name = "window"
    return frame


@dataclass
class Choice:
    """What :func:`choose_model` chose and why."""

    best: str
    #: Per candidate: weighted mean relative score, windows won, median relative score.
    table: pd.DataFrame
    scores: pd.DataFrame
    shift: pd.DataFrame | None
    weights: np.ndarray
    warnings: list[str] = field(default_factory=list)
    #: Why a simpler candidate was preferred (empty: it was not).
    note: str = ""

    def reason(self) -> str:
        row = self.table.loc[self.best]
        n = self.scores.shape[1]
        runner = self.table.index[1] if len(self.table) > 1 else None
        text = (
            f"{self.best}: {row['relative']:.1%} of the best score per window on average "
            f"(weighted), best in {int(row['wins'])} of {n} windows"
        )
        if runner is not None:
            text += f"; next {runner} at {self.table.loc[runner, 'relative']:.1%}"
        if self.shift is not None and self.shift["shifted"].any():
            shifted = self.shift.index[self.shift["shifted"]].tolist()
            text += f"; windows {shifted} differ from the rest and weigh {SHIFTED_WEIGHT}"
        return text + self.note

    def lines(self) -> list[str]:
        out = [f"validation windows ({self.scores.shape[1]}), NDCG@10 per window:"]
        shown = self.scores.copy()
        shown.columns = [f"w{c}" for c in shown.columns]
        out += ["  " + line for line in shown.round(4).to_string().splitlines()]
        if self.shift is not None:
            cols = ["start", "end", "shift", "ratio", "shifted"]
            s = self.shift[[c for c in cols if c in self.shift]].round(4)
            out += ["window shift (Jensen-Shannon vs the other windows):"]
            out += ["  " + line for line in s.to_string().splitlines()]
        out += [f"warning: {w}" for w in self.warnings]
        out.append(f"chose {self.reason()}")
        return out


def choose_model(
    scores: pd.DataFrame,
    shift: pd.DataFrame | None = None,
    *,
    shifted_weight: float = SHIFTED_WEIGHT,
    simpler: tuple = (),
    margin: float = 0.0,
) -> Choice:
    """The candidate (row of ``scores``) whose score holds up best across the windows: the
    highest weighted mean over windows of its score relative to the window's best (windows
    flagged ``shifted`` weigh ``shifted_weight``, the others 1); ties go to more windows won,
    then the row order. ``simpler``: candidates from the simplest on; the simplest of them
    within ``margin`` (relative) of the top is chosen instead of a more complex one, which
    has to win by more than that."""
    if scores.empty:
        raise ValueError("no candidates to choose from")
    s = scores.to_numpy(float)
    best = np.nanmax(np.where(np.isnan(s), -np.inf, s), axis=0)
    rel = np.where(best > 0, s / np.where(best > 0, best, 1.0), 0.0)
    rel = np.where(np.isnan(s), 0.0, rel)
    w = np.ones(s.shape[1])
    if shift is not None and len(shift) == s.shape[1]:
        w = np.where(shift["shifted"].to_numpy(bool), shifted_weight, 1.0)
    wins = (s == best[None, :]).sum(1)
    table = pd.DataFrame(
        {
            "relative": (rel * w).sum(1) / w.sum(),
            "wins": wins,
            "median_relative": np.median(rel, axis=1),
            "mean_score": np.nanmean(s, axis=1),
        },
        index=scores.index,
    )
    order = sorted(
        range(len(table)),
        key=lambda i: (-round(table["relative"].iloc[i], 9), -table["wins"].iloc[i], i),
    )
    table = table.iloc[order]
    top = table["relative"].iloc[0]
    near = [
        c for c in simpler if c in table.index and table.loc[c, "relative"] >= top * (1 - margin)
    ]
    note = ""
    if near and near[0] != table.index[0]:
        note = (
            f"; {table.index[0]} scored within {margin:.0%} of it, and the simpler model is "
            "chosen unless a more complex one wins by more"
        )
        table = pd.concat([table.loc[[near[0]]], table.drop(index=near[0])])
    warnings = []
    warning = agreement_warning(scores)
    if warning:
        warnings.append(warning)
    return Choice(str(table.index[0]), table, scores, shift, w, warnings, note)
