"""Confidence intervals and paired significance tests over per-user metric values."""

from __future__ import annotations

import numpy as np
from scipy import stats


def bootstrap_ci(
    values, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaNs ignored), seeded."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), float(v[0])
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    # chunks bound memory to ~chunk × n values
    chunk = max(1, 2_000_000 // v.size)
    for s in range(0, n_boot, chunk):
        m = min(chunk, n_boot - s)
        means[s : s + m] = v[rng.integers(0, v.size, (m, v.size))].mean(1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def paired_test(a, b, method: str = "wilcoxon") -> dict:
    """Paired test of per-user values ``a`` vs ``b`` (same users, same order).

    ``wilcoxon`` (signed-rank, two-sided; the default: per-user ranking metrics are far from
    normal) or ``t`` (paired t-test). Returns the mean difference a − b, the statistic and the
    p-value; all-equal pairs give p = 1."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired test needs equal lengths, got {a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    d = a - b
    out = {"method": method, "n": int(d.size), "mean_diff": float(d.mean()) if d.size else 0.0}
    if d.size < 2 or np.all(d == 0):
        return {**out, "statistic": 0.0, "p_value": 1.0}
    if method == "wilcoxon":
        res = stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
    elif method == "t":
        res = stats.ttest_rel(a, b)
    else:
        raise ValueError(f"unknown paired test {method!r} (use 'wilcoxon' or 't')")
    p = float(res.pvalue)
    return {**out, "statistic": float(res.statistic), "p_value": 1.0 if np.isnan(p) else p}


def significance_mark(p_value: float, mean_diff: float) -> str:
    """``▲``/``▼`` (better/worse than the reference) with ``*`` p<0.05, ``**`` p<0.01,
    ``***`` p<0.001; empty when not significant."""
    if p_value is None or np.isnan(p_value) or p_value >= 0.05:
        return ""
    stars = "***" if p_value < 0.001 else "**" if p_value < 0.01 else "*"
    return ("▲" if mean_diff > 0 else "▼") + stars
