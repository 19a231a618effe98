"""Batch scoring throughput: users/s end to end against the raw FAISS search ceiling.

    PYTHONPATH=. python benchmarks/batch.py [--users 1000000] [--items 100000] [--d 64]
                                            [--n 10] [--no-ray] [--no-record]
    PYTHONPATH=. python benchmarks/batch.py --scale --gan [--device auto|cpu|cuda]
                                            [--users 1000000] [--items 100000]

Cases: Online Retail (a 64-d SVD DotModel; Popularity too) and a synthetic catalog of
``--users`` × ``--items`` random unit vectors with 5 seen items per user. Each engine
configuration runs in a fresh process (so peak RSS is its own): local with 1 and 2 workers,
and Ray with 2 actors. The ceiling is ``IndexFlatIP.search`` of the same query vectors
(same batch size, every core). Memory: the same bundle scored for 10% and 100% of its users
must peak at the same RSS (the output streams to disk partition by partition).
Results are appended to benchmarks/RESULTS.md; the machine is shared, so compare ratios
within one run.

Device cases (``--scale``, ``--gan``; either one replaces the cases above), on ``--device``
(``auto``: CUDA when torch sees it):

- scale: ``--users`` × ``--items`` random unit vectors, 5 seen items per user, searched by the
  index's torch exact path (seen items set to -inf on the device, ties by id) against the raw
  ceiling: ``matmul + topk`` of the same vectors on the same device, in the same chunks, with
  the top-k copied back to the host (what any scorer must return). Prints the ratio.
- gan: a GANRecommender trained briefly on Online Retail (``--gan-epochs``), scored end to end
  by the batch engine (one worker, partition files, the ``device`` option), next to the raw
  ceiling of the very query vectors its index was asked (captured from ``recommend``) and its
  item vectors.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from recogan.artifacts import save_model

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)


# ---------------------------------------------------------------------- bundles
def retail_bundles(work: Path, d: int) -> dict[str, Path]:
    import scipy.sparse.linalg as sla
    from _dot_model import make_bundle

    from recogan.baselines import Popularity
    from recogan.datasets import online_retail

    data = online_retail()
    out = {"retail-dot": work / "retail-dot", "retail-pop": work / "retail-pop"}
    if not (out["retail-dot"] / "manifest.json").exists():
        X = data.csr(binary=True).astype(np.float64)
        u, s, vt = sla.svds(X, k=d, random_state=0)
        U = (u * np.sqrt(s)).astype(np.float32)
        V = (vt.T * np.sqrt(s)).astype(np.float32)
        make_bundle(out["retail-dot"], U, V, X, data.users.ids, data.items.ids, "online_retail")
    if not (out["retail-pop"] / "manifest.json").exists():
        save_model(Popularity().fit(data), out["retail-pop"])
    return out


def synthetic_bundle(work: Path, n_users: int, n_items: int, d: int) -> Path:
    import scipy.sparse as sp
    from _dot_model import make_bundle

    path = work / f"synth-dot-{n_users}x{n_items}"
    if (path / "manifest.json").exists():
        return path
    rng = np.random.default_rng(0)
    U = rng.standard_normal((n_users, d), dtype=np.float32)
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    V = rng.standard_normal((n_items, d), dtype=np.float32)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    per = 5
    cols = rng.integers(0, n_items, n_users * per)
    seen = sp.csr_matrix(
        (np.ones(cols.size, np.float32), (np.repeat(np.arange(n_users), per), cols)),
        shape=(n_users, n_items),
    )
    seen.sum_duplicates()
    return make_bundle(path, U, V, seen, name="synthetic")


# ---------------------------------------------------------------------- one measurement
def one(args) -> dict:
    """Run in a child process: one engine configuration, or the ceiling."""
    from _dot_model import register

    register()
    if args.one.startswith("ceiling"):  # ceiling-THREADS: raw IndexFlatIP search
        import faiss

        from recogan.artifacts import files_dir

        faiss.omp_set_num_threads(int(args.one.split("-")[1]))
        arrays = files_dir(args.bundle) / "arrays"  # the bundle's current version
        U = np.load(arrays / "model.U.npy")
        V = np.load(arrays / "model.V.npy")
        index = faiss.IndexFlatIP(V.shape[1])
        index.add(V)
        t0 = time.perf_counter()
        for s in range(0, U.shape[0], args.batch_size):
            index.search(U[s : s + args.batch_size], args.n)
        dt = time.perf_counter() - t0
        return {"users": int(U.shape[0]), "score_s": dt, "users_per_s": U.shape[0] / dt}
    from recogan.batch import batch_score
    from recogan.batch._partition import peak_rss_mb

    if args.one == "recommend":  # the model alone: recommend() over the same batches, no I/O
        from recogan._threads import set_threads
        from recogan.artifacts import load_model

        model = load_model(args.bundle)
        set_threads(1)
        t0 = time.perf_counter()
        for s in range(0, model.n_users_, args.batch_size):
            model.recommend(np.arange(s, min(s + args.batch_size, model.n_users_)), n=args.n)
        dt = time.perf_counter() - t0
        return {"users": model.n_users_, "score_s": dt, "users_per_s": model.n_users_ / dt}

    engine, spec = args.one.split("-")
    workers, _, threads = spec.partition("x")
    out = Path(args.work) / "out" / f"{Path(args.bundle).name}-{args.one}"
    from recogan.batch import read_success
    from recogan.registry import MODEL_REGISTRY  # noqa: F401  (registered above, for workers)

    t0 = time.perf_counter()
    res = batch_score(
        args.bundle,
        out,
        users=args.users_file,
        n=args.n,
        engine=engine,
        workers=int(workers),
        threads=int(threads or 1),
        partition_size=args.partition_size,
        batch_size=args.batch_size,
        show_progress=False,
    )
    wall = time.perf_counter() - t0
    parts = read_success(out)["partitions"]
    return {
        "users": res.users,
        "rows": res.rows,
        "rows_sha256": res.rows_sha256,
        "score_s": res.seconds["score"],
        "total_s": wall,
        "users_per_s": res.users / res.seconds["score"],
        "users_per_s_total": res.users / wall,
        # VmHWM, not ru_maxrss: the latter carries the parent's peak across fork + exec
        "rss_self_mb": peak_rss_mb(),
        "rss_workers_mb": max(p["peak_rss_mb"] or 0 for p in parts),
    }


def measure(work: Path, bundle: Path, what: str, args, users_file=None) -> dict:
    from recogan.artifacts import read_manifest

    n_users = read_manifest(bundle, verify=False)["dataset"]["n_users"]
    # at least 8 partitions, so that every worker has several
    part = min(args.partition_size, -(-n_users // 8))
    cmd = [sys.executable, __file__, "--one", what, "--bundle", str(bundle), "--work", str(work)]
    cmd += ["--n", str(args.n), "--batch-size", str(args.batch_size)]
    cmd += ["--partition-size", str(part)]
    if users_file:
        cmd += ["--users-file", str(users_file)]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{what} on {bundle.name} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- device cases (issue 11)
def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA GPU")
    return device


def _sync(device: str) -> None:
    import torch

    if device != "cpu":
        torch.cuda.synchronize()


def raw_ceiling(xq: np.ndarray, xb: np.ndarray, n: int, device: str, chunk_bytes: int) -> float:
    """Seconds for ``matmul + topk`` of every query row against ``xb`` on ``device``, in the
    torch path's chunks, results copied to the host: no exclusion, no tie rule."""
    import torch

    xb_t = torch.from_numpy(np.ascontiguousarray(xb, dtype=np.float32)).to(device)
    step = max(1, chunk_bytes // (4 * len(xb)))
    _sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, len(xq), step):
            q = torch.from_numpy(np.ascontiguousarray(xq[s : s + step])).to(device)
            v, i = torch.topk(q @ xb_t.T, n, dim=1)
            v.cpu(), i.cpu()
    _sync(device)
    return time.perf_counter() - t0


