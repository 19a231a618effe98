"""The GAN's repeat head: it learns repurchase cycles from the purchases, and lists that keep
bought items rank what is due."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recogan.artifacts import load_model, save_model
from recogan.data import Dataset, day_split
from recogan.features import DAY
from recogan.gan.model import GANRecommender
from recogan.gan.repeats import RECENT_DAYS, PairStats, RepeatHead, features
from recogan.metrics import validation_ndcg
from tests.fast_gan import FAST

START = 1_600_000_000  # an epoch in 2020, whole days after it
WEEKLY, MONTHLY, NOISE = range(0, 10), range(20, 30), range(30, 80)


def planted_cycles(n_users=150, days=210, seed=0) -> Dataset:
    """Each customer buys one of ten weekly items every 7 days and one of ten monthly items
    every 28 days (random phases), and about one other of 50 products every 3 days."""
    g = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for item, period in ((WEEKLY[u % 10], 7), (MONTHLY[u % 10], 28)):
            rows += [(u, item, d) for d in range(int(g.integers(period)), days, period)]
        noise_days = np.sort(g.choice(days, days // 3, replace=False))
        rows += [(u, int(g.choice(NOISE)), int(d)) for d in noise_days]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "day"])
    frame["timestamp"] = START + frame.pop("day") * int(DAY)
    return Dataset.from_frames(frame, name="planted cycles")


@pytest.fixture(scope="module")
def planted():
    return day_split(planted_cycles(), test_days=7, valid_days=14)


@pytest.fixture(scope="module")
def fitted(planted):
    return GANRecommender(**FAST, seed=0).fit(planted.train, planted.valid, scorer=validation_ndcg)


def test_pair_stats_match_a_groupby(rng):
    users = rng.integers(0, 6, 300)
    items = rng.integers(0, 9, 300)
    times = rng.integers(0, 40, 300) * DAY + rng.integers(0, 3, 300) * 3600
    now = 40 * DAY
    s = PairStats.of(users, items, times, (6, 9), now)
    frame = pd.DataFrame({"u": users, "i": items, "t": times, "d": times // DAY})
    frame["fresh"] = np.where(frame["t"] > now - RECENT_DAYS * DAY, frame["d"], np.nan)
    want = frame.groupby(["u", "i"]).agg(
        first=("t", "min"), last=("t", "max"), n=("d", "nunique"), recent=("fresh", "nunique")
    )
    rows = np.repeat(np.arange(6), np.diff(s.indptr))
    got = pd.DataFrame(
        {"u": rows, "i": s.indices, "first": s.first, "last": s.last, "n": s.count}
    ).assign(recent=s.recent)
    got = got.set_index(["u", "i"]).sort_index()
    np.testing.assert_array_equal(got.index.to_numpy(), want.index.to_numpy())
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy())
    days = frame.groupby("u")["d"].nunique().reindex(range(6), fill_value=0)
    np.testing.assert_array_equal(s.user_days, days.to_numpy())
    sub = s.rows(np.array([4, 1]))
    np.testing.assert_array_equal(
        sub.indices[: np.diff(sub.indptr)[0]], s.indices[s.indptr[4] : s.indptr[5]]
    )


def test_the_head_learns_the_cycles(fitted):
    """Seven days after the last purchase a weekly item is due: the head gives it a higher
    probability than three days after, and than a monthly item seven days after."""
    m = fitted
    assert m.repeat_head_ is not None
    end = float(m.train_end_)

    def p(item, period, age_days, times):
        item = m.items_.index_of(item)
        last = end - age_days * DAY
        t = last - period * DAY * np.arange(times)[::-1]
        # the customer shops on as many other days (a planted customer's weekly item is on
        # about a third of their shopping days)
        other = end - DAY * (0.5 + np.arange(2 * times))
        u = np.zeros(3 * times, int)
        i = np.r_[np.full(times, item), np.full(2 * times, m.items_.index_of(NOISE[-1]))]
        stats = PairStats.of(u, i, np.r_[t, other], (1, m.n_items_), end)
        stats = dataclasses.replace(
            stats,
            indptr=np.array([0, 1]),
            indices=stats.indices[:1],
            first=stats.first[:1],
            last=stats.last[:1],
            count=stats.count[:1],
            recent=stats.recent[:1],
        )
        X = features(stats, m.repeat_item_cycle_, m.repeat_item_share_, np.array([end]))
        return float(m.repeat_head_.probability(X)[0])

    # as often as the planted customers had bought them by the end of training
    weekly_due, weekly_early = p(WEEKLY[0], 7, 7, 25), p(WEEKLY[0], 7, 1, 25)
    monthly_due, monthly_early = p(MONTHLY[0], 28, 27, 6), p(MONTHLY[0], 28, 7, 6)
    once = p(NOISE[0], 1, 5, 1)
    assert weekly_due > 0.8
    assert weekly_due > weekly_early
    assert monthly_due > monthly_early
    assert min(weekly_due, monthly_due) > once


def test_weight_is_chosen_on_validation_and_due_items_rank_first(fitted):
    m = fitted
    assert 0.0 in m.repeat_scores_ and m.config.repeat_weight > 0
    assert any("repeat weight" in line for line in m.validation_notes())
    end = float(m.train_end_)
    weekly = end - 7 * DAY * np.arange(25, 0, -1)  # last bought 7 days ago: due today
    monthly = end - DAY * (7 + 28 * np.arange(5, -1, -1))
    noise = end - DAY * np.arange(5, 0, -1)
    weekly_item, monthly_item = m.items_.lookup([WEEKLY[3], MONTHLY[3]])
    noise_items = list(m.items_.lookup(list(NOISE[:5])))
    items = [weekly_item] * 25 + [monthly_item] * 6 + noise_items
    times = np.concatenate([weekly, monthly, noise])
    order = np.argsort(times, kind="stable")
    hist, t = [list(np.asarray(items)[order])], [list(times[order])]
    mixed, _ = m.recommend_history(hist, n=10, exclude_seen=False, times=t)
    assert mixed[0, 0] == weekly_item
    # buy again: only bought items, the due weekly one first, the monthly one before noise
    again, _ = m.recommend_history(hist, n=7, exclude_seen=False, times=t, candidates=hist[0])
    again = list(again[0])
    assert again[0] == weekly_item
    assert again.index(monthly_item) < min(again.index(i) for i in noise_items)
    # without times the head cannot read ages: the lists are the model's alone
    no_times, _ = m.recommend_history(hist, n=10, exclude_seen=False)
    saved = m.config.repeat_weight, m.config.repeat_offset
    m.set_recommend_params(repeat_weight=0.0, repeat_offset=0.0)
    try:
        plain, _ = m.recommend_history(hist, n=10, exclude_seen=False)
    finally:
        m.set_recommend_params(repeat_weight=saved[0], repeat_offset=saved[1])
    np.testing.assert_array_equal(no_times, plain)


def test_known_customers_and_accuracy_on_repeat_targets(fitted, planted):
    """On the planted test week every weekly item is bought again: lists with the head hit
    them far more often than the model's alone."""
    from recogan.metrics import mean_metrics, score

    m = fitted
    with_head = mean_metrics(score(m, planted.test, (10,), targets="all")[0])["NDCG@10"]
    saved = m.config.repeat_weight, m.config.repeat_offset
    m.set_recommend_params(repeat_weight=0.0, repeat_offset=0.0)
    try:
        without = mean_metrics(score(m, planted.test, (10,), targets="all")[0])["NDCG@10"]
    finally:
        m.set_recommend_params(repeat_weight=saved[0], repeat_offset=saved[1])
    assert with_head > 1.5 * without


