"""The report's figures, rendered to base64 PNG strings.

Figures are drawn with matplotlib's object-oriented API (``Figure``, Agg rendering), without
pyplot: no global backend or figure registry is touched.
"""

from __future__ import annotations

import base64
import io

import matplotlib
import numpy as np
from matplotlib.figure import Figure


def figures(report) -> dict[str, str]:
    """``{"curves", "activity", "tradeoff", "diversity", "popularity"}`` → base64 PNG."""
    col = _colors(report.models)
    return {
        "curves": _png(_curves(report, col)),
        "activity": _png(_activity(report, col)),
        "tradeoff": _png(_tradeoff(report, col)),
        "diversity": _png(_diversity(report, col)),
        "popularity": _png(_popularity(report, col)),
    }


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _colors(models):
    cycle = matplotlib.colormaps["tab10"]
    return {m: cycle(i % 10) for i, m in enumerate(models)}


def _curves(report, col) -> Figure:
    """HR@K and NDCG@K over K."""
    models = report.models
    fig = Figure(figsize=(11, 3.8))
    axes = fig.subplots(1, 2)
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
    return fig


def _activity(report, col) -> Figure:
    """NDCG@10 by activity bucket."""
    models = report.models
    table = report.activity_table("NDCG@10")
    fig = Figure(figsize=(11, 3.8))
    ax = fig.subplots()
    width = 0.8 / len(models)
    x = np.arange(len(table))
    for j, m in enumerate(models):
        ax.bar(x + (j - (len(models) - 1) / 2) * width, table[m], width, label=m, color=col[m])
    ax.set_xticks(x, [f"{b}\n({n:,} users)" for b, n in zip(table.index, table["users"])])
    ax.set_xlabel("distinct items bought before the test period")
    ax.set_ylabel("NDCG@10")
    ax.legend(frameon=False, ncol=len(models))
    ax.grid(axis="y", alpha=0.3)
    return fig


def _tradeoff(report, col) -> Figure:
    """Coverage vs accuracy; a model with a knob draws a curve over its values."""
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.subplots()
    for m in report.models:
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
    return fig


#: The list metrics the diversity figure puts against NDCG@10, one panel each.
DIVERSITY_PANELS = (
    ("coverage@10", "catalog coverage@10"),
    ("diversity@10", "intra-list diversity@10"),
    ("novelty@10", "novelty@10 (bits)"),
)


def _diversity(report, col) -> Figure:
    """Coverage, intra-list diversity and novelty against NDCG@10: a curve over the diversity
    knob for the models that have one (solid), a recommend-time knob's curve (dashed), and
    every model's own point."""
    fig = Figure(figsize=(13, 4.2))
    axes = fig.subplots(1, len(DIVERSITY_PANELS), sharey=True)
    for ax, (metric, label) in zip(axes, DIVERSITY_PANELS):
        for m in report.models:
            t = report.diversity.get(m)
            if t is not None and len(t):
                mech = t["mechanism"].iloc[0]
                ax.plot(
                    t[metric], t["NDCG@10"], marker="o", ms=4, color=col[m], label=f"{m} ({mech})"
                )
                for _, r in t.iloc[1:].iterrows():
                    ax.annotate(
                        f"{r['diversity']:g}",
                        (r[metric], r["NDCG@10"]),
                        fontsize=6,
                        xytext=(2, 2),
                        textcoords="offset points",
                    )
            k = report.tradeoff.get(m)
            if k is not None and len(k) and metric in k:
                ax.plot(
                    k[metric],
                    k["NDCG@10"],
                    ls="--",
                    marker=".",
                    color=col[m],
                    alpha=0.6,
                    label=f"{m} ({k['param'].iloc[0]})",
                )
            row = report.metrics.loc[m]
            if metric in row:
                ax.scatter(
                    row[metric],
                    row["NDCG@10"],
                    s=60,
                    color=col[m],
                    zorder=3,
                    edgecolor="black",
                    linewidth=0.5,
                )
                if t is None:
                    ax.annotate(
                        m,
                        (row[metric], row["NDCG@10"]),
                        fontsize=8,
                        xytext=(5, -3),
                        textcoords="offset points",
                    )
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("NDCG@10")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(
            handles,
            labels,
            loc="upper center",
            ncol=min(len(handles), 6),
            frameon=False,
            bbox_to_anchor=(0.5, 1.08),
        )
    return fig


def _popularity(report, col) -> Figure:
    """Popularity of recommended items: ECDF of the training popularity of listed items."""
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.subplots()
    for m in report.models:
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
    return fig
