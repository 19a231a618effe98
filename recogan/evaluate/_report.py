"""The evaluation report: tables, markdown, self-contained HTML and the metrics.json."""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recogan._fs import atomic_path, locked
from recogan.evaluate._ablation import (
    ABLATION_NOTE,
    FULL,
    PART,
    ablation_line,
    adversarial_ablation,
)
from recogan.evaluate._activity import activity_order
from recogan.evaluate._plots import figures
from recogan.evaluate._protocol import split_line
from recogan.evaluate._stats import significance_mark
from recogan.evaluate._windows import agreement_warning

#: Accuracy metrics of the summary (K = 10), then what the lists look like.
ACCURACY_SUMMARY = ("HR@10", "NDCG@10", "Recall@10", "Precision@10", "MRR@10", "MAP@10")
BEYOND_SUMMARY = ("coverage@10", "gini@10", "novelty@10", "diversity@10", "popbias@10")
SUMMARY_METRICS = ACCURACY_SUMMARY + BEYOND_SUMMARY
#: Relative difference of test scores below which two models' test ranks count as a tie when
#: validation and test ranks are compared.
TIE = 0.01


def _num(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


@dataclass
class Report:
    """What :func:`recogan.evaluate.evaluate` found. ``metrics`` has one row per model (every
    metric@K, ``fit_seconds``, ``users``); ``per_user`` one row per (model, test user);
    ``ci`` the 95% bootstrap interval of each per-user metric; ``tests`` the paired tests
    against the best baseline; ``activity`` the breakdown by history length; ``tradeoff``
    the curve of a model's ``tradeoff_param()`` knob; ``diversity`` the curves over the
    diversity knob (:mod:`recogan.diversity`); ``generation`` the quality of a generative
    model's vectors (its ``generation_quality_``). With both ``gan`` and ``retrieval`` (the
    GAN without its adversarial part) in it, :meth:`adversarial_ablation` says what the
    adversarial part added, in one line of the header (:meth:`ablation_line`), a table and
    ``metrics.json``."""

    dataset: dict
    protocol: dict
    ks: list
    metrics: pd.DataFrame
    ci: dict
    per_user: pd.DataFrame
    tests: pd.DataFrame
    activity: pd.DataFrame
    tuning: dict
    params: dict
    tradeoff: dict = field(default_factory=dict)
    rec_popularity: dict = field(default_factory=dict)
    diversity: dict = field(default_factory=dict)
    generation: dict = field(default_factory=dict)
    #: Per model: wall seconds (tuning, refit, scoring), trials (complete, pruned), fold fits.
    timing: dict = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return list(self.metrics.index)

    def metric_names(self) -> list[str]:
        return [c for c in self.metrics.columns if "@" in c and "share" not in c]

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        """The metrics.json document: dataset, protocol, and per model every metric@K,
        ``fit_seconds`` and ``params``."""
        models = {}
        for name in self.models:
            row = self.metrics.loc[name]
            entry = {c: _num(row[c]) for c in self.metric_names()}
            entry["fit_seconds"] = float(row["fit_seconds"])
            tuning = self.tuning.get(name) or {}
            if "valid_NDCG@10" in tuning:
                entry["valid_NDCG@10"] = _num(tuning["valid_NDCG@10"])
                entry["valid_fold_NDCG@10"] = [_num(x) for x in tuning.get("fold_scores", [])]
            entry["params"] = self.params[name]
            models[name] = entry
        protocol = json.loads(json.dumps(self.protocol, default=str))
        doc = {
            "dataset": {k: int(self.dataset[k]) for k in ("users", "items", "interactions")},
            "protocol": protocol,
            "models": models,
            "warnings": self.warnings(),
        }
        if self.diversity or self.tradeoff:
            doc["tradeoff"] = {
                "diversity": {m: _records(t) for m, t in self.diversity.items()},
                "points": _records(self.diversity_table().query("mechanism == 'point'")),
                "knobs": {m: _records(t) for m, t in self.tradeoff.items()},
            }
        if self.generation:
            doc["generated_vectors"] = {m: _records(t) for m, t in self.generation.items()}
        if self.timing:
            doc["timing"] = json.loads(json.dumps(self.timing, default=float))
        ablation = self.adversarial_ablation()
        if ablation is not None:
            doc["adversarial_ablation"] = {
                "line": self.ablation_line(),
                "segments": _records(ablation.reset_index()),
            }
        return doc

    def to_json(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path

    # ------------------------------------------------------------------ tables
    def _mark(self, name: str, metric: str = "NDCG@10") -> str:
        if self.tests.empty:
            return ""
        t = self.tests[(self.tests["model"] == name) & (self.tests["metric"] == metric)]
        return "" if t.empty else significance_mark(t["p_value"].iloc[0], t["mean_diff"].iloc[0])

    def summary_table(self, metrics=SUMMARY_METRICS, fit: bool = True) -> pd.DataFrame:
        """Strings for the summary: mean [95% CI] for per-user metrics, significance marks."""
        best = self.protocol.get("best_baseline")
        out = {}
        for name in self.models:
            row = self.metrics.loc[name]
            cells = {}
            for m in metrics:
                if m not in row:
                    continue
                v = row[m]
                if m in self.ci.get(name, {}):
                    lo, hi = self.ci[name][m]
                    cell = f"{v:.4f} [{lo:.4f}, {hi:.4f}]"
                else:
                    cell = f"{v:.4f}"
                if m in ("NDCG@10", "HR@10"):
                    cell += " " + (self._mark(name, m) if name != best else "(ref)")
                cells[m] = cell.strip()
            if fit:
                cells["fit s"] = f"{row['fit_seconds']:.1f}"
            out[name] = cells
        frame = pd.DataFrame.from_dict(out, orient="index")
        frame.index.name = "model"
        return frame

    def curves(self, metric: str) -> pd.DataFrame:
        """``metric`` at each K: models × K."""
        return pd.DataFrame(
            {k: self.metrics[f"{metric}@{k}"] for k in self.ks if f"{metric}@{k}" in self.metrics}
        )

    def activity_table(self, metric: str = "NDCG@10") -> pd.DataFrame:
        t = self.activity.pivot(index="activity", columns="model", values=metric)
        order = activity_order(t.index)
        users = self.activity.groupby("activity")["users"].max()
        t = t.loc[order, self.models]
        t.insert(0, "users", users.loc[order].astype(int))
        return t

    def adversarial_ablation(self, edges=None) -> pd.DataFrame | None:
        """What the adversarial part added: ``gan`` against ``retrieval`` (its retrieval part)
        on the same test users, overall (row ``"all"``) and per activity bucket (the report's,
        or those of ``edges``, e.g. ``(1, 4)``: 1-3 and 4+ items): NDCG@10 of both, the
        difference (absolute and relative), the report's paired test, and coverage@10 of
        both (:func:`recogan.evaluate.adversarial_ablation`). None unless both models are in
        the report."""
        if not {FULL, PART} <= set(self.models):
            return None
        coverage = self.metrics["coverage@10"] if "coverage@10" in self.metrics else None
        test = self.protocol.get("test", "wilcoxon")
        return adversarial_ablation(self.per_user, coverage, test=test, edges=edges)

    def ablation_line(self) -> str | None:
        """:meth:`adversarial_ablation` in one line (None without both models)."""
        table = self.adversarial_ablation()
        if table is None:
            return None
        return ablation_line(table, self.protocol.get("test", "wilcoxon"))

    def repeat_explore_table(self, k: int = 10) -> pd.DataFrame:
        """The repeat/explore split at ``k`` (targets ``all`` or ``repeat``; empty for
        ``new``): the share of repeat items in the lists and in the targets, and Recall and
        NDCG on the repeat and on the explore targets."""
        cols = [
            f"repeat_ratio@{k}",
            "target_repeat_share",
            f"Recall_repeat@{k}",
            f"NDCG_repeat@{k}",
            f"Recall_explore@{k}",
            f"NDCG_explore@{k}",
        ]
        return self.metrics[[c for c in cols if c in self.metrics]]

    def popularity_table(self) -> pd.DataFrame:
        cols = ["head_rec_share@10", "head_hit_share@10", "popbias@10", "novelty@10"]
        return self.metrics[[c for c in cols if c in self.metrics]]

    def diversity_table(self) -> pd.DataFrame:
        """Accuracy against the list metrics at K = 10: one row per setting of the diversity
        knob for the models with a curve (mechanism ``MMR`` or the model's own setting), one
        row (mechanism ``point``) for every other model."""
        cols = ["NDCG@10", "HR@10", "coverage@10", "diversity@10", "novelty@10"]
        parts = []
        for name in self.models:
            t = self.diversity.get(name)
            if t is None:
                row = self.metrics.loc[name]
                t = pd.DataFrame(
                    [{"diversity": 0.0, "mechanism": "point", **{c: row.get(c) for c in cols}}]
                )
            parts.append(t.assign(model=name))
        if not parts:
            return pd.DataFrame(columns=["model", "mechanism", "diversity", *cols])
        frame = pd.concat(parts, ignore_index=True)
        return frame[["model", "mechanism", "diversity", *cols]]

    def generation_table(self) -> pd.DataFrame:
        """The quality of each generative model's vectors (the last row of its
        ``generation_quality_``, e.g. the final epoch): one row per model that has it."""
        rows = {m: t.iloc[-1] for m, t in self.generation.items() if len(t)}
        frame = pd.DataFrame.from_dict(rows, orient="index")
        for col in ("users", "draws"):  # counts, not measures
            if col in frame:
                frame[col] = frame[col].astype(int)
        frame.index.name = "model"
        return frame

    def tuning_table(self) -> pd.DataFrame:
        rows = []
        for name in self.models:
            t = self.tuning.get(name)
            rows.append(
                {
                    "model": name,
                    "trials": t["trials"] if t else 0,
                    "valid NDCG@10": f"{t['valid_NDCG@10']:.4f}" if t else "-",
                    "params": json.dumps(self.params[name]),
                }
            )
        return pd.DataFrame(rows).set_index("model")

    def timing_table(self) -> pd.DataFrame:
        """Per model: the tuner, its trials (complete / pruned), fold fits, and the wall
        seconds of tuning, the final refit, scoring, and in all."""
        rows = []
        for name in self.models:
            t = self.timing.get(name)
            if not t:
                continue
            rows.append(
                {
                    "model": name,
                    "tuner": t["tuner"],
                    "trials": f"{t['trials']} ({t['complete']} full, {t['pruned']} pruned)",
                    "fold fits": f"{t['fold_fits']:.1f}",
                    "tuning s": f"{t['tune_seconds']:.1f}",
                    "refit s": f"{t['refit_seconds']:.1f}",
                    "scoring s": f"{t['score_seconds']:.1f}",
                    "wall s": f"{t['wall_seconds']:.1f}"
                    + (" (earlier run)" if t.get("from_disk") else ""),
                }
            )
        return pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()

    def validation_table(self) -> pd.DataFrame:
        """Per model: validation NDCG@10 (mean over the validation folds, and each fold),
        test NDCG@10, and each model's rank by both."""
        names = [n for n in self.models if self.tuning.get(n)]
        if not names:
            return pd.DataFrame()
        valid = pd.Series({n: self.tuning[n]["valid_NDCG@10"] for n in names}, dtype=float)
        test = self.metrics.loc[names, "NDCG@10"].astype(float)
        frame = pd.DataFrame(
            {
                "valid NDCG@10": valid,
                "valid folds": [
                    " ".join(f"{x:.4f}" for x in self.tuning[n].get("fold_scores", []))
                    for n in names
                ],
                "test NDCG@10": test,
                "valid rank": valid.rank(ascending=False, method="min").astype(int),
                "test rank": test.rank(ascending=False, method="min").astype(int),
            }
        )
        frame.index.name = "model"
        return frame

    def warnings(self) -> list[str]:
        """Where validation and test disagree: a model whose validation rank is not its test
        rank (test scores within ``TIE`` of each other count as tied), above all a validation
        winner that does not win the test."""
        t = self.validation_table()
        if len(t) < 2:
            return []
        out = []
        top = t.index[t["valid rank"] == 1].tolist()
        for name in top:
            if t.loc[name, "test rank"] != 1:
                best = t.index[t["test rank"] == 1][0]
                out.append(
                    f"validation picked {name} as the best model "
                    f"(valid NDCG@10 {t.loc[name, 'valid NDCG@10']:.4f}), but on test it ranks "
                    f"{t.loc[name, 'test rank']} of {len(t)} and {best} is best: the validation "
                    "period does not predict the test period for it"
                )
        disagree = self.window_warning()
        if disagree:
            out.append(disagree)
        test = t["test NDCG@10"]
        for name, row in t.iterrows():
            # test scores within 1% of each other are a tie: any rank among them agrees
            s = test[name]
            lo = 1 + int((test > s * (1 + TIE)).sum())
            hi = int((test >= s * (1 - TIE)).sum())
            if name not in top and not lo <= row["valid rank"] <= hi:
                out.append(
                    f"{name}: validation rank {row['valid rank']} but test rank {row['test rank']}"
                )
        return out

    def window_scores(self) -> pd.DataFrame:
        """Each model's validation NDCG@10 per window (rows: models; columns: windows, 1 the
        latest), as chosen by tuning."""
        rows = {
            name: list(t.get("fold_scores") or [])
            for name, t in self.tuning.items()
            if t.get("fold_scores")
        }
        if not rows:
            return pd.DataFrame()
        n = max(len(v) for v in rows.values())
        rows = {k: v + [float("nan")] * (n - len(v)) for k, v in rows.items()}
        return pd.DataFrame.from_dict(rows, orient="index", columns=range(1, n + 1))

    def window_warning(self) -> str | None:
        """A warning when the validation windows disagree on the models (winners differ, or
        two windows order them oppositely): :func:`recogan.evaluate.agreement_warning`."""
        scores = self.window_scores()
        return agreement_warning(scores) if not scores.empty else None

    def tests_table(self) -> pd.DataFrame:
        if self.tests.empty:
            return self.tests
        t = self.tests[["model", "vs", "metric", "mean_diff", "p_value", "n"]].copy()
        t["mean_diff"] = t["mean_diff"].map(lambda x: f"{x:+.4f}")
        t["p_value"] = t["p_value"].map(lambda x: f"{x:.2g}")
        return t.set_index("model")

    # ------------------------------------------------------------------ markdown
    def header_lines(self) -> list[str]:
        d, p = self.dataset, self.protocol
        sampled = p.get("ranking") == "sampled"
        lines = [
            f"Dataset **{d['name']}**: {d['users']:,} users, {d['items']:,} items, "
            f"{d['interactions']:,} interactions.",
            f"Protocol: **{p['label']}**"
            + (" — SAMPLED ranking: numbers are not comparable to full ranking." if sampled else "")
            + f"; test users: {int(self.metrics['users'].iloc[0]):,}; seed {p['seed']}.",
            (
                f"Tuning: {p['budget']} trials per model on validation {p['tune_metric']}"
                + (f" ({p['tuner']} search)" if p.get("tuner") else "")
                + ", then refit on train+valid."
                if p.get("tuned")
                else "Tuning: off (default or given hyperparameters)."
            ),
            f"Intervals: 95% bootstrap ({p['n_boot']} resamples of users). Marks: {p['test']} "
            f"paired test vs the best baseline **{p.get('best_baseline')}** (ref); "
            "▲/▼ better/worse, \\* p<0.05, \\*\\* p<0.01, \\*\\*\\* p<0.001.",
        ]
        split = split_line(p.get("split"))
        if split:
            lines.insert(2, split)
        ablation = self.ablation_line()
        if ablation is not None:
            lines.append(ablation)
        return lines

    def to_markdown(self) -> str:
        parts = ["# Offline evaluation", "", *[f"- {x}" for x in self.header_lines()], ""]
        warnings = self.warnings()
        if warnings:
            parts += ["## Warnings", "", *[f"- **warning**: {w}" for w in warnings], ""]
        parts += [
            "## Accuracy at K = 10 (mean [95% CI])",
            "",
            self.summary_table(ACCURACY_SUMMARY, fit=False).pipe(_md_table),
            "",
            "## The lists at K = 10",
            "",
            self.summary_table(BEYOND_SUMMARY).pipe(_md_table),
            "",
        ]
        split = self.repeat_explore_table()
        if not split.empty:
            parts += [
                "## Repeat and explore (K = 10)",
                "",
                REPEAT_NOTE,
                "",
                split.round(4).pipe(_md_table),
                "",
            ]
        for m in ("HR", "NDCG", "Recall"):
            parts += [f"## {m}@K", "", self.curves(m).round(4).pipe(_md_table), ""]
        ablation = self.adversarial_ablation()
        if ablation is not None:
            parts += [
                "## What the adversarial part added",
                "",
                ABLATION_NOTE,
                "",
                ablation.pipe(_md_table),
                "",
            ]
        parts += [
            "## NDCG@10 by customer activity (distinct items bought before the test)",
            "",
            self.activity_table().round(4).pipe(_md_table),
            "",
            "## Item popularity (head = 20% most-bought items)",
            "",
            self.popularity_table().round(4).pipe(_md_table),
            "",
        ]
        if not self.tests.empty:
            parts += ["## Paired tests", "", self.tests_table().pipe(_md_table), ""]
        parts += ["## Chosen hyperparameters", "", self.tuning_table().pipe(_md_table), ""]
        timing = self.timing_table()
        if not timing.empty:
            parts += ["## Wall time per model", "", timing.pipe(_md_table), ""]
        valid = self.validation_table()
        if len(valid):
            parts += ["## Validation vs test", "", valid.round(4).pipe(_md_table), ""]
        if self.diversity:
            parts += [
                "## Diversity vs accuracy (K = 10)",
                "",
                DIVERSITY_NOTE,
                "",
                self.diversity_table().round(4).pipe(_md_table, index=False),
                "",
            ]
        for name, t in self.tradeoff.items():
            parts += [f"## Trade-off: {name}", "", t.round(4).pipe(_md_table, index=False), ""]
        if self.generation:
            parts += [
                "## Generated vectors",
                "",
                GENERATION_NOTE,
                "",
                self.generation_table().pipe(_md_table),
                "",
            ]
            for name, t in self.generation.items():
                if len(t) > 1:
                    parts += [
                        f"### Generated vectors by epoch: {name}",
                        "",
                        t.pipe(_md_table, index=False),
                        "",
                    ]
        return "\n".join(parts)

    # ------------------------------------------------------------------ HTML
    def to_html(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        body = self._html_body(figures(self))
        page = _PAGE.format(title="recogan offline evaluation", body="\n".join(body))
        path.write_text(page, encoding="utf-8")
        return path

    def _html_body(self, imgs: dict[str, str]) -> list[str]:
        table = _html_table

        def img(key: str, alt: str) -> str:
            return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{imgs[key]}">'

        head = "".join(f"<li>{_md_inline(x)}</li>" for x in self.header_lines())
        body = [
            "<h1>Offline evaluation</h1>",
            f"<ul class='meta'>{head}</ul>",
            *[f"<p class='warn'><b>warning</b>: {html.escape(w)}</p>" for w in self.warnings()],
            "<h2>Accuracy at K = 10</h2>",
            "<p class='note'>mean over test users [95% bootstrap CI]; marks: paired test "
            "against the reference baseline (ref).</p>",
            table(self.summary_table(ACCURACY_SUMMARY, fit=False)),
            "<h2>The lists at K = 10</h2>",
            "<p class='note'>coverage: share of the catalog recommended to anyone; gini: "
            "concentration of exposure (0 = even); novelty: bits of self-information; "
            "diversity: mean pairwise 1 − cosine; popbias: mean popularity percentile; "
            "fit s: seconds of the final fit.</p>",
            table(self.summary_table(BEYOND_SUMMARY)),
            "<h2>Accuracy over K</h2>",
            img("curves", "HR@K and NDCG@K"),
            "<h2>By customer activity</h2>",
            img("activity", "NDCG@10 by activity bucket"),
            table(self.activity_table()),
            "<h2>Coverage vs accuracy</h2>",
            img("tradeoff", "coverage@10 vs NDCG@10"),
            "<h2>Diversity vs accuracy</h2>",
            f"<p class='note'>{html.escape(DIVERSITY_NOTE)}</p>",
            img("diversity", "coverage, intra-list diversity and novelty @10 vs NDCG@10"),
            table(self.diversity_table().set_index("model")) if self.diversity else "",
            "<h2>Popularity of recommended items</h2>",
            img("popularity", "popularity of recommended items"),
            "<p class='note'>head = the 20% most-bought items in training; head_rec_share: "
            "share of top-10 slots given to head items; head_hit_share: share of the hits "
            "that are head items (the rest are long-tail hits).</p>",
            table(self.popularity_table()),
        ]
        ablation = self.adversarial_ablation()
        if ablation is not None:
            body += [
                "<h2>What the adversarial part added</h2>",
                f"<p class='note'>{html.escape(ABLATION_NOTE)}</p>",
                table(ablation),
            ]
        if not self.tests.empty:
            body += ["<h2>Paired tests</h2>", table(self.tests_table())]
        if self.generation:
            body += [
                "<h2>Generated vectors</h2>",
                f"<p class='note'>{html.escape(GENERATION_NOTE)}</p>",
                table(self.generation_table()),
            ]
        body += ["<h2>Chosen hyperparameters</h2>", table(self.tuning_table())]
        valid = self.validation_table()
        if len(valid):
            body += [
                "<h2>Validation vs test</h2>",
                "<p class='note'>validation NDCG@10 is the mean over the rolling-origin "
                "validation folds (latest first); a model that ranks differently on "
                "validation and test is flagged above.</p>",
                table(valid),
            ]
        return body

    def save(self, out_dir) -> dict[str, Path]:
        """metrics.json, report.md, report.html and per_user.parquet in ``out_dir``.

        Each file is written under a temporary name, fsynced and renamed into place
        (:func:`recogan._fs.atomic_path`), so a reader (or a crashed scheduled run) never sees
        a half-written file; other files in ``out_dir`` are left alone."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        writers = {
            "metrics": ("metrics.json", self.to_json),
            "markdown": ("report.md", lambda p: p.write_text(self.to_markdown() + "\n", "utf-8")),
            "html": ("report.html", self.to_html),
            "per_user": ("per_user.parquet", lambda p: self.per_user.to_parquet(p, index=False)),
        }
        paths = {}
        with locked(out):  # two runs into one folder: all four files come from one of them
            for kind, (name, write) in writers.items():
                with atomic_path(out / name) as tmp:
                    write(tmp)
                paths[kind] = out / name
        return paths


REPEAT_NOTE = (
    "As in the Next Basket Recommendation Reality Check (Li et al., ACM TOIS 2023): "
    "repeat_ratio is the share of the list's items the customer bought before, "
    "target_repeat_share the share of the targets that are re-purchases; the repeat and "
    "explore parts of Recall and NDCG are scored on those targets alone, each averaged over "
    "the customers who have such targets."
)
DIVERSITY_NOTE = (
    "The diversity knob (0 = the model's ranking) re-ranks each list by maximal marginal "
    "relevance over item similarity (mechanism MMR), or sets the model's own mechanism; "
    "recommend-time only, no refits. Models without a curve are points. coverage: share of "
    "the catalog recommended to anyone; diversity: mean pairwise 1 - cosine in a list; "
    "novelty: bits of self-information."
)
GENERATION_NOTE = (
    "Generated query vectors against the vectors of the items customers bought next: "
    "frechet: Fréchet distance of Gaussians fitted to both (0 = same mean and covariance); "
    "precision / recall: k-NN manifold estimates (Kynkäänniemi et al. 2019; high precision "
    "with low recall = mode collapse); draw_spread: mean distance between a customer's "
    "draws; draw_coverage: share of a customer's next purchases that some draw retrieves "
    "first."
)


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-safe dicts (NaN → None)."""
    out = []
    for row in frame.to_dict(orient="records"):
        clean = {}
        for k, v in row.items():
            if isinstance(v, (np.integer,)):
                v = int(v)
            elif isinstance(v, (float, np.floating)):
                v = _num(v)
            elif isinstance(v, np.bool_):
                v = bool(v)
            clean[str(k)] = v
        out.append(clean)
    return out


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(
        classes="t", border=0, index_names=False, float_format=lambda x: f"{x:.4f}"
    )


def _md_table(frame: pd.DataFrame, index: bool = True) -> str:
    """A GitHub-flavoured markdown table (no extra dependency)."""

    def fmt(x) -> str:
        if isinstance(x, (float, np.floating)):
            return "" if np.isnan(x) else f"{x:.4f}"
        return str(x).replace("|", "\\|").replace("*", "\\*")

    cols = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for key, row in frame.astype(object).iterrows():
        cells = ([fmt(key)] if index else []) + [fmt(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _md_inline(text: str) -> str:
    """``**bold**`` and ``\\*`` escapes of a markdown line, as HTML."""
    parts = html.escape(text).replace("\\*", "\0").split("**")
    out = "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))
    return out.replace("\0", "*")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1250px; color: #222; line-height: 1.4; }}
h1 {{ font-size: 1.7em; }} h2 {{ font-size: 1.25em; margin-top: 1.6em;
       border-bottom: 1px solid #ddd; padding-bottom: .2em; }}
.warn {{ background: #fff4e5; border-left: 4px solid #e8a33d; padding: .4em .8em; }}
.meta li {{ margin: .2em 0; }} .note {{ color: #666; font-size: .9em; }}
table.t {{ border-collapse: collapse; font-size: .85em; margin: .5em 0; }}
table.t th, table.t td {{ padding: .3em .6em; border-bottom: 1px solid #eee; text-align: right;
       white-space: nowrap; }}
table.t th {{ background: #f6f6f6; }} table.t tr:hover td {{ background: #fafafa; }}
img {{ max-width: 100%; display: block; margin: .5em 0; }}
</style></head>
<body>
{body}
</body></html>
"""
