"""The GAN at its defaults with and without the item-side normalisation of the collaborative
features (``cf_item_norm``), over several seeds, on one dataset: test NDCG@10 per seed,
mean ± sd, and a paired Wilcoxon test over users with the seeds pooled.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/item_norm_seeds.py \
        --data online_retail --seeds 0,1,2 --out /tmp/item_norm

Each (seed, setting) is one untuned ``evaluate`` run (one validation window for early stopping
and the recommend-time choices, then the refit on train + valid), written to
``OUT/pu_s{seed}_n{0|1}.parquet`` and reused when present, so two copies of the script with
disjoint ``--seeds`` can share the cores and a third prints the table."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd


def run(data: str, seed: int, norm: bool, out: Path) -> Path:
    path = out / f"pu_s{seed}_n{int(norm)}.parquet"
    if path.exists():
        return path
    import torch

    from recogan import datasets
    from recogan.evaluate import evaluate

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    report = evaluate(
        datasets.load(data),
        models=["gan"],
        tune=False,
        seed=seed,
        valid_folds=1,
        params={"gan": {"cf_item_norm": norm}},
        ks=(10,),
        diversity_levels=(),
        jobs=1,
        show_progress=False,
    )
    report.per_user.to_parquet(path, index=False)
    print(f"seed {seed} cf_item_norm={norm}: {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def _sd(x) -> float:
    return float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="online_retail")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from recogan.evaluate import paired_test

    seeds = [int(s) for s in args.seeds.split(",")]
    on, off, a_all, b_all = [], [], [], []
    for seed in seeds:
        a = pd.read_parquet(run(args.data, seed, True, args.out))
        b = pd.read_parquet(run(args.data, seed, False, args.out))
        m = a[["user", "NDCG@10"]].merge(
            b[["user", "NDCG@10"]], on="user", suffixes=("_on", "_off")
        )
        on.append(m["NDCG@10_on"].mean())
        off.append(m["NDCG@10_off"].mean())
        a_all.append(m["NDCG@10_on"].to_numpy())
        b_all.append(m["NDCG@10_off"].to_numpy())
        print(f"| {seed} | {on[-1]:.4f} | {off[-1]:.4f} | {on[-1] / off[-1]:.3f} | {len(m)} |")
    print(
        f"mean ± sd: on {np.mean(on):.4f} ± {_sd(on):.4f}; off {np.mean(off):.4f} ± {_sd(off):.4f}"
    )
    print("paired, seeds pooled:", paired_test(np.concatenate(a_all), np.concatenate(b_all)))


if __name__ == "__main__":
    main()
