"""The GAN recommender: contract, planted structure, determinism, leakage, bad inputs."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from recogan.artifacts import save_model
from recogan.fitting import DEFAULT_SCORER
from recogan.gan.model import GANRecommender
from recogan.testing import ModelContract
from tests.fast_gan import FAST


class TestGANContract(ModelContract):
    def make_model(self):
        return GANRecommender(**FAST)


@pytest.mark.slow
class TestGANWithRerankAndDraws(ModelContract):
    """The same contract with S = 4 noise draws, rank fusion and the discriminator re-rank."""

    def make_model(self):
        return GANRecommender(**FAST, n_draws=4, merge="rrf", d_weight=0.5, rerank_depth=20)


# ---------------------------------------------------------------------- training pairs
def test_training_pairs_never_contain_their_target(clustered):
    from recogan.gan.pairs import TrainingPairs

    pairs = TrainingPairs(clustered, max_history=8, skip_repeats=False)
    idx = np.arange(len(pairs))
    hist, ht = pairs.histories(idx)
    valid = hist >= 0
    # every condition event is strictly earlier than the target event
    assert (ht[valid] < np.repeat(pairs.time, valid.sum(1))).all()
    # and each history belongs to the pair's own user
    X = clustered.csr(binary=True)
    rows = np.repeat(pairs.user, valid.sum(1))
    assert (np.asarray(X[rows, hist[valid]]).ravel() > 0).all()
    assert valid.any(1).all()  # min_history=1: no empty conditions


def test_same_basket_items_are_not_in_each_others_condition():
    from recogan.data import Dataset
    from recogan.gan.pairs import TrainingPairs

    frame = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "a"],
            "item_id": [1, 2, 3, 4],
            "timestamp": [10, 20, 20, 30],  # items 2 and 3 in one basket
        }
    )
    d = Dataset.from_frames(frame, check_times=False)  # relative times
    pairs = TrainingPairs(d, max_history=5)
    hist, _ = pairs.histories(np.arange(len(pairs)))
    ids = d.items.ids
    by_target = {ids[t]: sorted(ids[h[h >= 0]]) for t, h in zip(pairs.target, hist)}
    assert by_target == {2: [1], 3: [1], 4: [1, 2, 3]}


def test_skip_repeats_drops_rebought_targets():
    from recogan.data import Dataset
    from recogan.gan.pairs import TrainingPairs

    frame = pd.DataFrame({"user_id": ["a"] * 4, "item_id": [1, 2, 1, 3], "timestamp": [1, 2, 3, 4]})
    d = Dataset.from_frames(frame, check_times=False)  # relative times
    kept = TrainingPairs(d, max_history=5, skip_repeats=True)
    assert sorted(d.items.ids[kept.target]) == [2, 3]
    every = TrainingPairs(d, max_history=5, skip_repeats=False)
    assert sorted(d.items.ids[every.target]) == [1, 2, 3]


def test_window_popularity_excludes_the_pairs_own_day():
    from recogan.data import Dataset
    from recogan.gan.pairs import WindowPopularity

    day = 86400
    frame = pd.DataFrame(
        {"user_id": ["a", "b", "c"], "item_id": [1, 1, 2], "timestamp": [0, day, 5 * day]}
    )
    d = Dataset.from_frames(frame, check_times=False)  # relative times
    pop = WindowPopularity(d, [2, 10])
    i1 = d.items.lookup(np.array([1]))[0]
    lp = pop.logpop(np.array([day + 10]))[0]  # (W, N)
    assert lp[0, i1] == pytest.approx(np.log1p(1))  # day 0 counts, day 1 (its own) does not
    assert pop.after(5 * day)[0, i1] == 0.0  # outside the 2-day window at the end
    assert pop.after(5 * day)[1, i1] == pytest.approx(np.log1p(2))  # inside the 10-day one


# ---------------------------------------------------------------------- behaviour
def test_learns_planted_structure_hit_rate(clustered_split):
    from recogan.evaluate import evaluate_model, mean_metrics

    model = GANRecommender(**FAST).fit(clustered_split.train)
    hr = mean_metrics(evaluate_model(model, clustered_split.test))["HR@10"]
    # random ranking: ~10 / 60 unseen items; a model of the groups does far better
    assert hr > 0.55


def test_deterministic_mode_and_seeded_draws(clustered_split):
    model = GANRecommender(**FAST, n_draws=1).fit(clustered_split.train)
    users = np.arange(40)
    a = model.recommend(users, n=10)
    b = model.recommend(users, n=10)
    np.testing.assert_array_equal(a[0], b[0])
    # with noise draws: a user's list does not depend on the batch it is scored in
    model.config.n_draws = 8
    full, fs = model.recommend(users, n=10)
    parts = [model.recommend(users[i : i + 7], n=10) for i in range(0, len(users), 7)]
    np.testing.assert_array_equal(full, np.vstack([p[0] for p in parts]))
    np.testing.assert_allclose(fs, np.vstack([p[1] for p in parts]), rtol=1e-5)
    # and the draws change something (noise is not ignored)
    model.config.n_draws, model.config.merge = 8, "rrf"
    assert not np.array_equal(model.recommend(users, n=10)[0], a[0])


def test_save_load_with_rerank(clustered_split, tmp_path):
    from recogan.artifacts import load_model

    model = GANRecommender(**FAST, n_draws=3, d_weight=1.0).fit(clustered_split.train)
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    users = np.arange(model.n_users_)
    np.testing.assert_array_equal(model.recommend(users, 10)[0], loaded.recommend(users, 10)[0])
    assert loaded.item_vectors().shape == model.item_vectors().shape


def test_ablation_switches(clustered_split):
    adv_only = GANRecommender(**FAST, retrieval=False).fit(clustered_split.train)
    ret_only = GANRecommender(**FAST, adversarial=False).fit(clustered_split.train)
    # the switch changes what is trained: only the adversarial model has a G loss from D
    assert all(r["g_adv"] > 0 for r in adv_only.history_)
    assert all(r["g_adv"] == 0 and r["d"] == 0 for r in ret_only.history_)
    users = np.arange(20)
    items, _ = adv_only.recommend(users, n=5)
    assert (items >= 0).all()
    assert not np.array_equal(items, ret_only.recommend(users, n=5)[0])
    with pytest.raises(ValueError, match="at least one"):
        GANRecommender(**FAST, retrieval=False, adversarial=False).fit(clustered_split.train)


def test_new_item_gets_a_content_vector(clustered):
    from recogan.data import Dataset
    from recogan.features import ItemFeatures

    cat = clustered.catalog.assign(item_id=clustered.items.ids)
    extra = pd.DataFrame(
        {"item_id": ["new"], "title": ["garden item new"], "category": ["group0"], "price": [2.0]}
    )
    inter = clustered.interactions.assign(
        user_id=clustered.users.to_ids(clustered.user_idx),
        item_id=clustered.items.to_ids(clustered.item_idx),
        timestamp=clustered.times,
    )
    d = Dataset.from_frames(inter, pd.concat([cat, extra], ignore_index=True))
    F = ItemFeatures().fit(d).F_
    new = d.items.lookup(np.array(["new"]))[0]
    assert np.isclose(np.linalg.norm(F[new]), 1.0)
    # its nearest neighbours are in its own (content) group
    sims = F @ F[new]
    sims[new] = -np.inf
    top = d.items.ids[np.argsort(-sims)[:5]]
    assert sum(int(t[1:]) % 4 == 0 for t in top) >= 4


def test_behaviour_embedding_decays_with_time(clustered):
    from recogan.features import ItemFeatures

    feats = ItemFeatures(half_life_days=1.0).fit(clustered)
    day = 86400.0
    b = feats.behaviour([[0, 1]], times=[[0.0, 10 * day]], now=10 * day)[0]
    # ten half-lives old: item 0 barely counts
    assert b @ feats.F_[1] > 0.99
    flat = feats.behaviour([[0, 1]])[0]
    assert np.isclose(np.linalg.norm(flat), 1.0)
    assert np.allclose(feats.behaviour([[]]), 0.0)


# ---------------------------------------------------------------------- bad inputs
def test_bad_inputs(clustered_split):
    from recogan.features import ItemFeatures

    model = GANRecommender(**{**FAST, "epochs": 1}).fit(clustered_split.train)
    with pytest.raises(IndexError, match="out of range"):
        model.recommend(np.array([10**6]), n=3)
    with pytest.raises(ValueError, match="positive"):
        model.recommend(np.array([0]), n=-1)
    with pytest.raises(ValueError, match="catalog size"):
        model.recommend(np.array([0]), n=model.n_items_ + 5)
    with pytest.raises(IndexError, match="outside"):
        model.recommend_history([[0, model.n_items_]], n=3)
    F = np.ones((4, 3))
    F[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN/inf.*item 2, column 1"):
        ItemFeatures().set_matrix(F)
    with pytest.raises(ValueError, match="merge"):
        GANRecommender(merge="vote")
    with pytest.raises(TypeError, match="unknown parameter"):
        GANRecommender(n_drawz=3)
    with pytest.raises(ValueError, match="device"):
        GANRecommender(**{**FAST, "device": "tpu"}).fit(clustered_split.train)


def test_refit_params_and_prior_knob(clustered_split):
    model = GANRecommender(**FAST).fit(
        clustered_split.train, clustered_split.valid, scorer=DEFAULT_SCORER
    )
    assert 1 <= model.refit_params()["epochs"] <= FAST["epochs"]
    assert set(GANRecommender.search_space()) <= set(model.params())
    # a very large prior weight ranks (nearly) by the learned item prior alone (the repeat
    # head's gains for bought items off)
    model.set_recommend_params(prior_weight=1e6, repeat_weight=0.0, repeat_offset=0.0)
    items, _ = model.recommend(np.arange(5), n=5, exclude_seen=False)
    prior = model.item_index_[:, -1]
    assert (items == np.argsort(-prior, kind="stable")[:5]).all(axis=1).all()


@pytest.mark.slow
def test_early_stopping_scores_the_best_prior_weight(clustered_split):
    """With ``stop_prior_weights`` each epoch is judged at its best prior weight: the training
    itself is unchanged (same seed), so every epoch's score is >= the plain one, and equals
    the best of the single-weight runs' scores."""
    kw = {**FAST, "epochs": 2, "patience": 5, "prior_weights": ()}
    plain = GANRecommender(**kw, stop_prior_weights=()).fit(
        clustered_split.train, clustered_split.valid, scorer=DEFAULT_SCORER
    )
    big = GANRecommender(**kw, prior_weight=50.0, stop_prior_weights=()).fit(
        clustered_split.train, clustered_split.valid, scorer=DEFAULT_SCORER
    )
    both = GANRecommender(**kw, stop_prior_weights=(1.0, 50.0)).fit(
        clustered_split.train, clustered_split.valid, scorer=DEFAULT_SCORER
    )
    for p, b, s in zip(plain.history_, big.history_, both.history_):
        assert s["valid_ndcg"] == pytest.approx(max(p["valid_ndcg"], b["valid_ndcg"]))
    assert both.config.prior_weight == 1.0  # the knob is restored after scoring


