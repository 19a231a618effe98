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
