"""The report's figures, rendered with matplotlib's Agg backend to base64 PNG strings."""

from __future__ import annotations

import base64
import io

import numpy as np


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _colors(models):
    import matplotlib.pyplot as plt

    cycle = plt.get_cmap("tab10")
    return {m: cycle(i % 10) for i, m in enumerate(models)}


def figures(report) -> dict[str, str]:
    """``{"curves", "activity", "tradeoff", "popularity"}`` → base64 PNG."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    models = report.models
    col = _colors(models)
    out = {}

    # HR@K and NDCG@K over K
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, metric in zip(axes, ("HR", "NDCG")):
        curve = report.curves(metric)
        for m in models:
            ax.plot(curve.columns, curve.loc[m], marker="o", label=m, color=col[m])
        ax.set_xlabel("K")
        ax.set_ylabel(f"{metric}@K")
        ax.set_xticks(list(curve.columns))
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="upper center",
        ncol=len(models),
        frameon=False,
        bbox_to_anchor=(0.5, 1.06),
    )
    out["curves"] = _png(fig)

    # NDCG@10 by activity bucket
    table = report.activity_table("NDCG@10")
    fig, ax = plt.subplots(figsize=(11, 3.8))
    width = 0.8 / len(models)
    x = np.arange(len(table))
    for j, m in enumerate(models):
        ax.bar(x + (j - (len(models) - 1) / 2) * width, table[m], width, label=m, color=col[m])
    ax.set_xticks(x, [f"{b}\n({n:,} users)" for b, n in zip(table.index, table["users"])])
    ax.set_xlabel("distinct items bought before the test period")
    ax.set_ylabel("NDCG@10")
    ax.legend(frameon=False, ncol=len(models))
    ax.grid(axis="y", alpha=0.3)
    out["activity"] = _png(fig)

    # coverage vs accuracy; a model with a knob draws a curve over its values
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for m in models:
        row = report.metrics.loc[m]
        t = report.tradeoff.get(m)
        if t is not None and len(t):
            ax.plot(t["coverage@10"], t["NDCG@10"], marker="o", color=col[m], alpha=0.7)
            for _, r in t.iterrows():
                ax.annotate(
                    f"{r['param']}={r['value']}",
                    (r["coverage@10"], r["NDCG@10"]),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
        ax.scatter(row["coverage@10"], row["NDCG@10"], s=70, color=col[m], label=m, zorder=3)
        ax.annotate(
            m,
            (row["coverage@10"], row["NDCG@10"]),
            fontsize=9,
            xytext=(6, -3),
            textcoords="offset points",
        )
    ax.set_xlabel("catalog coverage@10")
    ax.set_ylabel("NDCG@10")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    out["tradeoff"] = _png(fig)

    # popularity of recommended items: ECDF of the training popularity of listed items
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for m in models:
        p = np.sort(np.asarray(report.rec_popularity.get(m, []), dtype=np.float64))
        if p.size:
            ax.step(
                np.maximum(p, 0.8),
                np.arange(1, p.size + 1) / p.size,
                where="post",
                label=m,
                color=col[m],
            )
    ax.set_xscale("log")
    low = min((np.min(v) for v in report.rec_popularity.values() if len(v)), default=1)
    ax.set_xlim(left=max(0.8, low / 1.5))
    ax.set_xlabel("buyers of the recommended item in training (log)")
    ax.set_ylabel("share of top-10 slots (cumulative)")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    out["popularity"] = _png(fig)
    return out
