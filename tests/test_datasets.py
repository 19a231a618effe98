import pytest

from recogan.datasets import NON_PRODUCT_CODES


@pytest.mark.realdata
def test_online_retail_cleaning_counts(online_retail):
    c = online_retail.cleaning
    assert c["raw_rows"] == 541_909
    assert c["cancellations"] == 9_288
    assert c["missing_customer"] == 132_220
    # "(kept)" entries count flagged rows that stay (e.g. exact duplicates)
    removed = sum(
        v for k, v in c.items() if k not in ("raw_rows", "purchase_rows") and "(kept" not in k
    )
    assert c["raw_rows"] - removed == c["purchase_rows"] == online_retail.n_interactions
    assert 4_200 < online_retail.n_users < 4_400
    assert 3_500 < online_retail.n_items < 3_800
    assert not set(online_retail.items.ids) & NON_PRODUCT_CODES
    cat = online_retail.catalog
    assert cat["title"].notna().mean() > 0.99 and (cat["price"] > 0).all()


@pytest.mark.realdata
def test_online_retail_catalog_uses_most_frequent_description(online_retail):
    idx = online_retail.items.index_of("85123A")
    assert "HANGING HEART T-LIGHT HOLDER" in online_retail.catalog.loc[idx, "title"]


# --------------------------------------------------------------------- The Complete Journey
def _tiny_completejourney(folder):
    """A tiny Complete Journey in ``folder``: 3 households, 4 products (one never sold, one
    not in the catalogue), a quantity-0 row, a free item, times over Aug-Dec 2017."""
    import pandas as pd

    rows = [
        # household, basket, product, quantity, sales_value, timestamp
        (1, 10, 101, 2, 4.0, "2017-09-01 10:15:00"),
        (1, 10, 102, 1, 3.0, "2017-09-01 10:15:00"),
        (1, 11, 101, 1, 2.0, "2017-11-23 18:00:00"),
        (2, 12, 101, 1, 0.0, "2017-11-24 09:00:00"),  # free: kept, no price
        (2, 12, 102, 0, 0.0, "2017-11-24 09:00:00"),  # quantity 0: dropped
        (2, 13, 999, 1, 1.0, "2017-12-01 12:00:00"),  # not in the catalogue
        (3, 14, 102, 3, 6.0, "2017-12-20 08:30:00"),
        (3, 15, 101, 1, 2.0, "2017-12-27 19:45:00"),
        (3, 16, 101, 1, 2.0, "2017-12-30 19:45:00"),  # after the held-out window
        (3, 17, 103, 1, 5.0, "2017-12-21 11:00:00"),  # sold once
    ]
    tx = pd.DataFrame(
        rows,
        columns=[
            "household_id",
            "basket_id",
            "product_id",
            "quantity",
            "sales_value",
            "transaction_timestamp",
        ],
    )
    tx["store_id"] = 1
    tx["transaction_timestamp"] = pd.to_datetime(tx["transaction_timestamp"])
    products = pd.DataFrame(
        {
            "product_id": [101, 102, 103, 104],
            "manufacturer_id": [1, 2, 3, 4],
            "department": ["GROCERY", "PRODUCE", "GROCERY", "MEAT"],
            "brand": ["National", "Private", "National", "Private"],
            "product_category": ["FLUID MILK", "APPLES", "BREAD", "BEEF"],
            "product_type": ["MILK WHITE", "GALA", "WHEAT", "GROUND"],
            "package_size": ["1 GA", None, None, None],
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    tx.to_parquet(folder / "transactions.parquet")
    products.to_parquet(folder / "products.parquet")
    return folder


def test_completejourney_cleaning_counts_each_rule(tmp_path):
    from recogan.datasets import NEVER_SOLD, completejourney

    data = completejourney(_tiny_completejourney(tmp_path / "cj"))
    c = data.cleaning
    assert c["raw_rows"] == 10
    assert c["non_positive_quantity"] == 1
    assert c["product_not_in_catalog"] == 1
    assert c["non_positive_sales_value (kept, no price)"] == 1
    assert c[NEVER_SOLD] == 1  # product 104
    assert c["purchase_rows"] == data.n_interactions == 8
    assert sorted(data.items.ids) == [101, 102, 103]
    assert data.n_users == 3
    cat = data.catalog
    i101 = data.items.index_of(101)
    # median of sales_value / quantity over priced rows: 2.0, 2.0, 2.0, 2.0 (the free one out)
    assert cat.loc[i101, "price"] == 2.0
    assert cat.loc[data.items.index_of(102), "price"] == 2.5  # median of 3.0 and 2.0
    assert cat.loc[i101, "category"] == "GROCERY|FLUID MILK|MILK WHITE|brand:national"
    assert "title" not in cat


def test_completejourney_heldout_shape(tmp_path):
    import pandas as pd

    from recogan.datasets import completejourney_heldout, heldout_window

    first, last = heldout_window()
    assert last == pd.Timestamp("2017-12-28") and first == pd.Timestamp("2017-08-29")
    data = completejourney_heldout(_tiny_completejourney(tmp_path / "cj"), min_sales=2)
    c = data.cleaning
    assert c["outside_window"] == 1
    # product 103 sold once (< 2): its row is removed and counted
    assert c["fewer_than_min_sales"] == 1
    assert sorted(data.items.ids) == [101, 102]
    assert c["purchase_rows"] == data.n_interactions == 6
    removed = sum(
        v for k, v in c.items() if k not in ("raw_rows", "purchase_rows") and "(" not in k
    )
    assert c["raw_rows"] - removed == c["purchase_rows"]
    # whole days: no time of day survives
    assert (data.times % 86400 == 0).all()
    assert set(data.catalog.columns) == {"category", "price"}
    assert data.catalog.loc[data.items.index_of(102), "category"] == "GALA"
    coarse = completejourney_heldout(tmp_path / "cj", min_sales=2, category="product_category")
    assert coarse.catalog.loc[coarse.items.index_of(101), "category"] == "FLUID MILK"
    with pytest.raises(ValueError, match="category"):
        completejourney_heldout(tmp_path / "cj", category="brand")


def test_completejourney_heldout_split_households(tmp_path):
    """Thin customers: each household's baskets go whole to one of K customers of it, the
    purchases unchanged, the same seed the same deal."""
    import numpy as np

    from recogan.datasets import completejourney_heldout

    root = _tiny_completejourney(tmp_path / "cj")
    whole = completejourney_heldout(root, min_sales=2)
    thin = completejourney_heldout(root, min_sales=2, split_households=4, seed=1)
    assert thin.cleaning["households_split_into"] == 4
    assert thin.n_interactions == whole.n_interactions
    ids = np.asarray(thin.users.ids)[thin.user_idx]
    household = np.array([i.split("#")[0] for i in ids])
    original = np.asarray(whole.users.ids)[whole.user_idx].astype(str)
    key = lambda h, t, i: sorted(zip(h, t.tolist(), i.tolist()))  # noqa: E731
    items = lambda d: np.asarray(d.items.ids)[d.item_idx]  # noqa: E731
    assert key(household, thin.times, items(thin)) == key(original, whole.times, items(whole))
    # a basket (household, day) is never split between two customers
    frame = {(h, t): set() for h, t in zip(household, thin.times.tolist())}
    for h, t, u in zip(household, thin.times.tolist(), ids):
        frame[(h, t)].add(u)
    assert all(len(v) == 1 for v in frame.values())
    again = completejourney_heldout(root, min_sales=2, split_households=4, seed=1)
    assert list(again.users.ids) == list(thin.users.ids)
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="split_households"):
            completejourney_heldout(root, min_sales=2, split_households=bad)


def test_completejourney_missing_folder_and_columns(tmp_path, monkeypatch):
    import pandas as pd

    from recogan.datasets import clean_completejourney, completejourney

    with pytest.raises(FileNotFoundError, match="RECOGAN_COMPLETEJOURNEY"):
        completejourney(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="lacks column"):
        clean_completejourney(pd.DataFrame({"household_id": [1]}), pd.DataFrame())


def test_load_knows_the_grocery_names(tmp_path, monkeypatch):
    from recogan import datasets

    monkeypatch.setenv("RECOGAN_COMPLETEJOURNEY", str(_tiny_completejourney(tmp_path / "cj")))
    assert {"completejourney", "completejourney_heldout"} <= set(datasets.NAMES)
    assert datasets.load("completejourney").name == "completejourney"
    assert datasets.load("cj").name == "completejourney"


def test_heldout_split_is_the_heldout_protocol():
    import numpy as np
    import pandas as pd

    from recogan.data import Dataset
    from recogan.datasets import heldout_split

    days = pd.date_range("2017-08-29", "2017-12-28", freq="D")
    n = len(days)
    frame = pd.DataFrame(
        {
            "user_id": np.tile([1, 2], n),
            "item_id": np.arange(2 * n) % 7,
            "timestamp": np.repeat(days, 2),
        }
    )
    split = heldout_split(Dataset.from_frames(frame, None))
    to_day = lambda d: pd.to_datetime(d.times, unit="s")  # noqa: E731
    assert to_day(split.test).min() == pd.Timestamp("2017-12-19")
    assert to_day(split.test).max() == pd.Timestamp("2017-12-28")
    starts = [to_day(va).min() for _, va in split.folds]
    ends = [to_day(va).max() for _, va in split.folds]
    assert starts == [pd.Timestamp(x) for x in ("2017-12-05", "2017-11-21", "2017-11-07")]
    assert ends == [pd.Timestamp(x) for x in ("2017-12-18", "2017-12-04", "2017-11-20")]
    # one of the windows holds Thanksgiving
    assert starts[1] <= pd.Timestamp("2017-11-23") <= ends[1]


@pytest.mark.realdata
@pytest.mark.slow
def test_completejourney_real_counts():
    from recogan.datasets import COMPLETEJOURNEY_DIR, completejourney, completejourney_heldout

    if not (COMPLETEJOURNEY_DIR / "transactions.parquet").exists():
        pytest.skip("The Complete Journey is not in ../shared/data")
    data = completejourney()
    assert data.cleaning["raw_rows"] == 1_469_307
    assert data.n_users == 2_469 and 60_000 < data.n_items < 70_000
    held = completejourney_heldout()
    assert 15_000 < held.n_items < 18_000 and (held.times % 86400 == 0).all()
