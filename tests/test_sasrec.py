"""SASRec: the shared contract, and items of one basket never predicting each other."""

import numpy as np
import pandas as pd
import pytest

from recogan.baselines import SASRec
from recogan.baselines._sasrec import _build_net, basket_sources
from recogan.data import Dataset
from recogan.fitting import DEFAULT_SCORER
from recogan.testing import ModelContract

torch = pytest.importorskip("torch")


def small_sasrec(**kw):
    params = dict(hidden=16, blocks=1, max_len=12, lr=1e-2, batch_size=32, epochs=10)
    return SASRec(**{**params, **kw})


class TestSASRecContract(ModelContract):
    def make_model(self):
        return small_sasrec(device="cpu")


def test_basket_sources_planted():
    # left-padded: two pads, then baskets at t=10 (2 items), t=20 (1), t=30 (2)
    times = np.array([[0, 0, 10, 10, 20, 30, 30]])
    valid = np.array([[False, False, True, True, True, True, True]])
    src = basket_sources(times, valid)
    # the first basket predicts nothing; t=20 from the last of t=10 (position 3);
    # both items at t=30 from position 4 (t=20), never from each other
    np.testing.assert_array_equal(src, [[-1, -1, -1, -1, 3, 4, 4]])


def test_target_state_never_sees_its_basket():
    """The hidden state that predicts a target is unchanged whatever is bought at or after
    the target's time: no item sharing its timestamp (or later) reaches it."""
    torch.manual_seed(0)
    cfg = small_sasrec(max_len=8, blocks=2, dropout=0.0).config
    net = _build_net(20, cfg).eval()
    seq = np.array([[0, 3, 4, 5, 6, 7, 8, 9]])  # item index + 1
    times = np.array([[0, 1, 1, 2, 2, 2, 3, 3]])
    src = basket_sources(times, seq > 0)
    with torch.no_grad():
        h = net(torch.as_tensor(seq))[0]
        for q in np.flatnonzero(src[0] >= 0):
            p = src[0, q]
            changed = seq.copy()
            later = times[0] >= times[0, q]
            changed[0, later] = 20 - np.arange(later.sum())  # other items at and after t_q
            h2 = net(torch.as_tensor(changed))[0]
            assert times[0, p] < times[0, q]
            torch.testing.assert_close(h2[p], h[p])


def test_sequence_planted_next_basket():
    """Customers buy a basket {x, x+1} and later x+2 (x in 0, 3, 6, ...): after that basket
    the next item is known; the basket's own second item is not what is learned."""
    rows, t0 = [], 1_700_000_000
    rng = np.random.default_rng(0)
    for u in range(120):
        x = 3 * int(rng.integers(0, 6))
        rows += [(u, x, t0 + u), (u, x + 1, t0 + u), (u, x + 2, t0 + 1000 + u)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    data = Dataset.from_frames(frame)
    model = small_sasrec(epochs=40, max_len=4, dropout=0.0, device="cpu").fit(data)
    ids = data.items
    hist = [
        [int(ids.lookup(np.array([x]))[0]), int(ids.lookup(np.array([x + 1]))[0])]
        for x in (0, 3, 6)
    ]
    items, _ = model.recommend_history(hist, n=1, times=[[1, 1]] * 3)
    want = ids.lookup(np.array([2, 5, 8]))
    np.testing.assert_array_equal(items[:, 0], want)


def test_sampled_softmax_learns_and_auto_threshold(clustered_split):
    full = small_sasrec()
    full._remember(clustered_split.train)
    assert full._n_sampled() == 0  # 80 items: the full softmax
    tiny = small_sasrec(full_softmax_items=10)
    tiny._remember(clustered_split.train)
    assert tiny._n_sampled() > 0  # above the threshold: sampled
    model = small_sasrec(n_sampled=16, device="cpu").fit(clustered_split.train)
    users = np.arange(clustered_split.train.n_users)
    items, _ = model.recommend(users, n=5)
    group = users % 4
    item_group = np.array([int(i[1:]) % 4 for i in model.items_.ids])
    assert (item_group[items] == group[:, None]).mean() > 0.5


def test_early_stopping_keeps_best_epoch(clustered_split):
    model = small_sasrec(epochs=30, patience=2, lr=3e-2, device="cpu")
    model.fit(clustered_split.train, clustered_split.valid, scorer=DEFAULT_SCORER)
    scores = [r["valid_score"] for r in model.history_]
    assert model.best_epoch_ == int(np.argmax(scores)) + 1
    assert model.refit_params()["epochs"] == model.best_epoch_


@pytest.mark.parametrize("params", [{"hidden": 30, "heads": 4}, {"max_len": 1}, {"dropout": 1.0}])
def test_bad_settings(params):
    with pytest.raises(ValueError, match="must be"):
        SASRec(**params)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_ranking(clustered_split):
    cpu = small_sasrec(device="cpu").fit(clustered_split.train)
    gpu = small_sasrec(device="cuda").fit(clustered_split.train)
    a, _ = cpu.recommend(np.arange(20), n=5)
    b, _ = gpu.recommend(np.arange(20), n=5)
    assert (a == b).mean() > 0.8


def test_time_budget_stops_after_the_epoch(clustered_split):
    model = small_sasrec(epochs=50, max_seconds=1e-6, device="cpu").fit(clustered_split.train)
    assert len(model.history_) == 1 and model.refit_params()["epochs"] == 1
