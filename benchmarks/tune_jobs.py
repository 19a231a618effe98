"""Parallel tuning: wall time of ``recogan evaluate`` with ``--jobs 1`` against ``--jobs N``.

    PYTHONPATH=. python benchmarks/tune_jobs.py [--data online_retail] [--models ease,ials,pop]
                                                [--budget 4] [--jobs 1,2] [--no-record]

Each setting runs the CLI in a fresh process, one after the other in the same run (compare the
ratio, not the seconds: the machine is shared). The reports must agree on every metric, the
validation scores and the chosen parameters (everything but the fit seconds); the script
checks. Results are appended to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _without_seconds(doc):
    if isinstance(doc, dict):
        return {k: _without_seconds(v) for k, v in doc.items() if "seconds" not in k}
    if isinstance(doc, list):
        return [_without_seconds(v) for v in doc]
    return doc


def run_once(args, jobs: int, out: Path) -> dict:
    cmd = [sys.executable, "-m", "recogan", "evaluate", "--data", args.data]
    cmd += ["--models", args.models, "--budget", str(args.budget), "--jobs", str(jobs)]
    cmd += ["--no-progress", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"--jobs {jobs} failed:\n{r.stderr[-3000:]}")
    doc = json.loads((out / "metrics.json").read_text())
    fit = {m: v["fit_seconds"] for m, v in doc["models"].items()}
    return {"jobs": jobs, "wall": wall, "load": (load0, os.getloadavg()[0]), "doc": doc, "fit": fit}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="online_retail")
    p.add_argument("--models", default="ease,ials,pop")
    p.add_argument("--budget", type=int, default=4)
    p.add_argument("--jobs", default="1,2", help="settings to compare, the first is the base")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    settings = [int(j) for j in args.jobs.split(",")]
    with tempfile.TemporaryDirectory(prefix="tune-jobs-") as work:
        runs = []
        for jobs in settings:
            runs.append(run_once(args, jobs, Path(work) / f"jobs-{jobs}"))
            r = runs[-1]
            print(
                f"--jobs {jobs}: {r['wall']:.1f} s (load {r['load'][0]:.1f} → {r['load'][1]:.1f})"
            )
    base = runs[0]
    same = all(_without_seconds(r["doc"]) == _without_seconds(base["doc"]) for r in runs)
    assert same, "the reports differ between --jobs settings"
    cores = os.cpu_count()
    lines = [
        "| --jobs | wall (s) | × --jobs 1 | load average at start → end |",
        "|---:|---:|---:|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['jobs']} | {r['wall']:.1f} | {base['wall'] / r['wall']:.2f} "
            f"| {r['load'][0]:.1f} → {r['load'][1]:.1f} |"
        )
    lines.append("")
    lines.append(
        f"Reports identical apart from fit seconds: {'yes' if same else 'NO'} (every metric, "
        "validation fold scores and chosen parameters compared)."
    )
    table = "\n".join(lines)
    print(table)
    if not args.no_record:
        cmd = "PYTHONPATH=. python benchmarks/tune_jobs.py " + " ".join(sys.argv[1:])
        entry = (
            f"\n### {_dt.date.today().isoformat()}, {cores}-core shared dev box (busy: compare "
            f"the ratio)\n\n`{cmd}` — `recogan evaluate --data {args.data} --models "
            f"{args.models} --budget {args.budget} --jobs N`, each in a fresh process, one "
            f"after the other\n\n{table}\n"
        )
        path = HERE / "RESULTS.md"
        text = path.read_text()
        header = "## Parallel tuning (issue 11)"
        if header not in text:
            text = text.rstrip() + f"\n\n{header}\n"
        path.write_text(text.rstrip() + "\n" + entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
