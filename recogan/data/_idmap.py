"""Mapping between external ids (any hashable type) and dense integer indices."""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd


class IdMap:
    """A bijection between external ids and ``0..n-1``.

    ``ids[i]`` is the external id of index ``i``. Look-ups go through a pandas ``Index``
    (hash table), so mapping a million ids is one vectorised call.

    Look-ups normalise the type of what they are given to the type of the map: a map of
    integer ids finds ``17850`` also as ``"17850"`` (or ``17850.0``), a map of string ids finds
    ``"17850"`` also as ``17850``. Booleans never match.
    """

    __slots__ = ("_index", "_kind")

    def __init__(self, ids: Iterable) -> None:
        index = pd.Index(list(ids) if not isinstance(ids, (np.ndarray, pd.Index)) else ids)
        if index.hasnans:
            raise ValueError("ids contain a null value")
        if not index.is_unique:
            dup = index[index.duplicated()].unique()[:5].tolist()
            raise ValueError(f"ids are not unique (e.g. {dup})")
        self._index = index
        if pd.api.types.is_integer_dtype(index.dtype):
            self._kind = "int"
        elif len(index) and index.inferred_type == "string":
            self._kind = "str"
        else:
            self._kind = "other"

    @classmethod
    def from_values(cls, values: Iterable) -> IdMap:
        """Ids in order of first appearance in ``values``."""
        return cls(pd.unique(pd.Series(values)))

    @property
    def ids(self) -> np.ndarray:
        return self._index.to_numpy()

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, id_) -> bool:
        key = self._key(id_)
        return key is not _NO_MATCH and key in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._index.equals(other._index)

    def __hash__(self) -> int:  # pragma: no cover - identity semantics are enough
        return id(self)

    def __repr__(self) -> str:
        return f"IdMap(n={len(self)}, dtype={self._index.dtype})"

    def lookup(self, ids: Iterable, *, missing: str = "raise") -> np.ndarray:
        """Indices of ``ids``: int64 array, ``-1`` for unknown ids when ``missing="ignore"``.

        ``missing="raise"`` raises ``KeyError`` naming the first few unknown ids.
        """
        values = ids if isinstance(ids, (np.ndarray, pd.Index, pd.Series)) else list(ids)
        idx = self._index.get_indexer(self._keys(values)).astype(np.int64)
        if missing == "raise" and (idx < 0).any():
            unknown = pd.Index(values)[idx < 0].unique()
            raise KeyError(
                f"{len(unknown)} unknown id(s), e.g. {unknown[:5].tolist()} "
                f"(the map holds {len(self)} ids)"
            )
        if missing not in ("raise", "ignore"):
            raise ValueError(f"missing must be 'raise' or 'ignore', not {missing!r}")
        return idx

    def index_of(self, id_) -> int:
        """The index of one id; ``KeyError`` if unknown."""
        key = self._key(id_)
        try:
            if key is _NO_MATCH:
                raise KeyError(id_)
            return int(self._index.get_loc(key))
        except (KeyError, TypeError, pd.errors.InvalidIndexError):
            raise KeyError(f"unknown id {id_!r}") from None

    def to_ids(self, idx) -> np.ndarray:
        """External ids of an array of indices."""
        return self._index.to_numpy()[np.asarray(idx, dtype=np.int64)]

    # ------------------------------------------------------------------ id types
    def _key(self, id_):
        """``id_`` in the type of this map's ids (``_NO_MATCH`` when it cannot be one)."""
        if isinstance(id_, (bool, np.bool_)):
            return _NO_MATCH
        if self._kind == "int":
            if isinstance(id_, (int, np.integer)):
                return int(id_)
            if isinstance(id_, (str, np.str_)):
                text = id_.strip()
                return int(text) if _INT_TEXT.fullmatch(text) else _NO_MATCH
            if isinstance(id_, (float, np.floating)):
                return int(id_) if np.isfinite(id_) and float(id_).is_integer() else _NO_MATCH
            return id_
        if self._kind == "str":
            if isinstance(id_, (int, np.integer)):
                return str(int(id_))
            if isinstance(id_, (float, np.floating)) and np.isfinite(id_) and id_ == int(id_):
                return str(int(id_))
            if isinstance(id_, np.str_):
                return str(id_)
        return id_

    def _keys(self, values):
        """Many ids in the type of this map (vectorised where the types already agree)."""
        if isinstance(values, (pd.Index, pd.Series)):
            arr = values.to_numpy()
        elif isinstance(values, np.ndarray):
            arr = values
        else:  # a list: pandas keeps strings whole (numpy's "U" would drop trailing NULs)
            arr = pd.Index(values, tupleize_cols=False).to_numpy() if len(values) else values
            if not len(values):
                return values
        if arr.dtype == bool:
            return np.full(arr.shape, None, dtype=object)
        if self._kind == "int" and np.issubdtype(arr.dtype, np.integer):
            return arr
        if self._kind == "str" and np.issubdtype(arr.dtype, np.integer):
            return arr.astype(str).astype(object)
        if self._kind == "str" and arr.dtype.kind == "U":
            return arr.astype(object)
        if self._kind == "other" or not arr.size:
            return values
        inferred = pd.api.types.infer_dtype(arr, skipna=False)
        if (self._kind, inferred) in (("int", "integer"), ("str", "string")):
            return arr
        keys = [self._key(v) for v in arr.ravel().tolist()]
        return np.array([None if k is _NO_MATCH else k for k in keys], dtype=object)


# ---------------------------------------------------------------------- argument checks
_SCALARS = (int, np.integer, str, np.str_, float, np.floating)


def check_id(value, what: str, hint: str = "") -> None:
    """One id: an int or a str (an integer-valued float is read as that int). Anything else
    (a list, None, a bool, NaN) raises ``TypeError`` naming the argument."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        raise TypeError(f"{what} must be an id (int or str), got {value!r}")
    if not isinstance(value, _SCALARS):
        more = f"; {hint}" if hint else ""
        raise TypeError(f"{what} must be one id (int or str), got {type(value).__name__}{more}")
    if isinstance(value, (str, np.str_)) and not value.strip():
        raise ValueError(f"{what} is an empty string, not an id")
    if isinstance(value, (float, np.floating)) and not (
        np.isfinite(value) and float(value).is_integer()
    ):
        raise TypeError(f"{what} must be an id (int or str), got the number {value!r}")


def check_ids(values, what: str) -> list | np.ndarray:
    """A collection of ids (list, tuple, array, Series...). A bare string, a number or None
    raises ``TypeError``: a string is one id, not a list of one-character ids."""
    if isinstance(values, (str, bytes, np.str_)):
        raise TypeError(
            f"{what} must be a list of ids, not a single string {values!r}; "
            f"wrap it in a list: [{values!r}]"
        )
    if values is None or isinstance(values, (*_SCALARS, bool, np.bool_, dict)):
        raise TypeError(f"{what} must be a list of ids, got {type(values).__name__}")
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise TypeError(f"{what} must be a 1-D list of ids, got shape {values.shape}")
        if values.dtype.kind in "iuU":
            return values
        if values.dtype.kind == "b":
            raise TypeError(f"{what} must hold ids (int or str), not booleans")
        values = values.tolist()
    try:
        values = list(values)
    except TypeError:
        raise TypeError(f"{what} must be a list of ids, got {type(values).__name__}") from None
    for v in values:
        check_id(v, f"{what} entry")
    return values


#: A look-up key that matches no id.
_NO_MATCH = object()
_INT_TEXT = re.compile(r"[+-]?\d+")