def _unit(rng, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def scale_case(args, device: str) -> dict:
    import scipy.sparse as sp

    from recogan.index import ItemIndex

    rng = np.random.default_rng(0)
    U, V = _unit(rng, args.users, args.d), _unit(rng, args.items, args.d)
    per = 5
    seen = sp.csr_matrix(
        (
            np.ones(args.users * per, np.float32),
            (np.repeat(np.arange(args.users), per), rng.integers(0, args.items, args.users * per)),
        ),
        shape=(args.users, args.items),
    )
    index = ItemIndex(
        kind="exact",
        device="cpu" if device == "cpu" else "cuda",
        exact_backend="torch",
        torch_chunk_bytes=args.chunk_bytes,
    ).build(V)
    assert index.backend_ == "torch" and index.torch_device_ == device, repr(index)
    # the torch path answers like the numpy exact path (and warms the device up)
    m = min(500, args.users)
    _, got = index.search(U[:m], args.n, exclude=seen[:m])
    cpu = ItemIndex(kind="exact", device="cpu", exact_backend="faiss", threads=1).build(V)
    agree = float(np.mean(got == cpu.search(U[:m], args.n, exclude=seen[:m])[1]))
    raw_ceiling(U[:m], V, args.n, device, args.chunk_bytes)
    t_index, t_raw = [], []
    for _ in range(args.reps):  # interleaved, best of each: the box is shared
        t_raw.append(raw_ceiling(U, V, args.n, device, args.chunk_bytes))
        _sync(device)
        t0 = time.perf_counter()
        index.search(U, args.n, exclude=seen)
        _sync(device)
        t_index.append(time.perf_counter() - t0)
    ti, tr = min(t_index), min(t_raw)
    return {
        "users": args.users,
        "items": args.items,
        "chunk_rows": index._torch.chunk_rows(args.items),
        "index_users_per_s": args.users / ti,
        "raw_users_per_s": args.users / tr,
        "ratio": tr / ti,
        "agree_with_numpy": agree,
        "index_s": t_index,
        "raw_s": t_raw,
    }


def gan_bundle(work: Path, epochs: int, device: str) -> Path:
    from recogan.datasets import online_retail
    from recogan.gan.model import GANRecommender

    path = work / f"retail-gan-e{epochs}"
    if not (path / "manifest.json").exists():
        t0 = time.perf_counter()
        model = GANRecommender(epochs=epochs, threads=1, device=device, seed=0)
        model.fit(online_retail())
        save_model(model, path)
        print(f"GAN trained ({epochs} epochs, {device}) in {time.perf_counter() - t0:.0f} s")
    return path


def gan_case(work: Path, args, device: str) -> dict:
    from recogan.artifacts import load_model
    from recogan.batch import batch_score

    bundle = gan_bundle(work, args.gan_epochs, device)
    model = load_model(bundle, device=device)
    users = np.arange(model.n_users_)
    batch = args.batch_size
    # the query vectors the model's index is asked, captured from recommend() itself
    captured, real = [], model.index_.search

    def spy(xq, k, exclude=None, allowed=None):
        captured.append(np.array(xq))
        return real(xq, k, exclude=exclude, allowed=allowed)

    model.index_.search = spy
    for s in range(0, len(users), batch):
        model.recommend(users[s : s + batch], n=args.n)
    model.index_.search = real
    XQ = np.concatenate(captured)
    t0 = time.perf_counter()
    for s in range(0, len(users), batch):
        model.recommend(users[s : s + batch], n=args.n)
    _sync(device)
    t_rec = time.perf_counter() - t0
    raw_ceiling(XQ[:256], model.item_index_, args.n, device, args.chunk_bytes)  # warm-up
    t_raw = min(
        raw_ceiling(XQ, model.item_index_, args.n, device, args.chunk_bytes)
        for _ in range(args.reps)
    )
    runs = []
    for r in range(args.reps):
        res = batch_score(
            bundle,
            work / "out" / f"gan-{device}-{r}",
            n=args.n,
            device=device,
            workers=1,
            threads=1,
            batch_size=batch,
            show_progress=False,
            force=True,
        )
        runs.append(res)
    best = max(runs, key=lambda r: r.users_per_s)
    return {
        "users": len(users),
        "items": model.n_items_,
        "d": XQ.shape[1],
        "queries_per_user": len(XQ) / len(users),
        "backend": model.index_.backend_,
        "engine_users_per_s": best.users_per_s,
        "engine_total_s": best.seconds["total"],
        "recommend_users_per_s": len(users) / t_rec,
        "raw_users_per_s": len(users) / t_raw,
        "ratio": best.users_per_s * t_raw / len(users),
    }


def device_cases(args) -> int:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    device = resolve_device(args.device)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    lines = [
        "| case | device | users × items | scorer users/s | raw matmul+topk users/s "
        "| × ceiling | notes |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    if args.scale:
        r = scale_case(args, device)
        print(json.dumps(r), flush=True)
        lines.append(
            f"| scale: ItemIndex torch exact, 5 seen/user | {device} | {r['users']:,} × "
            f"{r['items']:,} | {r['index_users_per_s']:,.0f} | {r['raw_users_per_s']:,.0f} "
            f"| {r['ratio']:.2f} | chunks of {r['chunk_rows']:,} users; ids agree with the "
            f"numpy path on {r['agree_with_numpy']:.1%} of the first 500 users' slots |"
        )
    if args.gan:
        r = gan_case(work, args, device)
        print(json.dumps(r), flush=True)
        lines.append(
            f"| gan: batch engine, Online Retail ({args.gan_epochs} epochs) | {device} "
            f"| {r['users']:,} × {r['items']:,} | {r['engine_users_per_s']:,.0f} "
            f"| {r['raw_users_per_s']:,.0f} | {r['ratio']:.2f} | index backend "
            f"{r['backend']}; d={r['d']}; recommend() alone {r['recommend_users_per_s']:,.0f} "
            f"users/s; job total {r['engine_total_s']:.1f} s |"
        )
    table = "\n".join(lines)
    print(table)
    if not args.no_record:
        _record_device(table, args, device)
    return 0


def _record_device(table: str, args, device: str) -> None:
    import torch

    path = HERE / "RESULTS.md"
    cmd = "PYTHONPATH=. python benchmarks/batch.py " + " ".join(sys.argv[1:])
    if device == "cpu":
        machine = "2-core shared dev box, CPU only, torch on 1 thread (busy: compare ratios)"
    else:
        machine = f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    header = "## Scoring on the GPU (issue 11)"
    entry = (
        f"\n### {_dt.date.today().isoformat()}, {machine}\n\n`{cmd}` — d={args.d}, "
        f"n={args.n}, score block {args.chunk_bytes / 2**20:.0f} MiB per chunk, best of "
        f"{args.reps}\n\n{table}\n"
    )
    _append_entry(path, header, entry)


# ---------------------------------------------------------------------- driver
def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--partition-size", type=int, default=50_000)
    p.add_argument("--work", default="/tmp/recogan-bench-batch")
    p.add_argument("--no-ray", action="store_true")
    p.add_argument("--no-retail", action="store_true")
    p.add_argument("--no-record", action="store_true")
    p.add_argument("--scale", action="store_true", help="device case: torch exact at scale")
    p.add_argument("--gan", action="store_true", help="device case: a GAN bundle end to end")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--chunk-bytes", type=int, default=1 << 28, help="torch score block")
    p.add_argument("--gan-epochs", type=int, default=2)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--bundle", help=argparse.SUPPRESS)
    p.add_argument("--users-file", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(args)))
        return 0
    if args.scale or args.gan:
        return device_cases(args)

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    try:
        import ray  # noqa: F401

        has_ray = not args.no_ray
    except ImportError:
        has_ray = False
    # NAME-WORKERS[xTHREADS]; rows must agree for the same threads per worker
    configs = ["local-1", "local-2", "local-1x2"] + (["ray-2"] if has_ray else [])
    cases = {}
    if not args.no_retail:
        cases.update(retail_bundles(work, args.d))
    t0 = time.perf_counter()
    cases["synthetic"] = synthetic_bundle(work, args.users, args.items, args.d)
    print(f"bundles ready ({time.perf_counter() - t0:.0f} s)", flush=True)

    from recogan._threads import n_cores

    rows, ceilings, recommend_only = [], {}, {}
    for case, bundle in cases.items():
        ceiling = None
        if "dot" in bundle.name:
            # on a busy box one thread can beat two: the ceiling is the better of both
            c1 = measure(work, bundle, "ceiling-1", args)["users_per_s"]
            cn = measure(work, bundle, f"ceiling-{n_cores()}", args)["users_per_s"]
            ceiling = max(c1, cn)
            print(f"{case:<10} FAISS ceiling: 1 thread {c1:,.0f} q/s, {n_cores()} {cn:,.0f} q/s")
            ceilings[case] = (c1, cn)
        model_only = measure(work, bundle, "recommend", args)["users_per_s"]
        print(f"{case:<10} recommend() alone, 1 thread: {model_only:,.0f} users/s", flush=True)
        recommend_only[case] = model_only
        digests = set()
        for cfg in configs:
            r = measure(work, bundle, cfg, args)
            if "x" not in cfg:
                digests.add(r["rows_sha256"])
            rows.append((case, cfg, r, ceiling))
            print(
                f"{case:<10} {cfg:<8} {r['users']:>9,} users  {r['users_per_s']:>9,.0f} users/s "
                f"(total {r['users_per_s_total']:,.0f})  ceiling {ceiling or 0:>9,.0f}  "
                f"RSS self {r['rss_self_mb']:,.0f} MB workers {r['rss_workers_mb']:,.0f} MB",
                flush=True,
            )
        assert len(digests) == 1, f"{case}: engines disagree on the rows"
    # memory: the same bundle, 10% of its users vs all of them, one worker
    synth = cases["synthetic"]
    subset = work / "users-10pct.txt"
    subset.write_text("\n".join(map(str, range(0, args.users, 10))))
    small = measure(work, synth, "local-1", args, users_file=subset)
    full = next(r for c, cfg, r, _ in rows if c == "synthetic" and cfg == "local-1")
    mem = (small["users"], small["rss_self_mb"], full["users"], full["rss_self_mb"])
    print(f"memory: {mem[0]:,} users → {mem[1]:,.0f} MB;  {mem[2]:,} users → {mem[3]:,.0f} MB")
    table = _table(rows, args, mem, ceilings, recommend_only)
    print(table)
    if not args.no_record:
        _record(table, args)
    return 0


def _table(rows, args, mem, ceilings, recommend_only) -> str:
    lines = [
        "| case | engine | users | users/s (scoring) | users/s (load+score+publish) "
        "| × FAISS ceiling | ceiling q/s | peak RSS driver / workers (MB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case, cfg, r, ceiling in rows:
        ratio = f"{r['users_per_s'] / ceiling:.2f}" if ceiling else "–"
        workers = f"{r['rss_workers_mb']:,.0f}" if not cfg.startswith("local-1") else "(same)"
        lines.append(
            f"| {case} | {cfg} | {r['users']:,} | {r['users_per_s']:,.0f} "
            f"| {r['users_per_s_total']:,.0f} | {ratio} | {ceiling or 0:,.0f} "
            f"| {r['rss_self_mb']:,.0f} / {workers} |"
        )
    lines.append("")
    for case, (c1, cn) in ceilings.items():
        lines.append(
            f"- {case}: raw FAISS search {c1:,.0f} q/s on 1 thread, {cn:,.0f} on all cores"
        )
    for case, u in recommend_only.items():
        lines.append(
            f"- {case}: the model's recommend() alone (1 thread, no I/O): {u:,.0f} users/s"
        )
    lines.append("")
    lines.append(
        f"Memory (synthetic, local-1, same bundle): {mem[0]:,} users scored → peak RSS "
        f"{mem[1]:,.0f} MB; {mem[2]:,} users → {mem[3]:,.0f} MB."
    )
    return "\n".join(lines)


def _record(table: str, args) -> None:
    path = HERE / "RESULTS.md"
    cmd = "PYTHONPATH=. python benchmarks/batch.py " + " ".join(sys.argv[1:])
    header = "## Batch scoring (issue 6)"
    entry = (
        f"\n### {_dt.date.today().isoformat()}, 2-core shared dev box (busy: compare ratios "
        f"within this run)\n\n`{cmd}` — synthetic {args.users:,} users × {args.items:,} items, "
        f"d={args.d}, n={args.n}, batch {args.batch_size}, partitions of "
        f"{args.partition_size:,} users\n\n{table}\n"
    )
    _append_entry(path, header, entry)


def _append_entry(path: Path, header: str, entry: str) -> None:
    """Append ``entry`` to RESULTS.md, adding the section ``header`` first if it is absent."""
    text = path.read_text()
    if header not in text:
        text = text.rstrip() + f"\n\n{header}\n"
    path.write_text(text.rstrip() + "\n" + entry)


if __name__ == "__main__":
    sys.exit(main())
