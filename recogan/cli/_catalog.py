"""``recogan catalog``: add products launched since training, withdraw or restore products.

Each command loads the bundle (verified), applies the change and publishes the model with its
catalogue changes as a new version of the same bundle (atomically; refused if the bundle was
re-published meanwhile), so ``recogan recommend``, services that reload it and
``recogan batch-score`` all see the same catalogue.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from recogan.artifacts import load_model
from recogan.batch import read_id_file
from recogan.catalog import ID_COLUMNS, changes_of
from recogan.data import read_frame
from recogan.recommender import Recommender


def register(sub) -> None:
    p = sub.add_parser(
        "catalog",
        help="add new products to a model bundle from their catalog rows, or withdraw them",
        description=(
            "Change the catalogue of a model bundle between trainings: `add` new products "
            "from their catalog rows (the GAN places them from their content), `remove` "
            "(withdraw) products so no result shows them, `restore` withdrawn ones, `show` "
            "the changes. Each change is published as a new version of the bundle."
        ),
    )
    cmds = p.add_subparsers(dest="catalog_command", metavar="ACTION", required=True)

    add = cmds.add_parser("add", help="add products from catalog rows (CSV or parquet)")
    _model_arg(add)
    add.add_argument(
        "--catalog",
        required=True,
        metavar="FILE",
        help="new products: an id column and any of title, category, price",
    )
    add.add_argument("--id-col", help="id column (default: item_id or id)")
    add.add_argument("--title-col", default="title", help="title column (default: title)")
    add.add_argument(
        "--category-col", default="category", help="category column (default: category)"
    )
    add.add_argument("--price-col", default="price", help="price column (default: price)")
    add.add_argument(
        "--prior",
        type=float,
        help="prior score of the new products (default: the model's rule for unsold products)",
    )
    add.set_defaults(func=run_add)

    for name, verb in (("remove", "withdraw"), ("restore", "restore withdrawn")):
        c = cmds.add_parser(name, help=f"{verb} products listed in a file")
        _model_arg(c)
        c.add_argument(
            "--items",
            required=True,
            metavar="FILE",
            help="item ids: text (one per line), or CSV/parquet with an item_id column",
        )
        c.set_defaults(func=run_remove if name == "remove" else run_restore)

    show = cmds.add_parser("show", help="the bundle's catalogue changes")
    _model_arg(show)
    show.set_defaults(func=run_show)


def _model_arg(p) -> None:
    p.add_argument("--model", required=True, metavar="DIR", help="model bundle directory")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _load(args):
    return Recommender.load(args.model, device="cpu")


def read_new_products(args):
    """The catalog rows of ``--catalog`` with the attribute columns renamed to title,
    category, price (ids read as text, so codes such as ``022423`` keep their zeros)."""
    path = Path(args.catalog)
    id_cols = [args.id_col] if args.id_col else list(ID_COLUMNS)
    if ".csv" in "".join(path.suffixes).lower() and path.is_file():
        try:
            frame = pd.read_csv(path, dtype={c: str for c in id_cols})
        except (ValueError, OSError) as e:
            raise ValueError(f"{path}: cannot be read as CSV ({e})") from e
    else:
        frame = read_frame(path)
    names = {args.title_col: "title", args.category_col: "category", args.price_col: "price"}
    names = {k: v for k, v in names.items() if k in frame.columns and k != v}
    clash = sorted(set(names.values()) & set(frame.columns))
    if clash:
        raise ValueError(f"{path}: columns {clash} clash with the renamed attribute columns")
    return frame.rename(columns=names)


def run_add(args) -> int:
    rec = _load(args)
    update = rec.add_items(read_new_products(args), id_col=args.id_col, prior=args.prior)
    return _report(args, rec, "added", update)


def run_remove(args) -> int:
    rec = _load(args)
    update = rec.remove_items(read_id_file(args.items, "item_id", rec.model.items_))
    return _report(args, rec, "withdrew", update)


def run_restore(args) -> int:
    rec = _load(args)
    update = rec.restore_items(read_id_file(args.items, "item_id", rec.model.items_))
    return _report(args, rec, "restored", update)


def _report(args, rec, verb: str, update) -> int:
    if update.items:
        rec.save_catalog_changes()
    changes = rec.catalog_changes
    out = {
        "model": str(args.model),
        verb: [_plain(i) for i in update.items],
        "n_unknown": update.n_unknown,
        "published": bool(update.items),
        "products": len(rec.item_ids),
        "added_since_training": len(changes["added"]),
        "withdrawn": len(changes["withdrawn"]),
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    head = f"{verb} {len(update.items)} product(s)"
    if update.n_unknown:
        head += f" ({update.n_unknown} unknown id(s) ignored)"
    tail = "published a new bundle version" if update.items else "nothing changed"
    print(f"{head}; {tail} at {args.model}")
    print(
        f"catalogue: {out['products']:,} products, {out['added_since_training']:,} added since "
        f"training, {out['withdrawn']:,} withdrawn"
    )
    return 0


def run_show(args) -> int:
    model = load_model(args.model)
    changes = changes_of(model).summary(model.items_)
    if args.json:
        print(json.dumps(changes, indent=2))
        return 0
    print(f"{args.model}: trained on {changes['n_trained']:,} products")
    for what in ("added", "withdrawn"):
        ids = changes[what]
        more = f" ... (+{len(ids) - 10})" if len(ids) > 10 else ""
        print(f"  {what:<10} {len(ids):>6,}  {', '.join(map(str, ids[:10]))}{more}".rstrip())
    for entry in changes["log"]:
        print(f"  {entry['at']}  {entry['action']:<8} {entry['items']:,}")
    return 0


def _plain(x):
    return x.item() if isinstance(x, np.generic) else x
