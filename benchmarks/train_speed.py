"""Training speed of the GAN: pairs per second against the matmul ceiling of the same shapes.

    PYTHONPATH=. python benchmarks/train_speed.py [--cases online_retail,movielens_1m,synthetic]
        [--devices cpu1,cpu2,cuda] [--batches 60] [--synthetic-users 1000000]
        [--synthetic-items 100000] [--no-record]
    PYTHONPATH=. python benchmarks/train_speed.py --fit-vs-ials 4

For each dataset and device (``cpu1``/``cpu2``: the CPU with 1 or 2 torch threads; ``cuda``
when torch sees a GPU) the GAN at its defaults trains ``--batches`` batches (after a warm-up of
5) through :func:`recogan.gan.train.train_gan` (one epoch of ``pairs_per_epoch`` pairs), and the
figure is pairs per second. Next to it, the **ceiling**: the same step's matrix products alone
(the generator's and discriminator's MLP layers forward and backward, the retrieval scores
forward and their gradient, the discriminator's attention forward), timed as bare ``torch.mm``
/ ``torch.bmm`` on random tensors of the same shapes, same device and threads. ``ceiling %`` =
ceiling time / actual time: how much of the step is the arithmetic every implementation has to
do, i.e. how busy the loop keeps the device.

Cases: Online Retail (bundled), MovieLens-1M (../shared/data/ml-1m) and a synthetic retailer
of ``--synthetic-users`` x ``--synthetic-items`` with about 8 purchases per customer in day
baskets over 90 days and Zipf item popularity (generated vectorised here; collaborative
features only, so set-up stays minutes). Above 20k items the GAN trains with its sampled
softmax (the default), so the ceiling's retrieval block is ``batch x (batch + 2048)``.

Results are appended to benchmarks/RESULTS.md with machine, date and command. The machine is
shared: compare the ceiling ratio, which is measured in the same process right after.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def synthetic(users: int, items: int, seed: int = 0):
    """A big retailer, vectorised: Zipf items, ~2-3 baskets of ~3 items per customer."""
    import pandas as pd

    from recogan.data import Dataset

    rng = np.random.default_rng(seed)
    n_baskets = int(users * 2.7)
    basket_user = rng.integers(0, users, n_baskets)
    basket_day = rng.integers(0, 90, n_baskets)
    size = 1 + rng.poisson(2.0, n_baskets)
    user = np.repeat(basket_user, size)
    day = np.repeat(basket_day, size)
    p = (np.arange(items) + 2.0) ** -1.1
    item = rng.choice(items, size=len(user), p=p / p.sum())
    frame = pd.DataFrame(
        {
            "user_id": user.astype(np.int64),
            "item_id": item.astype(np.int64),
            "timestamp": 1_700_000_000 + day.astype(np.int64) * 86400,
        }
    )
    return Dataset.from_frames(frame, name=f"synthetic_{users}x{items}")


def load(case: str, args):
    from recogan import datasets

    if case == "synthetic":
        return synthetic(args.synthetic_users, args.synthetic_items)
    return datasets.load(case)


def prepare(data, device: str, threads: int):
    """A default GAN's features, pairs and networks on ``device`` (not trained)."""
    from recogan.gan.config import GANConfig
    from recogan.gan.model import GANRecommender

    m = GANRecommender(device=device, threads=threads)
    m.n_users_, m.n_items_ = data.n_users, data.n_items
    m.train_end_ = int(data.times.max())
    m.device_ = device
    pairs, pop = m._prepare(data)
    m._build(m.config.part(GANConfig))
    return m, pairs, pop


def train_rate(m, pairs, pop, device: str, batches: int) -> tuple[float, dict]:
    """Pairs per second of ``batches`` batches (after a warm-up)."""
    import dataclasses

    from recogan.gan.config import TrainConfig
    from recogan.gan.train import train_gan

    c = m.config
    base = {f.name: getattr(c, f.name) for f in dataclasses.fields(TrainConfig)}
    B = c.batch_size
    for n in (5, batches):  # a warm-up, then the timed run
        cfg = TrainConfig(**{**base, "epochs": 1, "pairs_per_epoch": n * B})
        _sync(device)
        t0 = time.perf_counter()
        train_gan(m.nets_, pairs, pop, cfg, half_life_days=c.half_life_days, seed=0, device=device)
        _sync(device)
        dt = time.perf_counter() - t0
    return batches * B / dt, {"batch": B}


def ceiling_rate(m, pairs, device: str, batches: int) -> float:
    """Pairs per second of the step's matrix products alone, same shapes (see the module)."""
    import torch

    from recogan.gan._loop import sampled_negatives
    from recogan.gan.config import TrainConfig

    c = m.config
    N, d = m.F_.shape
    B, L, k = c.batch_size, c.max_history, c.n_negatives
    S = sampled_negatives(TrainConfig(n_sampled=c.n_sampled), N)
    cols = B + S if S else N
    gen = torch.Generator(device=device).manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=gen, device=device)

    g_layers = [(d + c.noise_dim, c.g_hidden)] + [(c.g_hidden, c.g_hidden)] * (c.g_depth - 1)
    g_layers.append((c.g_hidden, d))
    n_in = d + 1 + (d + 2 if c.d_attention else 0)
    d_layers = [(n_in, c.d_hidden)] + [(c.d_hidden, c.d_hidden)] * (c.d_depth - 1)
    d_layers.append((c.d_hidden, 1))
    R = B * (2 + k)  # rows the discriminator step scores

    def mlp(rows, layers, grad_in_first: bool, grad_w: bool):
        ops = []
        for j, (a, b) in enumerate(layers):
            x, w, g = r(rows, a), r(a, b), r(rows, b)
            ops.append((torch.mm, x, w))  # forward
            if j or grad_in_first:
                ops.append((torch.mm, g, w.T))  # gradient of the input
            if grad_w:
                ops.append((torch.mm, x.T, g))  # gradient of the weights
        return ops

    E = r(cols, d)
    ops = mlp(B, g_layers, False, True)
    ops += [(torch.mm, r(B, d), E.T), (torch.mm, r(B, cols), E)]  # scores, their gradient
    ops += mlp(R, d_layers, False, True)  # discriminator step
    ops += mlp(B, d_layers, True, False)  # generator's adversarial loss through D
    if c.d_attention:
        for rows in (2 + k, 1):
            f, h = r(B, rows, d), r(B, L, d)
            ops += [(torch.bmm, f, h.transpose(1, 2)), (torch.bmm, r(B, rows, L), h)]

    def step():
        for fn, a, b in ops:
            fn(a, b)

    for _ in range(3):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(batches):
        step()
    _sync(device)
    return batches * B / (time.perf_counter() - t0)


