"""Inputs of a batch job: the users to score and the item allow-list, from files or arrays."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from recogan import _fs
from recogan.catalog import withdrawn_mask
from recogan.data import check_ids

log = logging.getLogger(__name__)


def read_id_file(path: str | Path, column: str, idmap) -> np.ndarray:
    """External ids from a text file (one per line), CSV or parquet (column ``column`` or
    the only column), converted to the id type of ``idmap``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq", ".csv"):
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            frame = pd.read_parquet(path)
        if column in frame.columns:
            values = frame[column]
        elif frame.shape[1] == 1:
            values = frame.iloc[:, 0]
        else:
            raise ValueError(
                f"{path}: no column {column!r} (columns: {', '.join(map(str, frame.columns))})"
            )
    else:
        lines = [ln.strip() for ln in path.read_text().splitlines()]
        values = pd.Series([ln for ln in lines if ln and not ln.startswith("#")], dtype=object)
    if len(values) == 0:
        raise ValueError(f"{path}: no ids in the file (it is empty)")
    return _as_id_type(values, idmap, str(path))


def _as_id_type(values, idmap, source: str) -> np.ndarray:
    values = pd.Series(values)
    if np.issubdtype(np.asarray(idmap.ids[:1]).dtype, np.integer):
        num = pd.to_numeric(values, errors="coerce")
        bad = num.isna() | (num != np.floor(num))
        if bad.any():
            raise ValueError(
                f"{source}: id {values[bad].iloc[0]!r} is not an integer "
                "(this model's ids are integers)"
            )
        return num.astype(np.int64).to_numpy()
    return values.astype(str).str.strip().to_numpy(dtype=object)


def resolve_users(model, users) -> tuple[np.ndarray, str]:
    """Sorted unique model indices of ``users`` (None = all), and a description."""
    if users is None:
        return np.arange(model.n_users_, dtype=np.int64), "all"
    if isinstance(users, (str, Path)):
        ids, source = read_id_file(users, "user_id", model.users_), str(users)
    else:
        ids = np.asarray(check_ids(users, "users"), dtype=object)
        ids, source = _as_id_type(ids, model.users_, "users"), "list"
        if len(ids) == 0:
            raise ValueError("users: the list of user ids is empty")
    idx = model.users_.lookup(ids, missing="ignore")
    if (idx < 0).any():
        unknown = np.unique(np.asarray(ids)[idx < 0])
        raise ValueError(
            f"{source}: {unknown.size} user id(s) not in the model bundle, e.g. "
            f"{unknown[:5].tolist()} (the bundle has {model.n_users_} users)"
        )
    uniq = np.unique(idx)
    if uniq.size < idx.size:
        log.info("%s: %d duplicate user id(s) scored once", source, idx.size - uniq.size)
    return uniq.astype(np.int64), source


def resolve_filter(model, item_filter) -> tuple[np.ndarray | None, dict | None]:
    """Allowed item indices (sorted) of an allow-list, or None for the whole catalog."""
    if item_filter is None:
        return None, None
    if isinstance(item_filter, (str, Path)):
        ids, source = read_id_file(item_filter, "item_id", model.items_), str(item_filter)
    else:
        ids = np.asarray(check_ids(item_filter, "item_filter"), dtype=object)
        ids, source = _as_id_type(ids, model.items_, "filter"), "list"
    idx = model.items_.lookup(ids, missing="ignore")
    unknown = int((idx < 0).sum())
    allowed = np.unique(idx[idx >= 0]).astype(np.int64)
    if allowed.size == 0:
        raise ValueError(f"{source}: none of the {len(ids)} filter item id(s) is in the catalog")
    if unknown:
        log.warning("%s: %d item id(s) not in the catalog are ignored", source, unknown)
    withdrawn = withdrawn_mask(model)
    if withdrawn is not None and withdrawn[allowed].any():
        log.info("%s: %d withdrawn item(s) left out", source, int(withdrawn[allowed].sum()))
        allowed = allowed[~withdrawn[allowed]]
        if allowed.size == 0:
            raise ValueError(f"{source}: every filter item id is a withdrawn product")
    digest = _fs.sha256_bytes(allowed.astype("<i8").tobytes())
    return allowed, {"source": source, "items": int(allowed.size), "sha256": digest}
