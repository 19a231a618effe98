"""Full softmax or sampled softmax: test quality and fit time of the GAN with each, same run.

    PYTHONPATH=. python benchmarks/softmax_choice.py [--cases online_retail,synthetic_16k]
        [--sampled 2048] [--seeds 0]

The GAN at its defaults, untuned (early-stopped on one validation window, refitted on train +
valid for that epoch count; `recogan.evaluate.evaluate(..., tune=False, valid_folds=1)`),
with ``n_sampled=0`` (full softmax) and ``n_sampled=--sampled`` (the batch's targets plus that
many shared uniform negatives, logQ-corrected). Cases: Online Retail (3.7k items) and
``synthetic_16k``, :func:`recogan.datasets.synthetic_retail` with 16,000 items and 6,000
customers (a catalogue of the size where the automatic choice has to decide). Prints one row
per case, variant and seed: valid and test NDCG@10, coverage@10, fit seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def load(case: str):
    from recogan import datasets

    if case == "synthetic_16k":
        return datasets.synthetic_retail(n_users=6000, n_items=16000, n_clusters=160)
    return datasets.load(case)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="online_retail,synthetic_16k")
    ap.add_argument("--sampled", type=int, default=2048)
    ap.add_argument("--seeds", default="0")
    args = ap.parse_args(argv)
    from recogan.evaluate import evaluate

    print("| case | softmax | seed | valid NDCG@10 | test NDCG@10 | coverage@10 | fit s |")
    print("|---|---|---|---|---|---|---|")
    for case in args.cases.split(","):
        data = load(case)
        for seed in (int(s) for s in args.seeds.split(",")):
            for label, n in (("full", 0), (f"sampled {args.sampled}", args.sampled)):
                rep = evaluate(
                    data,
                    ["gan"],
                    tune=False,
                    seed=seed,
                    valid_folds=1,
                    params={"gan": {"n_sampled": n, "threads": 1}},
                    diversity_levels=(),
                    show_progress=False,
                )
                s = rep.metrics.loc["gan"]
                v = rep.tuning["gan"]["valid_NDCG@10"]
                print(
                    f"| {case} | {label} | {seed} | {v:.4f} | {s['NDCG@10']:.4f} | "
                    f"{s['coverage@10']:.3f} | {s['fit_seconds']:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