# ---------------------------------------------------------------------- diversity
def _dense_scores(model, users):
    """Every unseen item's score for ``users``, ``(users, items)``, -inf where seen."""
    items, scores = model.recommend(users, n=model.n_items_)
    dense = np.full((len(users), model.n_items_), -np.inf)
    rows = np.repeat(np.arange(len(users)), items.shape[1])
    ok = items.ravel() >= 0
    dense[rows[ok], items.ravel()[ok]] = scores.ravel()[ok]
    return dense


def test_audience_thresholds_by_their_definition(clustered_split):
    model = GANRecommender(**FAST).fit(clustered_split.train)
    model.AUDIENCE_SHARE = 0.1  # all customers are sampled (fewer than AUDIENCE_USERS)
    users = np.flatnonzero((model.user_hist_ >= 0).any(1))
    dense = _dense_scores(model, users)  # -inf where bought
    k = int(np.ceil(0.1 * len(users)))
    expect = -np.sort(-dense, 0)[k - 1]  # each item's k-th best customer's score
    np.testing.assert_allclose(model.audience_thresholds(), expect, rtol=1e-4, atol=1e-5)
    model._audience_cache = {"lock": threading.Lock()}  # computed afresh
    model.AUDIENCE_SHARE = 0.001  # a share of under one customer: AUDIENCE_MIN of them
    expect = -np.sort(-dense, 0)[model.AUDIENCE_MIN - 1]
    np.testing.assert_allclose(model.audience_thresholds(), expect, rtol=1e-4, atol=1e-5)


