"""``recogan recommend``: recommendations from a model bundle for a user or a basket."""

from __future__ import annotations

import json

import numpy as np

from recogan.recommender import Recommender


def register(sub) -> None:
    p = sub.add_parser("recommend", help="recommend items from a model bundle")
    p.add_argument("--model", required=True, metavar="DIR", help="bundle written by `train`")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", metavar="ID", help="a customer id the model knows")
    who.add_argument(
        "--history", metavar="ID,ID,...", help="item ids of an anonymous basket (oldest first)"
    )
    who.add_argument("--similar", metavar="ITEM", help="items similar to this item id")
    p.add_argument("--n", type=int, default=10, help="how many items (default: 10)")
    p.add_argument(
        "--include-seen", action="store_true", help="allow already-bought items (--mode mixed)"
    )
    p.add_argument(
        "--mode",
        help="discover (default: items never bought), buy_again (only items bought before) "
        "or mixed (one list, bought items allowed)",
    )
    p.add_argument("--strict", action="store_true", help="fail on an unknown user")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--json", action="store_true", help="print JSON records")
    p.set_defaults(func=run)


def parse_id(text: str, known: np.ndarray):
    """Read a command-line id as the type of the ids the model knows (``12347`` finds an
    int64 customer id, ``"85123A"`` a string item id)."""
    text = text.strip()
    sample = known[0] if len(known) else text
    if isinstance(sample, (int, np.integer)) and not isinstance(sample, bool):
        try:
            return int(text)
        except ValueError:
            return text
    if isinstance(sample, (float, np.floating)):
        try:
            return float(text)
        except ValueError:
            return text
    return text


def run(args) -> int:

    rec = Recommender.load(args.model, device=args.device, strict=args.strict)
    exclude = False if args.include_seen else None
    if args.user is not None:
        user = parse_id(args.user, rec.user_ids)
        result = rec.recommend(user, n=args.n, exclude_seen=exclude, mode=args.mode)
        head = f"top {args.n} for user {user}"
    elif args.history is not None:
        items = [parse_id(t, rec.item_ids) for t in args.history.split(",") if t.strip()]
        result = rec.for_history(items, n=args.n, exclude_seen=exclude, mode=args.mode)
        head = f"top {args.n} for a basket of {len(items)} item(s)"
    else:
        item = parse_id(args.similar, rec.item_ids)
        result = rec.similar_items(item, n=args.n)
        head = f"{args.n} items similar to {item}"
    titles = rec.titles(result.items) or [None] * len(result)
    if args.json:
        records = [
            {"rank": r, "item_id": _plain(i), "score": s, "title": t, "repeat": rep}
            for r, ((i, s), t, rep) in enumerate(
                zip(result, titles, result.repeats or [False] * len(result)), 1
            )
        ]
        print(
            json.dumps(
                {
                    "fallback": result.fallback,
                    "reason": result.reason,
                    "n_unknown": result.n_unknown,
                    "items": records,
                },
                indent=2,
            )
        )
        return 0
    print(f"{head} ({result.reason}):")
    if result.fallback:
        print("  note: not personalised (fallback)")
    if result.n_unknown:
        print(f"  note: ignored {result.n_unknown} unknown item id(s)")
    repeats = result.repeats or [False] * len(result)
    for r, ((i, s), t, rep) in enumerate(zip(result, titles, repeats), 1):
        mark = " (bought before)" if rep else ""
        print(f"  {r:>3}  {i!s:<14} {s:>10.4f}  {t if t is not None else ''}{mark}".rstrip())
    if not len(result):
        print("  (no items)")
    return 0


def _plain(x):
    return x.item() if isinstance(x, np.generic) else x
