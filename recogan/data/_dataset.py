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
    keep_known_items,
    read_catalog,
    read_events,
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
        columns = {"user": user_col, "item": item_col, "time": time_col}
        columns.update(quantity=quantity_col, price=price_col)
        events = read_events(
            interactions, columns, source, cleaning, time_unit=time_unit, check=check_times
        )
        events = _clean_events(events, cleaning, duplicates, source)
        cat = None
        if catalog is not None:
            attrs = {"title": title_col, "category": category_col, "price": catalog_price_col}
            cat_item = catalog_item_col or item_col
            where = {"source": source, "catalog_source": catalog_source}
            cat, events = read_catalog(catalog, cat_item, attrs, events, cleaning, **where)
            events = keep_known_items(events, cat, unknown_items, cleaning, **where)
        return cls(*_indexed(events, cat), cleaning, name)

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


def _indexed(events: pd.DataFrame, cat: pd.DataFrame | None):
    """Events and catalog in dense index space: ``(interactions, users, items, catalog)``;
    catalog items without events keep their index."""
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
    return _sorted(frame), users, items, cat


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    order = np.lexsort(
        (frame["item"].to_numpy(), frame["user"].to_numpy(), frame["time"].to_numpy())
    )
    return frame.iloc[order].reset_index(drop=True)
