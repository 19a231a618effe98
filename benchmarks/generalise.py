"""The generalisation suite: the GAN and the tuned baselines on datasets that differ the way
retailers differ, at several seeds, from one command.

Every model gets the same tuning budget on the same rolling-origin validation folds (the
tuner's default), is refitted on train + valid and scored once on the test period; nothing is
chosen per dataset by hand. Every model runs at every seed (``--seeds``, default 0, 1, 2: the
tuner's draws, the initialisations and the training order change; the split does not).
Baselines: popularity, ItemKNN, EASE, iALS (time-blind), SASRec (sequential), ItemKNN and
EASE over a time-decayed history blended with recent popularity, and TIFU-KNN (baskets).
P-Pop is left out: with seen items excluded, as here, it is popularity.

Datasets:

- ``online_retail``: the bundled UCI Online Retail (default temporal split);
- ``movielens_1m``: MovieLens-1M from ``../shared/data/ml-1m`` (skipped when absent);
- ``or_dates``: Online Retail with timestamps truncated to dates (a whole day is one basket);
- ``or_xmas_valid``: Online Retail split at dates so that the validation folds are the
  pre-Christmas build-up (September, October, November 2011) and the test the weeks after it
  (1-9 December 2011);
- ``or_last4m``: only the last 4 months of Online Retail (short histories);
- ``synthetic_retail``: a planted-structure grocery-like retailer
  (:func:`recogan.datasets.synthetic_retail`: day-level baskets, repeat purchases, a larger
  catalog and a seasonal peak in the validation period that ends before the test period).

The table gives, per dataset and model, mean ± sd over the seeds of test NDCG@10 (and the
validation score), and for the GAN its ratio to the best baseline (the baseline with the best
mean test NDCG@10) with a 95% bootstrap interval and a paired Wilcoxon test over (user, seed)
pairs, the seeds pooled. The verdict counts the four Online Retail variants as one family:
their test weeks overlap, so they are not independent evidence; a family is met when the GAN's
mean is at least the best baseline's on every member.

Usage::

    python benchmarks/generalise.py                                   # the whole suite
    python benchmarks/generalise.py --datasets or_last4m --seeds 0 --budget 1 --out /tmp/gen
    python benchmarks/generalise.py --table /tmp/gen     # the table and verdict of saved runs

Each (dataset, seed) result is written to ``OUT/<dataset>/seed<k>.json`` (valid and test
NDCG@10, coverage@10, the chosen parameters, timings, per-user test NDCG@10, the commit) as
soon as it is done.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

BASELINES = (
    "pop",
    "itemknn",
    "ease",
    "ials",
    "sasrec",
    "itemknn_td",
    "ease_td",
    "tifuknn",
)
MODELS = (*BASELINES, "gan")
SEEDS = (0, 1, 2)
#: Datasets whose test periods overlap count as one family in the verdict.
FAMILIES = {
    "online_retail": "Online Retail",
    "or_dates": "Online Retail",
    "or_xmas_valid": "Online Retail",
    "or_last4m": "Online Retail",
}
ROOT = Path(__file__).resolve().parents[1]
DAY = 86400
ML1M_DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ml-1m"


def _online_retail():
    from recogan.datasets import online_retail

    return online_retail()


def _with_frame(data, frame, name):
    return data._with(frame.reset_index(drop=True), name)


def load(name: str):
    """``(Dataset or Split, note)`` for a suite dataset name."""
    from recogan.data import split_at_times

    if name == "online_retail":
        return _online_retail(), "default temporal split"
    if name == "movielens_1m":
        from recogan.datasets import movielens_1m

        root = os.environ.get("RECOGAN_ML1M", str(ML1M_DEFAULT))
        if not Path(root, "ratings.parquet").exists():
            raise FileNotFoundError(f"MovieLens-1M not found under {root} (set RECOGAN_ML1M)")
        return movielens_1m(root), "default temporal split"
    if name == "or_dates":
        d = _online_retail()
        f = d.interactions.copy()
        f["time"] = (f["time"] // DAY) * DAY
        from recogan.data._dataset import _sorted

        return _with_frame(d, _sorted(f), "or_dates"), "timestamps truncated to dates"
    if name == "or_xmas_valid":
        d = _online_retail()
        split = split_at_times(
            d,
            "2011-12-01",
            ["2011-11-01", "2011-10-01", "2011-09-01"],
            name="split_at_times(test from 2011-12-01; valid folds Nov, Oct, Sep 2011)",
        )
        return split, "validation = pre-Christmas build-up, test = 1-9 Dec 2011"
    if name == "or_last4m":
        d = _online_retail()
        f = d.interactions
        f = f[f["time"] >= f["time"].max() - 122 * DAY]
        return _with_frame(d, f, "or_last4m"), "last 4 months only"
    if name == "synthetic_retail":
        from recogan.datasets import synthetic_retail

        return synthetic_retail(), "planted structure, seasonal peak in validation"
    raise ValueError(f"unknown suite dataset {name!r}")


SUITE = (
    "online_retail",
    "movielens_1m",
    "or_dates",
    "or_xmas_valid",
    "or_last4m",
    "synthetic_retail",
)


def commit() -> str:
    """The commit the suite runs at (``+dirty`` when the worktree has changes)."""
    import subprocess

    def git(*a):
        return subprocess.run(
            ["git", "-C", str(ROOT), *a], capture_output=True, text=True
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def run_one(
    name: str, budget: int, seed: int, out: Path, models=MODELS, gan_budget=None, jobs="auto"
) -> dict:
    import torch

    from recogan.evaluate import evaluate

    torch.set_num_threads(1)
    at = commit()  # the code this run starts with
    data, note = load(name)
    t0 = time.perf_counter()
    rows, per_user, reports = {}, {}, []
    groups = [[m for m in models if m != "gan"], [m for m in models if m == "gan"]]
    for group, b in zip(groups, (budget, gan_budget or budget)):
        if not group:
            continue
        report = evaluate(
            data, models=group, tune=True, budget=b, seed=seed, jobs=jobs, show_progress=False
        )
        reports.append(report)
        for m in report.models:
            t = report.tuning[m]
            rows[m] = {
                "budget": b,
                "valid_ndcg10": t["valid_NDCG@10"],
                "valid_folds": t["fold_scores"],
                "test_ndcg10": float(report.metrics.loc[m, "NDCG@10"]),
                "test_hr10": float(report.metrics.loc[m, "HR@10"]),
                "coverage10": float(report.metrics.loc[m, "coverage@10"]),
                "fit_seconds": float(report.metrics.loc[m, "fit_seconds"]),
                "params": report.params[m],
            }
            f = report.per_user[report.per_user["model"] == m].sort_values("user")
            per_user[m] = {
                "user": f["user"].astype(int).tolist(),
                "ndcg10": f["NDCG@10"].astype(float).round(6).tolist(),
            }
    report = reports[0]
    result = {
        "dataset": name,
        "note": note,
        "counts": report.dataset,
        "protocol": report.protocol["label"],
        "split": report.protocol["split"],
        "budget": budget,
        "seed": seed,
        "models": rows,
        "per_user": per_user,
        "warnings": [w for r in reports for w in r.warnings()],
        "seconds": time.perf_counter() - t0,
        "commit": at,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": date.today().isoformat(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    path = out / name / f"seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    tmp.replace(path)
    return result


def _pooled(runs: list[dict], model: str) -> dict[tuple, float]:
    """``{(seed, user): NDCG@10}`` of ``model`` over the runs (seeds) that have it."""
    out = {}
    for r in runs:
        pu = r.get("per_user", {}).get(model)
        if pu:
            out.update({(r["seed"], u): v for u, v in zip(pu["user"], pu["ndcg10"])})
    return out


def ratio_ci(a, b, *, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of mean(a) / mean(b) over paired values (resampling
    pairs together, seeded)."""
    import numpy as np

    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), (n_boot, len(a)))
    ratios = a[idx].mean(1) / np.maximum(b[idx].mean(1), 1e-12)
    lo, hi = np.quantile(ratios, [0.025, 0.975])
    return float(lo), float(hi)


