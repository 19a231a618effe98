"""Mapping between external ids (any hashable type) and dense integer indices."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


class IdMap:
    """A bijection between external ids and ``0..n-1``.

    ``ids[i]`` is the external id of index ``i``. Look-ups go through a pandas ``Index``
    (hash table), so mapping a million ids is one vectorised call.
    """

    __slots__ = ("_index",)

    def __init__(self, ids: Iterable) -> None:
        index = pd.Index(list(ids) if not isinstance(ids, (np.ndarray, pd.Index)) else ids)
        if index.hasnans:
            raise ValueError("ids contain a null value")
        if not index.is_unique:
            dup = index[index.duplicated()].unique()[:5].tolist()
            raise ValueError(f"ids are not unique (e.g. {dup})")
        self._index = index

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
        return id_ in self._index

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
        idx = self._index.get_indexer(values).astype(np.int64)
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
        try:
            return int(self._index.get_loc(id_))
        except KeyError:
            raise KeyError(f"unknown id {id_!r}") from None

    def to_ids(self, idx) -> np.ndarray:
        """External ids of an array of indices."""
        return self._index.to_numpy()[np.asarray(idx, dtype=np.int64)]