def _audience_order(model, users, dense):
    """Each customer's unseen items in score order, those whose audience the customer is in
    first (the thresholds by their definition, over the sampled customers)."""
    known = dense[(model.user_hist_[users] >= 0).any(1)]
    k = max(int(np.ceil(model.AUDIENCE_SHARE * len(known))), model.AUDIENCE_MIN)
    member = dense >= -np.sort(-known, 0)[k - 1] - 1e-5
    key = np.where(member, dense, dense - 1e9)
    return np.argsort(-key, 1, kind="stable"), member


def test_diversity_gives_the_tail_of_each_list_to_the_customers_audiences(clustered_split):
    model = GANRecommender(**FAST).fit(clustered_split.train)
    model.AUDIENCE_SHARE = 0.1
    users = np.arange(model.n_users_)
    plain, plain_scores = model.recommend(users, n=10)
    dense = _dense_scores(model, users)
    order, member = _audience_order(model, users, dense)
    model.config.diversity = 0.3
    items, scores = model.recommend(users, n=10)
    np.testing.assert_array_equal(items[:, :7], plain[:, :7])  # the head is the model's
    np.testing.assert_array_equal(scores[:, :7], plain_scores[:, :7])
    for row, head, pen in zip(items, plain[:, :7], order):
        np.testing.assert_array_equal(row[7:], [i for i in pen if i not in head][:3])
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    rows = np.arange(len(users))[:, None]
    assert member[rows, items[:, 7:]].mean() > member[rows, plain[:, 7:]].mean()
    # exposure evens out over the catalogue
    shown = np.bincount(items.ravel(), minlength=model.n_items_)
    assert shown.std() < np.bincount(plain.ravel(), minlength=model.n_items_).std()
    model.config.diversity = 1.0  # no head: the audience order throughout
    whole, _ = model.recommend(users, n=10)
    np.testing.assert_array_equal(whole, order[:, :10])