def summarise(runs: list[dict]) -> dict:
    """One dataset over its seeds: per model mean and sd of test (and valid) NDCG@10; the
    GAN against the best baseline (ratio, bootstrap interval, paired test; seeds pooled)."""
    import numpy as np

    from recogan.evaluate import paired_test

    models = list(dict.fromkeys(m for r in runs for m in r["models"]))
    rows = {}
    for m in models:
        test = [r["models"][m]["test_ndcg10"] for r in runs if m in r["models"]]
        valid = [r["models"][m]["valid_ndcg10"] for r in runs if m in r["models"]]
        rows[m] = {
            "seeds": len(test),
            "budget": next(
                r["models"][m].get("budget", r["budget"]) for r in runs if m in r["models"]
            ),
            "test_mean": float(np.mean(test)),
            "test_sd": float(np.std(test, ddof=1)) if len(test) > 1 else float("nan"),
            "valid_mean": float(np.nanmean(valid)),
        }
    base = [m for m in models if m != "gan"]
    out = {
        "dataset": runs[0]["dataset"],
        "rows": rows,
        "commits": sorted({r.get("commit", "?") for r in runs}),
    }
    if "gan" in rows and base:
        best = max(base, key=lambda m: rows[m]["test_mean"])
        g, b = _pooled(runs, "gan"), _pooled(runs, best)
        keys = sorted(set(g) & set(b))
        a = [g[k] for k in keys]
        c = [b[k] for k in keys]
        ratio = rows["gan"]["test_mean"] / max(rows[best]["test_mean"], 1e-12)
        out["gan"] = {
            "best_baseline": best,
            "ratio": ratio,
            "pairs": len(keys),
            "ratio_ci": ratio_ci(a, c) if keys else (float("nan"), float("nan")),
            "test": paired_test(a, c) if keys else None,
        }
    return out


