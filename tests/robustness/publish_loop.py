"""Re-save two different bundles at one path, alternately, until killed (the fault tests kill
it with SIGKILL at random moments). Prints "ready" once set up, then one line per save.

    python -m tests.robustness.publish_loop PATH [COUNT]
"""

from __future__ import annotations

import sys
from pathlib import Path


def models():
    from recogan.baselines import Popularity
    from recogan.datasets import synthetic_clusters

    data = synthetic_clusters(n_users=60, n_items=30, events_per_user=6)
    return Popularity().fit(data), Popularity(window_days=30).fit(data)


def main(argv: list[str]) -> int:
    from recogan.artifacts import save_model

    path = Path(argv[0])
    count = int(argv[1]) if len(argv) > 1 else 10**9
    pair = models()
    print("ready", flush=True)
    for i in range(count):
        save_model(pair[i % 2], path)
        print(i, flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main(sys.argv[1:]))
