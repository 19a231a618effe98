"""Checks and cleaning rules of input data: columns, timestamps (unit and plausible years), id
types, quantities, prices and duplicates. Errors name the source, the column and an example;
every cleaning rule is counted (see :meth:`recogan.data.Dataset.from_frames`)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- validation helpers
def _require_columns(frame: pd.DataFrame, cols: list[str], source: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise ValueError(
            f"{source} is missing column(s) {names} (columns: {list(map(str, frame.columns))})"
        )


def _reject_nulls(col: pd.Series, name: str, source: str) -> None:
    nulls = col.isna().to_numpy()
    if nulls.any():
        first = int(np.flatnonzero(nulls)[0])
        raise ValueError(
            f"{source} has {int(nulls.sum())} null value(s) in id column {name!r} "
            f"(first at row {first}); remove or fill them before loading"
        )


def _numeric(col: pd.Series, name: str, source: str) -> np.ndarray:
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna() & col.notna()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{source} column {name!r} has {int(bad.sum())} non-numeric value(s), "
            f"e.g. {col.iloc[first]!r} at row {first}"
        )
    return values.to_numpy(np.float64)


#: Earliest plausible event time; the latest is the end of next year (see ``time_bounds``).
TIME_MIN = "1990-01-01"
#: Epoch units and their ticks per second.
TIME_UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def time_bounds() -> tuple[pd.Timestamp, pd.Timestamp]:
    """[1990-01-01, 1 January of the year after next): what ``check_times`` accepts."""
    return pd.Timestamp(TIME_MIN), pd.Timestamp(year=pd.Timestamp.now().year + 2, month=1, day=1)


def guess_time_unit(values: np.ndarray) -> str:
    """The epoch unit whose magnitude fits numeric timestamps (their median) best."""
    v = np.abs(np.asarray(values, dtype=np.float64))
    v = v[np.isfinite(v)]
    m = float(np.median(v)) if v.size else 0.0
    for unit, limit in (("s", 1e11), ("ms", 1e14), ("us", 1e17)):
        if m < limit:
            return unit
    return "ns"


def parse_times(
    col: pd.Series,
    name: str = "time",
    source: str = "data",
    unit: str = "auto",
    *,
    check: bool = True,
):
    """Epoch seconds (int64) from datetimes, epoch numbers (``unit``; ``"auto"``: told by
    magnitude) or date strings.

    Raises ``ValueError`` giving the count and an example of unparseable or null values, and
    (with ``check``) of times before 1990 or after next year, with the unit they look like.
    """
    if unit != "auto" and unit not in TIME_UNITS:
        raise ValueError(f"time_unit must be 'auto' or one of {list(TIME_UNITS)}, not {unit!r}")
    col = pd.Series(col).reset_index(drop=True)
    numeric = None
    if pd.api.types.is_bool_dtype(col):
        raise ValueError(f"{source} column {name!r} holds booleans, not timestamps")
    if pd.api.types.is_datetime64_any_dtype(col):
        parsed = col
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_numeric_dtype(col):
        numeric = col.astype(np.float64)
    else:
        num = pd.to_numeric(col, errors="coerce")
        if len(col) and num.notna().all():  # epoch numbers written as text
            numeric = num.astype(np.float64)
        else:
            parsed = pd.to_datetime(col, errors="coerce", format="mixed", utc=True)
            parsed = parsed.dt.tz_localize(None)
    if numeric is not None:
        unit = guess_time_unit(numeric.to_numpy()) if unit == "auto" else unit
        values = numeric.to_numpy()
        bad = ~np.isfinite(values)
        _refuse_unparseable(col, bad, name, source, unit)
        if check:
            _check_epochs(col, values, name, source, unit)
        parsed = pd.to_datetime(numeric, unit=unit, errors="coerce")
    bad = parsed.isna().to_numpy()
    _refuse_unparseable(col, bad, name, source, unit)
    if check and numeric is None:
        lo, hi = time_bounds()
        out = ((parsed < lo) | (parsed >= hi)).to_numpy()
        if out.any():
            first = int(np.flatnonzero(out)[0])
            raise ValueError(
                f"{source} column {name!r} has {int(out.sum())} implausible timestamp(s) "
                f"(before {lo.date()} or after {(hi - pd.Timedelta(days=1)).date()}), e.g. "
                f"{col.iloc[first]!r} at row {first}; fix or remove them "
                "(check_times=False accepts them)"
            )
    return parsed.to_numpy(dtype="datetime64[s]").astype(np.int64)


def _refuse_unparseable(col, bad, name, source, unit) -> None:
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{source} column {name!r} has {int(bad.sum())} unparseable or missing "
            f"timestamp(s), e.g. {col.iloc[first]!r} at row {first} "
            f"(accepted: datetimes, epoch numbers in unit {unit!r}, date strings)"
        )


def _check_epochs(col, values: np.ndarray, name: str, source: str, unit: str) -> None:
    """Refuse epoch numbers that fall outside the plausible years in ``unit``."""
    lo, hi = time_bounds()
    lo_s, hi_s = lo.value / 1e9, hi.value / 1e9
    seconds = values / TIME_UNITS[unit]
    out = (seconds < lo_s) | (seconds >= hi_s)
    if not out.any():
        return
    first = int(np.flatnonzero(out)[0])
    v = float(values[first])
    fits = [u for u, k in TIME_UNITS.items() if lo_s <= v / k < hi_s]
    when = _epoch_text(seconds[first])
    likely = (
        f"they look like epoch {_UNIT_WORDS[fits[0]]}: pass time_unit={fits[0]!r} "
        "(--time-unit on the command line)"
        if fits
        else "no epoch unit makes this a plausible date (check_times=False accepts it)"
    )
    example = int(v) if float(v).is_integer() else v
    raise ValueError(
        f"{source} column {name!r} has {int(out.sum())} implausible timestamp(s): read as epoch "
        f"{_UNIT_WORDS[unit]}, {example!r} at row {first} is {when}, outside "
        f"{lo.date()} .. {(hi - pd.Timedelta(days=1)).date()}; {likely}"
    )


_UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def _epoch_text(seconds: float) -> str:
    if abs(seconds) < 9e9:  # within what pandas timestamps hold (years 1677..2262)
        return str(pd.Timestamp(seconds, unit="s").date())
    return f"around the year {1970 + seconds / (365.2425 * 86400):,.0f}"


# ---------------------------------------------------------------------- ids
def normalise_ids(col: pd.Series, name: str, source: str) -> tuple[np.ndarray, int]:
    """One id type per column: int64 for integers (integer-valued floats included), str
    for strings; a column mixing both becomes canonical strings (``17850`` → ``"17850"``).
    Returns the ids and how many values were converted to strings. Booleans, non-integer
    numbers and other objects are refused with an example."""
    col = pd.Series(col).reset_index(drop=True)
    if pd.api.types.is_bool_dtype(col):
        raise ValueError(f"{source} id column {name!r} holds booleans; ids are integers or strings")
    if pd.api.types.is_integer_dtype(col):
        return col.to_numpy(np.int64), 0
    if pd.api.types.is_float_dtype(col):
        v = col.to_numpy(np.float64)
        frac = v != np.floor(v)
        if frac.any():
            first = int(np.flatnonzero(frac)[0])
            raise ValueError(
                f"{source} id column {name!r} has {int(frac.sum())} non-integer number(s), "
                f"e.g. {float(v[first])!r} at row {first}; ids are integers or strings"
            )
        return v.astype(np.int64), 0
    values = col.astype(object).to_numpy()
    is_str = np.fromiter((isinstance(x, str) for x in values), bool, len(values))
    is_int = np.fromiter((_int_like(x) for x in values), bool, len(values))
    other = ~(is_str | is_int)
    if other.any():
        first = int(np.flatnonzero(other)[0])
        raise ValueError(
            f"{source} id column {name!r} has {int(other.sum())} value(s) that are neither "
            f"integers nor strings, e.g. {values[first]!r} ({type(values[first]).__name__}) at "
            f"row {first}"
        )
    if is_int.all():
        return np.array([int(x) for x in values], dtype=np.int64), 0
    if is_str.all():
        _warn_stray_ids(values, name, source)
        return values, 0
    log.warning(
        "%s id column %r mixes %d integer and %d string value(s) (e.g. %r and %r): all ids are "
        "kept as strings; look-ups accept 17850 or '17850' alike",
        source,
        name,
        int(is_int.sum()),
        int(is_str.sum()),
        values[is_int][0],
        values[is_str][0],
    )
    out = values.copy()
    out[is_int] = [str(int(x)) for x in values[is_int]]
    return out, int(is_int.sum())


def _int_like(x) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return False
    if isinstance(x, (int, np.integer)):
        return True
    return isinstance(x, (float, np.floating)) and np.isfinite(x) and float(x).is_integer()


def _warn_stray_ids(values: np.ndarray, name: str, source: str) -> None:
    """String ids that are nearly all integers: a stray non-integer id is likely a typo (and
    made every id a string)."""
    uniq = pd.unique(values)
    digits = pd.Series(uniq).str.fullmatch(r"[+-]?\d+").to_numpy()
    stray = uniq[~digits]
    if 0 < stray.size <= max(1, uniq.size // 100) and digits.any():
        log.warning(
            "%s id column %r: %d of %d distinct ids are not integers (e.g. %r); all ids are "
            "kept as strings (look-ups accept 17850 or '17850')",
            source,
            name,
            stray.size,
            uniq.size,
            stray[0],
        )


def _one_id_type(cat_ids: np.ndarray, event_ids: np.ndarray):
    """Catalog and interaction item ids of one type: when one side is int and the other str,
    both become strings. Returns (catalog ids, converted event ids or None)."""
    cat_int = np.issubdtype(np.asarray(cat_ids).dtype, np.integer)
    ev_int = np.issubdtype(np.asarray(event_ids).dtype, np.integer)
    if cat_int == ev_int:
        return cat_ids, None
    if cat_int:
        return np.array([str(x) for x in cat_ids], dtype=object), None
    return cat_ids, np.array([str(x) for x in event_ids], dtype=object)


# ---------------------------------------------------------------------- cleaning
def drop_rows(df: pd.DataFrame, cleaning: dict[str, int], rule: str, mask) -> pd.DataFrame:
    """``df`` without the rows of ``mask``, their count recorded as ``cleaning[rule]`` (0
    included): the loaders' way of counting each cleaning rule."""
    mask = np.asarray(mask, dtype=bool)
    cleaning[rule] = int(mask.sum())
    return df.loc[~mask]


