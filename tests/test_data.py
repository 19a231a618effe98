import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recogan.data import (
    Dataset,
    IdMap,
    leave_last_out,
    read_dataset,
    split_at_times,
    temporal_split,
)


# ---------------------------------------------------------------------- id maps
@given(st.lists(st.one_of(st.integers(), st.text(min_size=1)), unique=True, max_size=50))
def test_idmap_roundtrip(ids):
    ids = [i for i in ids if isinstance(i, int)] or ids  # one type per map
    m = IdMap(ids) if ids else IdMap([])
    idx = m.lookup(ids)
    assert list(idx) == list(range(len(ids)))
    assert list(m.to_ids(idx)) == list(ids)


def test_idmap_unknown_and_duplicates():
    m = IdMap(["a", "b"])
    assert list(m.lookup(["b", "zz"], missing="ignore")) == [1, -1]
    with pytest.raises(KeyError, match="unknown id"):
        m.lookup(["zz"])
    with pytest.raises(ValueError, match="not unique"):
        IdMap(["a", "a"])
    assert m.index_of("b") == 1


# ---------------------------------------------------------------------- building
def test_from_frames_basic(tiny_frame):
    d = Dataset.from_frames(tiny_frame)
    assert (d.n_users, d.n_items, d.n_interactions) == (3, 3, 5)
    assert d.times.dtype == np.int64 and np.all(np.diff(d.times) >= 0)
    m = d.csr()
    assert m.shape == (3, 3) and m.sum() == 5
    indptr, items, times = d.histories()
    a = d.users.index_of("a")
    assert list(d.items.to_ids(items[indptr[a] : indptr[a + 1]])) == [1, 2]


@pytest.mark.parametrize(
    "times",
    [
        pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04", "2020-01-05"]),
        [1577836800, 1577923200, 1578009600, 1578096000, 1578182400],
        ["2020-01-01", "2020-01-02 00:00", "2020-01-03", "2020-01-04", "2020-01-05"],
    ],
)
def test_timestamp_kinds(tiny_frame, times):
    df = tiny_frame.assign(timestamp=times)
    d = Dataset.from_frames(df)
    assert d.times.min() == 1577836800


def test_missing_column_named(tiny_frame):
    with pytest.raises(ValueError, match=r"missing column\(s\) 'ts'.*columns: \['user_id'"):
        Dataset.from_frames(tiny_frame, time_col="ts")


def test_null_ids_named(tiny_frame):
    df = tiny_frame.astype({"user_id": object})
    df.loc[2, "user_id"] = None
    msg = r"1 null value\(s\) in id column 'user_id' \(first at row 2\)"
    with pytest.raises(ValueError, match=msg):
        Dataset.from_frames(df)


def test_bad_timestamps_counted_with_example(tiny_frame):
    df = tiny_frame.copy()
    df.loc[3, "timestamp"] = "not a date"
    with pytest.raises(ValueError, match=r"1 unparseable.*'not a date' at row 3"):
        Dataset.from_frames(df)


def test_empty_interactions(tiny_frame):
    with pytest.raises(ValueError, match="empty"):
        Dataset.from_frames(tiny_frame.iloc[:0])


def test_duplicate_catalog_ids(tiny_frame):
    cat = pd.DataFrame({"item_id": [1, 2, 2], "title": ["x", "y", "z"]})
    with pytest.raises(ValueError, match=r"1 duplicate item id\(s\).*\[2\]"):
        Dataset.from_frames(tiny_frame, cat)


def test_items_absent_from_catalog_policies(tiny_frame):
    cat = pd.DataFrame({"item_id": [1, 2, 99], "title": ["one", "two", "never sold"]})
    kept = Dataset.from_frames(tiny_frame, cat)
    assert kept.cleaning["items_not_in_catalog (kept)"] == 1
    assert kept.n_items == 4  # 1, 2, 99 from the catalog + 3 from interactions
    assert kept.catalog.loc[kept.items.index_of(99), "title"] == "never sold"
    assert pd.isna(kept.catalog.loc[kept.items.index_of(3), "title"])
    dropped = Dataset.from_frames(tiny_frame, cat, unknown_items="drop")
    assert dropped.n_interactions == 4 and dropped.cleaning["items_not_in_catalog"] == 1
    with pytest.raises(ValueError, match=r"1 interaction\(s\).*absent from catalog \(e.g. \[3\]\)"):
        Dataset.from_frames(tiny_frame, cat, unknown_items="raise")


def test_non_numeric_quantity(tiny_frame):
    df = tiny_frame.assign(qty=["1", "2", "x", "4", "5"])
    with pytest.raises(ValueError, match=r"'qty' has 1 non-numeric value\(s\), e.g. 'x' at row 2"):
        Dataset.from_frames(df, quantity_col="qty")


def test_readers_csv_and_parquet(tmp_path, tiny_frame):
    tiny_frame.rename(columns={"user_id": "customer"}).to_csv(tmp_path / "x.csv", index=False)
    d = read_dataset(tmp_path / "x.csv", user_col="customer")
    assert d.n_interactions == 5
    tiny_frame.to_parquet(tmp_path / "x.parquet")
    assert read_dataset(tmp_path / "x.parquet").n_users == 3
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_dataset(tmp_path / "nope.csv")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="unsupported file type"):
        read_dataset(tmp_path / "x.json")


