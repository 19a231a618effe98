"""Ranking metrics per user, from a model's top-K lists and the items each user bought next,
and the one scorer of a fitted model on a period (:func:`score`).

This module sits just above :mod:`recogan.data`: models use it to early-stop
(:func:`validation_ndcg`, the default validation scorer), the tuner and the evaluation to score.

Targets (:data:`TARGETS`) of a user are, by default (``new``), the test items they had not
bought before (the model's ``seen_`` row): with seen items excluded from the ranking,
re-purchases could never be hit. ``all`` counts every test purchase and ``repeat`` only the
re-purchases; both rank with the seen items kept. Users with no target are not scored.

With ``all`` and ``repeat`` the per-user frame also splits accuracy into its repeat and
explore parts, as the "Next Basket Recommendation Reality Check" (Li et al., ACM TOIS 2023)
does: ``repeat_ratio@K`` (share of the list's items the user bought before),
``target_repeat_share`` (share of the targets that are re-purchases), and ``Recall`` and
``NDCG`` on the repeat targets (``Recall_repeat@K``, ``NDCG_repeat@K``; NaN for a user
without one) and on the explore targets (``Recall_explore@K``, ``NDCG_explore@K``; NaN for a
user without one). Means skip the NaNs: each part is averaged over the users who have it.

Definitions for one user with target set T and ranked list r_1..r_K (hits h_i = r_i ∈ T):

- ``HR@K``       1 if any h_i else 0
- ``Precision@K`` Σ h_i / K
- ``Recall@K``   Σ h_i / |T|
- ``NDCG@K``     Σ h_i / log2(i+1)  divided by the ideal Σ_{i ≤ min(|T|, K)} 1 / log2(i+1)
- ``MRR@K``      1 / (rank of the first hit), 0 without a hit
- ``MAP@K``      Σ_i h_i · Precision@i / min(|T|, K)
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recogan.data import Dataset

#: The per-user accuracy metrics, in report order.
ACCURACY_METRICS = ("HR", "NDCG", "Recall", "Precision", "MRR", "MAP")
#: The metric models early-stop on and every model is tuned on.
VALIDATION_METRIC = "NDCG@10"

#: What counts as a target: ``new`` (items the user had not bought before; lists exclude the
#: seen items), ``all`` (every test purchase) or ``repeat`` (only re-purchases); the last two
#: rank with the seen items kept.
TARGETS = ("new", "all", "repeat")

#: ``(users, targets, seen) -> (B, C)`` candidate items per scored user (``-1`` pads).
CandidateSampler = Callable[[np.ndarray, sp.csr_matrix, sp.csr_matrix], np.ndarray]


def check_targets(targets) -> str:
    """``targets`` checked: one of :data:`TARGETS`, or a ``ValueError`` naming it."""
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {', '.join(TARGETS)}; got {targets!r}")
    return targets


def target_matrix(
    test: Dataset,
    seen: sp.csr_matrix | None,
    users: np.ndarray | None = None,
    targets: str = "new",
) -> tuple[np.ndarray, sp.csr_matrix]:
    """``(users, T)``: the users to score and a binary ``(len(users), n_items)`` target matrix
    of their test items: by ``targets`` (:data:`TARGETS`) those not in ``seen`` (their
    history; ``new``), all of them, or those in it (``repeat``). Users without targets are
    dropped."""
    T = test.csr(binary=True)
    check_targets(targets)
    if seen is not None and targets != "all":
        again = T.multiply(seen).tocsr()
        T = again if targets == "repeat" else T - again
        T = sp.csr_matrix(T)
        T.eliminate_zeros()
    candidates = test.active_users() if users is None else np.asarray(users, dtype=np.int64)
    counts = np.diff(T.indptr)[candidates]
    users = candidates[counts > 0]
    return users, T[users]


def ranking_metrics(recs: np.ndarray, targets: sp.csr_matrix, ks=(10,)) -> pd.DataFrame:
    """Per-user metrics for each K in ``ks`` from ``recs`` (``(B, >= max K)`` item indices,
    ``-1`` padding) and a binary ``(B, n_items)`` target matrix. Columns ``"<metric>@<K>"``."""
    recs = np.asarray(recs, dtype=np.int64)
    ks = sorted({int(k) for k in ks})
    if recs.shape[1] < ks[-1]:
        raise ValueError(f"recommendation lists have {recs.shape[1]} items, need {ks[-1]}")
    targets = sp.csr_matrix(targets)
    B = recs.shape[0]
    if targets.shape[0] != B:
        raise ValueError(f"{B} recommendation rows but {targets.shape[0]} target rows")
    n_targets = np.diff(targets.indptr).astype(np.float64)
    safe = np.maximum(recs, 0)
    rows = np.repeat(np.arange(B), recs.shape[1]).reshape(B, -1)
    hits = (np.asarray(targets[rows.ravel(), safe.ravel()]).reshape(B, -1) > 0) & (recs >= 0)
    discount = 1.0 / np.log2(np.arange(2, recs.shape[1] + 2))
    out = {}
    for k in ks:
        h = hits[:, :k].astype(np.float64)
        n_hit = h.sum(1)
        ideal_n = np.minimum(n_targets, k).astype(np.int64)
        ideal = np.concatenate([[0.0], np.cumsum(discount[:k])])[ideal_n]
        first = np.where(n_hit > 0, h.argmax(1) + 1, 0)
        prec_at_i = np.cumsum(h, 1) / np.arange(1, k + 1)
        out[f"HR@{k}"] = (n_hit > 0).astype(np.float64)
        out[f"NDCG@{k}"] = np.divide(
            (h * discount[:k]).sum(1), ideal, where=ideal > 0, out=np.zeros(B)
        )
        out[f"Recall@{k}"] = np.divide(n_hit, n_targets, where=n_targets > 0, out=np.zeros(B))
        out[f"Precision@{k}"] = n_hit / k
        out[f"MRR@{k}"] = np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0)
        out[f"MAP@{k}"] = np.divide(
            (prec_at_i * h).sum(1), ideal_n, where=ideal_n > 0, out=np.zeros(B)
        )
    return pd.DataFrame(out)


def score(
    model,
    test: Dataset,
    ks=(10,),
    *,
    users: np.ndarray | None = None,
    exclude_seen: bool | None = None,
    candidates: CandidateSampler | None = None,
    batch_size: int = 2048,
    targets: str = "new",
) -> tuple[pd.DataFrame, np.ndarray]:
    """Score ``model`` (fitted on the history before ``test``) on ``test``: per-user metrics and
    the ``(users, max K)`` recommendation lists.

    Full-catalog ranking (seen items excluded as ``exclude_seen`` says; None: for ``new``
    targets only), or ranking of the per-user lists ``candidates(users, targets,
    model.seen_)`` returns. The frame has ``user``, ``n_targets`` and the metrics of
    :func:`ranking_metrics`; targets as ``targets`` says (:data:`TARGETS`,
    :func:`target_matrix`); with ``all`` and ``repeat``, the repeat/explore split too
    (:func:`repeat_explore`).
    """
    if exclude_seen is None:
        exclude_seen = check_targets(targets) == "new"
    users, T = target_matrix(test, model.seen_, users, targets)
    kmax = max(ks)
    cands = None if candidates is None else candidates(users, T, model.seen_)
    recs = np.full((len(users), kmax), -1, dtype=np.int64)
    for start in range(0, len(users), batch_size):
        sl = slice(start, start + batch_size)
        recs[sl] = model.recommend(
            users[sl],
            n=kmax,
            exclude_seen=exclude_seen,
            candidates=None if cands is None else cands[sl],
        )[0]
    frame = ranking_metrics(recs, T, ks)
    if targets != "new":
        frame = pd.concat([frame, repeat_explore(recs, T, model.seen_[users], ks)], axis=1)
    frame.insert(0, "n_targets", np.diff(T.indptr))
    frame.insert(0, "user", users)
    return frame, recs


def repeat_explore(
    recs: np.ndarray, targets: sp.csr_matrix, seen: sp.csr_matrix, ks=(10,)
) -> pd.DataFrame:
    """Per-user repeat/explore split (the module docstring): ``recs`` ``(B, >= max K)``, the
    binary targets and the users' seen rows, both ``(B, n_items)``."""
    recs = np.asarray(recs, dtype=np.int64)
    targets, seen = sp.csr_matrix(targets), sp.csr_matrix(seen, dtype=np.float32)
    B = recs.shape[0]
    rows = np.repeat(np.arange(B), recs.shape[1])
    listed = recs >= 0
    is_seen = (np.asarray(seen[rows, np.maximum(recs, 0).ravel()]).reshape(recs.shape) > 0) & listed
    again = sp.csr_matrix(targets.multiply(seen))
    again.eliminate_zeros()
    fresh = sp.csr_matrix(targets - again)
    fresh.eliminate_zeros()
    n_t = np.diff(targets.indptr)
    out = {
        "target_repeat_share": np.divide(
            np.diff(again.indptr), n_t, where=n_t > 0, out=np.full(B, np.nan)
        )
    }
    for part, T in (("repeat", again), ("explore", fresh)):
        m = ranking_metrics(recs, T, ks)
        has = np.diff(T.indptr) > 0
        for k in sorted({int(k) for k in ks}):
            out[f"Recall_{part}@{k}"] = np.where(has, m[f"Recall@{k}"], np.nan)
            out[f"NDCG_{part}@{k}"] = np.where(has, m[f"NDCG@{k}"], np.nan)
    for k in sorted({int(k) for k in ks}):
        n_listed = listed[:, :k].sum(1)
        out[f"repeat_ratio@{k}"] = np.divide(
            is_seen[:, :k].sum(1), n_listed, where=n_listed > 0, out=np.full(B, np.nan)
        )
    return pd.DataFrame(out)


