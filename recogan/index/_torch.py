# ruff: noqa: E741  (D, I: faiss's names for scores and ids)
"""Exact inner-product search with torch (matmul + top-k): the index's exact search on CUDA.

Everything happens on the device, a chunk of queries at a time: the ``(chunk, N)`` score
block, the seen items (scattered to ``-inf`` in the block before top-k), the allowed subset
(the candidate columns gathered once per search) and the top-k with its tie rule. The host
only maps exclusion ids to columns and receives ``(chunk, k)`` results. The chunk holds at
most ``chunk_bytes`` of scores, so memory is bounded whatever the batch. The same code runs
on any torch device: tests run it on the CPU and compare it with the numpy path.

Tie rule (as :func:`recogan._topk.top_k` with ``ties_by_id``): equal scores are ordered by
item id, and where several items tie for the k-th place the smallest ids get in. Columns are
stored in id order, so "by id" is "by column" on the device.
"""

from __future__ import annotations

import numpy as np

from recogan.index._ops import pairs

#: Default bytes of float32 scores per chunk of queries (256 MiB).
CHUNK_BYTES = 1 << 28


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


class TorchExact:
    """Item vectors (sorted by id) and their ids on ``device``; rebuilt after every mutation.

    >>> te = TorchExact(vectors, ids, device="cuda")
    >>> D, I = te.search(xq, k=10, exclude=seen_csr, allowed=in_stock)
    """

    def __init__(
        self,
        vectors: np.ndarray,
        ids: np.ndarray,
        device: str = "cuda",
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        import torch

        if chunk_bytes <= 0:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        ids = np.asarray(ids, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        self.ids = ids[order]  # host copy, ascending: column c holds item ids[c]
        # id -> column, dense like the index's own positions (ids are small non-negative ints)
        self._col = np.full(int(self.ids[-1]) + 1 if len(ids) else 0, -1, dtype=np.int64)
        self._col[self.ids] = np.arange(len(self.ids))
        self.device = torch.device(device)
        xb = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32)[order])
        self.xb = torch.from_numpy(xb).to(self.device)  # (N, d)
        self.chunk_bytes = int(chunk_bytes)

    @property
    def ntotal(self) -> int:
        return int(self.xb.shape[0])

    def columns(self, ids: np.ndarray) -> np.ndarray:
        """Column of each item id; -1 for ids not in the index."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.full(ids.shape, -1, dtype=np.int64)
        ok = (ids >= 0) & (ids < len(self._col))
        out[ok] = self._col[ids[ok]]
        return out

    def chunk_rows(self, n_cols: int) -> int:
        """Queries per chunk: as many as keep the score block within ``chunk_bytes``."""
        return max(1, self.chunk_bytes // (4 * max(n_cols, 1)))

    def search(self, xq: np.ndarray, k: int, exclude=None, allowed=None):
        """Top-``k`` by inner product: ``(D, I)`` like faiss, float32 and int64 ``(B, k)``,
        best first, padded with ``-inf`` / ``-1`` when fewer than ``k`` items are eligible.

        ``exclude``: per-query ids to leave out (sparse rows or a sequence of id arrays, as
        :meth:`ItemIndex.search`); ``allowed``: 1-D ids, the only ones that may be returned.
        Unknown ids in either are ignored.
        """
        import torch

        xq = np.ascontiguousarray(np.atleast_2d(xq), dtype=np.float32)
        B = len(xq)
        D = np.full((B, k), -np.inf, dtype=np.float32)
        I = np.full((B, k), -1, dtype=np.int64)
        rows, ex_ids = pairs(exclude, B)  # checks that exclude has one row per query
        if B == 0 or self.ntotal == 0:
            return D, I
        ex_cols = self.columns(ex_ids)
        if allowed is None:
            cand_ids, xb = self.ids, self.xb
        else:
            allowed = np.unique(np.asarray(allowed, dtype=np.int64).ravel())
            cols = self.columns(allowed)
            cols = cols[cols >= 0]  # ascending, as ``allowed`` is sorted
            cand_ids = self.ids[cols]
            xb = self.xb.index_select(0, torch.from_numpy(cols).to(self.device))
            sub = np.full(self.ntotal, -1, dtype=np.int64)  # column -> candidate column
            sub[cols] = np.arange(len(cols))
            ex_cols = np.where(ex_cols >= 0, sub[np.maximum(ex_cols, 0)], -1)
        C = len(cand_ids)
        if C == 0:
            return D, I
        hit = ex_cols >= 0
        rows, ex_cols = rows[hit], ex_cols[hit]
        if len(rows) and (np.diff(rows) < 0).any():  # pairs() gives rows in order; be safe
            o = np.argsort(rows, kind="stable")
            rows, ex_cols = rows[o], ex_cols[o]
        kk = min(k, C)
        step = self.chunk_rows(C)
        with torch.inference_mode():
            for s in range(0, B, step):
                e = min(B, s + step)
                q = torch.from_numpy(xq[s:e]).to(self.device)
                scores = q @ xb.T  # (b, C)
                lo, hi = np.searchsorted(rows, [s, e])
                if hi > lo:
                    r = torch.from_numpy(rows[lo:hi] - s).to(self.device)
                    c = torch.from_numpy(ex_cols[lo:hi]).to(self.device)
                    scores.index_put_((r, c), torch.tensor(-np.inf, device=self.device))
                vals, cols = topk_by_column(scores, kk)
                vals = vals.cpu().numpy()
                items = cand_ids[cols.cpu().numpy()]
                ok = np.isfinite(vals)
                D[s:e, :kk] = np.where(ok, vals, -np.inf)
                I[s:e, :kk] = np.where(ok, items, -1)
        return D, I


def topk_by_column(scores, k: int):
    """The ``k`` best columns of each row of a torch ``(b, C)`` score block, best first:
    ``(values, columns)``. Equal scores are ordered by column, and of several columns tied
    for the k-th place the leftmost get in (``torch.topk`` alone leaves both unspecified).
    ``k`` must be at most ``C``."""
    import torch

    C = scores.shape[1]
    k1 = min(k + 1, C)
    vals, cols = torch.topk(scores, k1, dim=1, sorted=True)
    if k1 > k:
        # a tie across the k-th place: the (k+1)-th value equals the k-th (rare on real data)
        tied = (vals[:, k] == vals[:, k - 1]) & torch.isfinite(vals[:, k - 1])
        if bool(tied.any()):
            r = tied.nonzero().squeeze(1)
            sub = scores[r]  # (t, C)
            t = vals[r, k - 1 : k]  # the tied value
            eq = sub == t
            room = k - (sub > t).sum(1, keepdim=True)  # places left for the tied columns
            drop = eq & (eq.cumsum(1) > room)  # tied columns beyond the leftmost ``room``
            sub = sub.masked_fill(drop, -np.inf)
            # exactly k columns now score >= t: the top k is that set, whatever the order
            vals[r, :k], cols[r, :k] = torch.topk(sub, k, dim=1, sorted=True)
        vals, cols = vals[:, :k], cols[:, :k]
    # order: score descending, then column ascending (a stable sort after sorting by column)
    cols, perm = torch.sort(cols, dim=1)
    vals = vals.gather(1, perm)
    vals, perm = torch.sort(vals, dim=1, descending=True, stable=True)
    return vals, cols.gather(1, perm)
