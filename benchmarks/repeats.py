"""Buy again and discover: the GAN with its repeat head against P-Pop, TIFU-KNN and the other
baselines with every test purchase a target (issue 27).

Per dataset (``online_retail``, ``synthetic_retail``, or any name ``recogan.datasets.load``
knows), on ``recogan evaluate``'s split with the latest validation window:

- ``--part gan --seeds 0,1,2``: per seed, the GAN at its defaults fitted on the window (early
  stopping and every recommend-time choice on validation, the repeat weight among them), then
  refitted on train + valid with ``refit_params()``. Scored on test with targets ``all``
  (with its repeat/explore split), with the repeat weight at 0 (the head's ablation), and with
  targets ``new`` (today's protocol, seen items excluded).
- ``--part baselines --seeds 0,1,2``: each baseline tuned at ``--budget`` on the same window
  with targets ``all`` (the tuner of ``recogan evaluate``, seeded by each seed), refitted on
  train + valid, scored on test with targets ``all``; the report averages the tuning seeds.
- ``--report``: mean ± sd over seeds, the GAN's ratio to the best baseline with a bootstrap
  interval over customers and a paired Wilcoxon test (seeds pooled).

Every part writes ``OUT/<dataset>/...json`` as it finishes and skips what is there.

    PYTHONPATH=. python benchmarks/repeats.py --data online_retail --part gan --seeds 0,1,2
    PYTHONPATH=. python benchmarks/repeats.py --data online_retail --part baselines
    PYTHONPATH=. python benchmarks/repeats.py --data online_retail --report
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

BASELINES = ("pop", "itemknn", "ease", "ppop", "tifuknn")


def load_split(name: str):
    from recogan import datasets
    from recogan.evaluate import Protocol

    data = datasets.synthetic_retail() if name == "synthetic_retail" else datasets.load(name)
    return Protocol(valid_folds=1).split(data)


def _scores(model, test, targets: str) -> tuple[dict, dict]:
    """Mean metrics and per-customer NDCG@10 of ``model`` on ``test``."""
    from recogan.metrics import mean_metrics, score

    frame = score(model, test, (10,), targets=targets)[0]
    per_user = dict(zip(frame["user"].astype(int).tolist(), frame["NDCG@10"].tolist()))
    return mean_metrics(frame), per_user


def _write(path: Path, info: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, default=str))
    brief = {k: v for k, v in info.items() if not k.startswith("per_user")}
    print(path.name, json.dumps(brief, default=str), flush=True)


def run_gan(name: str, seeds: list[int], out: Path) -> None:
    import torch

    from recogan.gan.model import GANRecommender
    from recogan.metrics import validation_ndcg

    torch.set_num_threads(1)
    split = load_split(name)
    for seed in seeds:
        path = out / name / f"gan_s{seed}.json"
        if path.exists():
            continue
        t0 = time.perf_counter()
        m = GANRecommender(seed=seed).fit(split.train, split.valid, scorer=validation_ndcg)
        r = GANRecommender(**m.refit_params()).fit(split.train_valid, None)
        info = {"seed": seed, "seconds": time.perf_counter() - t0, "notes": m.validation_notes()}
        info["all"], info["per_user"] = _scores(r, split.test, "all")
        info["new"], _ = _scores(r, split.test, "new")
        info["repeat_weight"], info["repeat_offset"] = (
            r.config.repeat_weight,
            r.config.repeat_offset,
        )
        r.set_recommend_params(repeat_weight=0.0, repeat_offset=0.0)  # no head
        info["all_no_head"], info["per_user_no_head"] = _scores(r, split.test, "all")
        _write(path, info)


def run_baselines(name: str, budget: int, seeds: list[int], out: Path) -> None:
    from recogan.evaluate._tune import tune
    from recogan.registry import resolve_model

    split = load_split(name)
    for seed, model in [(s, m) for s in seeds for m in BASELINES]:
        path = out / name / (f"{model}.json" if seed == 0 else f"{model}.t{seed}.json")
        if path.exists():
            continue
        t0 = time.perf_counter()
        result = tune(model, split, budget, seed, jobs=1, targets="all")
        cls = resolve_model(model)
        fitted = cls(**result.best_params).fit(split.train_valid, None)
        info = {"params": result.best_params, "valid": result.best_score}
        info["all"], info["per_user"] = _scores(fitted, split.test, "all")
        info["seconds"] = time.perf_counter() - t0
        _write(path, info)


def report(name: str, out: Path) -> None:
    import numpy as np
    from scipy.stats import wilcoxon

    runs = [json.loads(p.read_text()) for p in sorted((out / name).glob("gan_s*.json"))]
    base: dict[str, list] = {}  # model -> one run per tuning seed
    for p in sorted((out / name).glob("*.json")):
        if not p.stem.startswith("gan_"):
            base.setdefault(p.stem.split(".")[0], []).append(json.loads(p.read_text()))
    cols = ["NDCG@10", "NDCG_repeat@10", "NDCG_explore@10", "repeat_ratio@10"]
    print(f"\n{name}: targets all, test, {len(runs)} GAN seeds")
    print("| model | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")

    def row(label, metrics_list) -> None:
        cells = []
        for c in cols:
            v = np.array([m[c] for m in metrics_list])
            cells.append(f"{v.mean():.4f} ± {v.std(ddof=1):.4f}" if len(v) > 1 else f"{v[0]:.4f}")
        print(f"| {label} | " + " | ".join(cells) + " |")

    row("GAN (repeat head, weight chosen on validation)", [r["all"] for r in runs])
    row("GAN without its head (weight and offset 0)", [r["all_no_head"] for r in runs])
    for k, b in base.items():
        row(f"{k} (tuned, budget 8, {len(b)} tuning seeds)", [r["all"] for r in b])
    new = np.array([r["new"]["NDCG@10"] for r in runs])
    explore = np.array([r["all"]["NDCG_explore@10"] for r in runs])
    print(
        f"GAN targets new NDCG@10 {new.mean():.4f} ± {new.std(ddof=1):.4f}; explore part in"
        f" all mode {explore.mean():.4f} ± {explore.std(ddof=1):.4f}"
    )
    print(
        "repeat weight, offset chosen:",
        [(r["repeat_weight"], r.get("repeat_offset")) for r in runs],
    )
    if not base:
        return
    best = max(base, key=lambda k: np.mean([r["all"]["NDCG@10"] for r in base[k]]))
    users = sorted(set(base[best][0]["per_user"]))
    g = np.array([[r["per_user"][u] for u in users] for r in runs])  # (seeds, users)
    b = np.mean([[r["per_user"][u] for u in users] for r in base[best]], axis=0)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(users), (2000, len(users)))
    ratios = g.mean(0)[idx].mean(1) / b[idx].mean(1)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    p = wilcoxon(g.ravel(), np.tile(b, len(runs))).pvalue
    print(
        f"GAN / {best}: {g.mean() / b.mean():.3f}x (bootstrap {lo:.3f}-{hi:.3f}; Wilcoxon,"
        f" seeds pooled, p = {p:.2g})"
    )
    h = np.array([[r["per_user_no_head"][u] for u in users] for r in runs])
    p = wilcoxon(g.ravel(), h.ravel()).pvalue
    print(f"repeat head: {g.mean() / h.mean():.3f}x the GAN without it (Wilcoxon p = {p:.2g})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="online_retail")
    ap.add_argument("--part", choices=("gan", "baselines"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budget", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path("/tmp/repeats"))
    ap.add_argument("--report", action="store_true")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.part == "gan":
        run_gan(a.data, seeds, a.out)
    elif a.part == "baselines":  # seeds: the tuner's
        run_baselines(a.data, a.budget, seeds, a.out)
    if a.report:
        report(a.data, a.out)


if __name__ == "__main__":
    main()
