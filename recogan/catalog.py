"""Catalogue changes between trainings: products added from their catalog rows, products
withdrawn, and the state that records both in a model bundle.

A fitted model knows the products it was trained on (indices ``0..n_trained-1``).

- :func:`add_items` appends new products after them (indices ``n_trained..``): the id map, the
  seen-items matrix, the popularity prior and the catalog grow by the new rows, and the model
  places each product (:meth:`recogan.base.Model.place_items`). The GAN computes its vector
  from its content with the fitted feature pipeline, taking its collaborative part from the
  trained products most similar in content, and gives it the prior of the products launched
  in the last weeks of training (weighted by their buyers; see
  :meth:`recogan.gan.model.GANRecommender.place_items`); Popularity ranks it after every
  sold product; models whose scores come only from purchases (EASE, ItemKNN, iALS) raise
  :class:`CannotPlaceItemsError`.
- :func:`remove_items` withdraws products: a mask that the service API and batch scoring
  apply to every result (for every model), plus the model's own part
  (:meth:`recogan.base.Model.withdraw_items`: the GAN drops them from its retrieval index).
  Withdrawn products keep their index, so a customer's history of them still counts, and
  :func:`restore_items` brings them back.

The changes travel with the model: :class:`CatalogChanges` is kept in ``model.catalog_changes_``
and saved in the bundle as ``catalog/changes.json`` (see :mod:`recogan.artifacts`), next to the
grown arrays. None of these functions is thread-safe on its own: the service API
(:class:`recogan.recommender.Recommender`) runs them under a :class:`ReadWriteLock`.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recogan.base import CannotPlaceItemsError
from recogan.data import IdMap, check_ids, normalise_ids

log = logging.getLogger(__name__)

__all__ = [
    "ATTRIBUTES",
    "CHANGES_FILE",
    "ID_COLUMNS",
    "CannotPlaceItemsError",  # declared with the contract (recogan.base), raised from here
    "CatalogChanges",
    "ReadWriteLock",
    "add_items",
    "changes_of",
    "drop_withdrawn",
    "new_rows",
    "overfetch",
    "remove_items",
    "restore_items",
    "withdrawn_mask",
]

#: Path of the catalogue-changes file inside a bundle version.
CHANGES_FILE = "catalog/changes.json"
FORMAT_VERSION = 1
#: Catalog attributes a new product's row may carry (others are ignored).
ATTRIBUTES = ("title", "category", "price")
#: Column names tried, in order, for the item id of a new product's row.
ID_COLUMNS = ("item_id", "id")


# ---------------------------------------------------------------------- the recorded state
@dataclass
class CatalogChanges:
    """Products added and withdrawn since training.

    Attributes:
        n_trained: products the model was fitted on; indices from here on were added.
        withdrawn: bool mask over every item index (True = withdrawn).
        log: one entry per change, oldest first: ``{"at", "action", "items"}`` (a count).
    """

    n_trained: int
    withdrawn: np.ndarray
    log: list[dict] = field(default_factory=list)

    @classmethod
    def none(cls, n_items: int) -> CatalogChanges:
        return cls(int(n_items), np.zeros(int(n_items), dtype=bool))

    @property
    def n_withdrawn(self) -> int:
        return int(self.withdrawn.sum())

    def n_added(self, n_items: int) -> int:
        return int(n_items) - self.n_trained

    def is_empty(self, n_items: int) -> bool:
        return self.n_added(n_items) == 0 and not self.withdrawn.any() and not self.log

    def record(self, action: str, n: int) -> None:
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        self.log.append({"at": now, "action": action, "items": int(n)})

    def summary(self, items: IdMap) -> dict:
        """JSON-friendly: trained count, added and withdrawn ids, the log."""
        ids = np.asarray(items.ids)
        return {
            "format_version": FORMAT_VERSION,
            "n_trained": self.n_trained,
            "added": _plain(ids[self.n_trained :]),
            "withdrawn": _plain(ids[np.flatnonzero(self.withdrawn)]),
            "log": list(self.log),
        }

    def to_bytes(self, items: IdMap) -> bytes:
        return json.dumps(self.summary(items), indent=1, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes, items: IdMap) -> CatalogChanges:
        """Parse and check :meth:`to_bytes`'s output against the bundle's item ids."""
        d = json.loads(data)
        if not isinstance(d, dict) or d.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"unsupported catalogue-changes format {d.get('format_version')!r}"
                if isinstance(d, dict)
                else "catalogue changes are not a JSON object"
            )
        n = len(items)
        n_trained = d.get("n_trained")
        if not isinstance(n_trained, int) or not 0 < n_trained <= n:
            raise ValueError(f"catalogue changes: n_trained={n_trained!r} for {n} items")
        added = list(d.get("added", []))
        if _plain(np.asarray(items.ids)[n_trained:]) != added:
            raise ValueError("catalogue changes: the added ids disagree with the bundle's items")
        idx = items.lookup(list(d.get("withdrawn", [])), missing="ignore")
        if (idx < 0).any():
            raise ValueError("catalogue changes: withdrawn ids the bundle does not know")
        withdrawn = np.zeros(n, dtype=bool)
        withdrawn[idx] = True
        return cls(n_trained, withdrawn, [dict(e) for e in d.get("log", [])])


def changes_of(model) -> CatalogChanges:
    """The model's catalogue changes (empty ones when it has none)."""
    changes = model.catalog_changes_
    return changes if changes is not None else CatalogChanges.none(model.n_items_)


