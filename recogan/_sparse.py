"""A sparse matrix as a model's bundle arrays (``state_arrays``): ``{prefix}_indptr``,
``{prefix}_indices`` and ``{prefix}_data``, and back."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def csr_state(prefix: str, M: sp.csr_matrix) -> dict[str, np.ndarray]:
    """The arrays of CSR matrix ``M`` under ``prefix``."""
    return {f"{prefix}_indptr": M.indptr, f"{prefix}_indices": M.indices, f"{prefix}_data": M.data}


def csr_from_state(arrays, prefix: str, shape: tuple[int, int] | None = None) -> sp.csr_matrix:
    """The CSR matrix :func:`csr_state` saved under ``prefix``; ``shape`` None: square, as
    many columns as rows."""
    indptr = arrays[f"{prefix}_indptr"]
    if shape is None:
        shape = (len(indptr) - 1, len(indptr) - 1)
    return sp.csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], indptr), shape=shape
    )
