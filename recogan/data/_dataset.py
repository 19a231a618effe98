"""The ``Dataset``: interactions + optional catalog, id maps, CSR matrix, event times."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recogan._fs import as_path
from recogan.data._clean import (
    _clean_events,
    _numeric,
    _one_id_type,
    _reject_nulls,
    _require_columns,
    normalise_ids,
    parse_times,
)
from recogan.data._idmap import IdMap

log = logging.getLogger(__name__)

#: Columns of ``Dataset.interactions`` (dense indices, epoch seconds).
EVENT_COLUMNS = ("user", "item", "time")
#: Catalog attributes a Dataset understands; any may be absent.
CATALOG_ATTRS = ("title", "category", "price")


@dataclass(frozen=True)
class Dataset:
    """Interactions of users with items, in dense index space, plus an optional catalog.

    Attributes:
        interactions: DataFrame with int32 ``user``, int32 ``item``, int64 ``time`` (epoch
            seconds, UTC), and optional float ``quantity`` / ``price``; sorted by
            (time, user, item), index 0..n-1.
        users: external user ids ↔ indices.
        items: external item ids ↔ indices. Holds every catalog item too, so a product that
            was never bought still has an index (and, through its content, features).
        catalog: one row per item index (``len(items)`` rows, positional) with any of
            ``title``, ``category``, ``price``; ``None`` when no catalog was given.
        cleaning: rows removed by each cleaning rule, in the order applied.
        name: a label for reports.

    Splits return new Datasets that share ``users``, ``items`` and ``catalog``, so a model
    fitted on a training split scores the same index space as the test split.
    """

    interactions: pd.DataFrame
    users: IdMap
    items: IdMap
    catalog: pd.DataFrame | None = None
    cleaning: Mapping[str, int] = field(default_factory=dict)
    name: str = "dataset"

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(
        cls,
        interactions: pd.DataFrame,
        catalog: pd.DataFrame | None = None,
        *,
        user_col: str = "user_id",
        item_col: str = "item_id",
        time_col: str = "timestamp",
        quantity_col: str | None = "auto",
        price_col: str | None = None,
        catalog_item_col: str | None = None,
        title_col: str | None = "title",
        category_col: str | None = "category",
        catalog_price_col: str | None = "price",
        time_unit: str = "auto",
        check_times: bool = True,
        unknown_items: str = "keep",
        duplicates: str = "keep",
        name: str = "dataset",
        source: str = "interactions",
        catalog_source: str = "catalog",
        cleaning: Mapping[str, int] | None = None,
    ) -> Dataset:
        """Build a Dataset from an interactions frame and an optional catalog frame.

        Timestamps may be datetimes, numbers (epoch in ``time_unit``: ``"s"``, ``"ms"``,
        ``"us"``, ``"ns"``, or ``"auto"`` to tell by magnitude) or date strings; with
        ``check_times`` (default) any before 1990 or after next year is refused, naming the
        column, an example and the unit it looks like.

        Ids must be integers or strings. A column of integer-valued numbers becomes int64; a
        column mixing integers and strings becomes canonical strings (``17850`` → ``"17850"``;
        counted in ``cleaning``); item ids of the interactions and the catalog get one type.
        :class:`IdMap` look-ups accept an id as int or as its string either way.

        Cleaning, each rule counted in ``cleaning``: rows whose quantity (``quantity_col``;
        ``"auto"``: a column named ``quantity`` when there is one) is missing or not positive
        (returns, corrections) are removed (``missing_quantity``, ``non_positive_quantity``);
        rows with a negative price are removed (``negative_price``); catalog prices that are
        missing, zero or negative are kept as unknown and counted. Exact duplicate rows
        (same user, item, time, quantity and price) are ``duplicates="keep"``: kept and
        counted as ``duplicate_rows (kept)`` (repeat scans within a basket are real;
        every model here reads the binary matrix), ``"drop"``: removed and counted as
        ``duplicate_rows``, or ``"raise"``.

        ``unknown_items`` says what to do with interactions whose item is absent from a given
        catalog: ``"keep"`` (default; the item gets a catalog row with empty attributes and
        the count is recorded in ``cleaning['items_not_in_catalog (kept)']``), ``"drop"``
        (rows removed and counted) or ``"raise"``.
        Errors name the source, the column and an example of the bad value.
        """
        for arg, value in (("unknown_items", unknown_items), ("duplicates", duplicates)):
            if value not in ("keep", "drop", "raise"):
                raise ValueError(f"{arg} must be 'keep', 'drop' or 'raise', not {value!r}")
        if not isinstance(interactions, pd.DataFrame):
            raise TypeError(f"{source} must be a pandas DataFrame, not {type(interactions)}")
        if catalog is not None and not isinstance(catalog, pd.DataFrame):
            raise TypeError(f"{catalog_source} must be a pandas DataFrame, not {type(catalog)}")
        cleaning = dict(cleaning or {})
        if quantity_col == "auto":
            quantity_col = "quantity" if "quantity" in interactions.columns else None
        _require_columns(interactions, [user_col, item_col, time_col], source)
        if len(interactions) == 0:
            raise ValueError(f"{source} is empty: no interactions to build a dataset from")
        for col in (user_col, item_col):
            _reject_nulls(interactions[col], col, source)
        times = parse_times(
            interactions[time_col], time_col, source, unit=time_unit, check=check_times
        )
        user_ids, n_mixed = normalise_ids(interactions[user_col], user_col, source)
        if n_mixed:
            cleaning["mixed_type_user_ids (kept as strings)"] = n_mixed
        item_ids, n_mixed = normalise_ids(interactions[item_col], item_col, source)
        if n_mixed:
            cleaning["mixed_type_item_ids (kept as strings)"] = n_mixed

        events = pd.DataFrame({"user_id": user_ids, "item_id": item_ids})
        events["time"] = times
        for col, out in ((quantity_col, "quantity"), (price_col, "price")):
            if col is not None:
                _require_columns(interactions, [col], source)
                events[out] = _numeric(interactions[col], col, source)
        events = _clean_events(events, cleaning, duplicates, source)

        cat = None
        if catalog is not None:
            cat_item = catalog_item_col or item_col
            _require_columns(catalog, [cat_item], catalog_source)
            _reject_nulls(catalog[cat_item], cat_item, catalog_source)
            cat_ids, _ = normalise_ids(catalog[cat_item], cat_item, catalog_source)
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
                    f"{cat_item!r}, e.g. {dup.unique()[:5].tolist()}; each item must appear once"
                )
            cat = pd.DataFrame({"item_id": cat_ids})
            for attr, col in (
                ("title", title_col),
                ("category", category_col),
                ("price", catalog_price_col),
            ):
                if col is not None and col in catalog.columns:
                    cat[attr] = (
                        _numeric(catalog[col], col, catalog_source)
                        if attr == "price"
                        else catalog[col].to_numpy()
                    )
            if "price" in cat:
                bad = ~(cat["price"].to_numpy() > 0)  # missing, zero or negative
                if bad.any():  # item features treat these prices as unknown
                    cleaning["catalog_price_missing_or_non_positive (kept as unknown)"] = int(
                        bad.sum()
                    )
                    cat.loc[bad, "price"] = np.nan
            known = pd.Index(cat["item_id"])
            unknown = ~pd.Index(events["item_id"]).isin(known)
            n_unknown = int(unknown.sum())
            if n_unknown:
                example = events.loc[unknown, "item_id"].unique()[:5].tolist()
                msg = (
                    f"{n_unknown} interaction(s) in {source} name items absent from "
                    f"{catalog_source} (e.g. {example})"
                )
                if unknown_items == "raise":
                    raise ValueError(msg + "; pass unknown_items='keep' or 'drop'")
                if unknown_items == "drop":
                    events = events.loc[~unknown]
                    cleaning["items_not_in_catalog"] = n_unknown
                    if len(events) == 0:
                        raise ValueError(msg + ": no interactions left after dropping them")
                else:
                    cleaning["items_not_in_catalog (kept)"] = n_unknown
                log.info(msg + " (policy: %s)", unknown_items)

        users = IdMap.from_values(events["user_id"].to_numpy())
        item_ids = events["item_id"].to_numpy()
        if cat is not None:
            item_ids = np.concatenate([cat["item_id"].to_numpy(), item_ids])
        items = IdMap.from_values(item_ids)
        frame = pd.DataFrame(
            {
                "user": users.lookup(events["user_id"].to_numpy()).astype(np.int32),
                "item": items.lookup(events["item_id"].to_numpy()).astype(np.int32),
                "time": events["time"].to_numpy(np.int64),
            }
        )
        for extra in ("quantity", "price"):
            if extra in events:
                frame[extra] = events[extra].to_numpy(np.float64)
        if cat is not None:
            cat = (
                cat.set_index(pd.Index(items.lookup(cat["item_id"].to_numpy())))
                .reindex(np.arange(len(items)))
                .drop(columns="item_id")
                .reset_index(drop=True)
            )
        return cls(_sorted(frame), users, items, cat, cleaning, name)

    # ------------------------------------------------------------------ basic facts
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return len(self.interactions)

    def __len__(self) -> int:
        return self.n_interactions

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, users={self.n_users}, items={self.n_items}, "
            f"interactions={self.n_interactions})"
        )

    @property
    def user_idx(self) -> np.ndarray:
        return self.interactions["user"].to_numpy()

    @property
    def item_idx(self) -> np.ndarray:
        return self.interactions["item"].to_numpy()

    @property
    def times(self) -> np.ndarray:
        """Per-interaction epoch seconds (int64), aligned with ``interactions``."""
        return self.interactions["time"].to_numpy()

    def active_users(self) -> np.ndarray:
        """Sorted indices of users with at least one interaction here."""
        return np.unique(self.user_idx)

    def csr(self, *, binary: bool = True, weights: str | None = None) -> sp.csr_matrix:
        """User × item matrix (``n_users × n_items``, float32).

        ``binary=True`` gives 1 for every (user, item) pair seen; otherwise cells count events
        (or sum the ``weights`` column, e.g. ``"quantity"``).
        """
        if weights is not None:
            data = self.interactions[weights].to_numpy(np.float32)
        else:
            data = np.ones(self.n_interactions, dtype=np.float32)
        m = sp.csr_matrix(
            (data, (self.user_idx, self.item_idx)),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        return m

    def histories(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-user event sequences ordered by time: ``(indptr, items, times)``.

        Events of user ``u`` are ``items[indptr[u]:indptr[u+1]]`` with their ``times``.
        """
        order = np.lexsort((self.item_idx, self.times, self.user_idx))
        counts = np.bincount(self.user_idx, minlength=self.n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return indptr, self.item_idx[order], self.times[order]

    def item_popularity(self) -> np.ndarray:
        """Number of distinct users per item (int64, length ``n_items``)."""
        pairs = self.interactions[["user", "item"]].drop_duplicates()
        return np.bincount(pairs["item"].to_numpy(), minlength=self.n_items).astype(np.int64)

    def fingerprint(self) -> str:
        """sha256 of the interaction arrays and id maps: identifies the training data."""
        h = hashlib.sha256()
        for arr in (self.user_idx, self.item_idx, self.times):
            h.update(np.ascontiguousarray(arr).tobytes())
        for ids in (self.users.ids, self.items.ids):
            h.update(pd.util.hash_array(np.asarray(ids, dtype=object)).tobytes())
        return h.hexdigest()

    # ------------------------------------------------------------------ derived datasets
    def subset(self, mask: np.ndarray, *, name: str | None = None) -> Dataset:
        """A Dataset with the interactions where ``mask`` is true; same ids and catalog."""
        frame = self.interactions.loc[np.asarray(mask, dtype=bool)].reset_index(drop=True)
        return self._with(frame, name)

    def concat(self, other: Dataset, *, name: str | None = None) -> Dataset:
        """Interactions of both (same id space), re-sorted by time."""
        if other.users != self.users or other.items != self.items:
            raise ValueError("can only concatenate Datasets that share their id maps (splits)")
        frame = _sorted(pd.concat([self.interactions, other.interactions], ignore_index=True))
        return self._with(frame, name)

    def _with(self, frame: pd.DataFrame, name: str | None) -> Dataset:
        return Dataset(
            frame, self.users, self.items, self.catalog, self.cleaning, name or self.name
        )

    def item_titles(self) -> np.ndarray | None:
        if self.catalog is None or "title" not in self.catalog:
            return None
        return self.catalog["title"].to_numpy()

    def summary(self) -> dict:
        """Counts, time span, density and cleaning counts (JSON-friendly)."""
        t = self.times
        span = (
            (pd.Timestamp(int(t.min()), unit="s"), pd.Timestamp(int(t.max()), unit="s"))
            if len(t)
            else (None, None)
        )
        n_pairs = len(self.interactions[["user", "item"]].drop_duplicates())
        active_items = int(self.interactions["item"].nunique())
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "items_with_interactions": active_items,
            "interactions": self.n_interactions,
            "user_item_pairs": n_pairs,
            "first": None if span[0] is None else span[0].isoformat(),
            "last": None if span[1] is None else span[1].isoformat(),
            "density": n_pairs / max(1, self.n_users * self.n_items),
            "catalog_attributes": [] if self.catalog is None else list(self.catalog.columns),
            "cleaning": dict(self.cleaning),
        }

    def describe(self) -> str:
        """Human-readable summary."""
        s = self.summary()
        lines = [
            f"dataset        {s['name']}",
            f"users          {s['users']:,}",
            f"items          {s['items']:,} ({s['items_with_interactions']:,} with interactions)",
            f"interactions   {s['interactions']:,} ({s['user_item_pairs']:,} distinct user-item)",
            f"time span      {s['first']} .. {s['last']}",
            f"density        {s['density']:.4%}",
            f"catalog        {', '.join(s['catalog_attributes']) or 'none'}",
        ]
        if s["cleaning"]:
            lines.append("cleaning (rows removed or flagged):")
            lines += [f"  {k:<32} {v:>10,}" for k, v in s["cleaning"].items()]
        return "\n".join(lines)


