"""Why the GAN collapses to one popular list on grocery data: ablations through its config
parameters, per-epoch validation curves and score decompositions.

Each configuration is fitted as ``recogan evaluate`` fits the GAN at its defaults on the
latest validation fold: train = everything before the fold, early stopping on the fold's
window. It reports, on that window:

- the validation NDCG@10 of every epoch and the epoch kept;
- the recommend-time choices validation made (re-rank weight, noise draws);
- NDCG@10 of the full score, of its personal part alone (``prior_weight = 0``) and of the
  item prior alone (the learned bias + popularity features);
- the score decomposition: per customer, the spread (std over the catalogue) of the personal
  part ``s q·e_i`` and of the prior part, and the share of the top-10's lead over the average
  item that each part supplies;
- how alike the lists are: coverage@10 and the share of all list slots taken by the ten
  items recommended most.

With ``--test`` it also refits on train + valid for the kept epoch count and scores the test
period (for the record only: nothing is chosen on it).

Usage::

    python benchmarks/diagnose_grocery.py --data completejourney_heldout \\
        --configs defaults,no_pop,lag0 --out /tmp/diag
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: Ablations (config params of the GAN; the defaults otherwise).
CONFIGS = {
    "defaults": {},
    # a longer curve: the same model, early stopping with more patience
    "patience4": {"patience": 4, "epochs": 8},
    # the popularity features of the item prior removed
    "no_pop": {"pop_windows": ()},
    # only the all-time popularity feature
    "pop_alltime": {"pop_windows": (0,)},
    # the 14-day horizon off: the history ends at the purchase
    "lag0": {"history_lag_days": 0.0},
    # the basket's other items in the history (day-resolution: a basket is a whole day)
    "basket": {"basket_context": True},
    # free item vectors (the collaborative part learned, not fixed at the features)
    "item_lr1": {"item_lr": 1.0},
    # a larger collaborative part of the item features
    "cf128": {"dim_cf": 128, "w_cf": 2.0},
    # no category/price content (the collaborative part alone)
    "cf_only": {"w_category": 0.0, "w_price": 0.0, "dim_category": 0},
    # repeats kept as training targets
    "repeats": {"skip_repeats": False},
}


def decomposition(model, data, users, ks=(10,)):
    """Per-user spreads of the personal and the prior part of the GAN's score, and each
    part's share of the top-10's lead over the mean item."""
    import numpy as np

    hist, w, keys = model._known_histories(users)
    _, q, _ = model._queries(hist, w, keys, draws=1)
    q = q[:, 0].cpu().numpy() * model.scale_
    E = model.item_index_[:, :-1]
    prior = model.item_index_[:, -1] * model.config.prior_weight
    personal = q @ E.T  # (B, items)
    total = personal + prior[None, :]
    seen = model.seen_[users].toarray() > 0
    total[seen] = -np.inf
    top = np.argsort(-total, axis=1)[:, :10]
    rows = np.arange(len(users))[:, None]
    lead_p = personal[rows, top].mean(1) - personal.mean(1)
    lead_b = prior[top].mean(1) - prior.mean()
    share_prior = lead_b / np.maximum(lead_p + lead_b, 1e-9)
    return {
        "std_personal": float(personal.std(1).mean()),
        "std_prior": float(prior.std()),
        "prior_share_of_top10_lead": float(np.median(share_prior)),
        "top10_lead_personal": float(lead_p.mean()),
        "top10_lead_prior": float(lead_b.mean()),
    }


def list_stats(recs, n_items):
    import numpy as np

    r = recs[:, :10]
    r = r[r >= 0]
    counts = np.bincount(r, minlength=n_items)
    top10 = np.sort(counts)[::-1][:10].sum()
    return {
        "coverage@10": float((counts > 0).sum() / n_items),
        "top10_items_share_of_slots": float(top10 / max(r.size, 1)),
    }


def score(model, data, users=None):
    from recogan.evaluate import score_model

    frame, recs = score_model(model, data, (10,))
    return float(frame["NDCG@10"].mean()), recs, frame


def run_config(name, params, split, seed, with_test):
    import dataclasses

    import numpy as np

    from recogan.gan.model import GANRecommender

    train, valid = split.folds[0]
    t0 = time.perf_counter()
    model = GANRecommender(seed=seed, device="cpu", threads=1, **params).fit(train, valid)
    fit_s = time.perf_counter() - t0
    curve = [round(r["valid_ndcg"], 5) for r in model.history_ if "valid_ndcg" in r]
    ndcg, recs, frame = score(model, valid)
    users = np.unique(frame["user"].to_numpy())
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(users, min(500, len(users)), replace=False))
    out = {
        "config": name,
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
        "fit_seconds": fit_s,
        "epochs_run": len(model.history_),
        "best_epoch": int(model.best_epoch_),
        "valid_curve": curve,
        "chosen": {
            "d_weight": model.config.d_weight,
            "n_draws": model.config.n_draws,
            "merge": model.config.merge,
            "prior_weight": model.config.prior_weight,
        },
        "valid_ndcg": ndcg,
        **list_stats(recs, valid.n_items),
        **decomposition(model, valid, sample),
    }
    saved = model.config
    for label, g in (("personal_only", 0.0), ("prior_only", 1e4)):
        model.config = dataclasses.replace(saved, prior_weight=g, d_weight=0.0, n_draws=1)
        out[f"valid_ndcg_{label}"] = score(model, valid)[0]
    model.config = saved
    if with_test:
        refit = dict(params, epochs=max(1, int(model.best_epoch_)))
        chosen = {k: v for k, v in out["chosen"].items() if k != "prior_weight"}
        final = GANRecommender(seed=seed, device="cpu", threads=1, **refit, **chosen)
        final.fit(split.train_valid)
        t_ndcg, t_recs, _ = score(final, split.test)
        out["test_ndcg"] = t_ndcg
        out["test_coverage@10"] = list_stats(t_recs, split.test.n_items)["coverage@10"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="completejourney_heldout")
    ap.add_argument("--configs", default="defaults")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test", action="store_true", help="also refit and score the test period")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    import torch
    from grocery import load

    torch.set_num_threads(1)
    split = load(args.data)
    if not hasattr(split, "folds"):
        from recogan.data import temporal_split

        split = temporal_split(split, valid_folds=1)
    folder = args.out / args.data
    folder.mkdir(parents=True, exist_ok=True)
    for name in args.configs.split(","):
        r = run_config(name, CONFIGS[name], split, args.seed, args.test)
        (folder / f"{name}.json").write_text(json.dumps(r, indent=1, default=str))
        print(json.dumps(r, default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
