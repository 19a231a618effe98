"""What the GAN's item features can carry on grocery data: a probe that scores each item by the
dot product of a household's pooled history features with the item's features (the GAN's
personal part with an identity generator; item vectors held at the features, as with the
default ``item_lr = 0``), for several ``ItemFeaturesConfig`` settings, next to popularity.
Scored on the latest validation window of the held-out protocol (NDCG@10, seen items
excluded, repeats not targets: the same numbers ``recogan.evaluate`` gives popularity).
"+ pop" mixes in log popularity at the best of a few weights chosen on the same window (an
upper bound for a prior + personal linear score, not a model choice).

Usage::

    python benchmarks/grocery_features.py
"""

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from grocery import load

from recogan.features import ItemFeatures, ItemFeaturesConfig

s = load("completejourney_heldout")
train, valid = s.folds[0]
seen = train.csr(binary=True)
V = valid.csr(binary=True)
users = np.flatnonzero(np.diff(V.indptr))
T = V[users].multiply(seen[users] != 1).tocsr()
T.eliminate_zeros()
keep = np.diff(T.indptr) > 0
users, T = users[keep], T[keep]


def ndcg(S):
    S = S.copy()
    S[seen[users].toarray() > 0] = -np.inf
    top = np.argsort(-S, axis=1)[:, :10]
    hit = np.take_along_axis(T.toarray() > 0, top, 1)
    disc = 1 / np.log2(np.arange(2, 12))
    dcg = (hit * disc).sum(1)
    n = np.minimum(np.diff(T.indptr), 10)
    idcg = np.array([disc[:k].sum() for k in n])
    return float((dcg / idcg).mean())


pop = np.log1p(train.item_popularity().astype(float))
print("users", len(users), "pop", round(ndcg(np.broadcast_to(pop, (len(users), len(pop)))), 4))
X = seen[users].toarray().astype(np.float32)
for name, kw in [
    ("defaults", {}),
    ("cf_only", dict(w_category=0, w_price=0)),
    ("category_only", dict(w_cf=0, w_price=0)),
    ("category_256", dict(w_cf=0, w_price=0, dim_category=256)),
    ("cf128", dict(dim_cf=128, w_category=0, w_price=0)),
]:
    t0 = time.time()
    F = ItemFeatures(ItemFeaturesConfig(**kw)).fit(train).F_
    b = X @ F  # pooled history (all purchases, equal weights)
    S = b @ F.T
    base = ndcg(S)
    Sn = S / np.maximum(np.abs(S).max(1, keepdims=True), 1e-9)
    best = max((ndcg(Sn + a * pop / pop.max()), a) for a in (0.25, 0.5, 1, 2, 4))
    print(
        name,
        "F dim",
        F.shape[1],
        "feature-kNN",
        round(base, 4),
        "with pop (best a)",
        round(best[0], 4),
        best[1],
        f"{time.time() - t0:.0f}s",
        flush=True,
    )
cats = train.catalog["category"].astype(str)
print("distinct categories", cats.nunique(), "hash buckets", ItemFeaturesConfig().dim_category)
