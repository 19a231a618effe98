"""Validation windows spread over the history, shift and agreement, and ``--model auto``."""

import numpy as np
import pandas as pd
import pytest

from recogan.cli import main
from recogan.data import Dataset
from recogan.evaluate import (
    agreement_warning,
    choose_model,
    spread_split,
    window_agreement,
    window_scores,
    window_shift,
)
from tests.fast_gan import FAST


def popular_truth(n_users=300, n_items=60, days=120, seed=0) -> Dataset:
    """Every customer buys from one fixed Zipf distribution, whatever they bought before:
    all-time popularity is the truth, no personal signal exists."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1) ** 1.1
    weights /= weights.sum()
    rows = []
    for u in range(n_users):
        for day in np.sort(rng.integers(0, days, 1 + rng.poisson(4))):
            for i in np.unique(rng.choice(n_items, 1 + rng.poisson(3), p=weights)):
                rows.append((f"u{u}", f"i{i}", day))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "day"])
    frame["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(frame["day"], unit="D")
    return Dataset.from_frames(frame.drop(columns="day"), None, name="popular_truth")


def test_spread_split_windows_cover_the_history(clustered):
    split = spread_split(clustered, 4, valid_frac=0.05, test_frac=0.1, min_train_frac=0.3)
    assert len(split.folds) == 4
    starts = [va.times.min() for _, va in split.folds]
    assert starts == sorted(starts, reverse=True)  # latest first
    for train, valid in split.folds:
        assert train.times.max() < valid.times.min()  # no leak
    # the earliest window starts near 30% of the events, the latest ends at the test
    t = clustered.times
    assert abs(np.mean(t < starts[-1]) - 0.3) < 0.02
    assert split.folds[0][1].times.max() < split.test.times.min()
    # spread: the windows are not consecutive (gaps between them)
    assert split.folds[1][1].times.max() < split.folds[0][0].times.max()
    with pytest.raises(ValueError, match="no room"):
        spread_split(clustered, 3, valid_frac=0.4, test_frac=0.4)
    no_test = spread_split(clustered, 2, test_frac=0.0)
    assert no_test.test.n_interactions == 0
    assert no_test.folds[0][1].times.max() == t.max()


def test_window_shift_flags_the_odd_window():
    # three windows buy from items 0-9; one (window 2) from items 10-19
    rng = np.random.default_rng(0)
    rows, day = [], 0
    for w in range(8):
        pool = np.arange(10, 20) if w == 5 else np.arange(10)
        for _ in range(200):
            rows.append((f"u{rng.integers(50)}", f"i{rng.choice(pool)}", day))
            day += 1
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "t"])
    frame["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(frame["t"], unit="h")
    data = Dataset.from_frames(frame.drop(columns="t"), None)
    t = data.times
    edges = np.quantile(t, np.linspace(0, 1, 9), method="higher")
    folds = []
    for k in (7, 6, 5, 4):  # latest first; window 3 is the odd period (w = 5)
        train = data.subset(t < edges[k])
        valid = data.subset((t >= edges[k]) & (t < (edges[k + 1] if k < 7 else t.max() + 1)))
        folds.append((train, valid))
    shift = window_shift(folds)
    assert shift["shifted"].tolist() == [False, False, True, False]
    assert shift.loc[3, "shift"] > 3 * shift.loc[1, "shift"]


def test_choose_model_downweights_a_shifted_window_and_warns():
    scores = pd.DataFrame(
        {1: [0.10, 0.08], 2: [0.10, 0.09], 3: [0.02, 0.30]}, index=["knn", "pop7"]
    )
    plain = choose_model(scores)
    assert plain.best == "pop7"  # the odd window's huge lead decides the plain mean
    shift = pd.DataFrame({"shifted": [False, False, True]}, index=[1, 2, 3])
    chosen = choose_model(scores, shift)
    assert chosen.best == "knn"
    assert "weigh" in chosen.reason() and "knn" in chosen.reason()
    assert chosen.warnings and "disagree" in chosen.warnings[0]
    assert any(line.startswith("chose knn") for line in chosen.lines())


def test_window_agreement():
    same = pd.DataFrame({1: [3.0, 2.0, 1.0], 2: [0.3, 0.2, 0.1]}, index=list("abc"))
    assert not window_agreement(same)["disagree"]
    assert agreement_warning(same) is None
    flipped = same.assign(**{"3": [1.0, 2.0, 3.0]})
    a = window_agreement(flipped)
    assert a["disagree"] and a["min_tau"] == pytest.approx(-1.0)
    assert "c in 1" in agreement_warning(flipped)


def test_window_scores_popularity_wins_where_it_is_the_truth():
    from recogan.registry import model_class

    data = popular_truth()
    split = spread_split(data, 3, valid_frac=0.08, test_frac=0.0)
    candidates = {
        "pop": (model_class("pop"), {}),
        "itemknn": (model_class("itemknn"), {}),
    }
    scores = window_scores(candidates, split.folds)
    assert scores.shape == (2, 3)
    assert choose_model(scores).best == "pop"


def _gan_params():
    return [f"gan.{k}={v}" for k, v in FAST.items()]


def test_train_auto_picks_popularity_where_it_is_the_truth(tmp_path, capsys):
    data = popular_truth()
    path = tmp_path / "events.parquet"
    frame = data.interactions.assign(
        user_id=np.asarray(data.users.ids)[data.user_idx],
        item_id=np.asarray(data.items.ids)[data.item_idx],
        timestamp=data.times,
    )[["user_id", "item_id", "timestamp"]]
    frame.to_parquet(path)
    args = ["train", "--interactions", str(path), "--model", "auto", "--out", str(tmp_path / "m")]
    args += ["--candidates", "pop,itemknn,gan", "--windows", "3", "--window-frac", "0.08"]
    args += ["--no-progress"] + [x for p in _gan_params() for x in ("--param", p)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "chose pop:" in out
    assert "trained Popularity" in out
    from recogan.artifacts import load_model

    model = load_model(tmp_path / "m")
    assert type(model).__name__ == "Popularity"


def test_train_auto_picks_itemknn_on_planted_groups(tmp_path, capsys, clustered):
    frame = pd.DataFrame(
        {
            "user_id": np.asarray(clustered.users.ids)[clustered.user_idx],
            "item_id": np.asarray(clustered.items.ids)[clustered.item_idx],
            "timestamp": clustered.times,
        }
    )
    path = tmp_path / "events.csv"
    frame.to_csv(path, index=False)
    args = ["train", "--interactions", str(path), "--model", "auto", "--out", str(tmp_path / "m")]
    args += ["--candidates", "pop,pop7,itemknn", "--windows", "2", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "chose itemknn:" in out and "trained ItemKNN" in out


def test_train_auto_rejects_bad_params(tmp_path):
    path = tmp_path / "e.csv"
    pd.DataFrame({"user_id": [1], "item_id": [2], "timestamp": [1.7e9]}).to_csv(path)
    base = ["train", "--interactions", str(path), "--model", "auto", "--out", str(tmp_path / "m")]
    assert main([*base, "--candidates", "pop", "--param", "epochs=3"]) != 0
    assert main([*base, "--candidates", "pop", "--param", "gan.epochs=3"]) != 0
    assert main([*base, "--candidates", "nosuch"]) != 0


def test_protocol_spread_and_the_report_warns_when_windows_disagree(clustered):
    from recogan.evaluate import Protocol, evaluate

    proto = Protocol(valid_folds=3, valid_frac=0.08, spread=True)
    assert "spread" in proto.label
    split = proto.split(clustered)
    assert len(split.folds) == 3
    assert split.folds[1][1].times.max() < split.folds[0][0].times.max()  # not side by side
    report = evaluate(
        split, models=["pop", "itemknn"], tune=False, diversity_levels=(), show_progress=False
    )
    scores = report.window_scores()
    assert scores.shape == (2, 3)
    # planted groups: item-kNN wins every window, so no disagreement
    assert report.window_warning() is None
    flipped = {"fold_scores": [0.1, 0.3, 0.1]}, {"fold_scores": [0.2, 0.1, 0.2]}
    report.tuning["pop"].update(flipped[0])
    report.tuning["itemknn"].update(flipped[1])
    warning = report.window_warning()
    assert warning and "disagree" in warning
    assert warning in report.warnings()


def test_a_simpler_model_within_the_margin_is_chosen():
    scores = pd.DataFrame(
        {1: [0.400, 0.396, 0.390], 2: [0.410, 0.404, 0.399]}, index=["gan", "pop", "itemknn"]
    )
    assert choose_model(scores).best == "gan"
    near = choose_model(scores, simpler=("pop", "itemknn", "gan"), margin=0.02)
    assert near.best == "pop" and "simpler model" in near.reason()
    # outside the margin the better, more complex model stays
    assert choose_model(scores, simpler=("pop", "itemknn", "gan"), margin=0.005).best == "gan"
