"""Serving latency: single-user ``Recommender.recommend`` p50/p99 and ``recommend_many``
throughput, per index kind, against raw faiss search on the same query vectors.

Catalogs: Online Retail (item/user vectors from a quickly fitted truncated SVD of the purchase
matrix, d=64) and synthetic 100k- and 1M-item catalogs (d=64 unit vectors drawn around 1,000
centres, users drawn the same way, 20 already-bought items each that are excluded).

    PYTHONPATH=. python benchmarks/latency.py --catalogs online_retail,100k --record

The machine is shared: compare the ratios within one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recogan.base import Model
from recogan.data import IdMap
from recogan.index import ItemIndex
from recogan.recommender import Recommender

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


class VectorModel(Model):
    """Scores = user vector · item vector; retrieval through an ItemIndex."""

    name = "vectors"

    def __init__(self, user_vecs, item_vecs, seen, index: ItemIndex, popularity):
        self.config = None
        self.user_vecs_, self.item_vecs_ = user_vecs, item_vecs
        self.n_users_, self.n_items_ = seen.shape
        self.users_ = IdMap(np.arange(self.n_users_, dtype=np.int64) + 10_000)
        self.items_ = IdMap(np.arange(self.n_items_, dtype=np.int64))
        self.catalog_ = None
        self.seen_ = seen
        self.popularity_ = popularity
        self.index_ = index

    def _fit(self, train, valid) -> None:
        raise NotImplementedError("built from given vectors, never fitted")

    def item_vectors(self):
        return self.item_vecs_

    def recommend(self, user_idx, n=10, exclude_seen=True, candidates=None):
        users = self.check_users(user_idx)
        s = self.seen_  # per-user index slices: cheaper than CSR row slicing for one user
        exclude = (
            [s.indices[s.indptr[u] : s.indptr[u + 1]] for u in users] if exclude_seen else None
        )
        D, I = self.index_.search(self.user_vecs_[users], n, exclude=exclude, allowed=candidates)  # noqa: E741
        return I, D


def unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def synthetic(n_items, n_users, d=64, seen_per_user=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, d)).astype(np.float32)
    items = unit(centres[rng.integers(0, 1000, n_items)] + 0.6 * rng.standard_normal((n_items, d)))
    users = unit(centres[rng.integers(0, 1000, n_users)] + 0.6 * rng.standard_normal((n_users, d)))
    cols = rng.integers(0, n_items, (n_users, seen_per_user)).ravel()
    rows = np.repeat(np.arange(n_users), seen_per_user)
    seen = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), (n_users, n_items))
    seen.sum_duplicates()
    pop = rng.zipf(1.5, n_items).astype(np.float64)
    return users, items, seen, pop


def online_retail(d=64, seed=0):
    from sklearn.utils.extmath import randomized_svd

    from recogan.base import recent_popularity
    from recogan.datasets import online_retail as load

    data = load()
    X = data.csr(binary=True)
    _, s, vt = randomized_svd(X, d, random_state=seed)
    items = unit(vt.T * np.sqrt(s))
    users = unit(X @ items)
    return users, items, X, recent_popularity(data, 30.0)


def percentiles(samples_s):
    a = np.asarray(samples_s) * 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def bench(name, users, items, seen, pop, kinds, args, n_many, index_kw=None, seed=0):
    """Raw faiss and the service API timed alternately on the same users, so that load from
    other jobs on the shared machine hits both sides of each ratio alike."""
    import faiss

    n = args.n
    rng = np.random.default_rng(seed)
    many = rng.choice(len(users), min(n_many, len(users)), replace=False)
    single = rng.choice(len(users), args.single)
    exact_top = None
    rows = []
    for kind in kinds:
        t0 = time.perf_counter()
        index = ItemIndex(
            kind=kind, device="cpu", threads=args.threads, seed=seed, **(index_kw or {})
        )
        index.build(items)
        build_s = time.perf_counter() - t0
        rec = Recommender(VectorModel(users, items, seen, index, pop), batch_size=1024)
        uids = rec.user_ids
        rec.recommend(uids[single[0]], n=n)  # warm-up
        lat, raw_lat = [], []
        for u in single:
            faiss.omp_set_num_threads(1)  # the raw reference at its best for one query
            t = time.perf_counter()
            index._cpu.search(users[u : u + 1], n)
            raw_lat.append(time.perf_counter() - t)
            t = time.perf_counter()
            rec.recommend(uids[u], n=n)
            lat.append(time.perf_counter() - t)
        raw_I, raw_s, many_s, n_rows = [], 0.0, 0.0, 0
        for s in range(0, len(many), 1024):
            chunk = many[s : s + 1024]
            faiss.omp_set_num_threads(args.threads)
            t = time.perf_counter()
            raw_I.append(index._cpu.search(users[chunk], n)[1])  # no exclusion, no id mapping
            raw_s += time.perf_counter() - t
            t = time.perf_counter()
            n_rows += len(rec.recommend_many(uids[chunk], n=n))
            many_s += time.perf_counter() - t
        assert n_rows == n * len(many), "every user gets n items"
        raw_I = np.concatenate(raw_I)
        if kind == "exact":
            exact_top = raw_I
        recall = (
            float(np.mean([len(set(a) & set(b)) / n for a, b in zip(raw_I, exact_top)]))
            if exact_top is not None
            else float("nan")
        )
        p50, p99 = percentiles(lat)
        r50, r99 = percentiles(raw_lat)
        label = index.kind_
        if label == "ivf":
            label += f" (nlist {index.nlist_}, nprobe {index.nprobe_})"
        if label == "hnsw":
            label += f" (M {index.config.M}, efSearch {index.config.ef_search})"
        row = {
            "catalog": name,
            "items": len(items),
            "kind": label,
            "build_s": build_s,
            "recall": recall,
            "p50": p50,
            "p99": p99,
            "raw_p50": r50,
            "raw_p99": r99,
            "many_ups": len(many) / many_s,
            "raw_ups": len(many) / raw_s,
        }
        row["ratio"] = row["many_ups"] / row["raw_ups"]
        rows.append(row)
        print(fmt_row(row), flush=True)
    return rows


HEADER = (
    "| catalog | items | index | build s | recall@10 vs exact | recommend p50 ms | p99 ms "
    "| raw faiss p50 ms | p99 ms | recommend_many users/s | raw faiss users/s | ratio |"
)


def fmt_row(r):
    rec = "—" if np.isnan(r["recall"]) else f"{r['recall']:.3f}"
    return (
        f"| {r['catalog']} | {r['items']:,} | {r['kind']} | {r['build_s']:.1f} | {rec} "
        f"| {r['p50']:.2f} | {r['p99']:.2f} | {r['raw_p50']:.3f} | {r['raw_p99']:.3f} "
        f"| {r['many_ups']:,.0f} | {r['raw_ups']:,.0f} | {r['ratio']:.2f} |"
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--catalogs", default="online_retail,100k,1m")
    p.add_argument("--kinds", default="exact,ivf,hnsw")
    p.add_argument("--kinds-1m", default="exact,ivf", help="kinds for the 1M catalog")
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--single", type=int, default=1000, help="single-user calls timed")
    p.add_argument("--many", type=int, default=10000, help="users for recommend_many")
    p.add_argument("--many-1m", type=int, default=2000, help="users for the 1M catalog")
    p.add_argument(
        "--nlist-1m", type=int, default=1024, help="IVF lists at 1M (k-means time on 2 cores)"
    )
    p.add_argument("--threads", type=int, default=2, help="faiss threads for batches")
    p.add_argument("--record", action="store_true", help="append to benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(1)
    kinds = args.kinds.split(",")
    print(HEADER)
    print("|" + "---|" * 12)
    rows = []
    for cat in args.catalogs.split(","):
        if cat == "online_retail":
            rows += bench(cat, *online_retail(), kinds, args, args.many)
        elif cat == "100k":
            data = synthetic(100_000, max(args.many, 2 * args.single))
            rows += bench("synthetic 100k", *data, kinds, args, args.many)
        elif cat == "1m":
            data = synthetic(1_000_000, max(args.many_1m, 2 * args.single))
            kw = {"nlist": args.nlist_1m}
            rows += bench("synthetic 1M", *data, args.kinds_1m.split(","), args, args.many_1m, kw)
        else:
            raise SystemExit(f"unknown catalog {cat!r}")
    if args.record:
        record(rows, args, argv)


def record(rows, args, argv):
    cmd = "PYTHONPATH=. python benchmarks/latency.py " + " ".join(argv if argv else sys.argv[1:])
    lines = [
        "",
        f"### Latency run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: 2-core shared dev box ({platform.processor() or platform.machine()}), "
        f"CPU only, faiss threads={args.threads} for batches, 1 for single queries; "
        "other jobs were running: compare ratios within this run.",
        f"Command: `{cmd.strip()}`",
        "",
        HEADER,
        "|" + "---|" * 12,
        *[fmt_row(r) for r in rows],
        "",
    ]
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if "## Latency (issue 4)" not in text:
        text += "\n## Latency (issue 4)\n"
    RESULTS.write_text(text + "\n".join(lines))
    print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()
