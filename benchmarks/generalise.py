"""The generalisation suite: the GAN and the tuned baselines on datasets that differ the way
retailers differ.

Every model gets the same tuning budget on the same rolling-origin validation folds (the
tuner's default), is refitted on train + valid and scored once on the test period; nothing is
chosen per dataset by hand. Datasets:

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

Usage::

    python benchmarks/generalise.py --datasets or_dates,or_last4m --out /tmp/gen
    python benchmarks/generalise.py --table /tmp/gen        # the markdown table of all runs

Each dataset's result is written to ``OUT/<dataset>.json`` (valid and test NDCG@10 and
coverage@10 of every model, the chosen parameters, timings) as soon as it is done.
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

MODELS = ("pop", "itemknn", "ease", "ials", "gan")
BASELINES = ("pop", "itemknn", "ease", "ials")
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


def run_one(name: str, budget: int, seed: int, out: Path, models=MODELS) -> dict:
    import torch

    from recogan.evaluate import evaluate

    torch.set_num_threads(1)
    data, note = load(name)
    t0 = time.perf_counter()
    report = evaluate(
        data, models=list(models), tune=True, budget=budget, seed=seed, show_progress=False
    )
    rows = {}
    for m in report.models:
        t = report.tuning[m]
        rows[m] = {
            "valid_ndcg10": t["valid_NDCG@10"],
            "valid_folds": t["fold_scores"],
            "test_ndcg10": float(report.metrics.loc[m, "NDCG@10"]),
            "test_hr10": float(report.metrics.loc[m, "HR@10"]),
            "coverage10": float(report.metrics.loc[m, "coverage@10"]),
            "fit_seconds": float(report.metrics.loc[m, "fit_seconds"]),
            "params": report.params[m],
        }
    result = {
        "dataset": name,
        "note": note,
        "counts": report.dataset,
        "protocol": report.protocol["label"],
        "split": report.protocol["split"],
        "budget": budget,
        "seed": seed,
        "models": rows,
        "warnings": report.warnings(),
        "seconds": time.perf_counter() - t0,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": date.today().isoformat(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    tmp.replace(path)
    return result


def merge(runs: list[dict]) -> dict:
    """One dataset's result from several runs (e.g. the baselines tuned with a larger budget
    in one run, the GAN in another): each model's row from the first run that has it, with
    that run's budget."""
    out = dict(runs[0], models={})
    for r in runs:
        for m, row in r["models"].items():
            out["models"].setdefault(m, {**row, "budget": r["budget"]})
    return out


def table(results: list[dict]) -> str:
    """One markdown table: per dataset and model, the tuning budget, valid / test NDCG@10
    and coverage@10, and the GAN's test ratio to the best baseline."""
    lines = [
        "| dataset | model | budget | valid NDCG@10 | test NDCG@10 | coverage@10 "
        "| GAN / best baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows = r["models"]
        base = [m for m in BASELINES if m in rows]
        best = max(base, key=lambda m: rows[m]["test_ndcg10"]) if base else None
        for m, row in rows.items():
            ratio = ""
            if m == "gan" and best:
                ratio = f"**{row['test_ndcg10'] / max(rows[best]['test_ndcg10'], 1e-12):.2f}x**"
                ratio += f" ({best})"
            lines.append(
                f"| {r['dataset']} | {m} | {row.get('budget', r['budget'])} "
                f"| {row['valid_ndcg10']:.4f} | {row['test_ndcg10']:.4f} "
                f"| {row['coverage10']:.3f} | {ratio} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(SUITE), help="comma-separated suite names")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--budget", type=int, default=4, help="tuning trials per model (same for all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="reports/generalise", help="where the JSON results go")
    p.add_argument(
        "--table",
        metavar="DIR[,DIR...]",
        help="only print the table of the results in DIR (several: a model's row comes from "
        "the first DIR that has it)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("recogan.evaluate").setLevel(logging.INFO)  # one line per trial
    if args.table:
        found: dict[str, list[dict]] = {}
        for d in args.table.split(","):
            for f in sorted(Path(d).glob("*.json")):
                found.setdefault(f.stem, []).append(json.loads(f.read_text()))
        order = [n for n in SUITE if n in found] + sorted(set(found) - set(SUITE))
        print(table([merge(found[n]) for n in order]))
        return 0
    results = []
    for name in [x.strip() for x in args.datasets.split(",") if x.strip()]:
        try:
            r = run_one(name, args.budget, args.seed, Path(args.out), args.models.split(","))
        except FileNotFoundError as e:
            print(f"skipped {name}: {e}", flush=True)
            continue
        results.append(r)
        print(f"{name}: {r['seconds']:.0f}s", flush=True)
        print(table([r]), flush=True)
    if results:
        print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
