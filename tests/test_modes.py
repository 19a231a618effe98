"""List modes (discover, buy_again, mixed) and the ``repeat`` flag, through the one serving
pipeline: the service API and its checks (issue 27)."""

from __future__ import annotations

import numpy as np
import pytest

from recogan.artifacts import save_model
from recogan.baselines import Popularity
from recogan.recommender import Recommender
from recogan.serving import MODES, Pipeline, check_mode
from tests.vector_model import VectorModel, vector_model_registered  # noqa: F401


@pytest.fixture(scope="module")
def bundle(clustered, tmp_path_factory):
    path = tmp_path_factory.mktemp("bundles") / "vec"
    save_model(VectorModel(dim=6).fit(clustered), path)
    return path


@pytest.fixture
def rec(bundle, vector_model_registered):  # noqa: F811
    return Recommender.load(bundle, device="cpu")  # the seen items come from the bundle


def _seen(rec, user_id) -> set:
    u = rec.model.users_.index_of(user_id)
    return set(rec.item_ids[rec.model.seen_[u].indices])


def test_check_mode():
    assert check_mode(None) == ("discover", True)
    assert check_mode(None, False) == ("mixed", False)
    assert check_mode("buy-again") == ("buy_again", False)
    assert [check_mode(m)[1] for m in MODES] == [True, False, False]
    with pytest.raises(ValueError, match=r"'again'.*|mode must be one of discover"):
        check_mode("again")
    with pytest.raises(ValueError, match="contradicts"):
        check_mode("discover", False)
    with pytest.raises(ValueError, match="contradicts"):
        check_mode("buy_again", True)


@pytest.mark.parametrize("call", ["recommend", "recommend_many", "for_history"])
def test_bad_mode_names_value_and_choices(rec, call):
    arg = {"recommend": "u1", "recommend_many": ["u1"], "for_history": [rec.item_ids[0]]}[call]
    with pytest.raises(ValueError, match=r"discover, buy_again, mixed; got 'repeat'"):
        getattr(rec, call)(arg, n=3, mode="repeat")


def test_discover_is_today_and_never_repeats(rec):
    r = rec.recommend("u1", n=8, mode="discover")
    assert r.items == rec.recommend("u1", n=8).items
    assert not set(r.items) & _seen(rec, "u1")
    assert r.repeats == (False,) * len(r)


def test_buy_again_lists_only_history_ranked_by_model(rec):
    seen = _seen(rec, "u1")
    r = rec.recommend("u1", n=rec.model.n_items_, mode="buy_again")
    assert set(r.items) == seen and all(r.repeats)
    assert list(r.scores) == sorted(r.scores, reverse=True)
    u = rec.model.users_.index_of("u1")
    full, scores = rec.model.recommend(np.array([u]), rec.model.n_items_, exclude_seen=False)
    order = [i for i in rec.item_ids[full[0]] if i in seen]
    assert list(r.items) == order  # the model's own ranking of the seen items
    top2 = rec.recommend("u1", n=2, mode="buy_again")
    assert list(top2.items) == order[:2]


def test_mixed_is_the_models_ranking_with_flags(rec):
    u = rec.model.users_.index_of("u1")
    r = rec.recommend("u1", n=10, mode="mixed")
    full, _ = rec.model.recommend(np.array([u]), 10, exclude_seen=False)
    assert list(r.items) == list(rec.item_ids[full[0]])
    seen = _seen(rec, "u1")
    assert r.repeats == tuple(i in seen for i in r.items)
    assert any(r.repeats)  # the vector model scores a user's own items high
    assert rec.recommend("u1", n=10, exclude_seen=False).items == r.items


def test_recommend_many_repeat_column_and_unknown_users(rec):
    df = rec.recommend_many(["u1", "u2", "nobody"], n=5, mode="mixed")
    assert df["repeat"].dtype == bool
    for uid, rows in df[~df["fallback"]].groupby("user_id"):
        seen = _seen(rec, uid)
        assert rows["repeat"].tolist() == [i in seen for i in rows["item_id"]]
    assert not df.loc[df["fallback"], "repeat"].any()
    again = rec.recommend_many(["u1", "nobody"], n=5, mode="buy_again")
    assert set(again["user_id"]) == {"u1"} and again["repeat"].all()  # nothing to re-buy
    assert rec.recommend("nobody", n=5, mode="buy_again").items == ()
    one = rec.recommend("u1", n=5, mode="buy_again")
    assert again["item_id"].tolist() == list(one.items)


def test_filters_meet_buy_again(rec):
    seen = sorted(_seen(rec, "u1"))
    allowed = seen[:2] + [i for i in rec.item_ids if i not in seen][:3]
    r = rec.recommend("u1", n=10, mode="buy_again", filter=allowed)
    assert set(r.items) == set(seen[:2])
    r = rec.recommend("u1", n=10, mode="buy_again", filter=lambda i: i != seen[0])
    assert set(r.items) == set(seen[1:])


def test_for_history_modes(rec):
    hist = list(rec.item_ids[[0, 5, 9]])
    again = rec.for_history(hist, n=10, mode="buy_again")
    assert set(again.items) == set(hist) and all(again.repeats)
    mixed = rec.for_history(hist, n=rec.model.n_items_, mode="mixed")
    assert mixed.repeats == tuple(i in hist for i in mixed.items) and sum(mixed.repeats) == 3
    disc = rec.for_history(hist, n=10)
    assert not set(disc.items) & set(hist) and not any(disc.repeats)
    assert rec.for_history([], n=3, mode="buy_again").items == ()


def test_diversity_keeps_buy_again_within_history(rec):
    r = rec.recommend("u1", n=3, mode="buy_again", diversity=0.5)
    assert set(r.items) <= _seen(rec, "u1") and all(r.repeats)


def test_pipeline_repeats_and_models_without_vectors(clustered):
    model = Popularity().fit(clustered)
    pipe = Pipeline(model)
    users = np.arange(4)
    items, _ = pipe.users(users, pipe.request(5, mode="buy_again"))
    flags = pipe.repeats(items, users=users)
    assert (flags == (items >= 0)).all()
    items, _ = pipe.users(users, pipe.request(5, mode="discover"))
    assert not pipe.repeats(items, users=users).any()


def test_buy_again_deeper_than_the_history_pads(clustered):
    from recogan.serving import recommend

    model = Popularity().fit(clustered)
    users = np.arange(6)
    items, scores = recommend(model, users, n=model.n_items_, mode="buy_again")
    assert items.shape == (6, model.n_items_)
    n_seen = np.diff(model.seen_.indptr)[users]
    assert ((items >= 0).sum(1) == n_seen).all() and np.isneginf(scores[items < 0]).all()
    seen = model.seen_[users].toarray() > 0
    rows = np.arange(6)[:, None]
    assert seen[rows, np.maximum(items, 0)][items >= 0].all()