def test_discover_lists_do_not_change(fitted, planted):
    m = fitted
    users = np.arange(0, m.n_users_, 3)
    a, sa = m.recommend(users, n=10)
    saved = m.config.repeat_weight, m.config.repeat_offset
    m.set_recommend_params(repeat_weight=0.0, repeat_offset=0.0)
    try:
        b, sb = m.recommend(users, n=10)
    finally:
        m.set_recommend_params(repeat_weight=saved[0], repeat_offset=saved[1])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa, sb)


def test_bundle_keeps_the_head(fitted, tmp_path):
    m = fitted
    users = np.arange(m.n_users_)
    before = m.recommend(users, n=10, exclude_seen=False)
    save_model(m, tmp_path / "bundle")
    loaded = load_model(tmp_path / "bundle")
    after = loaded.recommend(users, n=10, exclude_seen=False)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_allclose(before[1], after[1], rtol=1e-5)


def test_without_repeats_bought_items_sink(clustered_split):
    """Where nobody buys an item twice the head is a constant, a low probability, and the
    offset chosen on validation takes bought items out of mixed lists."""
    s = clustered_split
    again = s.train.interactions.duplicated(["user", "item"]).to_numpy()
    train = s.train.subset(~again)
    m = GANRecommender(**FAST, seed=0).fit(train, s.valid, scorer=validation_ndcg)
    head = m.repeat_head_
    assert not head.coef.any() and head.intercept < -5
    assert m.config.repeat_offset < 0
    assert any("repeat offset" in line for line in m.validation_notes())
    users = np.arange(m.n_users_)
    seen = m.seen_[users].toarray() > 0

    def bought_share() -> float:
        items, _ = m.recommend(users, n=10, exclude_seen=False)
        return float(np.take_along_axis(seen, np.maximum(items, 0), 1)[items >= 0].mean())

    chosen = bought_share()
    saved = m.config.repeat_offset
    m.set_recommend_params(repeat_offset=0.0)
    try:
        assert bought_share() > chosen + 0.05
    finally:
        m.set_recommend_params(repeat_offset=saved)


