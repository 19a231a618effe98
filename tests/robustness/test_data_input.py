"""Bad input data: refused with the column, an example and the likely fix, or cleaned by a
documented rule that is counted in ``Dataset.cleaning``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recogan.baselines import Popularity
from recogan.cli import main
from recogan.data import Dataset, read_dataset
from recogan.recommender import Recommender
from tests.robustness.conftest import DATA_ARGS

T0 = 1_700_000_000  # 2023-11-14, in seconds


def frame(times=None, users=None, items=None, **extra):
    given = [c for c in (times, users, items, *extra.values()) if c is not None]
    n = len(given[0]) if given else 4
    return pd.DataFrame(
        {
            "user_id": users if users is not None else [f"u{i % 3}" for i in range(n)],
            "item_id": items if items is not None else [f"i{i % 4}" for i in range(n)],
            "timestamp": times if times is not None else [T0 + 3600 * i for i in range(n)],
            **extra,
        }
    )


# ---------------------------------------------------------------------- timestamps
@pytest.mark.parametrize(
    "scale,unit,looks_like",
    [
        (1000, "s", "milliseconds"),
        (1, "ms", "seconds"),
        (10**6, "s", "microseconds"),
        (10**9, "ms", "nanoseconds"),
    ],
)
def test_epoch_in_the_wrong_unit_is_refused(scale, unit, looks_like):
    times = [(T0 + i) * scale for i in range(4)]
    with pytest.raises(ValueError) as e:
        Dataset.from_frames(frame(times), time_unit=unit)
    msg = str(e.value)
    assert "column 'timestamp'" in msg and f"{times[0]!r} at row 0" in msg
    assert f"they look like epoch {looks_like}" in msg


@pytest.mark.parametrize("scale", [1, 1000, 10**6, 10**9])
def test_epoch_unit_told_by_magnitude(scale):
    d = Dataset.from_frames(frame([(T0 + i) * scale for i in range(4)]))
    assert d.times.min() == T0


def test_epoch_numbers_written_as_text():
    d = Dataset.from_frames(frame([str(T0 * 1000 + i) for i in range(4)]))
    assert d.times.min() == T0


def test_one_implausible_date_among_good_ones_names_its_row():
    times = ["2023-01-01", "2023-01-02", "2099-05-01", "2023-01-03"]
    with pytest.raises(ValueError, match=r"1 implausible timestamp\(s\).*'2099-05-01' at row 2"):
        Dataset.from_frames(frame(times))


def test_dates_before_1990_are_refused():
    with pytest.raises(ValueError, match=r"before 1990-01-01.*'1900-01-01' at row 0"):
        Dataset.from_frames(frame(["1900-01-01", "2023-01-01", "2023-01-02"]))


def test_next_year_is_accepted_the_one_after_is_not():
    year = pd.Timestamp.now().year
    ok = Dataset.from_frames(frame([f"{year + 1}-06-01", f"{year}-01-01"]))
    assert ok.n_interactions == 2
    with pytest.raises(ValueError, match="implausible"):
        Dataset.from_frames(frame([f"{year + 2}-01-02", f"{year}-01-01"]))


def test_negative_epoch_is_refused():
    with pytest.raises(ValueError, match="no epoch unit makes this a plausible date"):
        Dataset.from_frames(frame([-5, T0, T0 + 1]))


def test_relative_times_need_check_times_off():
    with pytest.raises(ValueError, match="implausible"):
        Dataset.from_frames(frame([0, 10, 20]))
    assert Dataset.from_frames(frame([0, 10, 20]), check_times=False).n_interactions == 3


def test_boolean_time_column_is_refused():
    with pytest.raises(ValueError, match="holds booleans, not timestamps"):
        Dataset.from_frames(frame([True, False, True]))


def test_missing_epoch_value_is_named():
    with pytest.raises(ValueError, match=r"1 unparseable or missing timestamp\(s\).*row 1"):
        Dataset.from_frames(frame([T0, np.nan, T0 + 5]))


def test_unknown_time_unit_is_refused():
    with pytest.raises(ValueError, match="time_unit must be 'auto' or one of"):
        Dataset.from_frames(frame(), time_unit="minutes")


def test_cli_time_unit_option(tmp_path, capsys):
    frame([(T0 + i) * 1000 for i in range(6)]).to_csv(tmp_path / "e.csv", index=False)
    args = ["info", "--interactions", str(tmp_path / "e.csv"), "--json"]
    assert main([*args, "--time-unit", "ms"]) == 0
    assert json.loads(capsys.readouterr().out)["first"].startswith("2023-11-14")
    assert main([*args, "--time-unit", "s"]) == 1
    err = capsys.readouterr().err
    assert "look like epoch milliseconds" in err and "Traceback" not in err


# ---------------------------------------------------------------------- ids
def _csv_with_one_odd_id(tmp_path, retail_frame):
    f = retail_frame.astype({"customer": object})
    f.loc[len(f) - 1, "customer"] = "GUEST"
    f.to_csv(tmp_path / "e.csv", index=False)
    return tmp_path / "e.csv"


def test_one_non_integer_id_in_a_csv_still_finds_customers(tmp_path, retail_frame, capsys):
    csv = _csv_with_one_odd_id(tmp_path, retail_frame)
    out = tmp_path / "m"
    args = ["train", "--interactions", str(csv), *DATA_ARGS, "--model", "pop", "--out", str(out)]
    assert main(args) == 0
    rec = Recommender.load(out, device="cpu", strict=True)
    assert rec.user_ids.dtype == object  # strings, because of "GUEST"
    a, b = rec.recommend(17005), rec.recommend("17005")
    assert not a.fallback and a.items == b.items
    assert main(["recommend", "--model", str(out), "--user", "17005", "--strict"]) == 0


def test_integer_ids_are_found_as_strings_too(pop_a, retail_frame):
    model = Popularity().fit(Dataset.from_frames(retail_frame, None, **_cols()))
    rec = Recommender(model, strict=True)
    assert rec.recommend("17005").items == rec.recommend(17005).items
    assert rec.recommend(np.int64(17005)).items == rec.recommend(17005.0).items


def _cols():
    return {"user_col": "customer", "item_col": "sku", "time_col": "ts"}


def test_mixed_int_and_str_ids_become_strings_counted():
    d = Dataset.from_frames(frame(users=[17850, "GUEST", 13047, 17850]))
    assert sorted(d.users.ids) == ["13047", "17850", "GUEST"]
    assert d.cleaning["mixed_type_user_ids (kept as strings)"] == 3
    assert d.users.index_of(17850) == d.users.index_of("17850")


def test_integer_valued_float_ids_become_ints():
    d = Dataset.from_frames(frame(users=[17850.0, 13047.0, 17850.0]))
    assert d.users.ids.dtype == np.int64 and d.users.index_of("17850") == 0


def test_fractional_float_ids_are_refused():
    with pytest.raises(ValueError, match=r"non-integer number\(s\), e.g. 1.5 at row 1"):
        Dataset.from_frames(frame(users=[1.0, 1.5, 2.0]))


def test_boolean_ids_are_refused():
    with pytest.raises(ValueError, match="holds booleans; ids are integers or strings"):
        Dataset.from_frames(frame(users=[True, False, True]))


def test_odd_objects_as_ids_are_refused():
    with pytest.raises(ValueError, match=r"neither integers nor strings, e.g. \(1, 2\)"):
        Dataset.from_frames(frame(items=["a", (1, 2), "b"]))


def test_catalog_and_interactions_ids_of_different_types_meet():
    events = frame(items=[22423, 22423, 71053, 71053])
    catalog = pd.DataFrame({"item_id": ["22423", "71053", "85123A"], "title": ["a", "b", "c"]})
    d = Dataset.from_frames(events, catalog)
    assert "items_not_in_catalog (kept)" not in d.cleaning
    assert d.n_items == 3 and d.catalog.loc[d.items.index_of(22423), "title"] == "a"


def test_recommend_many_with_ids_as_int_and_str(pop_a):
    rec = Recommender(pop_a, strict=True)
    users = pop_a.users_.ids[:2].tolist()
    out = rec.recommend_many(users, n=2)
    assert not out["fallback"].any() and len(out) == 4


# ---------------------------------------------------------------------- quantities, duplicates
@pytest.mark.parametrize(
    "quantity,rule",
    [(-3, "non_positive_quantity"), (0, "non_positive_quantity"), (np.nan, "missing_quantity")],
)
def test_bad_quantity_rows_are_removed_and_counted(quantity, rule):
    d = Dataset.from_frames(frame(quantity=[2, quantity, 1, 5]))
    assert d.n_interactions == 3 and d.cleaning[rule] == 1


def test_quantity_column_named_elsewhere():
    d = Dataset.from_frames(frame(qty=[2, -1, 1, 5]), quantity_col="qty")
    assert d.cleaning == {"non_positive_quantity": 1}


def test_no_rows_left_after_cleaning_is_an_error():
    with pytest.raises(ValueError, match="no interactions left after cleaning"):
        Dataset.from_frames(frame(quantity=[-1, 0, -2]))


def test_negative_price_rows_are_removed_and_counted():
    d = Dataset.from_frames(frame(price=[1.0, -2.0, 3.0]), price_col="price")
    assert d.n_interactions == 2 and d.cleaning["negative_price"] == 1


def test_odd_catalog_prices_are_unknown_and_counted():
    catalog = pd.DataFrame({"item_id": ["i0", "i1", "i2", "i3"], "price": [2.0, -1.0, 0.0, None]})
    d = Dataset.from_frames(frame(), catalog)
    assert d.cleaning["catalog_price_missing_or_non_positive (kept as unknown)"] == 3
    assert d.catalog["price"].notna().sum() == 1


def test_exact_duplicates_are_kept_and_counted():
    f = pd.concat([frame(), frame().iloc[:2]], ignore_index=True)
    d = Dataset.from_frames(f)
    assert d.n_interactions == len(f) and d.cleaning["duplicate_rows (kept)"] == 2


def test_exact_duplicates_dropped_on_request():
    f = pd.concat([frame(), frame().iloc[:2]], ignore_index=True)
    d = Dataset.from_frames(f, duplicates="drop")
    assert d.n_interactions == len(f) - 2 and d.cleaning["duplicate_rows"] == 2


def test_exact_duplicates_refused_on_request():
    f = pd.concat([frame(), frame().iloc[:1]], ignore_index=True)
    with pytest.raises(ValueError, match=r"1 exact duplicate row\(s\), e.g. user 'u0'"):
        Dataset.from_frames(f, duplicates="raise")


def test_same_item_bought_at_another_time_is_not_a_duplicate():
    d = Dataset.from_frames(frame(users=["a", "a"], items=["x", "x"]))
    assert "duplicate_rows (kept)" not in d.cleaning


def test_cli_reads_a_quantity_column_and_reports_the_cleaning(tmp_path, capsys):
    frame(quantity=[1, -1, 0, 2, np.nan, 3]).to_csv(tmp_path / "e.csv", index=False)
    assert main(["info", "--interactions", str(tmp_path / "e.csv"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["interactions"] == 3
    assert info["cleaning"] == {"non_positive_quantity": 2, "missing_quantity": 1}
    args = ["info", "--interactions", str(tmp_path / "e.csv"), "--json", "--quantity-col", "none"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["interactions"] == 6


# ---------------------------------------------------------------------- files
def test_a_directory_as_the_data_file(tmp_path):
    (tmp_path / "events.csv").mkdir()
    with pytest.raises(ValueError, match="is a directory, not a data file"):
        read_dataset(tmp_path / "events.csv")


def test_an_empty_csv(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(ValueError, match=r"e.csv: cannot be read as CSV"):
        read_dataset(tmp_path / "e.csv")


def test_garbage_parquet(tmp_path):
    (tmp_path / "e.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match=r"e.parquet: cannot be read as parquet"):
        read_dataset(tmp_path / "e.parquet")


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        Dataset.from_frames({"user_id": [1]})