def evaluate_model(
    model,
    test: Dataset,
    ks=(10,),
    *,
    users: np.ndarray | None = None,
    exclude_seen: bool | None = None,
    batch_size: int = 2048,
    return_recs: bool = False,
    targets: str = "new",
):
    """The per-user frame of :func:`score` (and, with ``return_recs``, the lists too)."""
    frame, recs = score(
        model,
        test,
        ks,
        users=users,
        exclude_seen=exclude_seen,
        batch_size=batch_size,
        targets=targets,
    )
    return (frame, recs) if return_recs else frame


def validation_ndcg(model, valid: Dataset, targets: str = "new") -> float:
    """Mean NDCG@10 of ``model`` on ``valid`` (``targets``: :data:`TARGETS`): the score models
    early-stop on by default (``Model.fit(..., scorer=)``) and the tuner chooses by."""
    return mean_metrics(score(model, valid, (10,), targets=targets)[0])[VALIDATION_METRIC]


def validation_scorer(targets: str = "new"):
    """The validation scorer for ``targets`` (:func:`validation_ndcg` with them; picklable):
    what a model early-stops on and the tuner chooses by when the evaluation counts
    ``targets``."""
    check_targets(targets)
    if targets == "new":
        return validation_ndcg
    return functools.partial(validation_ndcg, targets=targets)


def mean_metrics(per_user: pd.DataFrame) -> dict[str, float]:
    """Means of the metric columns of a per-user frame."""
    cols = [c for c in per_user.columns if "@" in c]
    return {c: float(per_user[c].mean()) if len(per_user) else float("nan") for c in cols}