def _clean_events(events: pd.DataFrame, cleaning: dict, duplicates: str, source: str):
    """Quantity, price and duplicate rules (see :meth:`Dataset.from_frames`), each counted."""

    def drop(rule: str, mask: np.ndarray) -> None:
        nonlocal events
        n = int(mask.sum())
        if n:
            cleaning[rule] = cleaning.get(rule, 0) + n
            log.info("%s: removed %d row(s): %s", source, n, rule)
            events = events.loc[~mask]

    if "quantity" in events:
        q = events["quantity"].to_numpy()
        drop("missing_quantity", np.isnan(q))
        drop("non_positive_quantity", events["quantity"].to_numpy() <= 0)
    if "price" in events:
        drop("negative_price", events["price"].to_numpy() < 0)
    if len(events) == 0:
        raise ValueError(
            f"{source}: no interactions left after cleaning ({cleaning}); are quantities positive?"
        )
    dup = events.duplicated().to_numpy()
    n_dup = int(dup.sum())
    if n_dup:
        first = events.loc[dup].iloc[0]
        example = f"user {first['user_id']!r}, item {first['item_id']!r}"
        if duplicates == "raise":
            raise ValueError(
                f"{source} has {n_dup} exact duplicate row(s), e.g. {example}; pass "
                "duplicates='keep' or 'drop'"
            )
        if duplicates == "drop":
            drop("duplicate_rows", dup)
        else:
            cleaning["duplicate_rows (kept)"] = n_dup
            log.info("%s: %d exact duplicate row(s) kept (e.g. %s)", source, n_dup, example)
    return events.reset_index(drop=True)


