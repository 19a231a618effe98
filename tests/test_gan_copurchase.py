"""The GAN's item-to-item path: co-purchase evidence in its re-rank, chosen on validation."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recogan._similarity import neighbour_matrix
from recogan.artifacts import load_model, save_model
from recogan.features import DAY, decay_weights
from recogan.gan.config import GANConfig
from recogan.gan.model import GANRecommender
from recogan.metrics import validation_ndcg
from tests.fast_gan import FAST


def test_neighbour_matrix_keeps_the_k_largest_cosines(rng):
    X = sp.csr_matrix((rng.random((40, 15)) < 0.3).astype(np.float32))
    S = neighbour_matrix(X, k=3, shrinkage=2.0, block_size=4).toarray()
    D = X.toarray().astype(np.float64)
    co = D.T @ D
    norms = np.sqrt(np.diag(co))
    full = co / (np.outer(norms, norms) + 2.0)
    np.fill_diagonal(full, 0.0)
    for i in range(15):
        kept = np.nonzero(S[i])[0]
        assert len(kept) == min(3, int((full[i] > 0).sum()))
        np.testing.assert_allclose(S[i, kept], full[i, kept], rtol=1e-6)
        # nothing left out is larger than what was kept
        assert np.delete(full[i], kept).max(initial=0) <= S[i, kept].min() + 1e-9


@pytest.fixture(scope="module")
def fitted(clustered_split):
    s = clustered_split
    return GANRecommender(**FAST, seed=0).fit(s.train, s.valid, scorer=validation_ndcg)


def _evidence(model, users):
    """Brute force: each user's decayed history times the co-purchase graph, dense."""
    graph = neighbour_matrix(
        model.seen_, model.config.copurchase_k, model.config.copurchase_shrinkage
    )
    hist, ht = model.user_hist_[users], model.user_hist_t_[users]
    w = decay_weights((model.train_end_ - ht) / DAY, model.config.half_life_days)
    E = np.zeros((len(users), model.n_items_))
    for b in range(len(users)):
        for item, weight in zip(hist[b], w[b]):
            if item >= 0:
                E[b] += weight * graph[item].toarray().ravel()
    return E


def test_knob_is_chosen_on_validation_with_none_included(fitted):
    scores = fitted.copurchase_scores_
    c = fitted.config
    tried = {0.0, *map(float, c.copurchase_weights)}
    assert tried <= set(scores)
    top = max(tried)  # more only by doubling a best at the top of the grid
    assert set(scores) - tried <= {top * 2**i for i in range(1, fitted.GROW_STEPS + 1)}
    best = max(scores, key=scores.get)
    expected = best if scores[best] > scores[0.0] * (1 + fitted.KNOB_MARGIN) else 0.0
    assert c.copurchase_weight == expected
    assert "copurchase_weight" in fitted.recommend_params()


def test_a_heavy_weight_ranks_the_candidates_by_co_purchase(fitted):
    m = fitted
    saved = m.config
    try:
        users = np.arange(0, m.n_users_, 7)
        # every unseen item a candidate, the evidence in charge
        m.set_recommend_params(copurchase_weight=1e6, d_weight=0.0, rerank_depth=m.n_items_)
        items, _ = m.recommend(users, n=3)
        E = _evidence(m, users)
        E[m.seen_[users].toarray() > 0] = -np.inf
        has = np.isfinite(E).any(1) & (E.max(1) > 0)
        assert has.sum() > 10
        np.testing.assert_allclose(
            E[np.arange(len(users)), items[:, 0]][has], E.max(1)[has], rtol=1e-4
        )
        # off again: the lists do not need the graph
        m.set_recommend_params(copurchase_weight=0.0)
        graph, m.copurchase_ = m.copurchase_, None
        try:
            off, _ = m.recommend(users, n=3)
        finally:
            m.copurchase_ = graph
        assert (off != items).any()
    finally:
        m.config = saved


