"""The item features' collaborative part (recogan.features)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recogan.data import Dataset
from recogan.features import ItemFeatures


def _aisles(seed=0, aisles=20, per=30, users=600, buys=8, best=10) -> Dataset:
    """Each customer shops one aisle (``per`` products, Zipf-like sales within it) and buys
    most of ``best`` best sellers on top: item ``i<k>`` is in aisle ``k // per``, the best
    sellers are ``k >= aisles * per``."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, per + 1) ** 1.2
    p /= p.sum()
    rows = []
    for u in range(users):
        aisle = u % aisles
        items = aisle * per + rng.choice(per, size=buys, replace=False, p=p)
        items = np.concatenate([items, aisles * per + np.flatnonzero(rng.random(best) < 0.7)])
        rows += [(f"u{u}", f"i{i}", 1.7e9 + 86400.0 * t) for t, i in enumerate(items)]
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))


def _same_aisle_share(data: Dataset, F: np.ndarray, aisles=20, per=30, k=5) -> float:
    num = np.array([int(str(t)[1:]) for t in data.items.ids])
    keep = num < aisles * per
    E, aisle = F[keep], num[keep] // per
    S = E @ E.T
    np.fill_diagonal(S, -np.inf)
    top = np.argsort(-S, axis=1)[:, :k]
    return float((aisle[top] == aisle[:, None]).mean())


def test_normalised_purchase_graph_recovers_the_aisles():
    # Few components for many aisles: without the item normalisation the best sellers and
    # each aisle's top products claim the components, and the aisles' other products get
    # neighbours from other aisles.
    data = _aisles()
    plain = ItemFeatures(dim_cf=8, cf_item_norm=False).fit(data).F_
    normed = ItemFeatures(dim_cf=8, cf_item_norm=True).fit(data).F_
    assert plain.shape == normed.shape == (data.n_items, 8)
    assert np.allclose(np.linalg.norm(normed, axis=1), 1.0, atol=1e-5)
    share_plain = _same_aisle_share(data, plain)
    share_normed = _same_aisle_share(data, normed)
    assert share_normed >= 0.98
    assert share_normed > share_plain + 0.05


def test_collaborative_part_is_seeded():
    data = _aisles(users=200)
    a = ItemFeatures(dim_cf=8, seed=3).fit(data).F_
    b = ItemFeatures(dim_cf=8, seed=3).fit(data).F_
    assert np.array_equal(a, b)


def test_unknown_feature_parameter_is_refused():
    with pytest.raises(TypeError, match="unknown parameter 'cf_norm'"):
        ItemFeatures(cf_norm=True)