def test_a_fractional_tail_gives_that_share_of_customers_one_more_position(clustered_split):
    model = GANRecommender(**FAST).fit(clustered_split.train)
    model.AUDIENCE_SHARE = 0.05
    users = np.arange(model.n_users_)
    plain, _ = model.recommend(users, n=10)
    order, _ = _audience_order(model, users, _dense_scores(model, users))
    model.config.diversity = 0.25  # 2.5 positions: 3 for half of the customers, 2 for the rest
    tails = model.diversity_slots(10, [(0, int(u)) for u in users])
    assert set(tails) == {2, 3} and 0.35 < (tails == 3).mean() < 0.65
    items, scores = model.recommend(users, n=10)
    for row, base, pen, t in zip(items, plain, order, tails):
        head = base[: 10 - t]
        np.testing.assert_array_equal(row, [*head, *[i for i in pen if i not in head][:t]])
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    # a customer's share does not depend on the batch, and the seed draws it
    np.testing.assert_array_equal(model.recommend(users[::-1][:50], n=10)[0], items[::-1][:50])
    model.config.seed += 1
    assert (model.diversity_slots(10, [(0, int(u)) for u in users]) != tails).any()


@pytest.mark.parametrize("d, n, low, high", [(0.0, 10, 0, 0), (0.05, 10, 0, 1), (0.3, 10, 3, 3),
                                             (0.25, 10, 2, 3), (0.3, 7, 2, 3), (0.5, 50, 25, 25),
                                             (1.0, 10, 10, 10)])  # fmt: skip
