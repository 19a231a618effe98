"""The local engine: partitions scored in worker processes on this machine.

Each worker loads (and verifies) the bundle once in its initializer and then scores whole
partitions. Workers start with ``spawn`` so they never inherit the parent's threads or locks.
Every worker (also the in-process one) runs BLAS / torch / faiss with the job's ``threads``:
dense float math can differ in the last bit with the thread count, so fixing it per worker
(not per machine) keeps rows byte-identical for any number of workers; by default
``workers = cores // threads``.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import sys
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from recogan._threads import THREAD_VARS, die_with_parent, environ, n_cores, set_threads
from recogan.artifacts import load_model
from recogan.batch._partition import Options, Task, apply_override, score_partition
from recogan.registry import MODEL_REGISTRY

log = logging.getLogger(__name__)

# the model of this worker process, loaded once by ``init_worker`` (or why it could not be)
_MODEL = None
_INIT_ERROR: BaseException | None = None


def init_worker(
    bundle: str,
    override: dict,
    threads: int,
    registry: dict,
    sys_path: list[str],
    manifest: bytes | None = None,
    device: str = "cpu",
) -> None:
    """Load the bundle once per worker (with the parent's model registry and import path, so
    models registered at run time load here too). ``manifest``: the bytes of the manifest the
    job verified; exactly that version is loaded, a changed bundle is refused. ``device``:
    where the job's model runs (as the job resolved it). A failure is kept and raised by the
    first task, so the job reports it instead of a dead pool."""
    global _INIT_ERROR
    try:
        _init_worker(bundle, override, threads, registry, sys_path, manifest, device)
    except Exception as e:
        _INIT_ERROR = e


def _init_worker(bundle, override, threads, registry, sys_path, manifest, device) -> None:
    global _MODEL
    die_with_parent()  # no orphan keeps writing into the staging directory of a later run
    for p in sys_path:
        if p not in sys.path:
            sys.path.append(p)
    MODEL_REGISTRY.update(registry)
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    _MODEL = load_model(bundle, device=device, manifest=manifest)
    apply_override(_MODEL, override)
    set_threads(threads)  # after loading, which may import torch/faiss


def run_task(task: Task, opt: Options) -> dict:
    if _INIT_ERROR is not None:
        raise _INIT_ERROR
    if _MODEL is None:  # pragma: no cover - the initializer did not run
        raise RuntimeError("batch worker has no model: its initializer did not run")
    return score_partition(_MODEL, task, opt)


def run_local(
    model,
    bundle: str,
    manifest: bytes | None,
    tasks: list[Task],
    opt: Options,
    *,
    workers: int,
    threads: int,
    override: dict,
    device: str = "cpu",
) -> Iterator[dict]:
    """Score ``tasks``; yields each partition's record as it completes (any order).

    One worker runs in this process on the already loaded ``model`` (its thread limits are
    restored afterwards); more run in a process pool. Every worker uses ``threads`` threads.
    """
    if not tasks:
        return
    if workers <= 1:
        restore = set_threads(threads)
        try:
            for task in tasks:
                yield score_partition(model, task, opt)
        finally:
            restore()
        return
    log.info("local engine: %d workers × %d thread(s) on %d cores", workers, threads, n_cores())
    # the pool starts its processes lazily (at submit): keep the env for the pool's lifetime
    with environ({v: str(threads) for v in THREAD_VARS}):
        yield from _run_pool(bundle, manifest, tasks, opt, workers, threads, override, device)


def _run_pool(bundle, manifest, tasks, opt, workers, threads, override, device):
    registry, path = dict(MODEL_REGISTRY), list(sys.path)
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=mp.get_context("spawn"),
        initializer=init_worker,
        initargs=(bundle, override, threads, registry, path, manifest, device),
    )
    try:
        # keep a bounded number of tasks in flight so a huge job does not queue every
        # partition's user array at once
        pending = set()
        queue = iter(tasks)
        for task in queue:
            pending.add(pool.submit(run_task, task, opt))
            if len(pending) >= 2 * workers:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    record = fut.result()
                except BrokenProcessPool as e:
                    raise RuntimeError(
                        "a batch worker process died (out of memory, killed, or it could not "
                        "start: a script that calls batch_score with workers > 1 must guard it "
                        "with `if __name__ == '__main__':`); re-run with --resume to keep the "
                        "finished partitions"
                    ) from e
                yield record
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(run_task, nxt, opt))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