# ---------------------------------------------------------------------- the steps of from_frames
def read_events(
    interactions: pd.DataFrame,
    columns: dict,
    source: str,
    cleaning: dict,
    *,
    time_unit: str,
    check: bool,
) -> pd.DataFrame:
    """``user_id, item_id, time[, quantity, price]`` from the interactions' ``columns`` (role
    → column name; quantity and price may be None), each checked."""
    user_col, item_col, time_col = columns["user"], columns["item"], columns["time"]
    _require_columns(interactions, [user_col, item_col, time_col], source)
    if len(interactions) == 0:
        raise ValueError(f"{source} is empty: no interactions to build a dataset from")
    for col in (user_col, item_col):
        _reject_nulls(interactions[col], col, source)
    times = parse_times(interactions[time_col], time_col, source, unit=time_unit, check=check)
    user_ids, n_mixed = normalise_ids(interactions[user_col], user_col, source)
    if n_mixed:
        cleaning["mixed_type_user_ids (kept as strings)"] = n_mixed
    item_ids, n_mixed = normalise_ids(interactions[item_col], item_col, source)
    if n_mixed:
        cleaning["mixed_type_item_ids (kept as strings)"] = n_mixed
    events = pd.DataFrame({"user_id": user_ids, "item_id": item_ids})
    events["time"] = times
    for out in ("quantity", "price"):
        col = columns.get(out)
        if col is not None:
            _require_columns(interactions, [col], source)
            events[out] = _numeric(interactions[col], col, source)
    return events