def withdrawn_mask(model) -> np.ndarray | None:
    """Bool mask of withdrawn item indices, or None when nothing is withdrawn."""
    changes = model.catalog_changes_
    if changes is None or not changes.withdrawn.any():
        return None
    return changes.withdrawn


# ---------------------------------------------------------------------- changing a model
def add_items(model, catalog: pd.DataFrame, *, id_col: str | None = None, prior=None):
    """Append new products from their catalog rows; returns their item indices.

    ``catalog``: one row per new product with its id (column ``id_col``, else ``item_id`` or
    ``id``) and any of ``title``, ``category``, ``price``. Ids the model already knows
    (withdrawn ones included) are refused. ``prior``: the model's prior for the new products
    (None: its documented default; see :meth:`recogan.base.Model.place_items`). Either every
    row is added or, on an error, none.
    """
    model.check_fitted()
    ids, rows = new_rows(model, catalog, id_col)
    n_old, m = model.n_items_, len(ids)
    commit = model.place_items(rows, prior=prior)  # computes only; raises before any change
    changes = changes_of(model)
    items = IdMap(np.concatenate([np.asarray(model.items_.ids), ids]))
    seen = model.seen_
    seen = sp.csr_matrix((seen.data, seen.indices, seen.indptr), shape=(seen.shape[0], n_old + m))
    popularity = np.concatenate([np.asarray(model.popularity_, np.float64), np.zeros(m)])
    cat = _extend_catalog(model.catalog_, rows, n_old)
    commit()
    model.items_, model.n_items_, model.seen_ = items, n_old + m, seen
    model.popularity_, model.catalog_ = popularity, cat
    changes.withdrawn = np.concatenate([changes.withdrawn, np.zeros(m, dtype=bool)])
    changes.record("add", m)
    model.catalog_changes_ = changes
    log.info("added %d product(s) to %s", m, type(model).__name__)
    return np.arange(n_old, n_old + m, dtype=np.int64)


def remove_items(model, ids) -> tuple[np.ndarray, int]:
    """Withdraw products by external id. Returns the indices newly withdrawn and how many ids
    were unknown (ignored). Already withdrawn ids are left as they are."""
    model.check_fitted()
    idx, n_unknown = _known(model, ids, "ids")
    changes = changes_of(model)
    idx = idx[~changes.withdrawn[idx]]
    if len(idx) and changes.n_withdrawn + len(idx) >= model.n_items_:
        raise ValueError(
            "cannot withdraw every product of the catalogue: nothing could be recommended"
        )
    if len(idx):
        model.withdraw_items(idx)
        _mark_withdrawn(model, changes, idx, True, "remove")
    return idx, n_unknown