def test_same_seed_same_head(planted):
    """A capped training set is a seeded sample: the same seed, the same head."""
    t = planted.train

    def head(seed):
        events = (t.user_idx, t.item_idx, t.times)
        return RepeatHead.fit(
            events, (t.n_users, t.n_items), float(t.times.max()), 14.0, 4, 500, seed
        )

    np.testing.assert_array_equal(head(3).coef, head(3).coef)
    assert not np.array_equal(head(3).coef, head(4).coef)


@pytest.mark.parametrize(
    "bad",
    [
        {"repeat_weight": -1.0},
        {"repeat_weights": (1.0, -2.0)},
        {"repeat_offset": 1.0},
        {"repeat_offsets": (-1.0, 2.0)},
        {"repeat_horizon_days": 0.0},
        {"repeat_cuts": -1},
        {"repeat_max_rows": 1},
    ],
)
def test_bad_settings_are_refused(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        GANRecommender(**bad)


def test_for_history_reads_purchase_times(fitted):
    """The service API passes a new customer's purchase times to the head: seven days after
    the last of 25 weekly purchases, the weekly item tops a buy-again list; bad times are
    refused, naming the problem."""
    from recogan import Recommender

    m = fitted
    rec = Recommender(m)
    end = float(m.train_end_)
    weekly = list(end - 7 * DAY * np.arange(25, 0, -1))
    monthly = list(end - DAY * (7 + 28 * np.arange(5, -1, -1)))
    noise = list(end - DAY * np.arange(5, 0, -1))
    ids = [WEEKLY[4]] * 25 + [MONTHLY[4]] * 6 + list(NOISE[5:10])
    times = weekly + monthly + noise
    order = np.argsort(times, kind="stable")
    ids, times = [ids[i] for i in order], [times[i] for i in order]
    out = rec.for_history(ids, n=5, mode="buy_again", times=times)
    assert out.items[0] == WEEKLY[4]
    dates = pd.to_datetime(np.asarray(times), unit="s", utc=True).astype(str).tolist()
    assert rec.for_history(ids, n=5, mode="buy_again", times=dates).items == out.items
    with pytest.raises(ValueError, match="times has 3 values"):
        rec.for_history(ids, n=5, times=times[:3])
    with pytest.raises(ValueError, match="times"):
        rec.for_history(ids[:1], n=5, times=["not a date"])


@pytest.mark.parametrize("mode", ["buy_again", "mixed"])
def test_batch_scoring_lists_are_the_service_lists(fitted, tmp_path, mode):
    """The nightly job reads the repeat head from the bundle: its lists in each mode are the
    service API's."""
    from recogan import Recommender
    from recogan.batch import batch_score, read_recommendations

    save_model(fitted, tmp_path / "bundle")
    batch_score(
        tmp_path / "bundle", tmp_path / "out", n=5, mode=mode, workers=1, show_progress=False
    )
    got = read_recommendations(tmp_path / "out").sort_values(["user_id", "rank"])
    rec = Recommender.load(tmp_path / "bundle")
    want = rec.recommend_many(list(rec.user_ids), n=5, mode=mode).sort_values(["user_id", "rank"])
    cols = ["user_id", "rank", "item_id", "repeat"]
    pd.testing.assert_frame_equal(
        got[cols].reset_index(drop=True), want[cols].reset_index(drop=True), check_dtype=False
    )
    first = got.loc[got["rank"] == 1, "repeat"]
    assert first.mean() > 0.5  # a weekly item is due within the horizon for every customer
    if mode == "buy_again":
        assert got["repeat"].all()


def test_an_evaluation_of_new_items_makes_no_repeat_choice(planted):
    from recogan._trials import WorkerPlan, fit_trials

    folds = [(planted.train, planted.valid)]
    trial = [{**FAST, "seed": 0}]
    plan = WorkerPlan(1)
    (new,) = fit_trials("gan", trial, folds, plan, targets="new")
    (every,) = fit_trials("gan", trial, folds, plan, targets="all")
    # judged on new items, lists never keep bought items: the repeat knobs are not chosen
    assert not len(new.refit["repeat_weights"]) and not len(new.refit["repeat_offsets"])
    assert new.refit["repeat_weight"] == 0.0 and new.refit["repeat_offset"] == 0.0
    # judged on every purchase, they are, and the planted cycles make them pay
    assert every.refit["repeat_weight"] > 0
    assert GANRecommender.judged_params("all") == {}
