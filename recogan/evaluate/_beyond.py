"""Beyond-accuracy metrics of top-K lists: what is recommended, not whether it was bought.

Aggregate over all lists (one number per model):

- ``coverage@K``   share of the catalog recommended to at least one user
- ``gini@K``       Gini coefficient of item exposure (0: every item shown equally often,
                   → 1: a few items take all the exposure)

Per user (averaged, with confidence intervals like the accuracy metrics):

- ``novelty@K``    mean self-information −log2 p(i) of the listed items, p(i) the share of
                   training customers who bought i (add-one smoothed); in bits, higher = less
                   obvious items
- ``diversity@K``  intra-list diversity: mean pairwise 1 − cosine(i, j) over the list, with item
                   vectors from the model's ``item_vectors()`` if it has one, else the
                   co-purchase cosine of the training matrix's item columns
- ``popbias@K``    mean popularity percentile (0 = least, 1 = most bought in training) of
                   the listed items
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import rankdata

from recogan._similarity import CoPurchase, VectorSimilarity


def coverage(recs: np.ndarray, n_items: int) -> float:
    """Distinct recommended items / catalog size (``-1`` padding ignored)."""
    r = recs[recs >= 0]
    return float(np.unique(r).size / n_items) if n_items else 0.0


def gini(recs: np.ndarray, n_items: int) -> float:
    """Gini coefficient of how often each catalog item appears in the lists."""
    counts = np.bincount(recs[recs >= 0], minlength=n_items).astype(np.float64)
    if counts.sum() == 0 or n_items < 2:
        return 0.0
    x = np.sort(counts)
    i = np.arange(1, n_items + 1)
    return float(((2 * i - n_items - 1) * x).sum() / (n_items * x.sum()))


def self_information(popularity: np.ndarray, n_users: int) -> np.ndarray:
    """−log2 of the (add-one smoothed) share of ``n_users`` who bought each item."""
    return -np.log2((np.asarray(popularity, np.float64) + 1.0) / (n_users + 1.0))


def popularity_percentile(popularity: np.ndarray) -> np.ndarray:
    """Each item's popularity percentile in [0, 1] (ties share their mean rank)."""
    n = len(popularity)
    if n < 2:
        return np.ones(n)
    return (rankdata(popularity, method="average") - 1.0) / (n - 1.0)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    n = mask.sum(1)
    return np.divide((values * mask).sum(1), n, out=np.full(len(values), np.nan), where=n > 0)


def intra_list_diversity(recs: np.ndarray, similarity) -> np.ndarray:
    """Per-list mean pairwise ``1 - similarity(i, j)``; ``similarity(items) -> (m, m)`` gives
    the similarity among a set of distinct items. Lists with < 2 items get NaN."""
    B, K = recs.shape
    if K < 2:
        return np.full(B, np.nan)
    uniq, inv = np.unique(np.maximum(recs, 0), return_inverse=True)
    inv = inv.reshape(B, K)
    S = np.asarray(similarity(uniq), dtype=np.float64)
    valid = recs >= 0
    sim = S[inv[:, :, None], inv[:, None, :]]  # (B, K, K)
    pair = valid[:, :, None] & valid[:, None, :] & ~np.eye(K, dtype=bool)[None]
    return _masked_mean((1.0 - sim).reshape(B, -1), pair.reshape(B, -1))


def vector_similarity(vectors: np.ndarray):
    """``similarity(items) -> (m, m)``: cosine among items from their vectors ``(n_items, d)``."""
    return VectorSimilarity(vectors, "cpu", {}).matrix


def copurchase_similarity(train_csr: sp.csr_matrix):
    """``similarity(items) -> (m, m)``: cosine of item columns of the binary training matrix,
    co-buyers / sqrt(n_i n_j)."""
    X = sp.csr_matrix(train_csr, dtype=np.float32, copy=True)
    X.data[:] = 1.0
    return CoPurchase(X).matrix


def list_metrics(
    recs: np.ndarray, ks, popularity: np.ndarray, n_train_users: int, similarity
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-user ``novelty/diversity/popbias@K`` and aggregate ``coverage/gini@K`` for each K."""
    recs = np.asarray(recs, dtype=np.int64)
    n_items = len(popularity)
    info = self_information(popularity, n_train_users)
    pct = popularity_percentile(popularity)
    safe = np.maximum(recs, 0)
    per_user, agg = {}, {}
    for k in sorted({int(k) for k in ks}):
        r, valid = recs[:, :k], recs[:, :k] >= 0
        per_user[f"novelty@{k}"] = _masked_mean(info[safe[:, :k]], valid)
        per_user[f"diversity@{k}"] = intra_list_diversity(r, similarity)
        per_user[f"popbias@{k}"] = _masked_mean(pct[safe[:, :k]], valid)
        agg[f"coverage@{k}"] = coverage(r, n_items)
        agg[f"gini@{k}"] = gini(r, n_items)
    return pd.DataFrame(per_user), agg


def head_items(popularity: np.ndarray, head_share: float = 0.2) -> np.ndarray:
    """Boolean mask of the ``head_share`` most-bought items (the short head)."""
    n_head = max(1, round(head_share * len(popularity)))
    order = np.lexsort((np.arange(len(popularity)), -np.asarray(popularity)))
    mask = np.zeros(len(popularity), dtype=bool)
    mask[order[:n_head]] = True
    return mask
