"""The GAN's item features and the GAN itself on one validation window (issue 22).

Two measurements, both on a validation window only (train = everything before it):

- ``--probe``: how well the item features ``F`` alone rank unseen products: each customer's
  history pooled into ``b = Σ F_i`` and every product scored by ``b·F_j`` (the "feature-kNN"
  that the generator's residual starts from), alone and blended with all-time popularity at
  the best of four weights. Cheap (seconds to a minute): no training.
- ``--fit``: the GAN fitted at its defaults plus ``--params`` with early stopping on the
  window, and its validation NDCG@10 (:func:`recogan.metrics.validation_ndcg`, the score
  ``recogan evaluate`` reports per window), the epoch kept and the recommend-time choices.
- ``--test MODEL``: for the record once every choice is frozen, :func:`recogan.evaluate.evaluate`
  of one model at ``--params`` (no tuning) with only the latest validation window: fit with
  early stopping there, refit on train + valid, scored on the test period.

Datasets: ``completejourney_heldout`` (held-out protocol, :func:`recogan.datasets.heldout_split`),
``completejourney``, ``online_retail`` and ``ml-1m`` (``recogan evaluate``'s default temporal
split with three rolling-origin windows). ``--fold 0`` is the latest window.

Usage::

    python benchmarks/gan_features.py --data completejourney_heldout --probe \\
        '{"cf_item_norm": false}' '{}'
    python benchmarks/gan_features.py --data online_retail --fit '{"cf_item_norm": false}'
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def split(name: str, windows: int = 3):
    """The split of dataset ``name`` with ``windows`` validation windows: the held-out
    protocol for ``completejourney_heldout``, ``recogan evaluate``'s default otherwise."""
    from recogan import datasets

    data = datasets.load(name)
    if name == "completejourney_heldout":
        return datasets.heldout_split(data, windows=windows)
    from recogan.evaluate import Protocol

    return Protocol(valid_folds=windows).split(data)


def load_fold(name: str, fold: int):
    return split(name).folds[fold]


def probe(train, valid, configs: list[dict]) -> list[dict]:
    import numpy as np

    from recogan.features import ItemFeatures

    seen = train.csr(binary=True)
    V = valid.csr(binary=True)
    users = np.flatnonzero(np.diff(V.indptr))
    T = (V[users] - V[users].multiply(seen[users] != 0)).tocsr()
    T.eliminate_zeros()
    keep = np.diff(T.indptr) > 0
    users, T = users[keep], T[keep]
    target, bought = T.toarray() > 0, seen[users].toarray() > 0
    disc = 1 / np.log2(np.arange(2, 12))
    idcg = np.array([disc[:k].sum() for k in np.minimum(np.diff(T.indptr), 10)])

    def ndcg(S) -> float:
        S = np.where(bought, -np.inf, S)
        top = np.argpartition(-S, 10, axis=1)[:, :10]
        order = np.argsort(-np.take_along_axis(S, top, 1), 1)
        hit = np.take_along_axis(target, np.take_along_axis(top, order, 1), 1)
        return float(((hit * disc).sum(1) / idcg).mean())

    pop = np.log1p(np.asarray(seen.sum(0)).ravel())
    pop = pop / pop.max()
    X = bought.astype(np.float32)
    rows = [{"features": "popularity", "NDCG@10": ndcg(np.broadcast_to(pop, target.shape))}]
    for cfg in configs:
        F = ItemFeatures(**cfg).fit(train).F_
        S = (X @ F) @ F.T
        Sn = S / np.maximum(np.abs(S).max(1, keepdims=True), 1e-9)
        blend = max((ndcg(Sn + a * pop), a) for a in (0.25, 0.5, 1.0, 2.0))
        rows.append(
            {
                "features": json.dumps(cfg),
                "d": int(F.shape[1]),
                "NDCG@10": ndcg(S),
                "with popularity": blend[0],
                "popularity weight": blend[1],
            }
        )
        print(rows[-1], flush=True)
    return rows


def fit(train, valid, params: dict) -> dict:
    import torch

    from recogan.gan.model import GANRecommender
    from recogan.metrics import validation_ndcg

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    m = GANRecommender(**params).fit(train, valid, scorer=validation_ndcg)
    return {
        "params": params,
        "valid NDCG@10": validation_ndcg(m, valid),
        "epoch kept": m.best_epoch_,
        "epochs": [{k: v for k, v in r.items() if isinstance(v, (int, float))} for r in m.history_],
        "d_weight": m.config.d_weight,
        "n_draws": m.config.n_draws,
        "merge": m.config.merge,
        "seconds": time.perf_counter() - t0,
    }


def test(name: str, model: str, params: dict, seed: int) -> dict:
    import torch

    from recogan.evaluate import evaluate

    torch.set_num_threads(1)
    one = split(name, windows=1)
    t0 = time.perf_counter()
    rep = evaluate(
        one,
        models=[model],
        params={model: params},
        tune=False,
        seed=seed,
        jobs=1,
        diversity_levels=(),
        show_progress=False,
    )
    row = rep.metrics.loc[model]
    return {
        "data": name,
        "model": model,
        "params": params,
        "seed": seed,
        "test": {c: float(row[c]) for c in ("NDCG@10", "coverage@10", "popbias@10") if c in row},
        "valid NDCG@10": float(rep.tuning[model]["valid_NDCG@10"]),
        "seconds": time.perf_counter() - t0,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="completejourney_heldout")
    ap.add_argument("--fold", type=int, default=0, help="validation window (0: the latest)")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--probe", nargs="+", metavar="FEATURES_JSON")
    mode.add_argument("--fit", metavar="PARAMS_JSON")
    mode.add_argument("--test", metavar="MODEL")
    ap.add_argument("--params", default="{}", help="--test: the model's parameters (JSON)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.test:
        out = test(args.data, args.test, json.loads(args.params), args.seed)
        print("RESULT", json.dumps(out), flush=True)
        return 0
    train, valid = load_fold(args.data, args.fold)
    if args.probe:
        rows = probe(train, valid, [json.loads(c) for c in args.probe])
        out = {"data": args.data, "fold": args.fold, "probe": rows}
    else:
        out = {"data": args.data, "fold": args.fold, **fit(train, valid, json.loads(args.fit))}
    print("RESULT", json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
