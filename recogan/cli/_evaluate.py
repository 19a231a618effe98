"""``recogan evaluate``: tune, fit and score models offline; write the report directory."""

from __future__ import annotations

import argparse
import logging

from recogan.cli._common import add_data_args, load_data

log = logging.getLogger(__name__)


def _int_list(text: str) -> list[int]:
    try:
        ks = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k takes integers like 5,10,20, got {text!r}") from None
    if not ks or min(ks) <= 0:
        raise argparse.ArgumentTypeError(f"--k needs positive integers, got {text!r}")
    return ks


def register(sub) -> None:
    from recogan.evaluate._run import DEFAULT_MODELS

    p = sub.add_parser(
        "evaluate",
        help="offline evaluation: tuned models, CIs, paired tests, HTML/markdown/JSON report",
        description="Fit and score models under one protocol and write DIR/metrics.json, "
        "DIR/report.md, DIR/report.html and DIR/per_user.parquet.",
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
        "--sampled",
        type=int,
        metavar="N",
        default=None,
        help="rank each user's targets among N sampled negatives instead of the full "
        "catalog (labelled 'sampled' in the report)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--out", required=True, metavar="DIR", help="report directory")
    p.set_defaults(func=run)


def run(args) -> int:
    from recogan.evaluate import evaluate

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    data = load_data(args)
    report = evaluate(
        data,
        models=models,
        protocol=args.protocol,
        ks=args.k,
        tune=args.tune,
        budget=args.budget,
        seed=args.seed,
        ranking="full" if args.sampled is None else "sampled",
        n_negatives=args.sampled or 100,
        show_progress=not args.no_progress,
    )
    paths = report.save(args.out)
    cols = [c for c in ("HR@10", "NDCG@10", "Recall@10", "coverage@10", "fit_seconds")]
    print(report.metrics[cols].round(4).to_string())
    for kind, path in paths.items():
        print(f"{kind:<9} {path}")
    return 0
