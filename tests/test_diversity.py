"""The diversity knob: MMR re-ranking on constructed cases, identity at 0, the serving
pipeline's plumbing (filters, exclusions, withdrawn products), the model's own mechanism."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from recogan import diversity as div
from recogan import serving
from recogan._similarity import CoPurchase, ItemSimilarity, VectorSimilarity
from recogan.artifacts import save_model
from recogan.baselines import EASE
from recogan.baselines._ease import EASEConfig
from recogan.evaluate import intra_list_diversity
from recogan.recommender import Recommender
from tests.vector_model import VectorModel


def vec_sim(V):
    return VectorSimilarity(np.asarray(V, np.float32), "cpu", {})


def naive_mmr(items, scores, n, d, S):
    """MMR for one list, written out as in Carbonell & Goldstein (the reference)."""
    ok = [(i, s) for i, s in zip(items, scores) if i >= 0 and np.isfinite(s)]
    if not ok:
        return []
    lo, hi = min(s for _, s in ok), max(s for _, s in ok)
    rel = {i: (s - lo) / (hi - lo) if hi > lo else 1.0 for i, s in ok}
    picked, left = [], [i for i, _ in ok]
    while left and len(picked) < n:
        if not picked:
            best = max(left, key=lambda i: (rel[i], -left.index(i)))
        else:

            def gain(i):
                return (1 - d) * rel[i] - d * max(S[i, j] for j in picked)

            best = max(left, key=lambda i: (round(gain(i), 12), -left.index(i)))
        picked.append(best)
        left.remove(best)
    return picked


def test_mmr_hand_computed():
    # items 0 and 1 point the same way, item 2 is orthogonal to both
    sim = vec_sim([[1, 0], [1, 0.01], [0, 1]])
    items = np.array([[0, 1, 2]])
    scores = np.array([[3.0, 2.0, 1.0]], np.float32)
    out, s = div.mmr(items, scores, 3, 0.0, sim)
    assert out.tolist() == [[0, 1, 2]]
    # d = 0.5: item 1 gains 0.5*0.5 - 0.5*~1 < 0; item 2 gains 0.5*0 - 0.5*0 = 0
    out, s = div.mmr(items, scores, 3, 0.5, sim)
    assert out.tolist() == [[0, 2, 1]]
    assert s.tolist() == [[3.0, 1.0, 2.0]]  # the model's own scores of the picked items
    # d = 0.2: item 1 gains 0.8*0.5 - 0.2*~1 = 0.2 > item 2's 0: relevance still wins
    assert div.mmr(items, scores, 3, 0.2, sim)[0].tolist() == [[0, 1, 2]]


def test_mmr_matches_the_reference_and_rows_are_independent(rng):
    V = rng.standard_normal((40, 5))
    sim = vec_sim(V)
    S = sim.matrix(np.arange(40))
    B, M = 12, 25
    items = np.stack([rng.permutation(40)[:M] for _ in range(B)])
    scores = -np.sort(-rng.random((B, M)), axis=1).astype(np.float32)
    items[3, 20:] = -1  # padded rows
    scores[3, 20:] = -np.inf
    for d in (0.1, 0.3, 0.7, 1.0):
        out, _ = div.mmr(items, scores, 10, d, sim)
        for b in range(B):
            assert out[b].tolist() == naive_mmr(items[b], scores[b], 10, d, S), (d, b)
        # a row's list does not depend on the other rows of the batch
        one, _ = div.mmr(items[5:6], scores[5:6], 10, d, sim)
        np.testing.assert_array_equal(one, out[5:6])


def test_mmr_keeps_padding_at_the_end():
    sim = vec_sim(np.eye(4))
    items = np.array([[2, 0, -1, -1], [-1, -1, -1, -1]])
    scores = np.array([[1.0, 0.5, -np.inf, -np.inf], [-np.inf] * 4], np.float32)
    out, s = div.mmr(items, scores, 3, 0.5, sim)
    assert out.tolist() == [[2, 0, -1], [-1, -1, -1]]
    assert np.isneginf(s[0, 2]) and np.isneginf(s[1]).all()
    assert out.dtype == np.int64 and s.dtype == np.float32


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), float("inf")])
def test_bad_diversity_is_refused(bad):
    with pytest.raises(ValueError, match=r"diversity must be in \[0, 1\]"):
        div.check_diversity(bad)


@pytest.mark.parametrize("bad", ["0.3", None, True])
def test_diversity_must_be_a_number(bad):
    with pytest.raises(TypeError, match="diversity must be a number"):
        div.check_diversity(bad)


def test_pairs_agree_with_the_similarity_matrix(clustered, rng):
    seen = clustered.csr(binary=True)
    for sim in (CoPurchase(seen), vec_sim(rng.standard_normal((clustered.n_items, 4)))):
        a = rng.integers(0, clustered.n_items, 7)
        b = rng.integers(0, clustered.n_items, (7, 9))
        full = sim.matrix(np.arange(clustered.n_items))
        np.testing.assert_allclose(sim.pairs(a, b), full[a[:, None], b], atol=1e-6)


def test_candidate_depth():
    assert div.candidate_depth(10, 1000) == 50
    assert div.candidate_depth(20, 1000) == 100
    assert div.candidate_depth(20, 80) == 80


@pytest.fixture(scope="module")
def ease(clustered_split):
    return EASE(lam=50.0).fit(clustered_split.train)


@pytest.fixture(scope="module")
def vector(clustered_split):
    return VectorModel(dim=6).fit(clustered_split.train)


def _ild(items, model):
    return np.nanmean(intra_list_diversity(items, ItemSimilarity.of(model, "cpu").matrix))


@pytest.mark.parametrize("which", ["ease", "vector"])
def test_more_diversity_more_varied_lists_less_score(which, request):
    model = request.getfixturevalue(which)
    users = np.arange(model.n_users_)
    base, base_s = model.recommend(users, 10)
    same, same_s = serving.recommend(model, users, 10, diversity=0.0)
    np.testing.assert_array_equal(same, base)
    np.testing.assert_array_equal(same_s, base_s)
    ild, score = [], []
    for d in (0.0, 0.3, 0.7):
        items, scores = serving.recommend(model, users, 10, diversity=d)
        assert items.shape == (len(users), 10) and (items >= 0).all()
        assert all(len(set(r)) == 10 for r in items)
        seen = model.seen_[users].toarray() > 0
        assert not seen[users[:, None], items].any()
        ild.append(_ild(items, model))
        score.append(scores.astype(np.float64).sum(1).mean())
    assert ild[0] < ild[1] < ild[2]
    assert score[0] > score[1] > score[2]  # the model's score is what is traded


def test_candidates_and_determinism(ease):
    users = np.arange(30)
    allowed = np.arange(0, 80, 3)
    a, _ = serving.recommend(ease, users, 5, diversity=0.5, candidates=allowed)
    b, _ = serving.recommend(ease, users, 5, diversity=0.5, candidates=allowed)
    assert np.isin(a, allowed).all()
    np.testing.assert_array_equal(a, b)
    few = np.array([3, 7])
    items, scores = serving.recommend(
        ease, [0], 4, diversity=0.5, exclude_seen=False, candidates=few
    )
    assert set(items[0, :2]) == {3, 7} and (items[0, 2:] == -1).all()
    assert np.isneginf(scores[0, 2:]).all()
    # one rule for n everywhere: lists hold up to n items, so n is capped at the catalogue
    items, _ = serving.recommend(ease, [0], 81, diversity=0.5, exclude_seen=False)
    assert items.shape == (1, 80) and sorted(items[0]) == list(range(80))


def test_diversified_view_scores_like_a_model(ease, clustered_split):
    from recogan.metrics import score

    view = serving.Diversified(ease, 0.4)
    frame, recs = score(view, clustered_split.test, (10,))
    plain, plain_recs = score(ease, clustered_split.test, (10,))
    assert list(frame["user"]) == list(plain["user"])
    assert (recs[:, 0] == plain_recs[:, 0]).all()  # MMR's first pick is the model's best
    assert (recs != plain_recs).any()
    h, _ = view.recommend_history([[0, 4, 8]], n=5)
    assert not np.isin(h, [0, 4, 8]).any()
    np.testing.assert_array_equal(
        serving.Diversified(ease, 0.0).recommend_history([[0, 4, 8]], n=5)[0],
        ease.recommend_history([[0, 4, 8]], n=5)[0],
    )


# ---------------------------------------------------------------------- the service API
@pytest.fixture(scope="module")
def rec(clustered):
    return Recommender(EASE(lam=50.0).fit(clustered), device="cpu")


def test_recommender_zero_is_identity(rec):
    users = list(rec.user_ids[:25])
    for u in users[:5]:
        assert rec.recommend(u, n=7, diversity=0.0) == rec.recommend(u, n=7)
    a = rec.recommend_many(users, n=7)
    b = rec.recommend_many(users, n=7, diversity=0)
    assert a.equals(b)
    assert rec.for_history(["i1", "i5"], n=6, diversity=0.0) == rec.for_history(["i1", "i5"], n=6)


def test_recommender_diversity_plumbing(rec):
    users = list(rec.user_ids[:40])
    many = rec.recommend_many(users, n=6, diversity=0.6)
    for u in users[:4]:
        one = rec.recommend(u, n=6, diversity=0.6)
        assert list(one.items) == list(many[many.user_id == u].item_id)
    assert many.groupby("user_id").size().eq(6).all()
    plain = rec.recommend_many(users, n=6)
    assert many.item_id.nunique() > plain.item_id.nunique()  # wider exposure
    # filters are applied before the re-ranking: every item allowed
    allowed = [f"i{k}" for k in range(0, 80, 2)]
    r = rec.recommend(users[0], n=5, filter=allowed, diversity=0.6)
    assert len(r) == 5 and set(r.items) <= set(allowed)
    r = rec.recommend(users[0], n=5, filter=lambda i: int(i[1:]) % 3 == 0, diversity=0.6)
    assert len(r) == 5 and all(int(i[1:]) % 3 == 0 for i in r.items)
    h = rec.for_history(["i1", "i5"], n=6, diversity=0.6)
    assert len(h) == 6 and not {"i1", "i5"} & set(h.items)
    with pytest.raises(ValueError, match="diversity"):
        rec.recommend(users[0], diversity=2.0)
    assert rec.recommend("nobody", n=3, diversity=0.5).fallback


def test_recommender_never_shows_withdrawn_with_diversity(clustered):
    rec = Recommender(EASE(lam=50.0).fit(clustered), device="cpu")
    u = rec.user_ids[0]
    top = list(rec.recommend(u, n=10, diversity=0.5).items)
    rec.remove_items(top[:4])
    after = rec.recommend_many(list(rec.user_ids[:30]), n=10, diversity=0.5)
    assert not set(after.item_id) & set(top[:4])
    assert after.groupby("user_id").size().eq(10).all()


# ---------------------------------------------------------------------- the model's own knob
@dataclass
class KnobConfig(EASEConfig):
    #: how far to flatten scores towards the popularity prior (0: plain EASE)
    spread: float = 0.0


class KnobEASE(EASE):
    """A model with its own diversity mechanism: blends in a deterministic per-item jitter."""

    name = "knob"
    Config = KnobConfig

    @classmethod
    def diversity_param(cls):
        return "spread"

    def score_users(self, user_idx):
        s = super().score_users(user_idx)
        jitter = np.sin(np.arange(self.n_items_) * 12.9898) % 1.0
        return (s + self.config.spread * jitter[None, :]).astype(np.float32)


def test_models_own_mechanism_is_used_and_the_model_is_untouched(clustered):
    model = KnobEASE(lam=50.0).fit(clustered)
    assert "spread" in model.recommend_params()
    users = np.arange(50)
    items, _ = serving.recommend(model, users, 10, diversity=0.9)
    direct = KnobEASE(lam=50.0, spread=0.9).fit(clustered).recommend(users, 10)[0]
    np.testing.assert_array_equal(items, direct)  # the knob, not MMR
    assert model.config.spread == 0.0
    rec = Recommender(model, device="cpu")
    r = rec.recommend(model.users_.ids[0], n=10, diversity=0.9)
    assert list(r.items) == list(model.items_.ids[direct[0]])
    assert model.config.spread == 0.0
    with pytest.raises(ValueError, match="no diversity setting"):
        div.with_diversity(EASE().fit(clustered), 0.5)


def test_predicate_filter_over_half_the_catalog(rec):
    # the predicate path over-fetches 2n, which must stay within the catalog
    r = rec.recommend(rec.user_ids[0], n=50, filter=lambda i: int(i[1:]) % 2 == 0)
    assert len(r) > 0 and all(int(i[1:]) % 2 == 0 for i in r.items)


# ---------------------------------------------------------------------- batch scoring
def test_batch_score_diversity(clustered, tmp_path, capsys):
    from recogan.artifacts import load_model
    from recogan.batch import batch_score, read_recommendations, read_success
    from recogan.catalog import remove_items
    from recogan.cli import main

    fast = {"show_progress": False, "workers": 1}
    bundle = tmp_path / "ease"
    save_model(EASE(lam=50.0).fit(clustered), bundle)
    plain = batch_score(bundle, tmp_path / "plain", n=6, **fast)
    zero = batch_score(bundle, tmp_path / "zero", n=6, diversity=0, **fast)
    assert zero.rows_sha256 == plain.rows_sha256  # 0: the model's ranking, byte for byte
    a = batch_score(bundle, tmp_path / "a", n=6, diversity=0.5, partition_size=30, **fast)
    batch_score(bundle, tmp_path / "b", n=6, diversity=0.5, partition_size=200, **fast)
    assert a.rows_sha256 != plain.rows_sha256
    pd.testing.assert_frame_equal(  # the same rows whatever the partitioning
        read_recommendations(tmp_path / "a"), read_recommendations(tmp_path / "b")
    )
    assert read_success(tmp_path / "a")["diversity"] == 0.5
    model = load_model(bundle)
    users = np.arange(model.n_users_)
    items, _ = serving.recommend(model, users, 6, diversity=0.5)
    got = read_recommendations(tmp_path / "a")
    assert list(got["item_id"]) == list(model.items_.to_ids(items.ravel()))
    # withdrawn products are dropped before the re-ranking, and the lists stay full
    gone = model.items_.ids[items[:, 1]][:3]
    remove_items(model, gone)
    save_model(model, bundle)
    c = batch_score(bundle, tmp_path / "c", n=6, diversity=0.5, **fast)
    got = read_recommendations(tmp_path / "c")
    assert c.rows == 6 * model.n_users_ and not set(got["item_id"]) & set(gone)
    args = ["batch-score", "--model", str(bundle), "--n", "6", "--no-progress", "--workers", "1"]
    assert main([*args, "--out", str(tmp_path / "cli"), "--diversity", "0.5"]) == 0
    assert read_success(tmp_path / "cli")["rows_sha256"] == c.rows_sha256
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "bad"), "--diversity", "1.5"]) == 1
    assert "diversity must be in [0, 1]" in capsys.readouterr().err