def read_catalog(
    catalog: pd.DataFrame,
    item_col: str,
    attrs: dict,
    events: pd.DataFrame,
    cleaning: dict,
    *,
    source: str,
    catalog_source: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``item_id`` and the attributes ``attrs`` names (``title``, ``category``, ``price`` →
    column or None) of each catalog item, checked; and the events, with item ids turned into
    strings where the catalog's and the events' id types differ."""
    _require_columns(catalog, [item_col], catalog_source)
    _reject_nulls(catalog[item_col], item_col, catalog_source)
    cat_ids, _ = normalise_ids(catalog[item_col], item_col, catalog_source)
    cat_ids, converted = _one_id_type(cat_ids, events["item_id"].to_numpy())
    if converted is not None:
        log.warning(
            "item ids of %s and %s differ in type: all are kept as strings",
            source,
            catalog_source,
        )
        events["item_id"] = converted
    dup = pd.Series(cat_ids)[pd.Series(cat_ids).duplicated()]
    if len(dup):
        raise ValueError(
            f"{catalog_source} has {len(dup)} duplicate item id(s) in column "
            f"{item_col!r}, e.g. {dup.unique()[:5].tolist()}; each item must appear once"
        )
    cat = pd.DataFrame({"item_id": cat_ids})
    for attr, col in attrs.items():
        if col is not None and col in catalog.columns:
            cat[attr] = (
                _numeric(catalog[col], col, catalog_source)
                if attr == "price"
                else catalog[col].to_numpy()
            )
    if "price" in cat:
        bad = ~(cat["price"].to_numpy() > 0)  # missing, zero or negative
        if bad.any():  # item features treat these prices as unknown
            cleaning["catalog_price_missing_or_non_positive (kept as unknown)"] = int(bad.sum())
            cat.loc[bad, "price"] = np.nan
    return cat, events


def keep_known_items(
    events: pd.DataFrame,
    cat: pd.DataFrame,
    policy: str,
    cleaning: dict,
    *,
    source: str,
    catalog_source: str,
) -> pd.DataFrame:
    """Apply ``policy`` (``keep``, ``drop`` or ``raise``) to events whose item is absent from
    the catalog."""
    unknown = ~pd.Index(events["item_id"]).isin(pd.Index(cat["item_id"]))
    n_unknown = int(unknown.sum())
    if not n_unknown:
        return events
    example = events.loc[unknown, "item_id"].unique()[:5].tolist()
    msg = (
        f"{n_unknown} interaction(s) in {source} name items absent from "
        f"{catalog_source} (e.g. {example})"
    )
    if policy == "raise":
        raise ValueError(msg + "; pass unknown_items='keep' or 'drop'")
    if policy == "drop":
        events = events.loc[~unknown]
        cleaning["items_not_in_catalog"] = n_unknown
        if len(events) == 0:
            raise ValueError(msg + ": no interactions left after dropping them")
    else:
        cleaning["items_not_in_catalog (kept)"] = n_unknown
    log.info(msg + " (policy: %s)", policy)
    return events
