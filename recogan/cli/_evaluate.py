"""``recogan evaluate``: tune, fit and score models offline; write the report directory."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from recogan._fs import OutputDirError, remove
from recogan.artifacts import is_bundle
from recogan.batch import is_batch_result
from recogan.cli._common import add_data_args, load_data
from recogan.evaluate import (
    DEFAULT_MODELS,
    Protocol,
    RunState,
    check_state_dir,
    evaluate,
    is_state_dir,
)

log = logging.getLogger(__name__)


def _int_list(text: str) -> list[int]:
    try:
        ks = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k takes integers like 5,10,20, got {text!r}") from None
    if not ks or min(ks) <= 0:
        raise argparse.ArgumentTypeError(f"--k needs positive integers, got {text!r}")
    return ks


def _jobs(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"--jobs takes a positive integer or 'auto', got {text!r}")
    return jobs


def register(sub) -> None:

    p = sub.add_parser(
        "evaluate",
        help="offline evaluation: tuned models, CIs, paired tests, HTML/markdown/JSON report",
        description="Fit and score models under one protocol and write DIR/metrics.json, "
        "DIR/report.md, DIR/report.html and DIR/per_user.parquet. Tuning studies and each "
        "finished model are kept in DIR/tuning as the run goes: run the same command again "
        "after an interruption and it goes on from there.",
    )
    add_data_args(p)
    p.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help=f"comma-separated model names (default: {','.join(DEFAULT_MODELS)})",
    )
    p.add_argument(
        "--protocol",
        choices=["temporal", "leave-last-out"],
        default="temporal",
        help="temporal: global time cut (default); leave-last-out: last basket per customer",
    )
    p.add_argument(
        "--targets",
        choices=["new", "all", "repeat"],
        default="new",
        help="what counts as a hit: new (default: items the customer had not bought before; "
        "lists without them), all (every test purchase) or repeat (only re-purchases); all "
        "and repeat rank with the bought items kept and split accuracy into repeat and "
        "explore parts",
    )
    p.add_argument(
        "--k", type=_int_list, default=[5, 10, 20], help="list lengths (default 5,10,20)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for tuning, models, bootstrap")
    p.add_argument(
        "--tune",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="search hyperparameters on the validation split (default: on)",
    )
    p.add_argument("--budget", type=int, default=8, help="tuning trials per model (default 8)")
    p.add_argument(
        "--valid-folds",
        type=int,
        default=3,
        metavar="K",
        help="rolling-origin validation: K consecutive validation windows before the test "
        "period, tuning robust to one odd window (default 3; 1: a single window)",
    )
    p.add_argument(
        "--test-days",
        type=int,
        default=None,
        metavar="N",
        help="temporal protocol in whole days (with --valid-days): the test period is the last "
        "N days of the data (default: the latest 10%% of the interactions)",
    )
    p.add_argument(
        "--valid-days",
        type=int,
        default=None,
        metavar="N",
        help="with --test-days: each of the --valid-folds validation windows is N days, the "
        "latest ending where the test begins, each trained on everything before it (e.g. "
        "--test-days 10 --valid-days 14: the last ten days are test, the three two-week spans "
        "before them validation); default: windows of 10%% of the interactions",
    )
    p.add_argument(
        "--spread",
        action="store_true",
        help="spread the --valid-folds validation windows evenly over the history (from 30%% "
        "of the interactions to the test period, each trained on everything before it) "
        "instead of side by side just before the test: a seasonal stretch before the test "
        "is then one window among several",
    )
    p.add_argument(
        "--sampled",
        type=int,
        metavar="N",
        default=None,
        help="rank each user's targets among N sampled negatives instead of the full "
        "catalog (labelled 'sampled' in the report)",
    )
    p.add_argument(
        "--jobs",
        type=_jobs,
        default="auto",
        metavar="N",
        help="worker processes for each model's tuning trials, one thread each (default auto: "
        "as many as the trials and the cores allow, one per GPU for the GAN on a CUDA "
        "machine; 1: in this process); the report is the same for any N",
    )
    p.add_argument(
        "--tuner",
        choices=["halving", "exhaustive"],
        default="halving",
        help="halving (default): successive halving, every trial first judged on the latest "
        "validation window with short training, the best third going on to every window; "
        "exhaustive: every trial on every window",
    )
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="start afresh: ignore (and replace) the tuning state an earlier, interrupted run "
        "left in DIR/tuning",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars (nor ETA)")
    p.add_argument("--out", required=True, metavar="DIR", help="report directory")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into --out even when it holds a model bundle, a batch result or report "
        "file names that are not a recogan report",
    )
    p.set_defaults(func=run)


REPORT_FILES = ("metrics.json", "report.md", "report.html", "per_user.parquet")
#: The folder under --out where tuning studies and finished models are kept (resuming).
STATE_DIR = "tuning"


def _is_report(out: Path) -> bool:
    try:
        metrics = json.loads((out / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(metrics, dict) and {"models", "protocol"} <= set(metrics)


def check_report_out(out, force: bool = False) -> None:
    """A report goes into a new folder, a folder of an earlier report, or a folder whose
    files it does not replace; never into a model bundle or batch result (unless ``force``)."""

    out = Path(out)
    problem = None
    if out.exists() and not out.is_dir():
        problem = "is a file"
    elif out.is_dir():
        if is_bundle(out) or is_batch_result(out):
            kind = "model bundle" if is_bundle(out) else "batch result"
            problem = f"holds a recogan {kind}"
        else:
            clash = [f for f in REPORT_FILES if (out / f).exists()]
            if clash and not _is_report(out):
                problem = f"holds {', '.join(clash)} that are not from a recogan report"
    if problem is None:
        return
    if not force:
        raise OutputDirError(
            f"--out {out} {problem}; refusing to write the report there (choose another "
            "--out, or pass --force)"
        )
    log.warning("--out %s %s: writing the report there anyway (--force)", out, problem)
    if out.is_file():
        out.unlink()


def protocol_from_args(args) -> Protocol:
    """The Protocol the options name (``--protocol``, ``--targets``, ``--sampled``,
    ``--valid-folds``, ``--test-days``/``--valid-days``, ``--spread``), checked."""
    days = {"--test-days": args.test_days, "--valid-days": args.valid_days}
    given = [k for k, v in days.items() if v is not None]
    if given and args.protocol != "temporal":
        raise ValueError(f"{', '.join(given)} go with --protocol temporal, not {args.protocol}")
    if args.spread and args.protocol != "temporal":
        raise ValueError(f"--spread goes with --protocol temporal, not {args.protocol}")
    if len(given) == 1:
        missing = next(k for k in days if k not in given)
        raise ValueError(f"{given[0]} goes with {missing}: day-based windows need both")
    for k, v in days.items():
        if v is not None and v < 1:
            raise ValueError(f"{k} must be at least 1 day, got {v}")
    return Protocol(
        name=args.protocol,
        ranking="full" if args.sampled is None else "sampled",
        n_negatives=args.sampled or 100,
        valid_folds=args.valid_folds,
        spread=args.spread,
        test_days=args.test_days,
        valid_days=args.valid_days,
        targets=args.targets,
    )


def run(args) -> int:

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise ValueError("--models names no model")
    if args.budget < 1:
        raise ValueError(f"--budget must be at least 1, got {args.budget}")
    if args.valid_folds < 1:
        raise ValueError(f"--valid-folds must be at least 1, got {args.valid_folds}")
    if args.sampled is not None and args.sampled < 1:
        raise ValueError(f"--sampled must be at least 1, got {args.sampled}")
    proto = protocol_from_args(args)
    check_report_out(args.out, args.force)
    state_path = Path(args.out) / STATE_DIR
    check_state_dir(state_path, args.force)
    data = load_data(args)
    if args.no_resume and is_state_dir(state_path):
        remove(state_path)
    state = RunState(state_path, force=args.force)
    report = evaluate(
        data,
        models=models,
        protocol=proto,
        targets=args.targets,
        ks=args.k,
        tune=args.tune,
        budget=args.budget,
        seed=args.seed,
        jobs=args.jobs,
        show_progress=not args.no_progress,
        tuner=args.tuner,
        state_dir=state,
    )
    paths = report.save(args.out)
    cols = [c for c in ("HR@10", "NDCG@10", "Recall@10", "coverage@10", "fit_seconds")]
    table = report.metrics[cols].copy()
    table.insert(0, "valid NDCG@10", report.validation_table()["valid NDCG@10"])
    print(table.round(4).to_string())
    timing = report.timing_table()
    if not timing.empty:
        print("wall time per model:")
        print(timing.to_string())
        total = sum(t["wall_seconds"] for t in report.timing.values())
        print(f"total: {total:.1f} s")
    ablation = report.ablation_line()
    if ablation is not None:
        print(ablation)
    for warning in report.warnings():
        print(f"warning: {warning}")
    for kind, path in paths.items():
        print(f"{kind:<9} {path}")
    return 0
