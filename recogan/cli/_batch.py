"""``recogan batch-score``: top-n lists of every customer, partitioned and published atomically."""

from __future__ import annotations

import json
import sys

from recogan.batch import BatchError, batch_score


def register(sub) -> None:
    p = sub.add_parser(
        "batch-score",
        help="score every user of a model bundle into a published directory of parquet files",
        description=(
            "Score users of a model bundle in partitions and publish the result atomically "
            "(OUT/part-NNNNN.parquet with user_id, rank, item_id, score, and OUT/_SUCCESS). "
            "An interrupted run is picked up with --resume."
        ),
    )
    p.add_argument("--model", required=True, metavar="DIR", help="model bundle directory")
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output directory to publish: absent, empty or an earlier batch result (replaced)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace --out even when it holds something other than a batch result",
    )
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="default: local")
    p.add_argument("--workers", type=int, help="worker processes / Ray actors (default: cores)")
    p.add_argument(
        "--threads", type=int, default=1, help="BLAS/torch/faiss threads per worker (default: 1)"
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where a torch model (the GAN) and its index score (default: auto, CUDA if present)",
    )
    p.add_argument("--n", type=int, default=50, help="items per user (default: 50)")
    p.add_argument(
        "--resume", action="store_true", help="keep verified partitions of an interrupted run"
    )
    p.add_argument(
        "--users", metavar="FILE", help="only these external user ids (text/CSV/parquet)"
    )
    p.add_argument(
        "--filter", metavar="FILE", help="allow-list of external item ids (text/CSV/parquet)"
    )
    p.add_argument(
        "--partition-size", type=int, default=10_000, help="users per partition (default: 10000)"
    )
    p.add_argument(
        "--batch-size", type=int, help="users per recommend call (default: by catalog size)"
    )
    p.add_argument(
        "--include-seen",
        action="store_true",
        help="do not drop items the user already bought (the same as --mode mixed)",
    )
    p.add_argument(
        "--mode",
        help=(
            "discover (default: items the customer never bought), buy_again (only items they "
            "bought before, ranked by the model) or mixed (one list ranked by the model); "
            "every row's repeat column says whether the customer bought the item before"
        ),
    )
    p.add_argument(
        "--noise-draws", type=int, help="noise draws per user (models with noise; others ignore)"
    )
    p.add_argument(
        "--diversity",
        type=float,
        default=0.0,
        metavar="D",
        help=(
            "in [0, 1]: 0 (default) writes the model's ranking; more trades a little of the "
            "model's score for wider catalogue exposure (the model's own mechanism, else "
            "MMR re-ranking of its top max(50, 5n) by item similarity)"
        ),
    )
    p.add_argument("--ray-address", help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.set_defaults(func=run)


def run(args) -> int:

    try:
        result = batch_score(
            args.model,
            args.out,
            users=args.users,
            item_filter=args.filter,
            n=args.n,
            exclude_seen=False if args.include_seen else None,
            mode=args.mode,
            partition_size=args.partition_size,
            batch_size=args.batch_size,
            noise_draws=args.noise_draws,
            diversity=args.diversity,
            engine=args.engine,
            workers=args.workers,
            threads=args.threads,
            device=args.device,
            ray_address=args.ray_address,
            resume=args.resume,
            force=args.force,
            show_progress=not args.no_progress,
        )
    except (BatchError, ImportError, PermissionError, OSError) as e:
        print(f"recogan batch-score: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.summary())
    return 0
