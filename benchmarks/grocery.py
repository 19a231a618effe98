"""The grocery benchmark: every model on The Complete Journey and its held-out-shaped variant.

Datasets (:mod:`recogan.datasets`):

- ``completejourney``: the full year, cleaned (default temporal split, rolling-origin
  validation, as ``recogan evaluate`` does);
- ``completejourney_heldout``: four months ending five weeks after Thanksgiving 2017,
  day-resolution times, catalogue of subclass + price, products with at least 5 sales, split
  by the held-out protocol (:func:`recogan.datasets.heldout_split`: test = last ten days,
  validation = the three two-week spans before it, one around the holiday);
- ``completejourney_heldout_thin``: the same with each household's baskets dealt to ten
  customers (``split_households=10``): ~16,000 customers with ~27 purchase rows each, the
  shape of the held-out chain (32,000 customers, ~25 rows each), same purchases.

Each model is run through :func:`recogan.evaluate.evaluate` on its own, so that each has its
own tuning setting: ``--tuned`` models get ``--budget`` trials on the validation folds, the
others (the GAN by default: its shipped defaults, what ``recogan train`` gives a new retailer)
are fitted at their defaults. One JSON per model is written to ``OUT/<dataset>/<model>.json``
as soon as it is done (test metrics, validation score per window, chosen parameters, seconds).

Usage::

    python benchmarks/grocery.py --data completejourney_heldout --models pop,itemknn,gan \\
        --tuned pop,itemknn --budget 4 --out /tmp/grocery
    python benchmarks/grocery.py --table /tmp/grocery
    python benchmarks/grocery.py --paired /tmp/g_s0/completejourney_heldout \\
        /tmp/g_s1/completejourney_heldout --models gan --baseline itemknn \\
        --against /tmp/grocery/completejourney_heldout
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

COLUMNS = ("NDCG@10", "HR@10", "Recall@10", "coverage@10", "popbias@10")


def load(name: str):
    from recogan import datasets

    if name == "completejourney_heldout_thin":  # ten thin customers out of each household
        return datasets.heldout_split(datasets.completejourney_heldout(split_households=10))
    data = datasets.load(name)
    if name == "completejourney_heldout":
        return datasets.heldout_split(data)
    return data


def run_one(split_or_data, name: str, tuned: bool, budget: int, seed: int, folder=None) -> dict:
    """One model through ``evaluate``; its per-customer test scores go to
    ``folder/<name>.users.parquet`` when ``folder`` is given (for :func:`paired`)."""
    from recogan.evaluate import evaluate

    t0 = time.perf_counter()
    rep = evaluate(
        split_or_data,
        models=[name],
        tune=tuned,
        budget=budget,
        seed=seed,
        jobs=1,
        diversity_levels=(),
        show_progress=False,
    )
    row = rep.metrics.loc[name]
    if folder is not None:
        users = rep.per_user[rep.per_user["model"] == name]
        users.to_parquet(Path(folder) / f"{name}.users.parquet", index=False)
    tuning = rep.tuning[name]
    return {
        "model": name,
        "tuned": tuned,
        "budget": budget if tuned else None,
        "seed": seed,
        **{c: float(row[c]) for c in COLUMNS if c in row},
        "valid NDCG@10": float(tuning["valid_NDCG@10"]),
        "fold_scores": [float(x) for x in tuning["fold_scores"]],
        "params": {k: v for k, v in rep.params[name].items() if _jsonable(v)},
        "protocol": rep.protocol["label"] if "label" in rep.protocol else "",
        "split": rep.protocol["split"],
        "seconds": time.perf_counter() - t0,
    }


def _jsonable(v) -> bool:
    try:
        json.dumps(v)
    except TypeError:
        return False
    return True


def table(out: Path) -> str:
    lines = [
        "| dataset | model | tuned | test NDCG@10 | valid NDCG@10 (mean; per window, latest "
        "first) | coverage@10 | popbias@10 | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for path in sorted(out.glob("*/*.json")):
        r = json.loads(path.read_text())
        folds = ", ".join(f"{x:.4f}" for x in r["fold_scores"])
        tuned = f"budget {r['budget']}" if r["tuned"] else "defaults"
        lines.append(
            f"| {path.parent.name} | {r['model']} | {tuned} | {r['NDCG@10']:.4f} | "
            f"{r['valid NDCG@10']:.4f} ({folds}) | {r['coverage@10']:.3f} | "
            f"{r.get('popbias@10', float('nan')):.3f} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def paired(runs: list[Path], model: str, baseline: str, against: Path) -> str:
    """``model``'s per-customer test scores from the run folders ``runs`` (one per seed,
    each ``OUT/<dataset>``) against ``baseline``'s in ``against``: ratio of means with a
    bootstrap interval and a paired Wilcoxon test, seeds pooled."""
    import sys

    import pandas as pd

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from grocery_seeds import _versus

    def users(folder: Path, name: str):
        return pd.read_parquet(folder / f"{name}.users.parquet").set_index("user")["NDCG@10"]

    seeds = [users(r, model) for r in runs]
    return f"{model} over {len(seeds)} runs: " + _versus(seeds, users(against, baseline), baseline)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="completejourney_heldout")
    ap.add_argument("--models", default="pop,itemknn,gan,ials,ease")
    ap.add_argument(
        "--tuned", default="pop,itemknn,ials,ease", help="models tuned (others: defaults)"
    )
    ap.add_argument("--budget", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--table", type=Path, help="print the table of the runs under this folder")
    ap.add_argument(
        "--paired",
        nargs="+",
        type=Path,
        help="run folders (OUT/<dataset>, one per seed) whose --models (one model) are "
        "compared with --baseline's per-customer scores in --against",
    )
    ap.add_argument("--baseline", default="itemknn")
    ap.add_argument("--against", type=Path)
    args = ap.parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0
    if args.paired:
        print(paired(args.paired, args.models, args.baseline, args.against))
        return 0
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(1)
    split = load(args.data)
    tuned = {m.strip() for m in args.tuned.split(",") if m.strip()}
    folder = args.out / args.data
    folder.mkdir(parents=True, exist_ok=True)
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        r = run_one(split, name, name in tuned, args.budget, args.seed, folder)
        (folder / f"{name}.json").write_text(json.dumps(r, indent=1, default=str))
        print(
            f"{args.data} {name}: test NDCG@10 {r['NDCG@10']:.4f}, valid {r['valid NDCG@10']:.4f}"
            f" {r['fold_scores']}, coverage {r['coverage@10']:.3f}, {r['seconds']:.0f}s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
