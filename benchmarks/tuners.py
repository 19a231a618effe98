"""The halving tuner against the exhaustive one: wall time per model and test NDCG@10.

    PYTHONPATH=. python benchmarks/tuners.py [--data online_retail]
        [--models pop,itemknn,ease,ials] [--budget 8] [--jobs 1] [--valid-folds 3]
        [--outs DIR]

Each tuner runs ``recogan evaluate --tuner T`` in a fresh process, one after the other, with
one thread (compare the ratio, not the seconds: the machine is shared). With ``--outs DIR``
the reports go to ``DIR/<tuner>`` and stay there: a run that was interrupted goes on, and a
finished one is read back (its timing is the one recorded when each model was computed),
so the table can be printed again without refitting. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TUNERS = ("exhaustive", "halving")


def run_once(args, tuner: str, out: Path) -> dict:
    cmd = [sys.executable, "-m", "recogan", "evaluate", "--data", args.data]
    cmd += ["--models", args.models, "--budget", str(args.budget), "--jobs", str(args.jobs)]
    cmd += ["--valid-folds", str(args.valid_folds), "--tuner", tuner, "--no-progress"]
    cmd += ["--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.update({v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    print("$", " ".join(cmd[1:]), file=sys.stderr)
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return json.loads((out / "metrics.json").read_text())


def table(docs: dict[str, dict]) -> str:
    rows = [
        "| model | tuner | trials (full / pruned) | fold fits | tuning s | wall s | valid NDCG@10 "
        "| test NDCG@10 | chosen |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    models = list(next(iter(docs.values()))["models"])
    for m in models:
        for tuner, doc in docs.items():
            t, r = doc["timing"][m], doc["models"][m]
            params = {k: v for k, v in r["params"].items() if k not in ("seed", "block_size")}
            rows.append(
                f"| {m} | {tuner} | {t['trials']} ({t['complete']} / {t['pruned']}) "
                f"| {t['fold_fits']:.0f} | {t['tune_seconds']:.1f} | {t['wall_seconds']:.1f} "
                f"| {r['valid_NDCG@10']:.4f} | {r['NDCG@10']:.4f} | `{json.dumps(params)}` |"
            )
    rows.append("")
    for m in models:
        a, b = (docs[t] for t in TUNERS)
        wall = b["timing"][m]["wall_seconds"] / a["timing"][m]["wall_seconds"]
        ndcg = b["models"][m]["NDCG@10"] / a["models"][m]["NDCG@10"]
        rows.append(f"- {m}: halving / exhaustive wall time {wall:.2f}x, test NDCG@10 {ndcg:.3f}x")
    total = {t: sum(x["wall_seconds"] for x in d["timing"].values()) for t, d in docs.items()}
    rows.append(
        f"- all models: {total['exhaustive']:.0f} s exhaustive, {total['halving']:.0f} s halving "
        f"({total['halving'] / total['exhaustive']:.2f}x)"
    )
    return "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="online_retail")
    p.add_argument("--models", default="pop,itemknn,ease,ials")
    p.add_argument("--budget", type=int, default=8)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--valid-folds", type=int, default=3)
    p.add_argument("--outs", default=None, help="keep the reports in DIR/<tuner>")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.outs) if args.outs else Path(tmp)
        docs = {t: run_once(args, t, base / t) for t in TUNERS}
        print(table(docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
