"""The diversity knob on a real dataset: MMR over EASE's lists at several settings.

Fits EASE (default settings) on train + valid of the default temporal split, then scores the
test period at each diversity level (recommend-time only), printing NDCG@10, HR@10,
coverage@10, intra-list diversity@10 and novelty@10, and the cost of re-ranking relative to
plain recommend (a ratio within one run).

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/diversity.py [--data online_retail]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from recogan.baselines import EASE
from recogan.datasets import load
from recogan.diversity import recommend
from recogan.evaluate import Protocol
from recogan.evaluate._report import _md_table
from recogan.evaluate._run import DIVERSITY_LEVELS, _diversity_curve, _Period


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="online_retail")
    ap.add_argument("--users", type=int, default=2048, help="users for the timing")
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
