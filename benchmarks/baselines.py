"""Tuned baselines on the default protocol: test accuracy, coverage and fit time.

    python benchmarks/baselines.py                      # Online Retail
    python benchmarks/baselines.py --data movielens_1m  # reads ../shared/data/ml-1m
    python benchmarks/baselines.py --budget 8 --no-append

Runs :func:`recogan.evaluate.evaluate` (the same code as ``recogan evaluate``), prints a table
and appends it to benchmarks/RESULTS.md with the machine, date and command. The machine is
shared: compare fit times as ratios within one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("HR@10", "NDCG@10", "Recall@10", "coverage@10", "fit_seconds")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="online_retail", help="online_retail or movielens_1m")
    p.add_argument("--models", default="pop,itemknn,ease,ials")
    p.add_argument("--budget", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="also save the full report here")
    p.add_argument("--no-append", action="store_true", help="do not write RESULTS.md")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    from recogan import datasets
    from recogan.evaluate import evaluate

    data = datasets.load(args.data)
    t0 = time.perf_counter()
    report = evaluate(
        data,
        models=args.models.split(","),
        budget=args.budget,
        seed=args.seed,
        show_progress=True,
    )
    total = time.perf_counter() - t0
    if args.out:
        report.save(args.out)
    table = report.metrics[list(COLUMNS)].copy()
    table["params"] = [str(report.params[m]) for m in table.index]
    print(table.to_string(float_format=lambda x: f"{x:.4f}"))
    print(f"total {total:.0f}s (tuning {args.budget} trials/model + refit + scoring)")
    if args.no_append:
        return 0
    cmd = "python benchmarks/baselines.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "",
        f"### {data.name}: tuned baselines, {report.protocol['label']} "
        f"({dt.date.today().isoformat()})",
        "",
        f"Machine: 2-core shared dev box ({platform.machine()}, {args.threads} threads); "
        f"command: `{cmd.strip()}`; budget {args.budget} trials/model on validation NDCG@10, "
        f"refit on train+valid; test users {int(report.metrics['users'].iloc[0]):,}; "
        f"total {total:.0f}s.",
        "",
        "| model | HR@10 | NDCG@10 | Recall@10 | coverage@10 | fit s | chosen params |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, r in table.iterrows():
        lines.append(
            f"| {m} | {r['HR@10']:.4f} | {r['NDCG@10']:.4f} | {r['Recall@10']:.4f} | "
            f"{r['coverage@10']:.4f} | {r['fit_seconds']:.1f} | `{r['params']}` |"
        )
    with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
