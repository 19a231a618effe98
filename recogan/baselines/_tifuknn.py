"""TIFU-KNN (Hu, He, Gong, Zhang & Liu, SIGIR 2020): next-basket recommendation from
time-decayed, grouped purchase frequencies and the customer's nearest neighbours.

A basket is one customer's purchases at one timestamp. A customer's baskets, oldest first, are
cut into groups of ``group_size`` (m) baskets counted from the latest, so the oldest group may
be shorter. Group ``G`` (its baskets ``b_1..b_|G|``, binary item vectors) is
``g = (1/|G|) Σ_j within_decay^(|G|-j) b_j``; with ``K`` groups ``g_1..g_K`` the customer's
vector is ``u = (1/K) Σ_i group_decay^(K-i) g_i``. The prediction is
``α u + (1 - α) mean(v over the k nearest customers)``, neighbours by Euclidean distance
between these vectors (the authors' code), the customer excluded.

It scores items already bought, so it serves ``exclude_seen=False`` (repeat purchases, where
the method is strongest) as well as ``exclude_seen=True`` (then only the neighbours' part
ranks). Anonymous histories form their baskets from ``times`` (equal times: one basket); without
times every item is its own basket, in the order given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recogan._config import require
from recogan._topk import topn
from recogan.base import Model


@dataclass
class TIFUKNNConfig:
    #: Nearest customers (k) whose vectors are averaged.
    neighbours: int = 300
    #: Weight α of the customer's own vector against the neighbours' mean.
    alpha: float = 0.7
    #: Baskets per group (m).
    group_size: int = 7
    #: Decay r_g from one group to the one before it.
    group_decay: float = 0.7
    #: Decay r_b from one basket to the one before it within a group.
    within_decay: float = 0.9
    #: Customers scored at once (bounds memory: block × n_users distances).
    block_size: int = 1024

    def __post_init__(self) -> None:
        require(self, "neighbours", ge=1)
        require(self, "alpha", ge=0, le=1)
        require(self, "group_size", ge=1)
        require(self, "group_decay", gt=0, le=1)
        require(self, "within_decay", gt=0, le=1)
        require(self, "block_size", ge=1)


def tifu_vectors(
    rows: np.ndarray,
    items: np.ndarray,
    times: np.ndarray,
    shape: tuple[int, int],
    cfg: TIFUKNNConfig,
) -> sp.csr_matrix:
    """The TIFU customer vectors ``(rows, items)`` of events ``(row, item, time)``."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return sp.csr_matrix(shape, dtype=np.float64)
    key = np.unique(
        np.stack([rows, np.asarray(times, dtype=np.int64), np.asarray(items, dtype=np.int64)], 1),
        axis=0,
    )  # distinct (row, time, item), sorted by row then time
    r, t, i = key[:, 0], key[:, 1], key[:, 2]
    new = np.ones(len(key), dtype=bool)
    new[1:] = (r[1:] != r[:-1]) | (t[1:] != t[:-1])
    basket = np.cumsum(new) - 1  # global basket number, in (row, time) order
    n_baskets = np.bincount(r[new], minlength=shape[0])
    first = np.concatenate([[0], np.cumsum(n_baskets)[:-1]])
    m = cfg.group_size
    from_end = n_baskets[r] - 1 - (basket - first[r])  # 0: the latest basket
    group_from_end = from_end // m  # 0: the latest group
    n_groups = -(-n_baskets[r] // m)  # ceil
    # the oldest group holds what is left over; the others hold m baskets
    size = np.where(group_from_end == n_groups - 1, n_baskets[r] - m * (n_groups - 1), m)
    w = (
        np.power(cfg.within_decay, from_end % m)
        / size
        * np.power(cfg.group_decay, group_from_end)
        / n_groups
    )
    U = sp.csr_matrix((w, (r, i)), shape=shape, dtype=np.float64)
    U.sum_duplicates()
    return U


class TIFUKNN(Model):
    """Temporal item frequency + user kNN (see the module docstring)."""

    name = "tifuknn"
    Config = TIFUKNNConfig

    @classmethod
    def search_space(cls) -> dict[str, list]:
        # the paper's ranges: r_b, r_g and α on a 0.1 grid in (0, 1], m up to 20 baskets,
        # k from a few tens to ~1,000 neighbours
        return {
            "neighbours": [10, 50, 100, 300, 500, 900],
            "alpha": [0.1, 0.3, 0.5, 0.7, 0.9],
            "group_size": [1, 3, 5, 7, 10, 20],
            "group_decay": [0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
            "within_decay": [0.5, 0.7, 0.9, 1.0],
        }

    def _fit(self, train, valid) -> None:
        self.vectors_ = tifu_vectors(
            train.user_idx,
            train.item_idx,
            train.times,
            (self.n_users_, self.n_items_),
            self.config,
        )

    def _predict(self, Q: sp.csr_matrix, self_rows: np.ndarray | None) -> np.ndarray:
        """``α q + (1 - α) mean of q's k nearest training customers`` per row of ``Q``;
        ``self_rows``: each row's own customer index (left out of its neighbours), or None."""
        c = self.config
        V = self.vectors_
        Q = sp.csr_matrix(Q, dtype=np.float64)
        has = np.diff(V.indptr) > 0  # customers with a history can be neighbours
        pool = np.flatnonzero(has)
        where = np.full(self.n_users_, -1)
        where[pool] = np.arange(len(pool))
        vn = np.asarray(V.multiply(V).sum(1)).ravel()
        out = np.empty((Q.shape[0], self.n_items_), dtype=np.float32)
        for s in range(0, Q.shape[0], c.block_size):
            q = Q[s : s + c.block_size]
            qn = np.asarray(q.multiply(q).sum(1)).ravel()
            d2 = qn[:, None] + vn[None, pool] - 2.0 * (q @ V[pool].T).toarray()
            if self_rows is not None:  # a customer is not their own neighbour
                own = where[self_rows[s : s + c.block_size]]
                mine = np.flatnonzero(own >= 0)
                d2[mine, own[mine]] = np.inf
            k = min(c.neighbours, len(pool) - (1 if self_rows is not None else 0))
            pred = c.alpha * q.toarray()
            if k > 0:
                nn = np.argpartition(d2, k - 1, axis=1)[:, :k]
                nn_d = np.take_along_axis(d2, nn, 1)
                # ties at the boundary broken by customer index, so the result is deterministic
                order = np.lexsort((nn, nn_d), axis=1)
                nn = np.take_along_axis(nn, order, 1)
                B = q.shape[0]
                W = sp.csr_matrix(
                    (np.full(B * k, 1.0 / k), (np.repeat(np.arange(B), k), pool[nn.ravel()])),
                    shape=(B, self.n_users_),
                )
                pred += (1.0 - c.alpha) * (W @ V).toarray()
            empty = qn == 0
            if empty.any():  # nothing to go by: the recent popularity every model keeps
                p = self.popularity_.astype(np.float64)
                pred[empty] = p / max(float(p.max()), 1e-12) * 1e-6
            out[s : s + q.shape[0]] = pred
        return out

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return self._predict(self.vectors_[user_idx], np.asarray(user_idx, dtype=np.int64))

    def recommend_history(self, histories, n=10, exclude_seen=True, candidates=None, times=None):
        self.check_fitted()
        X = self.history_matrix(histories)  # checks the indices
        n = self.check_n(n, candidates)
        rows, items, ts = [], [], []
        for r, h in enumerate(histories):
            h = np.asarray(h, dtype=np.int64).ravel()
            if times is not None:
                t = np.asarray(times[r], dtype=np.float64).ravel()
                if t.size != h.size:
                    raise ValueError(
                        f"times[{r}] has {t.size} entries for a history of {h.size} items"
                    )
            else:
                t = np.arange(h.size, dtype=np.float64)  # every item its own basket
            rows.append(np.full(h.size, r))
            items.append(h)
            ts.append(t)
        cat = np.concatenate
        Q = tifu_vectors(
            cat(rows) if rows else np.zeros(0, np.int64),
            cat(items) if items else np.zeros(0, np.int64),
            cat(ts) if ts else np.zeros(0),
            X.shape,
            self.config,
        )
        scores = self._predict(Q, None)
        return topn(scores, n, exclude=X if exclude_seen else None, candidates=candidates)

    def state_arrays(self) -> dict[str, np.ndarray]:
        V = self.vectors_
        return {"vec_indptr": V.indptr, "vec_indices": V.indices, "vec_data": V.data}

    def set_state_arrays(self, arrays) -> None:
        self.vectors_ = sp.csr_matrix(
            (arrays["vec_data"], arrays["vec_indices"], arrays["vec_indptr"]),
            shape=(self.n_users_, self.n_items_),
        )
