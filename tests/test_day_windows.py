"""Day-based windows: ``recogan.data.day_split``, ``Protocol(test_days, valid_days)``, the
``--test-days``/``--valid-days``/``--spread`` options and the resume identity."""

import json

import numpy as np
import pandas as pd
import pytest

from recogan.cli import main
from recogan.data import Dataset, day_split
from recogan.datasets import heldout_split
from recogan.evaluate import Protocol, RunState

DAY = pd.Timedelta(days=1)


def daily(days=60, n_users=40, n_items=25, seed=0, start="2024-03-01") -> Dataset:
    """Customers buying a few items on random days at random times of day (seeded)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for day in np.sort(rng.integers(0, days, 3 + rng.poisson(5))):
            at = pd.Timestamp(start) + day * DAY + pd.Timedelta(seconds=int(rng.integers(86400)))
            for i in np.unique(rng.integers(0, n_items, 1 + rng.poisson(2))):
                rows.append((f"u{u}", f"i{i}", at))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Dataset.from_frames(frame, None, name="daily")


def _days(part: Dataset) -> pd.DatetimeIndex:
    return pd.to_datetime(part.times, unit="s").normalize()


def _same(a, b) -> bool:
    parts = lambda s: [s.test, s.train_valid, *(p for f in s.folds for p in f)]  # noqa: E731
    return all(x.fingerprint() == y.fingerprint() for x, y in zip(parts(a), parts(b)))


def test_day_windows_cut_at_midnight_latest_first():
    # every user buys on 20 days, one event just before and one just after each midnight
    days = pd.date_range("2024-01-01", periods=20, freq="D")
    rows = []
    for d in days:
        for u in ("a", "b"):
            rows.append((u, f"x{d.day % 3}", d))  # 00:00:00: first second of the day
            rows.append((u, f"y{d.day % 4}", d + DAY - pd.Timedelta(seconds=1)))  # 23:59:59
    data = Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))
    split = day_split(data, 3, 5, 2)
    # test: the last three days, whole (its first day's 00:00 event included)
    assert list(_days(split.test).unique()) == list(days[-3:])
    assert split.test.n_interactions == 3 * 4
    # the day before the test (its 23:59:59 event too) is the latest window's last day
    (tr1, v1), (tr2, v2) = split.folds
    assert list(_days(v1).unique()) == list(days[-8:-3])
    assert list(_days(v2).unique()) == list(days[-13:-8])
    # each window is trained on everything before its first midnight, nothing after
    assert _days(tr1).max() == days[-9] and tr1.n_interactions == 12 * 4
    assert _days(tr2).max() == days[-14] and tr2.n_interactions == 7 * 4
    assert split.train_valid.n_interactions == 17 * 4
    summary = split.summary()
    assert [f["dates"] for f in summary["valid_folds"]] == [
        "2024-01-13 - 2024-01-17",
        "2024-01-08 - 2024-01-12",
    ]
    assert summary["test_dates"] == "2024-01-18 - 2024-01-20"
    assert "2024-01-13 - 2024-01-17, 2024-01-08 - 2024-01-12" in split.protocol


def test_protocol_days_is_the_heldout_split():
    data = daily(days=90)
    proto = Protocol(test_days=10, valid_days=14, valid_folds=3)
    split = proto.split(data)
    assert _same(split, heldout_split(data))
    assert len(split.folds) == 3
    # latest first, side by side, the latest ending where the test begins
    starts = [_days(va).min() for _, va in split.folds]
    assert starts[0] > starts[1] > starts[2]
    assert _days(split.test).min() == _days(split.folds[0][1]).max() + DAY
    assert "test the last 10 days, 3 validation windows of 14 days" in proto.label
    # another window length is another split
    assert not _same(split, Protocol(test_days=10, valid_days=7, valid_folds=3).split(data))


def test_spread_day_windows_cover_the_history():
    data = daily(days=120)
    split = Protocol(test_days=10, valid_days=7, valid_folds=4, spread=True).split(data)
    assert len(split.folds) == 4
    test_start = _days(split.test).min()
    lo = [_days(va).min() for _, va in split.folds]
    hi = [_days(va).max() for _, va in split.folds]
    assert hi[0] == test_start - DAY  # the latest ends where the test begins
    assert lo[0] > lo[1] > lo[2] > lo[3]
    assert all(h - lo_ <= 6 * DAY for lo_, h in zip(lo, hi))  # seven days each
    assert lo[1] - hi[2] > DAY  # spread: gaps between the windows
    # the earliest starts after 30% of the events
    assert (data.times < lo[3].value // 10**9).mean() >= 0.29
    for tr, va in split.folds:
        assert tr.times.max() < va.times.min()
    side = Protocol(test_days=10, valid_days=7, valid_folds=4).split(data)
    assert not _same(split, side)


def test_day_window_errors_name_the_window_and_its_dates():
    data = daily(days=30)
    # test 03-21 - 03-30; windows 03-13 - 03-20, 03-05 - 03-12, then one before the data
    with pytest.raises(ValueError, match=r"validation window 3 \(2024-02-26 - 2024-03-04\)"):
        Protocol(test_days=10, valid_days=8, valid_folds=3).split(data)
    with pytest.raises(ValueError, match="no training events before it"):
        day_split(data, 10, 10, 3)
    with pytest.raises(ValueError, match="go together"):
        Protocol(test_days=10)
    with pytest.raises(ValueError, match="valid_days must be a whole number of days >= 1"):
        Protocol(test_days=10, valid_days=0)
    with pytest.raises(ValueError, match="test_days must be"):
        Protocol(test_days=-1, valid_days=7)
    with pytest.raises(ValueError, match="test_days must be"):
        Protocol(test_days=1.5, valid_days=7)
    with pytest.raises(ValueError, match="temporal protocol"):
        Protocol(name="leave-last-out", test_days=10, valid_days=7)
    with pytest.raises(ValueError, match="no room"):
        day_split(data, 10, 15, 3, spread=True)
    with pytest.raises(ValueError, match="distinct start days"):
        day_split(data, 10, 1, 20, spread=True)
    # test_days 0: no test period, the latest window ends with the data
    no_test = day_split(data, 0, 7, 2)
    assert no_test.test.n_interactions == 0
    assert _days(no_test.folds[0][1]).max() == _days(data).max()
    # the default protocol is unchanged: shares of the events
    assert Protocol().split(data).protocol.startswith("temporal(")


def test_resume_identity_changes_with_the_windows():
    data = daily(days=90)
    run = {"tune": False, "budget": 1, "seed": 0, "tuner": "halving", "levels": []}
    protos = [
        Protocol(),
        Protocol(spread=True),
        Protocol(test_days=10, valid_days=14),
        Protocol(test_days=10, valid_days=7),
        Protocol(test_days=7, valid_days=14),
        Protocol(test_days=10, valid_days=14, spread=True),
    ]
    keys = {
        RunState.model_key("pop", data, p, (10,), run, None, RunState.split_key(p.split(data)))
        for p in protos
    }
    assert len(keys) == len(protos)
    # a Split given directly is told apart by its windows, whatever the Protocol says
    a, b = heldout_split(data), heldout_split(data, windows=2)
    assert RunState.split_key(a) != RunState.split_key(b)
    assert RunState.split_key(a) == RunState.split_key(heldout_split(data))


def _csv(tmp_path, data: Dataset):
    path = tmp_path / "events.csv"
    pd.DataFrame(
        {
            "user_id": np.asarray(data.users.ids)[data.user_idx],
            "item_id": np.asarray(data.items.ids)[data.item_idx],
            "timestamp": pd.to_datetime(data.times, unit="s"),
        }
    ).to_csv(path, index=False)
    return str(path)


def test_evaluate_cli_day_windows_and_resume(tmp_path, capsys):
    path = _csv(tmp_path, daily(days=60))
    out = tmp_path / "o"
    args = ["evaluate", "--interactions", path, "--models", "pop", "--no-tune", "--no-progress"]
    args += ["--k", "10", "--out", str(out), "--test-days", "7", "--valid-folds", "2"]

    def doc():
        return json.loads((out / "metrics.json").read_text())

    assert main([*args, "--valid-days", "10"]) == 0
    proto = doc()["protocol"]
    assert (proto["test_days"], proto["valid_days"], proto["valid_folds"]) == (7, 10, 2)
    assert proto["split"]["test_dates"] == "2024-04-23 - 2024-04-29"
    dates = [f["dates"] for f in proto["split"]["valid_folds"]]
    assert dates == ["2024-04-13 - 2024-04-22", "2024-04-03 - 2024-04-12"]
    report = (out / "report.md").read_text()
    assert "test the last 7 days, 2 validation windows of 10 days before it" in report
    assert "Split: days(test the last 7 days (2024-04-23 - 2024-04-29)" in report
    assert not doc()["timing"]["pop"]["from_disk"]
    # the same windows: read back; other windows: computed again
    assert main([*args, "--valid-days", "10"]) == 0 and doc()["timing"]["pop"]["from_disk"]
    assert main([*args, "--valid-days", "9"]) == 0 and not doc()["timing"]["pop"]["from_disk"]
    assert doc()["protocol"]["split"]["valid_folds"][0]["dates"] == "2024-04-14 - 2024-04-22"
    assert main([*args, "--valid-days", "9", "--spread"]) == 0
    assert not doc()["timing"]["pop"]["from_disk"] and doc()["protocol"]["spread"]
    capsys.readouterr()


def test_evaluate_cli_rejects_half_a_day_protocol(tmp_path, capsys):
    path = _csv(tmp_path, daily(days=30))
    base = ["evaluate", "--interactions", path, "--models", "pop", "--no-tune", "--no-progress"]
    base += ["--out", str(tmp_path / "o")]
    assert main([*base, "--test-days", "7"]) == 1
    assert "--test-days goes with --valid-days" in capsys.readouterr().err
    assert main([*base, "--test-days", "7", "--valid-days", "0"]) == 1
    assert "--valid-days must be at least 1 day" in capsys.readouterr().err
    assert main([*base, "--protocol", "leave-last-out", "--spread"]) == 1
    assert "--spread goes with --protocol temporal" in capsys.readouterr().err
    assert main([*base, "--test-days", "10", "--valid-days", "10", "--valid-folds", "3"]) == 1
    assert "validation window 2 (2024-03-01 - 2024-03-10)" in capsys.readouterr().err


def test_train_cli_day_windows(tmp_path, capsys):
    path = _csv(tmp_path, daily(days=60))
    base = ["train", "--interactions", path, "--out", str(tmp_path / "m"), "--no-progress"]
    auto = [*base, "--model", "auto", "--candidates", "pop,pop7", "--windows", "2"]
    assert main([*auto, "--valid-days", "7", "--no-spread"]) == 0
    out = capsys.readouterr().out
    assert "2 validation windows (7 days each) side by side before the end" in out
    assert "windows (latest first): 2024-04-23 - 2024-04-29, 2024-04-16 - 2024-04-22" in out
    assert "chose pop" in out
    assert main([*auto, "--valid-days", "7"]) == 0
    out = capsys.readouterr().out
    assert "(7 days each) spread over the history" in out
    assert "windows (latest first): 2024-04-23 - 2024-04-29, 2024-03-" in out
    assert main([*auto, "--window-frac", "0.1", "--no-spread"]) == 0
    assert "(10% of the data each) side by side" in capsys.readouterr().out
    assert main([*base, "--model", "pop", "--valid-days", "7", "--valid-frac", "0.1"]) == 1
    assert "--valid-days replaces --valid-frac" in capsys.readouterr().err


def test_early_stopping_on_the_last_days():
    from recogan.cli._train import early_stopping_folds

    data = daily(days=60)
    folds, held = early_stopping_folds(data, 0.1, 7)
    ((train, valid),) = folds
    assert held == "the last 7 days (2024-04-23 - 2024-04-29)"
    assert _days(valid).min() == pd.Timestamp("2024-04-23")
    assert _days(train).max() == pd.Timestamp("2024-04-22")
    folds, held = early_stopping_folds(data, 0.1, None)
    assert len(folds) == 1 and held == "the latest 10% of interactions"
    assert early_stopping_folds(data, 0.0, None) == ([], "")