def test_the_evidence_brings_its_own_candidates(fitted):
    m = fitted
    saved = m.config
    try:
        users = np.arange(0, m.n_users_, 7)
        E = _evidence(m, users)
        E[m.seen_[users].toarray() > 0] = -np.inf
        has = E.max(1) > 0
        rows = np.arange(len(users))
        # a search steered to unpopular items finds five candidates; the evidence adds its
        # best five, and the pool widens by five for them (one draw: all ten are re-ranked)
        m.set_recommend_params(
            copurchase_weight=1e6,
            d_weight=0.0,
            rerank_depth=5,
            n_draws=1,
            prior_weight=-1e3,
            copurchase_candidates=5,
        )
        items, _ = m.recommend(users, n=1)
        assert has.sum() > 10
        np.testing.assert_allclose(E[rows, items[:, 0]][has], E.max(1)[has], rtol=1e-4)
        m.set_recommend_params(copurchase_candidates=0)  # only the search's candidate
        alone, _ = m.recommend(users, n=1)
        assert (E[rows, alone[:, 0]][has] < E.max(1)[has] * (1 - 1e-3)).any()
        # an allow-list and the customer's own purchases hold for the added candidates too
        m.set_recommend_params(copurchase_candidates=5)
        allowed = np.arange(0, m.n_items_, 2)
        items, _ = m.recommend(users, n=3, candidates=allowed)
        assert np.isin(items[items >= 0], allowed).all()
        assert not m.seen_[users][rows[:, None], np.maximum(items, 0)].toarray()[items >= 0].any()
        hist = [list(m.user_hist_[3][m.user_hist_[3] >= 0])]
        listed, _ = m.recommend_history(hist, n=5)
        assert not np.isin(listed[0], hist[0]).any()
    finally:
        m.config = saved


def test_for_history_uses_the_evidence_too(fitted):
    m = fitted
    saved = m.config
    try:
        m.set_recommend_params(copurchase_weight=1e6, d_weight=0.0, rerank_depth=m.n_items_)
        hist = [list(m.user_hist_[3][m.user_hist_[3] >= 0])]
        items, _ = m.recommend_history(hist, n=1)
        E = np.asarray(
            (
                sp.csr_matrix(np.bincount(hist[0], minlength=m.n_items_)[None].astype(float))
                @ m.copurchase_
            ).todense()
        ).ravel()
        E[hist[0]] = -np.inf
        assert E[items[0, 0]] == pytest.approx(E.max(), rel=1e-4)
    finally:
        m.config = saved


def test_bundle_keeps_the_graph_and_old_bundles_say_what_is_missing(fitted, tmp_path):
    m = fitted
    saved = m.config
    try:
        m.set_recommend_params(copurchase_weight=2.0)
        users = np.arange(20)
        before = m.recommend(users, n=5)[0]
        save_model(m, tmp_path / "b")
        loaded = load_model(tmp_path / "b")
        np.testing.assert_array_equal(loaded.recommend(users, n=5)[0], before)
        assert (loaded.copurchase_ != m.copurchase_).nnz == 0
        arrays = {k: v for k, v in m.state_arrays().items() if not k.startswith("copurchase")}
        loaded.set_state_arrays(arrays)
        with pytest.raises(ValueError, match="co-purchase graph"):
            loaded.recommend(users, n=5)
        loaded.set_recommend_params(copurchase_weight=0.0)
        assert loaded.recommend(users, n=5)[0].shape == (20, 5)
    finally:
        m.config = saved


@pytest.mark.parametrize(
    "bad",
    [
        {"copurchase_weight": -1.0},
        {"copurchase_weights": (1.0, -2.0)},
        {"copurchase_k": 0},
        {"copurchase_candidates": -1},
    ],
)
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match="copurchase"):
        GANRecommender(**bad)


