"""Which validation tells the truth on grocery data: candidates scored at their defaults on
(a) the held-out protocol's windows (the two-week spans just before the test, one around the
holiday) and (b) windows spread over the history (:func:`recogan.evaluate.spread_split`),
with each window's shift statistic, the windows' agreement, what :func:`choose_model` picks
on each, and every candidate's test score (fitted on train + valid; read only to judge the
choices, never to make them).

Usage::

    python benchmarks/grocery_windows.py --data completejourney_heldout \\
        --candidates pop,pop7,itemknn --spread 6 --out /tmp/windows
    python benchmarks/grocery_windows.py --data completejourney_heldout \\
        --candidates pop,pop7,itemknn,gan --spread 4 --sets spread --out /tmp/windows_gan
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

CANDIDATES = {
    "pop": ("pop", {}),
    "pop7": ("pop", {"window_days": 7.0}),
    "itemknn": ("itemknn", {}),
    "ease": ("ease", {}),
    "ials": ("ials", {}),
    "gan": ("gan", {"threads": 1, "device": "cpu"}),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="completejourney_heldout")
    ap.add_argument("--candidates", default="pop,pop7,itemknn")
    ap.add_argument("--spread", type=int, default=6, help="spread windows")
    ap.add_argument("--valid-frac", type=float, default=0.05)
    ap.add_argument(
        "--sets", default="near,spread", help="which window sets to score (near, spread)"
    )
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from grocery import load

    from recogan.data import Split, temporal_split
    from recogan.evaluate import (
        choose_model,
        score_model,
        spread_split,
        window_agreement,
        window_scores,
        window_shift,
    )
    from recogan.registry import model_class

    loaded = load(args.data)
    near = loaded if isinstance(loaded, Split) else temporal_split(loaded, valid_folds=3)
    full = near.train_valid.concat(near.test)
    spread = spread_split(full, args.spread, valid_frac=args.valid_frac, test_frac=0.1)
    # the spread split's test period is the same as the held-out one where the data is
    # day-resolution and the test the last ten days: use the near split's test
    spread = Split(
        spread.train,
        spread.valid,
        near.test,
        protocol=spread.protocol,
        dropped={},
        train_valid=near.train_valid,
        folds=tuple((tr, va) for tr, va in spread.folds if va.times.max() < near.test.times.min()),
    )
    names = [c.strip() for c in args.candidates.split(",") if c.strip()]
    cands = {n: (model_class(CANDIDATES[n][0]), CANDIDATES[n][1]) for n in names}
    out = {"data": args.data, "candidates": names}
    folder = args.out / args.data
    folder.mkdir(parents=True, exist_ok=True)
    sets = {s.strip() for s in args.sets.split(",")}
    for label, split in [(k, v) for k, v in (("near", near), ("spread", spread)) if k in sets]:
        t0 = time.perf_counter()
        print(f"{label} windows:", flush=True)
        scores = window_scores(cands, split.folds, show=True)
        shift = window_shift(split.folds)
        choice = choose_model(scores, shift)
        plain = choose_model(scores)
        agree = window_agreement(scores)
        for line in choice.lines():
            print(line, flush=True)
        out[label] = {
            "scores": scores.to_dict(),
            "shift": shift.reset_index().to_dict(orient="records"),
            "chosen": choice.best,
            "chosen_unweighted": plain.best,
            "reason": choice.reason(),
            "min_tau": agree["min_tau"],
            "winners": agree["winners"],
            "warnings": choice.warnings,
            "seconds": time.perf_counter() - t0,
        }
        (folder / "windows.json").write_text(json.dumps(out, indent=1, default=str))
    from recogan.fitting import fit_for_serving

    test = {}
    for n, (cls, params) in cands.items():
        model, _ = fit_for_serving(cls, params, near.train_valid, near.folds[:1])
        frame, _ = score_model(model, near.test, (10,))
        test[n] = float(frame["NDCG@10"].mean())
        print(f"test {n}: {test[n]:.4f}", flush=True)
    out["test"] = test
    out["test_best"] = max(test, key=test.get)
    (folder / "windows.json").write_text(json.dumps(out, indent=1, default=str))
    print(json.dumps({k: out[k] for k in ("test", "test_best")}), flush=True)
    print(", ".join(f"{k} chose {out[k]['chosen']}" for k in ("near", "spread") if k in out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