# ---------------------------------------------------------------------- readers
def read_frame(path: str | Path, *, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a parquet or CSV file (by suffix; ``.csv.gz`` etc. work) into a DataFrame."""
    path = as_path(path, "data file")
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a data file (give a .parquet or .csv file)")
    suffixes = "".join(path.suffixes).lower()
    try:
        if ".parquet" in suffixes or suffixes.endswith(".pq"):
            return pd.read_parquet(path, columns=columns)
        if ".csv" in suffixes or ".tsv" in suffixes:
            sep = "\t" if ".tsv" in suffixes else ","
            return pd.read_csv(path, sep=sep, usecols=columns)
    except (ValueError, OSError) as e:  # pandas/pyarrow parse errors are ValueErrors
        raise ValueError(
            f"{path}: cannot be read as {'parquet' if 'parq' in suffixes else 'CSV'} "
            f"({type(e).__name__}: {e})"
        ) from e
    raise ValueError(f"{path}: unsupported file type (use .parquet or .csv)")


def read_dataset(
    interactions: str | Path,
    catalog: str | Path | None = None,
    **kwargs,
) -> Dataset:
    """Read interactions (and a catalog) from parquet/CSV paths; ``kwargs`` as in
    :meth:`Dataset.from_frames` (column mapping, ``unknown_items``...)."""
    kwargs.setdefault("name", as_path(interactions, "interactions").stem)
    inter = read_frame(interactions)
    cat = read_frame(catalog) if catalog is not None else None
    return Dataset.from_frames(
        inter,
        cat,
        source=str(interactions),
        catalog_source=str(catalog) if catalog is not None else "catalog",
        **kwargs,
    )


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    order = np.lexsort(
        (frame["item"].to_numpy(), frame["user"].to_numpy(), frame["time"].to_numpy())
    )
    return frame.iloc[order].reset_index(drop=True)
