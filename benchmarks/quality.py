"""Quality of the GAN recommender next to tuned baselines, plus the GAN ablation.

    python benchmarks/quality.py --data online_retail --part baselines
    python benchmarks/quality.py --data online_retail --part gan
    python benchmarks/quality.py --data online_retail --part report      # table → RESULTS.md
    python benchmarks/quality.py --data movielens_1m ...                 # ../shared/data/ml-1m

Protocol: the default one (global temporal split 80/10/10, full-catalog ranking, seen items
excluded, @10). Baselines are tuned by :func:`recogan.evaluate.evaluate` (same budget each, on
validation NDCG@10, refitted on train + valid). The GAN is tuned on validation only, by the
same kind of seeded search over ``GANRecommender.search_space()``, each trial early-stopped on
validation NDCG@10; the chosen configuration is refitted on train + valid for the epoch count
early stopping found, then scored once on test through the same ``evaluate`` call (tune=False)
so its metrics are computed by the same code. The ablation variants (losses, S, D re-rank)
start from the chosen configuration and are refitted the same way.

Parts write JSON into ``--cache`` so long runs can be split; ``report`` prints the table and
appends it to benchmarks/RESULTS.md. The machine is shared: compare fit times as ratios
within one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINES = ("pop", "itemknn", "ease", "ials")
COLUMNS = ("HR@10", "NDCG@10", "Recall@10", "coverage@10", "fit_seconds")

#: Ablation variants: name → changes to the chosen GAN configuration.
ABLATION = {
    "gan (chosen)": {},
    "retrieval only": {"adversarial": False},
    "adversarial only": {"retrieval": False},
    "S=1": {"n_draws": 1},
    "S=8": {"n_draws": 8},
    "no D re-rank": {"d_weight": 0.0},
    "D re-rank 0.5": {"d_weight": 0.5},
}
#: Recommend-time knobs tuned on validation after each training trial, in this order.
KNOBS = {"prior_weight": [0.5, 2.0, 4.0, 8.0, 16.0], "d_weight": [0.5, 2.0], "n_draws": [4]}
#: Variants that change only recommend-time knobs (no refit needed).
INFERENCE_ONLY = {"n_draws", "d_weight", "merge", "inference_noise", "rerank_depth", "prior_weight"}


def _split(name: str):
    from recogan import datasets
    from recogan.data import temporal_split

    data = datasets.load(name)
    return data, temporal_split(data, 0.1, 0.1)


def run_baselines(args, split) -> dict:
    from recogan.evaluate import evaluate

    t0 = time.perf_counter()
    report = evaluate(
        split, models=list(BASELINES), budget=args.budget, seed=args.seed, show_progress=False
    )
    out = {}
    for m in BASELINES:
        row = report.metrics.loc[m]
        out[m] = {c: float(row[c]) for c in COLUMNS}
        out[m]["params"] = report.params[m]
        out[m]["valid_NDCG@10"] = report.tuning[m]["valid_NDCG@10"]
    out["_total_seconds"] = time.perf_counter() - t0
    return out


def tune_gan(args, split) -> dict:
    """Seeded search on validation; each trial early-stopped; returns trials + the best."""
    from recogan.evaluate import candidate_params, evaluate_model, mean_metrics
    from recogan.fitting import DEFAULT_SCORER
    from recogan.gan.model import GANRecommender

    base = json.loads(args.gan_params) if args.gan_params else {}
    trials = []
    for params in candidate_params(GANRecommender, args.gan_budget, args.seed):
        # --gan-params are fixed: they override the searched values too
        full = {**params, **base, "seed": args.seed}
        t0 = time.perf_counter()
        model = GANRecommender(**full).fit(split.train, split.valid, scorer=DEFAULT_SCORER)
        fit_s = time.perf_counter() - t0
        score = mean_metrics(evaluate_model(model, split.valid, (10,)))["NDCG@10"]
        trials.append(
            {"params": full, "valid_NDCG@10": score, "epochs": model.best_epoch_, "fit_s": fit_s}
        )
        print(
            f"  trial {full}: valid NDCG@10 {score:.4f}, best epoch {model.best_epoch_}, "
            f"{fit_s:.0f}s",
            flush=True,
        )
        # recommend-time knobs, tuned greedily (one at a time, keeping the best) on the same
        # fitted model, without refitting
        current, cur_score = {}, score
        for knob, values in KNOBS.items():
            for v in values:
                trial = {**current, knob: v}
                saved = model.config
                model.config = dataclasses.replace(saved, **trial)
                s = mean_metrics(evaluate_model(model, split.valid, (10,)))["NDCG@10"]
                model.config = saved
                trials.append(
                    {
                        "params": {**full, **trial},
                        "valid_NDCG@10": s,
                        "epochs": model.best_epoch_,
                        "fit_s": fit_s,
                    }
                )
                print(f"    + {trial}: valid NDCG@10 {s:.4f}", flush=True)
                if s > cur_score:
                    cur_score, best_v = s, v
                    current = {**current, knob: best_v}
    best = max(trials, key=lambda t: t["valid_NDCG@10"])
    return {"trials": trials, "best": best}


def _score(model, split) -> dict:
    """Test metrics through the shared metric code (same as ``evaluate``) + coverage@10."""
    from recogan.evaluate import coverage, evaluate_model, mean_metrics

    frame, recs = evaluate_model(model, split.test, (10,), return_recs=True)
    m = mean_metrics(frame)
    return {c: m[c] for c in COLUMNS if c in m} | {"coverage@10": coverage(recs, model.n_items_)}


def run_gan(args, split, tuned: dict) -> dict:
    """Refit the chosen configuration on train + valid for its early-stopped epoch count and
    score it on test; recommend-time variants reuse that fitted model; training variants are
    refitted with the same epoch count."""
    from recogan.gan.model import GANRecommender

    best = tuned["best"]
    chosen = {**best["params"], "epochs": max(1, int(best["epochs"]))}
    out, fitted = {}, None
    wanted = args.variants.split(",") if args.variants else list(ABLATION)
    for name, change in ABLATION.items():
        if name not in wanted:
            continue
        params = {**chosen, **change}
        same = GANRecommender(**params).config == GANRecommender(**chosen).config
        if same and name != "gan (chosen)":
            continue  # the variant is the chosen configuration itself
        inference_only = change.keys() <= INFERENCE_ONLY
        if inference_only and fitted is not None:
            model, fit_s = fitted
            saved = model.config
            model.config = dataclasses.replace(saved, **change)
            row = _score(model, split)
            model.config = saved
        else:
            t0 = time.perf_counter()
            model = GANRecommender(**params).fit(split.train_valid, None)
            fit_s = time.perf_counter() - t0
            row = _score(model, split)
            if name == "gan (chosen)":
                fitted = (model, fit_s)
                row["tradeoff"] = _tradeoff(model, split)
                row["noise_tradeoff"] = _noise_tradeoff(model, split)
        out[name] = {**row, "fit_seconds": fit_s, "params": {k: params[k] for k in sorted(params)}}
        if name == "gan (chosen)":
            out[name]["valid_NDCG@10"] = best["valid_NDCG@10"]
        print(f"  {name}: test NDCG@10 {row['NDCG@10']:.4f}, fit {fit_s:.0f}s", flush=True)
    return out


def _tradeoff(model, split) -> list[dict]:
    name, values = model.tradeoff_param()
    saved, rows = model.config, []
    for v in values:
        model.config = dataclasses.replace(saved, **{name: v})
        r = _score(model, split)
        rows.append({"value": v, **{k: r[k] for k in ("NDCG@10", "HR@10", "coverage@10")}})
    model.config = saved
    return rows


#: Noise curve: (S, inference_noise) pairs scored on test (a curve, not a choice).
NOISE_CURVE = [(1, 0.0), (4, 1.0), (8, 1.0), (4, 4.0), (8, 4.0), (4, 16.0), (8, 16.0)]


def _noise_tradeoff(model, split) -> list[dict]:
    """Coverage vs accuracy as the noise draws get larger: does z buy coverage?"""
    saved, rows = model.config, []
    for S, std in NOISE_CURVE:
        model.config = dataclasses.replace(saved, n_draws=S, inference_noise=std)
        r = _score(model, split)
        rows.append(
            {"S": S, "inference_noise": std}
            | {k: r[k] for k in ("NDCG@10", "HR@10", "coverage@10")}
        )
    model.config = saved
    return rows


def report(args, data_name: str, cache: Path) -> str:
    base = json.loads((cache / f"{data_name}_baselines.json").read_text())
    gan = json.loads((cache / f"{data_name}_gan.json").read_text())
    tuned = json.loads((cache / f"{data_name}_gan_tuning.json").read_text())
    lines = [
        "",
        f"### {data_name} ({dt.date.today().isoformat()})",
        "",
        f"Machine: 2-core shared dev box ({platform.machine()}, 1 torch thread, other jobs "
        f"running); commands: `python benchmarks/quality.py --data {data_name} --part "
        "baselines|gan|report`. Temporal split 80/10/10, full ranking, seen excluded. "
        f"Baselines: `evaluate()` with {args.budget} trials each; GAN: "
        f"{len(tuned['trials'])} validation trials (incl. recommend-time knobs), refit on "
        "train+valid for the early-stopped epoch count. fit s = refit on train+valid.",
        "",
        "| model | valid NDCG@10 | HR@10 | NDCG@10 | Recall@10 | coverage@10 | fit s |",
        "|---|---|---|---|---|---|---|",
    ]

    def row(name, r):
        return (
            f"| {name} | {r.get('valid_NDCG@10', float('nan')):.4f} | {r['HR@10']:.4f} | "
            f"**{r['NDCG@10']:.4f}** | {r['Recall@10']:.4f} | {r['coverage@10']:.4f} | "
            f"{r['fit_seconds']:.1f} |"
        )

    for m in BASELINES:
        lines.append(row(m, base[m]))
    for name, r in gan.items():
        lines.append(row(f"GAN: {name}", r))
    chosen = gan.get("gan (chosen)", {})
    if chosen:
        p = chosen["params"]
        lines += ["", f"Chosen GAN configuration: `{json.dumps(p, sort_keys=True)}`"]
        if chosen.get("tradeoff"):
            lines += ["", "Noise draws S (recommend-time knob) on test, chosen model:", ""]
            lines += ["| S | NDCG@10 | HR@10 | coverage@10 |", "|---|---|---|---|"]
            for t in chosen["tradeoff"]:
                lines.append(
                    f"| {t['value']} | {t['NDCG@10']:.4f} | {t['HR@10']:.4f} | "
                    f"{t['coverage@10']:.4f} |"
                )
        if chosen.get("noise_tradeoff"):
            lines += ["", "Noise draws S x inference noise std on test, chosen model:", ""]
            lines += ["| S | noise std | NDCG@10 | HR@10 | coverage@10 |", "|---|---|---|---|---|"]
            for t in chosen["noise_tradeoff"]:
                lines.append(
                    f"| {t['S']} | {t['inference_noise']} | {t['NDCG@10']:.4f} | "
                    f"{t['HR@10']:.4f} | {t['coverage@10']:.4f} |"
                )
    lines.append("")
    lines.append("Baseline params: " + "; ".join(f"{m} `{base[m]['params']}`" for m in BASELINES))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="online_retail", help="online_retail or movielens_1m")
    p.add_argument("--part", choices=["baselines", "tune", "gan", "report", "all"], default="all")
    p.add_argument("--budget", type=int, default=8, help="trials per baseline")
    p.add_argument("--gan-budget", type=int, default=4, help="GAN training configurations")
    p.add_argument("--gan-params", default="", help="JSON: fixed GAN params for every trial")
    p.add_argument("--variants", default="", help="comma-separated ablation variants to run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default="/tmp/recogan_quality")
    p.add_argument("--no-append", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    logging.basicConfig(level=logging.WARNING)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    data, split = _split(args.data)
    name = data.name
    parts = ["baselines", "tune", "gan", "report"] if args.part == "all" else [args.part]
    for part in parts:
        t0 = time.perf_counter()
        print(f"== {name}: {part}", flush=True)
        if part == "baselines":
            res = run_baselines(args, split)
            (cache / f"{name}_baselines.json").write_text(json.dumps(res, indent=1, default=str))
        elif part == "tune":
            res = tune_gan(args, split)
            (cache / f"{name}_gan_tuning.json").write_text(json.dumps(res, indent=1, default=str))
        elif part == "gan":
            tuned = json.loads((cache / f"{name}_gan_tuning.json").read_text())
            res = run_gan(args, split, tuned)
            path = cache / f"{name}_gan.json"
            old = json.loads(path.read_text()) if path.exists() and args.variants else {}
            path.write_text(json.dumps({**old, **res}, indent=1, default=str))
        else:
            text = report(args, name, cache)
            print(text)
            if not args.no_append:
                with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as f:
                    f.write(text)
        print(f"   {part} done in {time.perf_counter() - t0:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