# ---------------------------------------------------------------------- splits
events = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 9), st.integers(0, 40)), min_size=4, max_size=80
)


def _frame(rows):
    u, i, t = zip(*rows)
    start = 1_600_000_000  # 2020-09-13: days counted from a plausible date
    return pd.DataFrame({"user_id": u, "item_id": i, "timestamp": start + np.array(t) * 86400})


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(events, st.floats(0.05, 0.4), st.floats(0.0, 0.4))
def test_temporal_split_never_leaks(rows, test_frac, valid_frac):
    if test_frac + valid_frac >= 1:
        return
    d = Dataset.from_frames(_frame(rows))
    try:
        s = temporal_split(d, test_frac, valid_frac)
    except ValueError as e:
        assert "no training events" in str(e)
        return
    if s.valid.n_interactions:
        assert s.train.times.max() < s.valid.times.min()
    if s.test.n_interactions:
        assert s.train_valid.times.max() < s.test.times.min()
        assert np.isin(s.test.user_idx, s.train_valid.user_idx).all()
    if s.valid.n_interactions:
        assert np.isin(s.valid.user_idx, s.train.user_idx).all()
    kept = s.train.n_interactions + s.valid.n_interactions + s.test.n_interactions
    assert kept + sum(s.dropped.values()) == d.n_interactions  # nothing lost silently
    assert s.train_valid.n_interactions + s.test.n_interactions + s.dropped["test"] == len(d)


@settings(max_examples=60, deadline=None)
@given(events)
def test_leave_last_out_per_user_order(rows):
    d = Dataset.from_frames(_frame(rows))
    s = leave_last_out(d)
    assert s.train.n_interactions + s.valid.n_interactions + s.test.n_interactions == len(d)
    for part in (s.valid, s.test):
        for u in part.active_users():
            assert s.train.times[s.train.user_idx == u].max() < part.times[part.user_idx == u].min()
    for u in s.test.active_users():
        assert s.valid.times[s.valid.user_idx == u].max() < s.test.times[s.test.user_idx == u].min()
        # the test basket is exactly the user's last timestamp
        assert set(s.test.times[s.test.user_idx == u]) == {d.times[d.user_idx == u].max()}


def test_split_shares_id_space(clustered_split, clustered):
    assert clustered_split.train.items is clustered.items
    assert clustered_split.test.users is clustered.users
    with pytest.raises(ValueError, match="test_frac"):
        temporal_split(clustered, test_frac=0.0)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(events, st.integers(1, 4))
def test_rolling_origin_folds_never_leak(rows, k):
    d = Dataset.from_frames(_frame(rows))
    try:
        s = temporal_split(d, 0.1, 0.15, valid_folds=k)
    except ValueError as e:
        assert "no training events" in str(e) or "valid_folds" in str(e)
        return
    assert 1 <= len(s.folds) <= k and s.folds[0] == (s.train, s.valid)
    upper = s.test.times.min() if s.test.n_interactions else np.inf
    for train, valid in s.folds:  # latest first, each window before the previous one
        if valid.n_interactions:
            assert train.times.max() < valid.times.min() and valid.times.max() < upper
            assert np.isin(valid.user_idx, train.user_idx).all()
            upper = valid.times.min()


def test_rolling_origin_windows_are_consecutive(clustered):
    s = temporal_split(clustered, test_frac=0.1, valid_frac=0.1, valid_folds=3)
    assert len(s.folds) == 3 and "valid_folds=3" in s.protocol
    (tr1, v1), (tr2, v2), (tr3, v3) = s.folds
    # each fold trains on everything before its window, so the windows tile the time line
    assert tr1.n_interactions > tr2.n_interactions > tr3.n_interactions
    assert v2.times.max() < v1.times.min() and v3.times.max() < v2.times.min()
    assert tr2.times.max() < v2.times.min() <= tr1.times.max()
    plain = temporal_split(clustered)
    assert plain.folds == ((plain.train, plain.valid),)
    with pytest.raises(ValueError, match="valid_folds"):
        temporal_split(clustered, test_frac=0.1, valid_frac=0.35, valid_folds=3)


def test_split_at_times_folds_and_errors(clustered):
    day = 86400
    t0 = int(clustered.times.min())
    s = split_at_times(clustered, t0 + 300 * day, [t0 + 250 * day, t0 + 200 * day])
    (tr1, v1), (tr2, v2) = s.folds
    assert s.test.times.min() >= t0 + 300 * day > s.train_valid.times.max()
    assert v1.times.min() >= t0 + 250 * day > tr1.times.max()
    assert v2.times.max() < t0 + 250 * day and tr2.times.max() < t0 + 200 * day
    with pytest.raises(ValueError, match="earlier"):
        split_at_times(clustered, t0 + 300 * day, [t0 + 310 * day])
    with pytest.raises(ValueError, match="no test events"):
        split_at_times(clustered, t0 + 10_000 * day, [t0 + 200 * day])
