"""What the adversarial part added: the GAN (``gan``) against its own retrieval part
(``retrieval``, :mod:`recogan.gan.retrieval`: the same generator, inputs and recommend-time
choices without the adversarial loss or the discriminator's re-rank), on the same test users.

:func:`adversarial_ablation` builds the comparison from a report's per-user frame: test
NDCG@10 of both, their difference (absolute and relative to the retrieval part), the paired
test over users, coverage@10 of both, and the same difference within each customer-activity
bucket (distinct items bought before the test, the report's buckets). :func:`ablation_line`
says it in one line.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from recogan.evaluate._activity import activity_bucket, activity_order
from recogan.evaluate._stats import paired_test

#: The full model and its ablation (registry names).
FULL, PART = "gan", "retrieval"
#: The accuracy metric compared (per user), and the list metric shown beside it.
METRIC, LIST_METRIC = "NDCG@10", "coverage@10"
#: p-value below which a difference is called more than noise.
ALPHA = 0.05


def adversarial_ablation(
    per_user: pd.DataFrame,
    coverage: Mapping[str, float] | None = None,
    test: str = "wilcoxon",
    full: str = FULL,
    part: str = PART,
    edges: Sequence[int] | None = None,
) -> pd.DataFrame | None:
    """``full`` against ``part`` on the test users both were scored on: one row for all of
    them (``"all"``) and one per activity bucket, least active first (the report's buckets,
    column ``activity``; with ``edges``, buckets of :func:`recogan.evaluate.activity_bucket`
    over column ``n_history``, e.g. ``(1, 4)`` for ``1-3`` and ``4+``). Columns: ``users``,
    ``NDCG@10 <full>``, ``NDCG@10 <part>``, ``difference`` (full − part), ``relative``
    (difference / part's), ``p_value`` (the ``test`` paired test over those users,
    :func:`recogan.evaluate.paired_test`), and on the ``"all"`` row ``coverage@10 <full>``
    and ``coverage@10 <part>`` from ``coverage`` (model → value; NaN without it).

    ``per_user`` has columns ``model``, ``user``, ``activity`` and ``NDCG@10`` (a report's
    per-user frame). None when either model is missing from it."""
    missing = {"model", "user", METRIC, "activity" if edges is None else "n_history"}
    missing -= set(per_user.columns)
    if missing:
        raise ValueError(
            f"per_user is missing column(s) {sorted(missing)} (columns: {list(per_user.columns)})"
        )
    present = set(per_user["model"].unique())
    if full not in present or part not in present:
        return None
    if edges is not None:
        if not len(edges) or any(b <= a for a, b in itertools.pairwise(edges)) or edges[0] < 0:
            raise ValueError(f"edges must be increasing and >= 0, got {tuple(edges)}")
        per_user = per_user.assign(activity=activity_bucket(per_user["n_history"], edges))
    a = per_user.loc[per_user["model"] == full, ["user", "activity", METRIC]]
    b = per_user.loc[per_user["model"] == part, ["user", METRIC]]
    both = a.merge(b, on="user", suffixes=(f" {full}", f" {part}"))
    cols = (f"{METRIC} {full}", f"{METRIC} {part}")
    rows = {"all": _compare(both, *cols, test)}
    for bucket in activity_order(both["activity"].unique()):
        rows[bucket] = _compare(both[both["activity"] == bucket], *cols, test)
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "customers"
    coverage = {} if coverage is None else coverage
    for name in (full, part):
        value = coverage.get(name, np.nan)
        frame[f"{LIST_METRIC} {name}"] = [float(value)] + [np.nan] * (len(frame) - 1)
    return frame


def _compare(x: pd.DataFrame, col_full: str, col_part: str, test: str) -> dict:
    f, p = x[col_full].to_numpy(np.float64), x[col_part].to_numpy(np.float64)
    mf, mp = (float(np.nanmean(v)) if len(v) else np.nan for v in (f, p))
    diff = mf - mp
    return {
        "users": len(x),
        col_full: mf,
        col_part: mp,
        "difference": diff,
        "relative": diff / mp if mp > 0 else np.nan,
        "p_value": paired_test(f, p, test)["p_value"] if len(x) else np.nan,
    }


def _pct(x: float) -> str:
    return "n/a" if np.isnan(x) else f"{100 * x:+.1f}%"


def verdict(relative: float, p_value: float) -> str:
    """``within noise`` (p ≥ ``ALPHA``), else ``a gain`` or ``a loss``."""
    if np.isnan(p_value) or p_value >= ALPHA or np.isnan(relative) or relative == 0:
        return "within noise"
    return "a gain" if relative > 0 else "a loss"


def ablation_line(table: pd.DataFrame, test: str = "wilcoxon", full=FULL, part=PART) -> str:
    """The comparison of :func:`adversarial_ablation` in one line of text."""
    r = table.loc["all"]
    sf, sp = r[f"{METRIC} {full}"], r[f"{METRIC} {part}"]
    cf, cp = r[f"{LIST_METRIC} {full}"], r[f"{LIST_METRIC} {part}"]
    buckets = table.drop(index="all")
    by = "; ".join(
        f"{b} {_pct(row['relative'])} ({int(row['users']):,} users, p = {row['p_value']:.2g})"
        for b, row in buckets.iterrows()
    )
    coverage = "" if np.isnan(cf) or np.isnan(cp) else f"; {LIST_METRIC} {cf:.4f} vs {cp:.4f}"
    return (
        f"What the adversarial part added ({full} against its retrieval part, model {part}, on "
        f"{int(r['users']):,} test users): {METRIC} {sf:.4f} vs {sp:.4f}, "
        f"{_pct(r['relative'])} ({test} paired test p = {r['p_value']:.2g}: "
        f"{verdict(r['relative'], r['p_value'])}){coverage}; by customer activity (distinct "
        f"items bought before the test): {by}."
    )


#: The note under the report's table of :func:`adversarial_ablation`.
ABLATION_NOTE = (
    "gan against retrieval (the same generator, inputs and recommend-time choices without the "
    "adversarial loss or the discriminator's re-rank; tuned like every model of this report) "
    "on the same test users: difference = gan - retrieval, relative to retrieval; p_value: the "
    "report's paired test over those users (row all), or over a bucket's users; customers by "
    "distinct items bought before the test. A difference with p >= 0.05 is within noise."
)