def fit_vs_ials(epochs: int, threads: int) -> str:
    """Seconds to fit the GAN (defaults, ``epochs`` epochs: a refit's fixed count) and iALS
    (its setting tuned on Online Retail in RESULTS.md: 64 factors, reg 10, alpha 0.5) on
    Online Retail's train + valid, same process, same threads, interleaved twice."""
    from recogan import datasets
    from recogan._threads import set_threads
    from recogan.baselines import IALS
    from recogan.data import temporal_split
    from recogan.gan.model import GANRecommender

    undo = set_threads(threads)  # BLAS (iALS) and torch (the GAN)
    data = temporal_split(datasets.load("online_retail"), 0.1, 0.1).train_valid
    times = {"gan": [], "ials": []}
    for _ in range(2):
        for name, make in (
            ("ials", lambda: IALS(factors=64, reg=10.0, alpha=0.5)),
            ("gan", lambda: GANRecommender(epochs=epochs, threads=threads, d_weights=())),
        ):
            t0 = time.perf_counter()
            make().fit(data)
            times[name].append(time.perf_counter() - t0)
    undo()
    gan, ials = min(times["gan"]), min(times["ials"])
    return (
        f"Online Retail train + valid, {threads} thread(s), best of 2: GAN ({epochs} epochs) "
        f"{gan:.1f} s, iALS {ials:.1f} s: {gan / ials:.1f}x"
    )


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="online_retail,movielens_1m,synthetic")
    ap.add_argument("--devices", default="cpu1,cpu2,cuda")
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--synthetic-users", type=int, default=1_000_000)
    ap.add_argument("--synthetic-items", type=int, default=100_000)
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument(
        "--fit-vs-ials",
        type=int,
        metavar="EPOCHS",
        help="only time the GAN's fit of EPOCHS epochs against tuned iALS on Online Retail",
    )
    args = ap.parse_args(argv)
    if args.fit_vs_ials:
        for threads in (1, 2):
            print(fit_vs_ials(args.fit_vs_ials, threads), flush=True)
        return
    import torch

    devices = []
    for dev in args.devices.split(","):
        if dev == "cuda" and not torch.cuda.is_available():
            print("cuda: skipped (torch sees no GPU)")
            continue
        devices.append(dev)
    rows = []
    for case in args.cases.split(","):
        t0 = time.perf_counter()
        data = load(case, args)
        for dev in devices:
            device = "cuda" if dev == "cuda" else "cpu"
            threads = int(dev[3:]) if dev.startswith("cpu") else 1
            torch.set_num_threads(threads)
            t1 = time.perf_counter()
            m, pairs, pop = prepare(data, device, threads)
            setup = time.perf_counter() - t1
            rate, _ = train_rate(m, pairs, pop, device, args.batches)
            ceil = ceiling_rate(m, pairs, device, args.batches)
            row = {
                "case": f"{case} ({data.n_users:,} x {data.n_items:,})",
                "device": dev,
                "pairs": len(pairs),
                "softmax": "sampled" if data.n_items > m.config.full_softmax_items else "full",
                "pairs/s": rate,
                "ceiling pairs/s": ceil,
                "ceiling %": 100.0 * rate / ceil,
                "epoch s": len(pairs) / rate,
                "setup s": setup,
            }
            rows.append(row)
            print(_table([row], header=not rows[:-1]), flush=True)
        print(f"# {case}: loaded in {time.perf_counter() - t0:.0f} s", flush=True)
    table = _table(rows)
    print("\n" + table)
    if not args.no_record:
        _record(table, args)


def _table(rows, header: bool = True) -> str:
    cols = ["case", "device", "pairs", "softmax", "pairs/s", "ceiling pairs/s", "ceiling %"]
    cols += ["epoch s", "setup s"]
    out = []
    if header:
        out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, float):
                v = f"{v:,.0f}" if c != "ceiling %" else f"{v:.0f}%"
            elif isinstance(v, int):
                v = f"{v:,}"
            cells.append(str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _record(table: str, args) -> None:
    import torch

    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name()
        machine = f"{gpu}, {os.cpu_count()} cores (torch {torch.__version__})"
    else:
        machine = (
            f"{os.cpu_count()}-core shared dev box ({platform.machine()}), CPU only "
            f"(torch {torch.__version__}); no GPU: the cuda rows are still to be measured"
        )
    cmd = "PYTHONPATH=. python benchmarks/train_speed.py " + " ".join(sys.argv[1:])
    text = f"\n### {_dt.date.today().isoformat()}, {machine}\n\n`{cmd}`\n\n{table}\n"
    with open(HERE / "RESULTS.md", "a") as fh:
        fh.write(text)
    print(f"recorded in {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
