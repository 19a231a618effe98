"""Does the discriminator earn its keep? The GAN's ablation on the generalisation suite.

    PYTHONPATH=. python benchmarks/discriminator.py [--datasets online_retail,or_dates,...]

Per dataset (loaded as in benchmarks/generalise.py; a pre-split dataset keeps its split, the
others take the default temporal split 80/10/10): the GAN at its defaults, early-stopped on
the validation period and scored on the test period without a refit (an ablation, not the
suite's protocol), as

- *retrieval only* (``adversarial=False``);
- *+ adversarial* (the default losses), re-rank weight 0;
- *+ D re-rank* at each weight of ``d_weights`` (0.5, 1, 2, 4) and at the weight the model
  chose on validation (kept only when it gains over 1% there).

Prints valid and test NDCG@10 per row and the test gain of the re-rank over no re-rank.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
for p in (str(HERE.parent), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="online_retail,or_dates,or_last4m,synthetic_retail")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from generalise import load

    from recogan.data import Split, temporal_split
    from recogan.gan.model import GANRecommender
    from recogan.metrics import validation_ndcg

    print("| dataset | variant | valid NDCG@10 | test NDCG@10 | vs no re-rank |")
    print("|---|---|---|---|---|")
    for name in args.datasets.split(","):
        data, _ = load(name)
        split = data if isinstance(data, Split) else temporal_split(data, 0.1, 0.1)
        train, valid = split.train, split.valid

        def row(label, m, base=None, name=name, valid=valid, test=split.test):
            v, t = validation_ndcg(m, valid), validation_ndcg(m, test)
            gain = "" if base is None else f"{100 * (t / base - 1):+.1f}%"
            print(f"| {name} | {label} | {v:.4f} | {t:.4f} | {gain} |", flush=True)
            return t

        common = {"threads": 1, "seed": args.seed}
        ret = GANRecommender(**common, adversarial=False, d_weights=())
        ret.fit(train, valid, scorer=validation_ndcg)
        row("retrieval only", ret)
        gan = GANRecommender(**common).fit(train, valid, scorer=validation_ndcg)
        chosen = gan.config.d_weight
        plain = dataclasses.replace(gan.config, d_weight=0.0)
        gan.config = plain
        base = row("+ adversarial (no re-rank)", gan)
        for w in plain.d_weights:
            gan.config = dataclasses.replace(plain, d_weight=w)
            row(f"+ D re-rank {w}", gan, base)
        gan.config = dataclasses.replace(plain, d_weight=chosen)
        row(f"+ D re-rank, chosen on validation ({chosen})", gan, base)


if __name__ == "__main__":
    main()
