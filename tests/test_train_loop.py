"""The device-resident training loop: its pieces give what the plain computations give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recogan.data import Dataset
from recogan.features import DAY, decay_weights
from recogan.fitting import DEFAULT_SCORER
from recogan.gan._loop import (
    DevicePairs,
    _same_or_seen,
    _SeenSoftmax,
    sample_columns,
    sampled_negatives,
)
from recogan.gan.config import TrainConfig
from recogan.gan.model import GANRecommender
from recogan.gan.networks import pop_prior
from recogan.gan.pairs import TrainingPairs, WindowPopularity
from tests.fast_gan import FAST


def _baskets(seed: int = 0, users: int = 40, items: int = 30) -> Dataset:
    """Day-level baskets with repeats: several items per (user, day), some bought again."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        for day in np.sort(rng.choice(60, size=rng.integers(2, 7), replace=False)):
            for i in rng.choice(items, size=rng.integers(1, 5), replace=True):
                rows.append((f"u{u}", f"i{i}", int(day) * int(DAY)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Dataset.from_frames(frame, check_times=False)


@pytest.mark.parametrize("basket_context", [False, True])
@pytest.mark.parametrize("skip_repeats", [False, True])
def test_device_histories_equal_the_host_ones(basket_context, skip_repeats):
    d = _baskets()
    pairs = TrainingPairs(
        d, max_history=4, skip_repeats=skip_repeats, basket_context=basket_context
    )
    dev = DevicePairs(pairs, WindowPopularity(d, (0, 7)), "cpu", half_life_days=10.0)
    idx = np.arange(len(pairs))[::-1].copy()
    hist, ht = pairs.histories(idx)
    dh, age = dev.histories(torch.as_tensor(idx))
    np.testing.assert_array_equal(dh.numpy(), hist)
    valid = hist >= 0
    want = decay_weights((pairs.time[idx][:, None] - ht) / DAY, 10.0)
    np.testing.assert_allclose(dev.weights(age).numpy()[valid], want[valid], rtol=1e-6)
    assert len(dev) == len(pairs)


@pytest.mark.parametrize("basket_context", [False, True])
def test_lagged_histories_end_before_the_lag(basket_context):
    """A history cut ``lag`` seconds before the purchase holds the customer's latest
    ``max_history`` items bought before that time (with the basket's own items at lag 0),
    at least one; a zero lag changes nothing."""
    d = _baskets(seed=3)
    L = 4
    pairs = TrainingPairs(d, max_history=L, basket_context=basket_context)
    dev = DevicePairs(pairs, None, "cpu", half_life_days=None)
    idx = torch.arange(len(pairs))
    plain, _ = dev.histories(idx)
    zero, _ = dev.histories(idx, torch.zeros(len(pairs), dtype=torch.int64))
    torch.testing.assert_close(zero, plain)
    rng = np.random.default_rng(0)
    lag = rng.integers(0, 30, len(pairs)) * int(DAY)
    got, _ = dev.histories(idx, torch.as_tensor(lag))
    lagged = 0
    for k in range(len(pairs)):
        s, e = pairs.indptr[pairs.user[k]], pairs.indptr[pairs.user[k] + 1]
        t = pairs.times[s:e]
        side = "right" if basket_context else "left"
        cut = s + np.searchsorted(t, pairs.time[k] - lag[k], side=side)
        cut = max(min(cut, pairs.cut[k]), s + 1)
        lagged += cut < pairs.cut[k]
        want = pairs.items[max(s, cut - L) : cut]
        if basket_context:  # the target itself is never in its history
            want = want[want != pairs.target[k]]
            if cut == pairs.cut[k]:
                want = plain[k][plain[k] >= 0].numpy()  # the unlagged basket rule
        row = got[k].numpy()
        np.testing.assert_array_equal(row[row >= 0], want)
    assert lagged > len(pairs) // 4  # the lags did cut many histories


@pytest.mark.parametrize("by_day", [True, False])  # False: the GPU's path, without a sync
@pytest.mark.parametrize("n_days", [9, 3])  # 3: the batch's rows share days
def test_pop_prior_matches_the_dense_sum_and_its_gradient(n_days, by_day, monkeypatch):
    from recogan.gan import networks

    if not by_day:  # every row its own day, as on a GPU
        apply = networks._PopPriorByDay.apply
        monkeypatch.setattr(networks._PopPriorByDay, "apply", lambda *a: apply(*a[:4], False))
    rng = np.random.default_rng(0)
    W, N, B = 3, 11, 6
    table = torch.as_tensor(rng.random((W, n_days, N)), dtype=torch.float32)
    days = torch.as_tensor(rng.integers(0, n_days, B))
    items = torch.as_tensor(rng.integers(0, N, 5))
    for cols in (None, items):
        width = N if cols is None else len(cols)
        alpha = torch.tensor([0.3, -0.2, 0.7], requires_grad=True)
        base = torch.as_tensor(rng.standard_normal(width), dtype=torch.float32)
        base.requires_grad_(True)
        got = pop_prior(alpha, table, days, cols, base=base)
        dense = table[:, days]  # (W, B, N)
        dense = dense if cols is None else dense[:, :, cols]
        want_alpha = alpha.detach().clone().requires_grad_(True)
        want_base = base.detach().clone().requires_grad_(True)
        want = (want_alpha[:, None, None] * dense).sum(0) + want_base
        torch.testing.assert_close(got, want)
        g = torch.as_tensor(rng.standard_normal(tuple(want.shape)), dtype=torch.float32)
        (got * g).sum().backward()
        (want * g).sum().backward()
        torch.testing.assert_close(alpha.grad, want_alpha.grad)
        torch.testing.assert_close(base.grad, want_base.grad)


@pytest.mark.parametrize("K", [1, 3])
def test_full_softmax_equals_the_masked_log_softmax_and_its_gradient(K):
    """The fused full softmax: the masked log-softmax at the target, its gradient, and hard
    negatives (from every K-th row) that are neither the target nor a seen item."""
    rng = np.random.default_rng(2)
    R, N, L = 6 * K, 150, 7
    logits = torch.as_tensor(3 * rng.standard_normal((R, N)), dtype=torch.float32)
    target = torch.as_tensor(rng.integers(0, N, R))
    hist = torch.as_tensor(rng.integers(-1, N, (R, L)))
    hist[0, 2] = target[0]  # a target in its own history stays a candidate
    rows = torch.arange(R)
    seen = torch.zeros(R, N, dtype=torch.bool)
    seen.scatter_(1, hist.clamp(min=0), hist >= 0)
    seen[rows, target] = False
    want_in = logits.clone().requires_grad_(True)
    want = want_in.masked_fill(seen, -1e9).log_softmax(-1)[rows, target]
    got_in = logits.clone().requires_grad_(True)
    gen = torch.Generator().manual_seed(0)
    got, hard = _SeenSoftmax.apply(got_in * 1.0, target, hist, 40, K, gen)
    torch.testing.assert_close(got, want)
    g = torch.as_tensor(rng.standard_normal(R), dtype=torch.float32)
    (want * g).sum().backward()
    (got * g).sum().backward()
    torch.testing.assert_close(got_in.grad, want_in.grad)
    assert hard.shape == (R // K, 40)
    first = rows[::K]
    assert not (hard == target[first, None]).any()
    assert not seen[first[:, None], hard].any()
    _, none = _SeenSoftmax.apply(logits.clone(), target, hist, 0, K, gen)
    assert none.numel() == 0


def test_the_discriminator_attention_for_its_own_step_matches_autograd():
    """With only the temperature taking a gradient (D's step: detached items and history)
    the attention gives the plain formula's context, best similarity and temperature
    gradient, empty histories included."""
    from recogan.gan.networks import attend

    rng = np.random.default_rng(4)
    B, C, L, d = 7, 5, 6, 4
    h = torch.as_tensor(rng.standard_normal((B, L, d)))
    f = torch.as_tensor(rng.standard_normal((B, C, d)))
    valid = torch.as_tensor(rng.random((B, L)) > 0.4)
    valid[0], valid[1] = False, True  # an empty history, a full one
    g = torch.as_tensor(rng.standard_normal((B, C, d)))

    def plain(tau):
        sim = f @ h.transpose(1, 2)
        v = valid.unsqueeze(1)
        att = (tau * sim).masked_fill(~v, -1e9).softmax(-1) * v.any(-1, keepdim=True)
        return att @ h, sim.masked_fill(~v, -1.0).max(-1, keepdim=True).values

    results = []
    for fn in (plain, lambda tau: attend(f, h, valid, tau)):
        tau = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
        ctx, best = fn(tau)
        (ctx * g).sum().backward()
        results.append((ctx.detach(), best, tau.grad))
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want)
    assert results[1][0][0].abs().max() == 0  # no history, no context


def test_column_sampling_follows_the_weights():
    """The blockwise draw has multinomial's distribution: frequencies against the weights
    (chi-square), columns of weight 0 never drawn, a last block shorter than the rest."""
    rng = np.random.default_rng(3)
    w = torch.as_tensor(rng.random((3, 150)) ** 4, dtype=torch.float32)  # 150: 2 blocks + 22
    w[:, 5] = 0.0
    w[1, 100:] = 0.0  # whole blocks without weight
    w[2, :128] = 0.0  # only the short last block
    gen = torch.Generator().manual_seed(0)
    n = 200_000
    draws = sample_columns(w.repeat_interleave(n // 500, 0), 500, gen)  # (3 * 400, 500)
    for r in range(3):
        got = np.bincount(draws[r * (n // 500) : (r + 1) * (n // 500)].ravel(), minlength=150)
        p = (w[r] / w[r].sum()).numpy().astype(np.float64)
        assert got[p == 0].sum() == 0
        pos = p > 0
        chi2 = ((got[pos] - n * p[pos]) ** 2 / (n * p[pos])).sum()
        dof = (p > 0).sum() - 1
        assert chi2 < dof + 5 * np.sqrt(2 * dof), (r, chi2, dof)


def test_sampled_softmax_masks_targets_and_seen_items():
    rng = np.random.default_rng(1)
    N, B, L = 25, 7, 4
    target = torch.as_tensor(rng.integers(0, N, B))
    cand = torch.cat([target, torch.as_tensor(rng.integers(0, N, 9))])
    hist = torch.as_tensor(rng.integers(-1, N, (B, L)))
    got = _same_or_seen(cand, hist, B, N).numpy()
    for b in range(B):
        seen = set(hist[b][hist[b] >= 0].tolist()) | {int(target[b])}
        np.testing.assert_array_equal(got[b], [int(c) in seen for c in cand])


def test_softmax_choice_follows_the_catalogue_size():
    assert sampled_negatives(TrainConfig(), 1000) == 0
    assert sampled_negatives(TrainConfig(), 10**6) > 0
    assert sampled_negatives(TrainConfig(n_sampled=64), 10) == 64
    assert sampled_negatives(TrainConfig(n_sampled=0), 10**6) == 0
    with pytest.raises(ValueError, match="n_sampled"):
        sampled_negatives(TrainConfig(n_sampled=-1), 10)


@pytest.mark.parametrize(
    "extra", [{}, {"n_sampled": 16}, {"pair_half_life_days": 5.0}, {"adv_share": 0.25}]
)
def test_training_is_seeded_and_learns(clustered_split, extra):
    """Same seed, same model; the sampled softmax and weighted pair draws train too."""
    train, test = clustered_split.train, clustered_split.test
    a = GANRecommender(**{**FAST, **extra}).fit(train)
    b = GANRecommender(**{**FAST, **extra}).fit(train)
    users = np.unique(test.user_idx)
    np.testing.assert_array_equal(a.recommend(users, 10)[0], b.recommend(users, 10)[0])
    losses = [r["ret"] for r in a.history_]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


@pytest.mark.parametrize("extra", [{}, {"n_sampled": 16}])
def test_the_adversarial_step_uses_its_share_of_each_batch(clustered_split, monkeypatch, extra):
    from recogan.gan import _loop
    from recogan.gan.networks import Discriminator

    rows = {"D": [], "hard": []}
    forward, draw = Discriminator.forward, _loop.sample_columns

    def d_spy(self, b, f, *args):
        if torch.is_grad_enabled():  # training, not the re-rank
            rows["D"].append(len(b))
        return forward(self, b, f, *args)

    def draw_spy(w, k, gen, block=64):
        rows["hard"].append(len(w))
        return draw(w, k, gen, block)

    monkeypatch.setattr(Discriminator, "forward", d_spy)
    monkeypatch.setattr(_loop, "sample_columns", draw_spy)
    GANRecommender(**{**FAST, **extra, "epochs": 1}, adv_share=0.25).fit(clustered_split.train)
    B = FAST["batch_size"]
    assert max(rows["D"]) == B // 4 and len(set(rows["D"])) <= 2  # the last batch is short
    # D's step and G's pass through D, each on the batch's first quarter, which alone gets
    # hard negatives
    assert rows["D"][::2] == rows["D"][1::2] == rows["hard"]
    with pytest.raises(ValueError, match="adv_share"):
        GANRecommender(**FAST, adv_share=0.0).fit(clustered_split.train)


def test_generated_vectors_are_measured_per_epoch_and_on_new_data(clustered_split):
    split = clustered_split
    m = GANRecommender(**FAST).fit(split.train, split.valid, scorer=DEFAULT_SCORER)
    q = m.generation_quality_
    assert list(q.index) == list(range(1, len(m.history_) + 1))
    for col in ("frechet", "precision", "recall", "draw_spread", "draw_coverage"):
        assert np.isfinite(q[col]).all(), col
    assert (q["draw_spread"] >= 0).all() and ((q[["precision", "recall"]] >= 0).all()).all()
    test = m.measure_generation(split.test, users=50, draws=4)
    assert test["users"] <= 50 and test["draws"] == 4
    # a generator that ignores its noise has no spread between draws
    m.config.noise_std = 0.0
    assert m.measure_generation(split.test, users=50, draws=4)["draw_spread"] < 1e-6


@pytest.mark.parametrize("extra", [{}, {"n_sampled": 16}])
def test_several_training_draws_train_a_generator_whose_draws_differ(clustered_split, extra):
    split = clustered_split
    m = GANRecommender(**{**FAST, **extra}, train_draws=3).fit(split.train)
    assert np.isfinite([r["ret"] for r in m.history_]).all()
    assert m.measure_generation(split.test, users=50, draws=4)["draw_spread"] > 1e-4
    with pytest.raises(ValueError, match="train_draws"):
        GANRecommender(**FAST, train_draws=0).fit(split.train)


def test_mixture_loss_is_the_cross_entropy_for_one_draw_and_rewards_one_good_draw():
    from recogan.gan._loop import _mixture_nll

    lp = torch.log(torch.tensor([0.5, 0.25]))
    torch.testing.assert_close(_mixture_nll(lp, 2, 1), -lp.mean())
    # one of two draws near the target is as good as both half-near
    one = torch.log(torch.tensor([0.8, 1e-9]))
    both = torch.log(torch.tensor([0.4, 0.4]))
    torch.testing.assert_close(_mixture_nll(one, 1, 2), _mixture_nll(both, 1, 2))


@pytest.mark.parametrize("name, values", [("d_weight", (0.5, 4.0)), ("prior_weight", (0.25, 50.0))])
def test_recommend_time_settings_are_chosen_on_validation(clustered_split, name, values):
    split = clustered_split
    m = GANRecommender(**FAST, **{f"{name}s": values}).fit(
        split.train, split.valid, scorer=DEFAULT_SCORER
    )
    scores = getattr(m, f"{name}_scores_")
    default = float(getattr(GANRecommender.Config(), name))
    assert set(scores) == {default, *values}
    best = max(scores, key=scores.get)
    if scores[best] > scores[default] * (1 + m.KNOB_MARGIN):
        assert getattr(m.config, name) == best
    else:
        assert getattr(m.config, name) == default
    assert m.refit_params()[name] == getattr(m.config, name)
    # the scores are the model's validation scores at those settings, with the settings
    # chosen after this one (noise draws, then the re-rank) at their configured values
    chosen = {k: getattr(m.config, k) for k in ("n_draws", "merge", "d_weight", name)}
    later = () if name == "d_weight" else ("n_draws", "merge", "d_weight")
    m.set_recommend_params(**{k: getattr(GANRecommender.Config(), k) for k in later})
    for v in values:
        m.set_recommend_params(**{name: v})
        assert m.validation_score(split.valid) == pytest.approx(scores[v])
    m.set_recommend_params(**chosen)
    # without a validation split nothing is chosen
    assert getattr(GANRecommender(**FAST).fit(split.train), f"{name}_scores_") == {}


def test_noise_draws_and_their_merge_are_chosen_on_validation(clustered_split):
    split = clustered_split
    kw = dict(train_draws=2, draw_choices=(3,), merge_choices=("max", "rrf"), d_weights=())
    m = GANRecommender(**FAST, **kw).fit(split.train, split.valid, scorer=DEFAULT_SCORER)
    scores = m.draw_scores_
    assert set(scores) == {(1, "max"), (3, "max"), (3, "rrf")}
    best = max(scores, key=scores.get)
    chosen = (m.config.n_draws, m.config.merge)
    assert chosen == (best if scores[best] > scores[1, "max"] * (1 + m.KNOB_MARGIN) else (1, "max"))
    assert (m.refit_params()["n_draws"], m.refit_params()["merge"]) == chosen
    for S, merge in scores:  # the model's validation scores at those settings
        m.set_recommend_params(n_draws=S, merge=merge)
        assert m.validation_score(split.valid) == pytest.approx(scores[S, merge])
    assert GANRecommender(**FAST, **kw).fit(split.train).draw_scores_ == {}
    for bad in ({"merge_choices": ("best",)}, {"draw_choices": (0,)}):
        with pytest.raises(ValueError, match="merge_choices|draw_choices"):
            GANRecommender(**bad)


def test_a_prior_weight_that_wins_on_validation_is_kept(clustered_split, monkeypatch):
    """The choice follows the validation scores: rig them so that 4 wins by more than the
    margin, and that it then wins by less than the margin."""
    split = clustered_split
    for gain, expected in ((1.5, 4.0), (1.005, 1.0)):

        def rigged(self, valid, gain=gain):
            return gain if self.config.prior_weight == 4.0 else 1.0

        monkeypatch.setattr(GANRecommender, "validation_score", rigged)
        m = GANRecommender(**FAST, prior_weights=(2.0, 4.0), d_weights=()).fit(
            split.train, split.valid, scorer=DEFAULT_SCORER
        )
        assert m.config.prior_weight == expected
        assert m.prior_weight_scores_ == {1.0: 1.0, 2.0: 1.0, 4.0: gain}


def test_gan_diversity_leans_less_on_the_best_sellers(clustered_split):
    from recogan.diversity import with_diversity

    split = clustered_split
    m = GANRecommender(**FAST).fit(split.train)
    users = np.unique(split.test.user_idx)
    plain = m.recommend(users, 10)[0]
    wide = with_diversity(m, 0.9).recommend(users, 10)[0]
    assert m.config.diversity == 0.0  # the model itself is unchanged
    np.testing.assert_array_equal(with_diversity(m, 0.0).recommend(users, 10)[0], plain)
    sold = np.asarray(m.seen_.sum(0)).ravel()  # the lists lean less on the best sellers
    assert sold[wide].mean() < sold[plain].mean()
    with pytest.raises(ValueError, match="diversity"):
        GANRecommender(**FAST, diversity=1.5)


def test_the_mixed_precision_scores_path_computes_the_same_scores(clustered):
    """The CUDA bfloat16 path's arithmetic (product, then the prior in float32), run on the
    CPU where autocast leaves float32 alone: the same scores as the fused product."""
    from recogan.gan._loop import _Epochs
    from recogan.gan.config import GANConfig

    m = GANRecommender(**FAST)
    m.n_users_, m.n_items_ = clustered.n_users, clustered.n_items
    m.train_end_ = int(clustered.times.max())
    m.device_ = "cpu"
    pairs, pop = m._prepare(clustered)
    m._build(m.config.part(GANConfig))
    ep = _Epochs(m.nets_, pairs, pop, m.config.part(TrainConfig), 30.0, 0, "cpu")
    idx = torch.arange(8)
    f = torch.nn.functional.normalize(torch.randn(8, m.F_.shape[1]), dim=-1)
    E, days = m.nets_.tower.vectors(), ep.data.day[idx]
    fused = ep._scores(f, E, m.nets_.tower.bias, days, None)
    ep.amp = True
    torch.testing.assert_close(ep._scores(f, E, m.nets_.tower.bias, days, None), fused)
