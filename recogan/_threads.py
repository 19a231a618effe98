"""CPU and GPU counts, thread pinning and worker-process set-up, in one place.

BLAS (through threadpoolctl), torch and faiss each keep their own thread count. Batch workers
pin all three to the job's ``threads`` (dense float math can change in the last bit with the
thread count, so a fixed count keeps results byte-identical); training pins torch's; tuning
trials run with one thread each.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Environment variables BLAS/OpenMP libraries read when they are first imported.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def n_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1  # pragma: no cover - not Linux


def cuda_device_count() -> int:
    """CUDA devices torch can use (0 without torch or CUDA)."""
    try:
        import torch  # behind the lazy boundary: asked only by callers that may use a GPU
    except ImportError:  # pragma: no cover - torch is a dependency
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def die_with_parent() -> None:
    """Linux: have the kernel kill this (worker) process when its parent dies, even by
    SIGKILL, so no orphan keeps running (or writing) after the job that started it."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)
    except (OSError, AttributeError):  # pragma: no cover - best effort
        log.debug("could not set the parent-death signal", exc_info=True)


def set_torch_threads(threads: int) -> None:
    """torch's intra-op thread count (at least one), process-wide."""
    import torch  # torch stays behind the lazy boundary: only models that train import it

    torch.set_num_threads(max(1, int(threads)))


def set_threads(threads: int) -> Callable[[], None]:
    """Pin BLAS/OpenMP (threadpoolctl), torch and faiss (where loaded) to ``threads``.

    Returns a function that restores the previous settings.
    """
    undo = []
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        undo.append(lambda: torch.set_num_threads(before))
    if "faiss" in sys.modules:
        faiss = sys.modules["faiss"]
        before_f = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(threads)
        undo.append(lambda: faiss.omp_set_num_threads(before_f))
    try:  # installed with scikit-learn; numpy's BLAS reads its env only at import
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        log.debug("threadpoolctl missing: BLAS threads follow OMP_NUM_THREADS")
    else:
        limits = threadpool_limits(limits=threads)
        undo.append(limits.restore_original_limits)

    def restore() -> None:
        for f in reversed(undo):
            f()

    return restore


@contextlib.contextmanager
def environ(env: dict[str, str]):
    """``os.environ`` updated by ``env`` for the block, restored after it (what a process
    spawned inside the block inherits, e.g. BLAS thread counts read at import)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
