"""The scheduled offline evaluation: every model, tuned, on the bundled (or given) data.

Writes a dated report directory, ``reports/YYYY-MM-DD/`` (metrics.json, report.md,
report.html, per_user.parquet, and ``tuning/``: the tuning studies and finished models, so
a run that was interrupted goes on when started again), so successive runs sit side by side.
Run it from cron or a scheduler, e.g. nightly after the data refresh::

    python pipelines/offline_evaluation.py                       # bundled Online Retail
    python pipelines/offline_evaluation.py --interactions data.parquet --models ease,gan

Extra arguments are passed to ``recogan evaluate`` (``--protocol``, ``--k``, ``--seed``,
``--budget``...). The exit status is the command's: non-zero when the evaluation failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", default=str(ROOT / "reports"), help="parent directory")
    parser.add_argument("--date", default=None, help="report date YYYY-MM-DD (default: today, UTC)")
    args, rest = parser.parse_known_args(argv)
    day = args.date or dt.datetime.now(dt.timezone.utc).date().isoformat()
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        parser.error(f"--date must be YYYY-MM-DD, got {day!r}")
    out = Path(args.reports) / day
    if not any(a in ("--data", "--interactions") for a in rest):
        rest = ["--data", "online_retail", *rest]
    from recogan.cli import main as cli

    print(f"offline evaluation → {out}")
    return cli(["evaluate", *rest, "--out", str(out)])


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
