"""The local engine: partitions scored in worker processes on this machine.

Each worker loads (and verifies) the bundle once in its initializer and then scores whole
partitions. Workers start with ``spawn`` so they never inherit the parent's threads or locks,
and their BLAS / torch / faiss thread counts are set so that ``workers × threads ≤ cores``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from recogan.batch._partition import Options, Task, apply_override, score_partition

log = logging.getLogger(__name__)

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

# the model of this worker process, loaded once by ``init_worker``
_MODEL = None


def n_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def set_threads(threads: int) -> None:
    """Pin torch and faiss (where loaded) to ``threads`` threads in this process."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "faiss" in sys.modules:
        sys.modules["faiss"].omp_set_num_threads(threads)


def init_worker(
    bundle: str, override: dict, threads: int, registry: dict, sys_path: list[str]
) -> None:
    """Load the bundle once per worker (with the parent's model registry and import path, so
    models registered at run time load here too)."""
    global _MODEL
    _die_with_parent()
    for p in sys_path:
        if p not in sys.path:
            sys.path.append(p)
    from recogan.artifacts import load_model
    from recogan.base import MODEL_REGISTRY

    MODEL_REGISTRY.update(registry)
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    set_threads(threads)
    _MODEL = load_model(bundle)
    apply_override(_MODEL, override)
    set_threads(threads)  # loading may have imported torch/faiss


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when the job's process dies (e.g. SIGKILL), so
    no orphan keeps writing into the staging directory of a later, resumed run."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)
    except (OSError, AttributeError):  # pragma: no cover - best effort
        log.debug("could not set the parent-death signal", exc_info=True)


def run_task(task: Task, opt: Options) -> dict:
    if _MODEL is None:  # pragma: no cover - the initializer failed
        raise RuntimeError("batch worker has no model: its initializer did not run")
    return score_partition(_MODEL, task, opt)


@contextlib.contextmanager
def _thread_env(threads: int):
    """Environment for spawned workers: BLAS reads its thread count at import."""
    saved = {v: os.environ.get(v) for v in _THREAD_VARS}
    os.environ.update({v: str(threads) for v in _THREAD_VARS})
    try:
        yield
    finally:
        for v, val in saved.items():
            if val is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = val


def run_local(
    model,
    bundle: str,
    tasks: list[Task],
    opt: Options,
    *,
    workers: int,
    override: dict,
) -> Iterator[dict]:
    """Score ``tasks``; yields each partition's record as it completes (any order).

    One worker runs in this process on the already loaded ``model``; more run in a
    process pool.
    """
    if not tasks:
        return
    cores = n_cores()
    if workers <= 1:
        set_threads(cores)
        for task in tasks:
            yield score_partition(model, task, opt)
        return
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    from recogan.base import MODEL_REGISTRY

    threads = max(1, cores // workers)
    log.info("local engine: %d workers × %d thread(s) on %d cores", workers, threads, cores)
    with _thread_env(threads):
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context("spawn"),
            initializer=init_worker,
            initargs=(bundle, override, threads, dict(MODEL_REGISTRY), list(sys.path)),
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
                        "a batch worker process died (out of memory or killed?); "
                        "re-run with --resume to keep the finished partitions"
                    ) from e
                yield record
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(run_task, nxt, opt))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
