"""The serving pipeline: one check of n, diversity and filters; one plan of the fetch depth;
the stages in order; one path for the service API, batch scoring and the array API."""

from __future__ import annotations

import numpy as np
import pytest

from recogan import catalog, serving
from recogan.artifacts import load_model, save_model
from recogan.baselines import EASE
from recogan.batch import batch_score, read_recommendations
from recogan.diversity import candidate_depth, mmr
from recogan.recommender import Recommender
from recogan.serving import Filter, Pipeline


@pytest.fixture(scope="module")
def ease(clustered):
    return EASE(lam=50.0).fit(clustered)


@pytest.fixture
def withdrawn(ease, tmp_path):
    """A copy of ``ease`` with its five most popular products withdrawn."""
    save_model(ease, tmp_path / "ease")
    model = load_model(tmp_path / "ease")
    top = np.argsort(-model.popularity_, kind="stable")[:5]
    catalog.remove_items(model, model.items_.to_ids(top))
    return model, top


# ---------------------------------------------------------------------- check
@pytest.mark.parametrize(
    "n,error",
    [(0, ValueError), (-3, ValueError), ("5", TypeError), (True, TypeError), (2.5, TypeError)],
)
def test_one_rule_for_n(n, error):
    with pytest.raises(error, match="n must be a positive int"):
        serving.check_n(n, 80)


def test_n_is_capped_at_the_catalogue(ease):
    pipe = Pipeline(ease)
    assert pipe.request(500).n == ease.n_items_ == 80
    assert pipe.request(np.int64(7)).n == 7
    items, _ = pipe.users([0], pipe.request(500, exclude_seen=False))
    assert items.shape == (1, 80) and sorted(items[0]) == list(range(80))


def test_the_request_is_checked_once(ease):
    pipe = Pipeline(ease)
    with pytest.raises(ValueError, match="diversity must be in"):
        pipe.request(5, diversity=1.5)
    with pytest.raises(TypeError, match="exclude_seen must be True or False"):
        pipe.request(5, exclude_seen="yes")
    with pytest.raises(IndexError, match="candidate item indices"):
        pipe.request(5, filter=Filter(np.array([0, 80])))


# ---------------------------------------------------------------------- plan
def test_the_plan(ease, withdrawn):
    pipe = Pipeline(ease)
    plain = pipe.plan(pipe.request(10))
    assert (plain.rerank, plain.fetch, plain.mmr, plain.own_diversity) == (10, 10, False, False)
    rr = pipe.plan(pipe.request(10, diversity=0.3))
    assert rr.mmr and rr.rerank == candidate_depth(10, 80) == 50 and rr.fetch == 50
    model, top = withdrawn
    gone = Pipeline(model).plan(Pipeline(model).request(10, diversity=0.3))
    assert gone.fetch == 50 + len(top) and gone.search >= gone.fetch


class Deep(EASE):
    """EASE that says it searches four times deeper than it is asked."""

    def search_depth(self, n):
        return 4 * n


def test_the_plan_asks_the_model_for_its_depth(clustered):
    pipe = Pipeline(Deep(lam=50.0).fit(clustered))
    assert pipe.plan(pipe.request(10)).search == 40
    assert pipe.plan(pipe.request(30)).search == 80  # at most the catalogue


# ---------------------------------------------------------------------- stages
def test_stages_filter_before_the_re_rank(withdrawn):
    model, top = withdrawn
    pipe = Pipeline(model)
    even = Filter(keep=lambda j: j % 2 == 0)
    users = np.arange(40)
    for d in (0.0, 0.5):
        items, scores = pipe.users(users, pipe.request(6, diversity=d, filter=even))
        assert items.shape == (40, 6) and (items >= 0).all()
        assert (items % 2 == 0).all() and not np.isin(items, top).any()
    # the re-rank chooses among the filtered lists: MMR of the plain filtered top 50
    request = pipe.request(6, diversity=0.5, filter=even)
    deep = pipe.filtered(lambda m, c: model.recommend(users, m, True, c), 50, even, len(users))
    expected = mmr(*deep, 6, 0.5, pipe.similarity())
    np.testing.assert_array_equal(pipe.users(users, request)[0], expected[0])


def test_an_allow_list_leaves_out_withdrawn_products(withdrawn):
    model, top = withdrawn
    pipe = Pipeline(model)
    allowed = np.concatenate([top, np.arange(40, 50)])
    items, _ = pipe.users([0, 1], pipe.request(8, exclude_seen=False, filter=Filter(allowed)))
    assert set(items[items >= 0].tolist()) <= set(range(40, 50))
    only_gone = pipe.request(3, filter=Filter(top))
    items, scores = pipe.users([0], only_gone)
    assert (items == -1).all() and np.isneginf(scores).all()


# ---------------------------------------------------------------------- one path
def test_one_path_for_every_interface(withdrawn, tmp_path):
    model, _ = withdrawn
    save_model(model, tmp_path / "b")
    rec = Recommender.load(tmp_path / "b", device="cpu")
    users = rec.user_ids[:60]
    for d in (0.0, 0.3):
        service = rec.recommend_many(users, n=5, diversity=d)
        batch_score(tmp_path / "b", tmp_path / f"o{d}", n=5, diversity=d, workers=1,
                    show_progress=False)  # fmt: skip
        rows = read_recommendations(tmp_path / f"o{d}")
        rows = rows[rows["user_id"].isin(users)].reset_index(drop=True)
        assert service["item_id"].tolist() == rows["item_id"].tolist()
        items, _ = serving.recommend(model, np.arange(60), 5, diversity=d)
        assert service["item_id"].tolist() == model.items_.to_ids(items.ravel()).tolist()
