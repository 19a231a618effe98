"""Nightly batch scoring: the latest model bundle → score every customer → publish → summary.

    python pipelines/nightly.py --models models --out-root recs [--date YYYY-MM-DD]
                                [--engine local|ray] [--workers N] [--n 50] [--resume]

The result is published atomically at ``OUT_ROOT/DATE`` (see ``recogan.batch``); a run summary
(counts, durations, throughput, status) is written to ``OUT_ROOT/_runs/DATE.json`` whether the
run succeeds or fails. A failed or killed run is picked up by re-running with ``--resume``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable as a script from a checkout
    sys.path.insert(0, str(ROOT))

log = logging.getLogger("pipelines.nightly")


def latest_bundle(models_dir: str | Path) -> Path:
    """The most recently created bundle (manifest ``created_at``) under ``models_dir``."""
    from recogan.artifacts import BundleError, read_manifest

    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise FileNotFoundError(f"{models_dir}: no models directory")
    found = []
    for d in sorted(models_dir.iterdir()):
        if d.is_dir() and not d.name.startswith(".") and (d / "manifest.json").is_file():
            try:
                found.append((read_manifest(d, verify=False)["created_at"], d.name, d))
            except BundleError as e:
                log.warning("skipping %s: %s", d, e)
    if not found:
        raise FileNotFoundError(f"{models_dir}: no model bundle (a directory with manifest.json)")
    return max(found)[2]


def run_nightly(
    models_dir: str | Path,
    out_root: str | Path,
    date: str | None = None,
    *,
    summary_path: str | Path | None = None,
    **options,
) -> dict:
    """Score with the latest bundle into ``out_root/date``; return (and write) the summary."""
    from recogan._fs import atomic_write_json
    from recogan.batch import batch_score

    started = _dt.datetime.now(_dt.timezone.utc)
    date = date or started.date().isoformat()
    out_root = Path(out_root)
    summary_path = Path(summary_path or out_root / "_runs" / f"{date}.json")
    summary: dict = {"date": date, "started_at": started.isoformat(timespec="seconds")}
    t0 = time.perf_counter()
    try:
        bundle = latest_bundle(models_dir)
        summary["bundle"] = str(bundle)
        t_select = time.perf_counter() - t0
        result = batch_score(bundle, out_root / date, **options)
        summary.update(
            status="ok",
            out=result.out,
            model_version=result.model_version,
            engine=result.engine,
            workers=result.workers,
            users=result.users,
            rows=result.rows,
            partitions=result.partitions,
            partitions_reused=result.partitions_reused,
            rows_sha256=result.rows_sha256,
            durations_s={"select_bundle": round(t_select, 3), **result.seconds},
            throughput_users_per_s=round(result.users_per_s, 1),
        )
    except Exception as e:
        summary.update(status="failed", error=f"{type(e).__name__}: {e}")
        raise
    finally:
        summary["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        summary["wall_s"] = round(time.perf_counter() - t0, 3)
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(summary_path, summary)
        summary["summary_path"] = str(summary_path)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="models", help="directory of model bundles")
    p.add_argument("--out-root", default="recs", help="results go to OUT_ROOT/DATE")
    p.add_argument("--date", help="run date (default: today, UTC)")
    p.add_argument("--summary", help="run summary JSON (default: OUT_ROOT/_runs/DATE.json)")
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    p.add_argument("--workers", type=int)
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--partition-size", type=int, default=10_000)
    p.add_argument("--ray-address")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from recogan.batch import BatchError

    try:
        s = run_nightly(
            args.models,
            args.out_root,
            args.date,
            summary_path=args.summary,
            engine=args.engine,
            workers=args.workers,
            n=args.n,
            partition_size=args.partition_size,
            ray_address=args.ray_address,
            resume=args.resume,
            show_progress=not args.no_progress,
        )
    except (BatchError, ValueError, FileNotFoundError, ImportError, OSError) as e:
        print(f"nightly: error: {e}", file=sys.stderr)
        return 1
    print(
        f"nightly {s['date']}: {s['users']:,} users → {s['rows']:,} rows with {s['bundle']} "
        f"in {s['wall_s']:.1f} s ({s['throughput_users_per_s']:,.0f} users/s); "
        f"summary {s['summary_path']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
