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

from recogan.completejourney import (
    CJ_PRODUCT_COLUMNS,
    CJ_TRANSACTION_COLUMNS,
    COMPLETEJOURNEY_DIR,
    NEVER_SOLD,
    THANKSGIVING_2017,
    clean_completejourney,
    completejourney,
    completejourney_heldout,
    heldout_split,
    heldout_window,
    reshape_heldout,
)
from recogan.data import Dataset, drop_rows, read_dataset, read_frame

#: The loaders, with The Complete Journey's (:mod:`recogan.completejourney`) re-exported.
__all__ = [
    "ALIASES",
    "CJ_PRODUCT_COLUMNS",
    "CJ_TRANSACTION_COLUMNS",
    "COMPLETEJOURNEY_DIR",
    "ML1M_DIR",
    "NAMES",
    "NEVER_SOLD",
    "NON_PRODUCT_CODES",
    "ONLINE_RETAIL",
    "THANKSGIVING_2017",
    "clean_completejourney",
    "clean_online_retail",
    "completejourney",
    "completejourney_heldout",
    "heldout_split",
    "heldout_window",
    "load",
    "movielens_1m",
    "online_retail",
    "online_retail_path",
    "reshape_heldout",
    "synthetic_clusters",
    "synthetic_retail",
]

log = logging.getLogger(__name__)

#: The bundled Online Retail parquet, as package data.
ONLINE_RETAIL = resources.files("recogan") / "_data" / "online_retail.parquet"
#: Where MovieLens-1M is looked for by default: ``../shared/data/ml-1m`` beside a checkout.
ML1M_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ml-1m"
#: Dataset names :func:`load` (and the CLI's ``--data``) accept, aliases included.
NAMES = (
    "online_retail",
    "movielens_1m",
    "completejourney",
    "completejourney_heldout",
)
ALIASES = {"ml-1m": "movielens_1m", "ml1m": "movielens_1m", "cj": "completejourney"}

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


def clean_online_retail(raw: pd.DataFrame) -> Dataset:
    """Apply the cleaning rules of :func:`online_retail` to a raw Online Retail frame."""
    df = raw
    cleaning: dict[str, int] = {"raw_rows": len(df)}

    df = drop_rows(df, cleaning, "cancellations", df["InvoiceNo"].astype(str).str.startswith("C"))
    df = drop_rows(df, cleaning, "non_positive_quantity", ~(df["Quantity"] > 0))
    df = drop_rows(df, cleaning, "non_positive_price", ~(df["UnitPrice"] > 0))
    df = drop_rows(df, cleaning, "missing_customer", df["CustomerID"].isna())
    code = df["StockCode"].astype(str).str.strip()
    df = drop_rows(df, cleaning, "non_product_code", code.isin(NON_PRODUCT_CODES).to_numpy())
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
