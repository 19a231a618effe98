"""Options shared by commands that read a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from recogan import datasets
from recogan.data import read_dataset


def add_data_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--data online_retail|PATH`` or ``--interactions PATH [--catalog PATH]`` + column names."""
    g = p.add_argument_group("data")
    src = g.add_mutually_exclusive_group(required=required)
    src.add_argument(
        "--data",
        metavar="NAME|PATH",
        help="a named dataset (online_retail, bundled; movielens_1m, completejourney and "
        "completejourney_heldout read ../shared/data) or a path",
    )
    src.add_argument("--interactions", metavar="PATH", help="interactions parquet/CSV")
    g.add_argument("--catalog", metavar="PATH", help="item catalog parquet/CSV (optional)")
    g.add_argument("--user-col", default="user_id", help="user id column (default: user_id)")
    g.add_argument("--item-col", default="item_id", help="item id column (default: item_id)")
    g.add_argument("--time-col", default="timestamp", help="time column (default: timestamp)")
    g.add_argument(
        "--time-unit",
        choices=("auto", "s", "ms", "us", "ns"),
        default="auto",
        help="unit of numeric epoch times (default: auto, told by magnitude)",
    )
    g.add_argument(
        "--quantity-col",
        default="auto",
        metavar="NAME",
        help="quantity column: rows with a missing or non-positive quantity are removed and "
        "counted (default: 'quantity' when the file has one; 'none' to ignore)",
    )


def load_data(args: argparse.Namespace):
    """The Dataset the data options name."""

    cols = {
        "user_col": args.user_col,
        "item_col": args.item_col,
        "time_col": args.time_col,
        "time_unit": getattr(args, "time_unit", "auto"),
        "quantity_col": getattr(args, "quantity_col", "auto"),
    }
    if str(cols["quantity_col"]).lower() == "none":
        cols["quantity_col"] = None
    bundled = (*datasets.NAMES, *datasets.ALIASES)
    if args.data is not None:
        if args.catalog is not None and args.data in bundled:
            raise ValueError("--catalog goes with --interactions PATH, not a bundled --data")
        if args.data in bundled:
            return datasets.load(args.data)
        if not Path(args.data).exists():
            raise FileNotFoundError(
                f"--data {args.data}: no such file, and not a bundled dataset "
                f"({', '.join(bundled)})"
            )
        return read_dataset(args.data, args.catalog, **cols)
    return read_dataset(args.interactions, args.catalog, **cols)