def test_diversity_slots_average_its_share(d, n, low, high):
    keys = [(0, u) for u in range(4000)] + [(1, 17 * u) for u in range(4000)]
    slots = GANRecommender(diversity=d).diversity_slots(n, keys)
    assert slots.min() == low and slots.max() == high
    assert abs(slots.mean() - d * n) < 0.03  # the fractional part is a share of customers


def test_splice_takes_each_segment_s_fresh_items_and_pads_at_the_end():
    from recogan.gan.tail import splice

    f32 = np.float32
    head = (
        np.array([[4, 2, 7, 1], [3, 5, -1, -1]]),
        np.array([[9, 8, 7, 6], [5, 4, -np.inf, -np.inf]], f32),
    )
    mid = (
        np.array([[7, 2, 4, 1], [5, 3, -1, -1]]),
        np.array([[9.5, 9, 8, 1], [4, 3, -np.inf, -np.inf]], f32),
    )
    tail = (
        np.array([[2, 9, 7, 0], [5, 3, -1, -1]]),
        np.array([[8.5, 8, 7.5, 1], [4, 5, -np.inf, -np.inf]], f32),
    )
    items, scores = splice([(*head, 2), (*mid, 1), (*tail, 1)])
    np.testing.assert_array_equal(items, [[4, 2, 7, 9], [3, 5, -1, -1]])
    np.testing.assert_array_equal(scores, np.array([[9, 8, 8, 8], [5, 4, -np.inf, -np.inf]], f32))
    items, _ = splice([(*tail, 4)])
    np.testing.assert_array_equal(items, tail[0])
    # a segment that comes short: the next one fills in, and padding stays at the end
    short = (np.array([[9, -1, -1, -1], [-1, -1, -1, -1]]),
             np.array([[7, -np.inf, -np.inf, -np.inf], [-np.inf] * 4], f32))  # fmt: skip
    items, scores = splice([(*head, 1), (*short, 2), (*tail, 0)])
    np.testing.assert_array_equal(items, [[4, 9, 2], [3, 5, -1]])
    np.testing.assert_array_equal(scores, np.array([[9, 7, 7], [5, 4, -np.inf]], f32))


def test_diversity_filters_each_draw_before_the_merge(clustered_split):
    model = GANRecommender(**FAST, diversity=0.5).fit(clustered_split.train)
    users = np.arange(model.n_users_)
    by_max = model.recommend(users, n=10)[0]
    model.config.merge = "rrf"  # one draw: the fused order is that draw's audience order
    np.testing.assert_array_equal(model.recommend(users, n=10)[0], by_max)
    model.config.n_draws = 4  # rank fusion scores, not retrieval scores
    _, scores = model.recommend(users, n=10)
    assert (scores > 0).all() and (scores <= 4 / 60).all()


# ---------------------------------------------------------------------- merging draws
def test_max_merge_equals_the_dense_merge(rng):
    from recogan._topk import topn
    from recogan.gan.ranking import _merge

    B, S, m, N = 6, 4, 12, 40
    ids = np.stack([[rng.permutation(N)[:m] for _ in range(S)] for _ in range(B)])
    ids[0, 1, -3:] = -1  # a draw that came up short
    sc = rng.standard_normal((B, S, m)).astype(np.float32)
    sc[ids < 0] = -np.inf
    dense = np.full((B, N), -np.inf, np.float32)
    rows = np.broadcast_to(np.arange(B)[:, None, None], ids.shape)
    np.maximum.at(dense, (rows[ids >= 0], ids[ids >= 0]), sc[ids >= 0])
    for k in (5, 30):
        items, scores = _merge(ids, sc, k, "max")
        expect_items, expect_scores = topn(dense, k)
        np.testing.assert_array_equal(items, expect_items)
        np.testing.assert_array_equal(scores, expect_scores)


