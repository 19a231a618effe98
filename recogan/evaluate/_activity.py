"""Customer-activity buckets of the report: customers by the distinct items they bought
before the test period (``n_history``), labelled ``"1-4"``, ..., ``"50+"``."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import numpy as np

#: Customer-activity buckets: distinct items bought before the test period.
ACTIVITY_EDGES = (1, 5, 10, 20, 50)


def activity_bucket(n_history: np.ndarray, edges=ACTIVITY_EDGES) -> np.ndarray:
    """Labels like ``"5-9"`` / ``"50+"`` for history lengths (``"0"`` below the first edge)."""
    labels = [f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(edges)] + [f"{edges[-1]}+"]
    idx = np.searchsorted(np.asarray(edges), n_history, side="right") - 1
    return np.where(idx >= 0, np.array(labels, dtype=object)[np.maximum(idx, 0)], "0")


def activity_order(labels: Iterable) -> list:
    """Activity bucket labels (``"0"``, ``"1-4"``, ..., ``"50+"``) from the least active."""
    return sorted(labels, key=lambda s: int(str(s).split("-")[0].rstrip("+")))
