"""The diversity knob on a real dataset: MMR over EASE's lists at several settings.

Fits EASE (default settings) on train + valid of the default temporal split, then scores the
test period at each diversity level (recommend-time only), printing NDCG@10, HR@10,
coverage@10, intra-list diversity@10 and novelty@10, and the cost of re-ranking relative to
plain recommend (a ratio within one run).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/diversity.py [--data online_retail]

With ``--bundle DIR`` (a saved model, e.g. ``models/demo`` after ``make demo``) it instead times
that model's recommend over all its customers in batches of 1,000 at several diversity levels
(for the GAN, its own audience tail), best of ``--repeats``, in customers/s and as a ratio to
diversity 0:

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/diversity.py --bundle models/demo
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from recogan.baselines import EASE
from recogan.datasets import load
from recogan.evaluate import Protocol
from recogan.evaluate._report import _md_table
from recogan.evaluate._run import DIVERSITY_LEVELS, _diversity_curve, _Period
from recogan.serving import recommend


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="online_retail")
    ap.add_argument("--users", type=int, default=2048, help="users for the timing")
    ap.add_argument("--bundle", help="time this saved model's recommend instead")
    ap.add_argument("--levels", default="0,0.1,0.2,0.25,0.5,1", help="with --bundle")
    ap.add_argument("--repeats", type=int, default=3, help="with --bundle")
    args = ap.parse_args()
    if args.bundle:
        return time_bundle(args.bundle, [float(v) for v in args.levels.split(",")], args.repeats)
    data = load(args.data)
    proto = Protocol()
    split = proto.split(data)
    model = EASE().fit(split.train_valid)
    curve = _diversity_curve(model, list(DIVERSITY_LEVELS), _Period(split, proto, (10,), 0))
    print(_md_table(curve.round(4), index=False))
    users = np.arange(min(args.users, model.n_users_))
    seconds = {}
    for d in (0.0, 0.3):
        t = time.perf_counter()
        recommend(model, users, 10, diversity=d)
        seconds[d] = time.perf_counter() - t
    print(
        f"\nrecommend {len(users)} users, n=10: diversity 0.3 takes "
        f"{seconds[0.3] / seconds[0.0]:.1f}x the time of diversity 0"
    )


def time_bundle(path: str, levels: list[float], repeats: int) -> None:
    """Customers/s of a saved model's recommend (n = 10, batches of 1,000) per diversity."""
    import torch

    from recogan.recommender import Recommender

    torch.set_num_threads(1)
    model = Recommender.load(path).model
    users = np.arange(model.n_users_)
    recommend(model, users[:1000], 10, diversity=max(levels))  # warm-up (and any set-up)
    rows = []
    for d in levels:
        best = np.inf
        for _ in range(repeats):
            t = time.perf_counter()
            for s in range(0, len(users), 1000):
                recommend(model, users[s : s + 1000], 10, diversity=d)
            best = min(best, time.perf_counter() - t)
        rows.append((d, len(users) / best))
    base = dict(rows).get(0.0)
    name = type(model).__name__
    print(f"{name}, {len(users):,} customers, n = 10, one thread, best of {repeats}")
    print("| diversity | customers/s | x diversity 0 |")
    print("|---|---|---|")
    for d, rate in rows:
        ratio = f"{rate / base:.2f}" if base else "-"
        print(f"| {d:g} | {rate:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