def test_a_weight_chosen_at_the_top_of_its_grid_grows():
    import dataclasses

    from recogan.gan.knobs import ValidationChoices

    @dataclasses.dataclass
    class Config:
        weight: float = 0.0
        epochs: int = 1

    class Knobs(ValidationChoices):
        def __init__(self, peak):
            self.config, self.peak = Config(), peak

        def validation_score(self, valid):
            return 1.0 / (1.0 + abs(self.config.weight - self.peak))

    class Valid:
        n_interactions = 1

    k = Knobs(peak=20.0)
    scores = k._choose_knob(Valid(), "weight", (1.0, 2.0, 4.0), grow=True)
    assert sorted(scores) == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert k.config.weight == 16.0
    k = Knobs(peak=20.0)
    assert sorted(k._choose_knob(Valid(), "weight", (1.0, 2.0, 4.0))) == [0.0, 1.0, 2.0, 4.0]
    assert k.config.weight == 4.0
    k = Knobs(peak=1.0)  # the best inside the grid: nothing more is tried
    assert sorted(k._choose_knob(Valid(), "weight", (1.0, 2.0, 4.0), grow=True)) == [
        0.0,
        1.0,
        2.0,
        4.0,
    ]


def test_the_adversarial_strength_is_chosen_on_validation_none_included(clustered_split):
    s = clustered_split
    m = GANRecommender(**FAST, seed=0, adv_weights=(0.0,)).fit(
        s.train, s.valid, scorer=validation_ndcg
    )
    scores = m.adversarial_scores_
    assert set(scores) == {0.0, 0.1}
    chosen = 0.1 if scores[0.1] > scores[0.0] else 0.0  # a tie goes to the weaker
    assert m.config.adv_weight == chosen and list(m.config.adv_weights) == []
    assert m.validation_score(s.valid) == pytest.approx(scores[chosen])
    if chosen == 0.0:
        assert m.config.d_weight == 0.0 and list(m.config.d_weights) == []
    # each candidate is the model that strength alone gives
    alone = GANRecommender(
        **FAST,
        seed=0,
        adv_weight=chosen,
        adv_weights=(),
        **({"d_weight": 0.0, "d_weights": ()} if chosen == 0 else {}),
    ).fit(s.train, s.valid, scorer=validation_ndcg)
    users = np.arange(30)
    np.testing.assert_array_equal(m.recommend(users, n=5)[0], alone.recommend(users, n=5)[0])
    # the refit trains the chosen strength once
    refit = m.refit_params()
    assert list(refit["adv_weights"]) == [] and refit["adv_weight"] == chosen
    assert any(line.startswith("adversarial strength") for line in m.validation_notes())


def test_strength_zero_never_steps_the_discriminator(clustered_split):
    s = clustered_split
    m = GANRecommender(**FAST, seed=0, adv_weight=0.0, adv_weights=(), d_weights=()).fit(
        s.train, s.valid, scorer=validation_ndcg
    )
    fresh = GANRecommender(**FAST, seed=0)
    fresh.F_ = m.F_
    fresh.device_ = "cpu"
    fresh._build(m.config.part(GANConfig))
    for a, b in zip(m.nets_.D.state_dict().values(), fresh.nets_.D.state_dict().values()):
        assert torch.equal(a, b)


def test_small_blocks_give_the_same_graph(rng, monkeypatch):
    import recogan._similarity as similarity

    X = sp.csr_matrix((rng.random((50, 30)) < 0.2).astype(np.float32))
    whole = neighbour_matrix(X, k=4, shrinkage=1.0)
    monkeypatch.setattr(similarity, "BLOCK_VALUES", 60)  # two rows of 30 per block
    assert (neighbour_matrix(X, k=4, shrinkage=1.0) != whole).nnz == 0


def test_no_graph_is_built_when_the_knob_is_off(clustered_split):
    s = clustered_split
    m = GANRecommender(**FAST, seed=0, copurchase_weights=()).fit(
        s.train, s.valid, scorer=validation_ndcg
    )
    assert m.copurchase_ is None and "copurchase_indptr" not in m.state_arrays()
    assert m.recommend(np.arange(5), n=3)[0].shape == (5, 3)