def restore_items(model, ids) -> tuple[np.ndarray, int]:
    """Bring withdrawn products back (their vectors and history as before). Returns the
    indices restored and how many ids were unknown; ids not withdrawn are left alone."""
    model.check_fitted()
    idx, n_unknown = _known(model, ids, "ids")
    changes = changes_of(model)
    idx = idx[changes.withdrawn[idx]]
    if len(idx):
        model.restore_items(idx)
        _mark_withdrawn(model, changes, idx, False, "restore")
    return idx, n_unknown


def _mark_withdrawn(model, changes, idx: np.ndarray, value: bool, action: str) -> None:
    """Record ``idx`` as withdrawn (or back) in a new mask, so readers holding the old one
    keep a whole state."""
    changes.withdrawn = changes.withdrawn.copy()
    changes.withdrawn[idx] = value
    changes.record(action, len(idx))
    model.catalog_changes_ = changes


def _known(model, ids, what: str) -> tuple[np.ndarray, int]:
    values = check_ids(ids, what)
    idx = model.items_.lookup(values, missing="ignore")
    return np.unique(idx[idx >= 0]).astype(np.int64), int((idx < 0).sum())


def new_rows(model, catalog, id_col: str | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Check new products' rows: their ids in the type of the model's item ids, and a frame of
    their attributes (``title``/``category`` as str or None, ``price`` float with unknown,
    zero or negative prices as NaN), one row per product in input order."""
    if not isinstance(catalog, pd.DataFrame):
        raise TypeError(f"new products must be a pandas DataFrame, not {type(catalog).__name__}")
    if id_col is None:
        id_col = next((c for c in ID_COLUMNS if c in catalog.columns), None)
        if id_col is None:
            raise ValueError(
                f"new products have no id column ({' or '.join(ID_COLUMNS)}; "
                f"columns: {list(map(str, catalog.columns))})"
            )
    elif id_col not in catalog.columns:
        raise ValueError(
            f"new products have no column {id_col!r} (columns: {list(map(str, catalog.columns))})"
        )
    if len(catalog) == 0:
        raise ValueError("no new products: the catalog rows are empty")
    col = catalog[id_col].reset_index(drop=True)
    if col.isna().any():
        raise ValueError(f"new products: {int(col.isna().sum())} row(s) without an id")
    ids = _as_item_ids(col, model.items_, id_col)
    dup = pd.Series(ids)[pd.Series(ids).duplicated()]
    if len(dup):
        raise ValueError(f"new products: duplicate id(s) {dup.unique()[:5].tolist()}")
    known = model.items_.lookup(ids, missing="ignore") >= 0
    if known.any():
        changes = model.catalog_changes_
        idx = model.items_.lookup(ids[known])
        gone = changes is not None and changes.withdrawn[idx].any()
        hint = " (withdrawn ones come back with restore_items)" if gone else ""
        raise ValueError(
            f"{int(known.sum())} new product id(s) are already in the catalogue, e.g. "
            f"{_plain(ids[known][:5])}{hint}"
        )
    rows = pd.DataFrame(index=pd.RangeIndex(len(ids)))
    for attr in ATTRIBUTES:
        if attr not in catalog.columns:
            continue
        values = catalog[attr].reset_index(drop=True)
        if attr == "price":
            price = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
            bad = values.notna().to_numpy() & np.isnan(price)
            if bad.any():
                raise ValueError(
                    f"new products: non-numeric price {values[bad].iloc[0]!r} "
                    f"(product {_plain(ids[bad][:1])[0]!r})"
                )
            rows["price"] = np.where(price > 0, price, np.nan)
        else:
            rows[attr] = [None if _missing(v) else str(v) for v in values.tolist()]
    ignored = sorted(set(map(str, catalog.columns)) - {id_col, *ATTRIBUTES})
    if ignored:
        log.info("new products: columns %s are not used", ignored)
    return ids, rows


def _as_item_ids(col: pd.Series, items: IdMap, name: str) -> np.ndarray:
    ids, _ = normalise_ids(col, name, "new products")
    if np.issubdtype(np.asarray(items.ids[:1]).dtype, np.integer):
        if ids.dtype == np.int64:
            return ids
        num = pd.to_numeric(pd.Series(ids).str.strip(), errors="coerce")
        bad = num.isna() | (num != np.floor(num))
        if bad.any():
            raise ValueError(
                f"new products: id {ids[bad.to_numpy()][0]!r} is not an integer "
                "(this model's item ids are integers)"
            )
        return num.to_numpy(np.int64)
    if ids.dtype == np.int64:
        return ids.astype(str).astype(object)
    return np.array([str(v).strip() for v in ids], dtype=object)


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA


def _extend_catalog(old: pd.DataFrame | None, rows: pd.DataFrame, n_old: int):
    """The catalog frame with the new rows appended (attributes the catalog lacks are added,
    empty for the trained products)."""
    if old is None and not len(rows.columns):
        return None
    old = pd.DataFrame(index=pd.RangeIndex(n_old)) if old is None else old
    out = pd.concat([old.reset_index(drop=True), rows], ignore_index=True, sort=False)
    for attr in ("title", "category"):
        if attr in out:  # keep missing strings as None (parquet-friendly)
            out[attr] = out[attr].astype(object).where(out[attr].notna(), None)
    return out


def _plain(values) -> list:
    return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(values).tolist()]


# ---------------------------------------------------------------------- results
def drop_withdrawn(items: np.ndarray, scores: np.ndarray, withdrawn: np.ndarray, n: int):
    """The first ``n`` entries per row that are not withdrawn, order kept, padded with
    ``-1`` / ``-inf``."""
    ok = (items >= 0) & ~withdrawn[np.maximum(items, 0)]
    order = np.argsort(~ok, axis=1, kind="stable")[:, :n]
    keep = np.take_along_axis(ok, order, 1)
    items = np.where(keep, np.take_along_axis(items, order, 1), -1)
    scores = np.where(keep, np.take_along_axis(scores, order, 1), -np.inf)
    if items.shape[1] < n:
        pad = ((0, 0), (0, n - items.shape[1]))
        items = np.pad(items, pad, constant_values=-1)
        scores = np.pad(scores, pad, constant_values=-np.inf)
    return items.astype(np.int64), scores.astype(np.float32)


def overfetch(n: int, withdrawn: np.ndarray | None, n_items: int) -> int:
    """Results to ask a model for so that ``n`` remain after dropping withdrawn products (the
    model's ranking does not depend on them, so ``n + #withdrawn`` always suffices)."""
    if withdrawn is None:
        return n
    return int(min(n_items, n + int(withdrawn.sum())))


# ---------------------------------------------------------------------- locking
class ReadWriteLock:
    """Many readers or one writer; a waiting writer goes first (readers arriving after it
    wait), so a steady stream of requests cannot starve a catalogue change. Reads are
    re-entrant per thread, and the writing thread may read."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer: int | None = None
        self._waiting = 0
        self._local = threading.local()

    @contextmanager
    def read(self) -> Iterator[None]:
        me = threading.get_ident()
        depth = getattr(self._local, "depth", 0)
        outer = depth == 0 and self._writer != me
        if outer:
            with self._cond:
                self._cond.wait_for(lambda: self._writer is None and not self._waiting)
                self._readers += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if outer:
                with self._cond:
                    self._readers -= 1
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        me = threading.get_ident()
        if getattr(self._local, "depth", 0) or self._writer == me:
            raise RuntimeError("a catalogue change cannot start inside a read or another change")
        with self._cond:
            self._waiting += 1
            try:
                self._cond.wait_for(lambda: self._writer is None and self._readers == 0)
            finally:
                self._waiting -= 1
            self._writer = me
        try:
            yield
        finally:
            with self._cond:
                self._writer = None
                self._cond.notify_all()
