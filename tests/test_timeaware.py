"""Time-aware baselines (ItemKNNTD, EASETD, P-Pop) and TIFU-KNN: the shared contract and
answers known by construction."""

import numpy as np
import pandas as pd
import pytest

from recogan.baselines import EASETD, TIFUKNN, ItemKNN, ItemKNNTD, Popularity, PPop
from recogan.baselines._tifuknn import tifu_vectors
from recogan.data import Dataset
from recogan.testing import ModelContract

DAY = 86400
T0 = 1_700_000_000


class TestItemKNNTDContract(ModelContract):
    def make_model(self):
        return ItemKNNTD(k=20, shrinkage=5.0, half_life_days=60.0, pop_weight=0.1)


class TestEASETDContract(ModelContract):
    def make_model(self):
        return EASETD(lam=50.0, half_life_days=30.0, pop_weight=0.05)


class TestTIFUKNNContract(ModelContract):
    def make_model(self):
        return TIFUKNN(neighbours=20, group_size=3)


class TestPPopContract(ModelContract):
    learns_structure = False  # with seen items excluded it is popularity

    def make_model(self):
        return PPop(half_life_days=30.0)


def frame(rows):
    return Dataset.from_frames(
        pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]), name="planted"
    )


def test_itemknn_td_scores_the_decayed_history():
    # u0 bought a 10 days before the end and b at the end; half-life 10 days: weights 0.5, 1
    rows = [("u0", "a", T0), ("u0", "b", T0 + 10 * DAY), ("u1", "a", T0), ("u1", "c", T0)]
    rows += [("u2", "b", T0), ("u2", "c", T0 + DAY), ("u3", "a", T0), ("u3", "b", T0)]
    data = frame(rows)
    td = ItemKNNTD(k=5, shrinkage=0.0, half_life_days=10.0).fit(data)
    plain = ItemKNN(k=5, shrinkage=0.0).fit(data)
    a, b = data.items.lookup(np.array(["a", "b"]))
    S = plain.similarity_.toarray()
    want = 0.5 * S[a] + 1.0 * S[b]
    u0 = data.users.lookup(np.array(["u0"]))
    got = td.score_users(u0)[0]
    np.testing.assert_allclose(got, want / np.abs(want).max(), rtol=1e-5)
    # all weight on recent popularity: the ranking of the last 30 days' buyers
    pop = ItemKNNTD(k=5, pop_weight=1.0, pop_window_days=30.0).fit(data)
    p = pop.pop_scores_
    np.testing.assert_allclose(pop.score_users(u0)[0], p / p.max(), rtol=1e-6)


def test_itemknn_td_without_decay_is_itemknn(clustered):
    td = ItemKNNTD(k=10, shrinkage=5.0, half_life_days=None).fit(clustered)
    plain = ItemKNN(k=10, shrinkage=5.0).fit(clustered)
    users = np.arange(50)
    np.testing.assert_array_equal(td.recommend(users, 10)[0], plain.recommend(users, 10)[0])


def test_ease_td_history_times_decay_like_training(clustered):
    model = EASETD(lam=20.0, half_life_days=14.0).fit(clustered)
    indptr, items, times = clustered.histories()
    users = np.arange(30)
    hist = [items[indptr[u] : indptr[u + 1]] for u in users]
    ts = [times[indptr[u] : indptr[u + 1]] for u in users]
    a, sa = model.recommend(users, n=10)
    b, sb = model.recommend_history(hist, n=10, times=ts)
    # every history ends by the end of training, so it is decayed to the same time
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(sa, sb, rtol=1e-5)
    # without times every item weighs 1: the plain EASE ranking
    c, _ = model.recommend_history(hist, n=10)
    assert (c != a).any()


def test_tifu_vectors_by_hand():
    # baskets at t=1 {0}, t=2 {1}, t=3 {0, 2}; m = 2, r_b = r_g = 0.5
    # groups from the latest: [t2, t3] and [t1]; g_latest = (0.5 e1 + e0 + e2) / 2, g_old = e0
    # u = (1 * g_latest + 0.5 * g_old) / 2 = 0.5 e0 + 0.125 e1 + 0.25 e2
    cfg = TIFUKNN(group_size=2, group_decay=0.5, within_decay=0.5).config
    U = tifu_vectors(np.zeros(4, int), np.array([0, 1, 0, 2]), np.array([1, 2, 3, 3]), (1, 3), cfg)
    np.testing.assert_allclose(U.toarray()[0], [0.5, 0.125, 0.25])


def test_tifuknn_mixes_own_vector_and_nearest_neighbour():
    rows = [("u0", "a", T0), ("u0", "b", T0 + DAY)]
    rows += [("u1", "a", T0), ("u1", "b", T0 + DAY), ("u1", "c", T0 + 2 * DAY)]
    rows += [("u2", "d", T0), ("u2", "e", T0 + DAY)]
    data = frame(rows)
    model = TIFUKNN(neighbours=1, alpha=0.5, group_size=1, group_decay=1.0).fit(data)
    V = model.vectors_.toarray()
    u0, u1 = data.users.lookup(np.array(["u0", "u1"]))
    # u1 is u0's nearest customer (u2 shares nothing)
    np.testing.assert_allclose(model.score_users(np.array([u0]))[0], 0.5 * V[u0] + 0.5 * V[u1])
    items, _ = model.recommend(np.array([u0]), n=1)
    assert data.items.to_ids(items[0])[0] == "c"  # the neighbour's item, seen ones excluded
    items, _ = model.recommend(np.array([u0]), n=2, exclude_seen=False)
    assert set(data.items.to_ids(items[0])) == {"a", "b"}  # repeats rank first when allowed


def test_ppop_repeats_first_then_popularity():
    rows = [("u0", "a", T0), ("u0", "a", T0 + 30 * DAY), ("u0", "b", T0 + 30 * DAY)]
    rows += [(f"x{i}", "c", T0 + i) for i in range(5)] + [(f"y{i}", "d", T0) for i in range(3)]
    data = frame(rows)
    model = PPop(half_life_days=30.0).fit(data)
    u0 = data.users.lookup(np.array(["u0"]))
    items, scores = model.recommend(u0, n=4, exclude_seen=False)
    # a: 1 + 0.5 (two purchases, one a half-life old) beats b: 1; then c (5 buyers), d (3)
    assert list(data.items.to_ids(items[0])) == ["a", "b", "c", "d"]
    np.testing.assert_allclose(scores[0][:2], [2.5, 2.0], rtol=1e-6)
    # seen items excluded: exactly popularity's ranking
    pop = Popularity().fit(data)
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(model.recommend(users, 2)[0], pop.recommend(users, 2)[0])


@pytest.mark.parametrize("cls", [ItemKNNTD, EASETD, TIFUKNN, PPop])
def test_search_space_values_are_valid(cls, clustered):
    space = cls.search_space()
    for i in (0, -1):
        model = cls(**{name: values[i] for name, values in space.items()}).fit(clustered)
        items, scores = model.recommend(np.arange(clustered.n_users), n=5, exclude_seen=False)
        assert (items >= 0).all() and np.isfinite(scores).all()


@pytest.mark.parametrize(
    "cls,params",
    [
        (ItemKNNTD, {"half_life_days": 0.0}),
        (EASETD, {"pop_weight": 1.5}),
        (TIFUKNN, {"alpha": 2.0}),
        (TIFUKNN, {"group_decay": 0.0}),
        (PPop, {"half_life_days": -1.0}),
    ],
)
def test_bad_settings(cls, params):
    with pytest.raises(ValueError, match=f"{next(iter(params))} must be"):
        cls(**params)