@pytest.fixture(scope="module")
def drawn(clustered_split):
    return GANRecommender(**FAST, n_draws=4).fit(clustered_split.train)


@pytest.mark.parametrize("merge", ["max", "mean", "rrf"])
def test_a_users_list_does_not_depend_on_the_batch(drawn, merge):
    drawn.set_recommend_params(merge=merge)
    users = np.arange(60)
    together = drawn.recommend(users, n=10)[0]
    alone = np.vstack([drawn.recommend(users[i : i + 1], n=10)[0] for i in range(len(users))])
    np.testing.assert_array_equal(together, alone)


def _baskets():
    from recogan.data import Dataset

    day = 86400
    frame = pd.DataFrame(
        {
            "user_id": ["a"] * 6 + ["b"] * 3,
            "item_id": ["x", "y", "z", "y", "w", "v", "x", "y", "z"],
            "timestamp": 1_700_000_000 + day * np.array([1, 1, 1, 2, 2, 3, 5, 5, 5]),
        }
    )
    return Dataset.from_frames(frame)


def test_basket_context_pairs_hold_the_rest_of_the_basket():
    from recogan.gan.pairs import TrainingPairs

    d = _baskets()
    ix = {name: int(d.items.lookup(np.array([name]))[0]) for name in "xyzwv"}
    plain = TrainingPairs(d, max_history=3, skip_repeats=False)
    ctx = TrainingPairs(d, max_history=3, skip_repeats=False, basket_context=True)
    # a first basket gives no pair without its context, one pair per item with it
    assert len(plain) == 3 and len(ctx) == 9
    hist, _ = ctx.histories(np.arange(len(ctx)))
    for k in range(len(ctx)):
        h = set(hist[k][hist[k] >= 0].tolist())
        assert ctx.target[k] not in h  # never its own target
        if ctx.user[k] == d.users.lookup(np.array(["b"]))[0]:  # b's only basket: x, y, z
            assert h == {ix["x"], ix["y"], ix["z"]} - {ctx.target[k]}
    # the pair (a, w at day 2) sees day 1's basket and y, its basket mate
    (k,) = np.flatnonzero(ctx.target == ix["w"])
    assert ix["y"] in hist[k] and ix["z"] in hist[k]
    (k,) = np.flatnonzero(plain.target == ix["w"])
    assert ix["y"] in plain.histories(np.array([k]))[0][0]  # y of day 1 only


def test_all_time_popularity_window():
    from recogan.gan.pairs import WindowPopularity

    d = _baskets()
    pop = WindowPopularity(d, (0, 1))
    x = int(d.items.lookup(np.array(["x"]))[0])
    day = pop.day_of(np.array([d.times.max()]))  # day 5: x bought on days 1 and 5
    assert np.expm1(pop.table[day, 0, x]) == pytest.approx(1.0)  # all time before day 5
    assert np.expm1(pop.table[day, 1, x]) == pytest.approx(0.0)  # the day before: none
    assert np.expm1(pop.after(int(d.times.max()))[0, x]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="all time"):
        WindowPopularity(d, (-1,))


def test_dropout_drops_at_its_rate_and_keeps_the_expectation():
    """The CPU dropout's cheaper mask: the rate (p to 2**-16), the unchanged expectation, the
    gradient through the same mask, the identity in eval mode, and seeded by torch's seed."""
    import torch

    from recogan.gan.networks import Dropout

    drop = Dropout(0.1).train()
    x = torch.ones(1000, 999, requires_grad=True)  # an odd size: not a multiple of 4 bits
    torch.manual_seed(0)
    y = drop(x)
    rate = (y == 0).float().mean().item()
    assert abs(rate - 0.1) < 0.002
    assert abs(y.mean().item() - 1.0) < 0.005
    kept = y[y != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 65536 / (65536 - 6554)))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())
    torch.manual_seed(0)
    torch.testing.assert_close(drop(x), y)
    assert torch.equal(drop.eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
