"""``recogan info``: summary of a dataset (or of a model bundle)."""

from __future__ import annotations

import json

from recogan.cli._common import add_data_args, load_data
from recogan.data import temporal_split


def register(sub) -> None:
    p = sub.add_parser("info", help="summarise a dataset: users, items, time span, cleaning")
    add_data_args(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--split", action="store_true", help="also show the default temporal split's sizes"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    data = load_data(args)
    if args.json:
        out = data.summary()
        if args.split:
            out["split"] = temporal_split(data).summary()
        print(json.dumps(out, indent=2))
        return 0
    print(data.describe())
    if args.split:
        s = temporal_split(data).summary()
        print(f"temporal split {s['protocol']}:")
        for part in ("train", "valid", "test"):
            users = f" ({s[part + '_users']:,} users)" if part != "train" else ""
            print(f"  {part:<6} {s[part]:>10,} interactions{users}")
        print(f"  dropped (user without history): {s['dropped_no_history']}")
    return 0
