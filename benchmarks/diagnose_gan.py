"""Why the GAN's validation score and its test score disagree: ablations of the pieces that
were suspected, each fitted, early-stopped and scored exactly as ``recogan evaluate`` does at
its defaults without tuning (fit on train with the latest validation window for early
stopping, score that window, refit on train + valid for the chosen epoch count, score test).

Usage::

    python benchmarks/diagnose_gan.py --dataset synthetic_retail
    python benchmarks/diagnose_gan.py --dataset or_dates --configs old,new

Prints, per configuration: the validation NDCG@10 of every epoch, the validation and test
NDCG@10 and the test coverage@10; references (all-time and 7-day popularity, ItemKNN, EASE)
are scored the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: The configurations: the defaults before the generalisation work (``old``: recent-popularity
#: windows of 7 and 60 days, free item vectors), what each suspected cause changes on its own
#: (``+basket``: the basket's other items in the history; ``-windows``: no popularity
#: features; ``+frozen``: item vectors fixed at the features), and the new defaults.
CONFIGS = {
    "old": {"pop_windows": (7, 60), "item_lr": 1.0},
    "old+basket": {"pop_windows": (7, 60), "item_lr": 1.0, "basket_context": True},
    "old-windows": {"pop_windows": (), "item_lr": 1.0},
    "old+frozen": {"pop_windows": (7, 60), "item_lr": 0.0},
    "new": {},
    "new-windows": {"pop_windows": ()},
    "new+basket": {"basket_context": True},
}
REFERENCES = {
    "pop (all time)": ("pop", {}),
    "pop (7 days)": ("pop", {"window_days": 7.0}),
    "itemknn": ("itemknn", {}),
    "ease": ("ease", {}),
}


def main(argv=None) -> int:
    import torch
    from generalise import load

    from recogan.data import Split
    from recogan.evaluate import Protocol, evaluate_model, mean_metrics, score_model
    from recogan.evaluate._beyond import coverage
    from recogan.fitting import DEFAULT_SCORER
    from recogan.registry import model_class

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="synthetic_retail")
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated names")
    p.add_argument("--no-references", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data, note = load(args.dataset)
    split = data if isinstance(data, Split) else Protocol(valid_folds=1).split(data)
    print(f"# {args.dataset} ({note}): {split.summary()}", flush=True)

    def ndcg(model, part) -> float:
        return mean_metrics(evaluate_model(model, part, (10,)))["NDCG@10"]

    def run(label, name, params) -> None:
        cls = model_class(name)
        t0 = time.perf_counter()
        model = cls(**params).fit(split.train, split.valid, scorer=DEFAULT_SCORER)
        valid = ndcg(model, split.valid)
        curve = [round(r["valid_ndcg"], 4) for r in getattr(model, "history_", [])]
        refit = model.refit_params() if hasattr(model, "refit_params") else params
        final = cls(**refit).fit(split.train_valid)
        frame, recs = score_model(final, split.test, (10,))
        cov = coverage(recs, final.n_items_)
        print(
            f"| {label} | {valid:.4f} | {frame['NDCG@10'].mean():.4f} | {cov:.3f} | "
            f"{' '.join(map(str, curve)) or '-'} | {time.perf_counter() - t0:.0f} |",
            flush=True,
        )

    print("| model | valid NDCG@10 | test NDCG@10 | test coverage@10 | valid per epoch | s |")
    print("|---|---|---|---|---|---|")
    if not args.no_references:
        for label, (name, params) in REFERENCES.items():
            run(label, name, params)
    for label in [c.strip() for c in args.configs.split(",") if c.strip()]:
        run(f"gan: {label}", "gan", CONFIGS[label])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