def table(summaries: list[dict]) -> str:
    """The markdown table: per dataset and model, budget, seeds, valid and test NDCG@10
    (mean ± sd over seeds), and the GAN against the best baseline."""
    lines = [
        "| dataset | model | budget | seeds | valid NDCG@10 | test NDCG@10 (mean ± sd) "
        "| GAN / best baseline [95% CI], paired test |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        for m, row in s["rows"].items():
            note = ""
            if m == "gan" and "gan" in s:
                g = s["gan"]
                lo, hi = g["ratio_ci"]
                p = g["test"]["p_value"] if g["test"] else float("nan")
                note = (
                    f"**{g['ratio']:.3f}x** [{lo:.3f}, {hi:.3f}] vs {g['best_baseline']}; "
                    f"Wilcoxon p = {p:.2g} over {g['pairs']} (user, seed) pairs"
                )
            sd = "" if row["test_sd"] != row["test_sd"] else f" ± {row['test_sd']:.4f}"
            lines.append(
                f"| {s['dataset']} | {m} | {row['budget']} | {row['seeds']} "
                f"| {row['valid_mean']:.4f} | {row['test_mean']:.4f}{sd} | {note} |"
            )
    return "\n".join(lines)


def verdict(summaries: list[dict], goal: float = 1.05) -> str:
    """Met / not met per independent family (the Online Retail variants are one)."""
    fams: dict[str, list[dict]] = {}
    for s in summaries:
        if "gan" in s:
            fams.setdefault(FAMILIES.get(s["dataset"], s["dataset"]), []).append(s)
    lines = []
    met = 0
    for fam, members in fams.items():
        worst = min(members, key=lambda s: s["gan"]["ratio"])
        r = worst["gan"]["ratio"]
        ok = r >= 1.0
        met += ok
        names = ", ".join(s["dataset"] for s in members)
        lines.append(
            f"- {fam} ({names}): lowest GAN / best baseline {r:.3f}x on {worst['dataset']} "
            f"({worst['gan']['best_baseline']}): {'met' if ok else 'NOT met'}"
            f"{'' if r >= goal else f' (goal {goal:.2f}x not reached)'}"
        )
    head = f"Verdict: the GAN is at least the best baseline on {met} of {len(fams)} independent "
    head += "dataset families."
    commits = sorted({c for s in summaries for c in s.get("commits", [])})
    return "\n".join([head, *lines, f"Commit(s): {', '.join(commits)}"])


def read_runs(dirs: str) -> dict[str, list[dict]]:
    """``{dataset: [run per seed]}`` from ``DIR/<dataset>/seed*.json`` (first DIR wins)."""
    found: dict[str, dict[int, dict]] = {}
    for d in dirs.split(","):
        for f in sorted(Path(d).glob("*/seed*.json")):
            r = json.loads(f.read_text())
            found.setdefault(r["dataset"], {}).setdefault(r["seed"], r)
    order = [n for n in SUITE if n in found] + sorted(set(found) - set(SUITE))
    return {n: [found[n][k] for k in sorted(found[n])] for n in order}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(SUITE), help="comma-separated suite names")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    p.add_argument("--budget", type=int, default=8, help="tuning trials per baseline")
    p.add_argument("--gan-budget", type=int, default=None, help="the GAN's (default: --budget)")
    p.add_argument("--out", default="reports/generalise", help="where the JSON results go")
    p.add_argument("--jobs", default="auto", help="tuning worker processes (evaluate's jobs)")
    p.add_argument(
        "--table",
        metavar="DIR[,DIR...]",
        help="only print the table and verdict of the results in DIR (several: a (dataset, "
        "seed) run comes from the first DIR that has it)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("recogan.evaluate").setLevel(logging.INFO)  # one line per trial
    if not args.table:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
        for name in [x.strip() for x in args.datasets.split(",") if x.strip()]:
            for seed in seeds:
                try:
                    r = run_one(
                        name,
                        args.budget,
                        seed,
                        Path(args.out),
                        args.models.split(","),
                        args.gan_budget,
                        int(args.jobs) if args.jobs.isdigit() else args.jobs,
                    )
                except FileNotFoundError as e:
                    print(f"skipped {name}: {e}", flush=True)
                    break
                print(f"{name} seed {seed}: {r['seconds']:.0f}s", flush=True)
    runs = read_runs(args.table or args.out)
    summaries = [summarise(r) for r in runs.values()]
    print(table(summaries))
    print()
    print(verdict(summaries))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
