"""The Ray engine: the same per-partition function, run by a Ray Data actor pool.

Each actor loads (and verifies) the bundle once and scores whole partitions, so the output is
the same as the local engine's. ``address`` joins a running cluster (recogan must be installed
on its nodes); without it a local Ray is started with a small object store and no dashboard.
Actors ask for a fraction of a CPU: with a whole CPU each, a pool as large as a 2-core
machine leaves Ray Data nothing to schedule its own tasks on and the job can hang.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator

import numpy as np

from recogan._threads import THREAD_VARS, n_cores
from recogan.batch import _local
from recogan.batch._partition import Options, Task
from recogan.registry import MODEL_REGISTRY

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the ray engine needs Ray, which is not installed: pip install 'recogan[ray]' "
    "(or pip install 'ray[data]'), or use --engine local"
)

#: Object store of a local Ray (bytes): the job ships only user-index slices and small
#: records through it.
OBJECT_STORE_BYTES = 100 * 1024**2


def require_ray():
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return ray


class _Scorer:
    """A Ray Data actor: loads the bundle once, then scores one partition per row."""

    def __init__(
        self, bundle, manifest, override, threads, registry, sys_path, users_ref, opt, device
    ):
        import ray  # optional dependency: the ray extra

        _local.init_worker(bundle, override, threads, registry, sys_path, manifest, device)
        self.users = ray.get(users_ref[0])
        self.opt = opt

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = []
        for index, start, stop in zip(batch["partition"], batch["start"], batch["stop"]):
            task = Task(int(index), self.users[int(start) : int(stop)])
            out.append(json.dumps(_local.run_task(task, self.opt)))
        return {"record": np.array(out, dtype=object)}


def run_ray(
    bundle: str,
    manifest: bytes | None,
    tasks: list[Task],
    users: np.ndarray,
    offsets: list[tuple[int, int]],
    opt: Options,
    *,
    workers: int,
    threads: int,
    override: dict,
    device: str = "cpu",
    address: str | None = None,
    cpus_per_actor: float = 0.5,
) -> Iterator[dict]:
    """Score ``tasks`` (``offsets[i]`` = the slice of ``users`` of task i); yields records.
    Every actor loads exactly the bundle version whose manifest bytes are ``manifest``."""
    if not tasks:
        return
    ray = require_ray()
    started = _start_ray(ray, threads, address)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.verbose_progress = False
        users_ref = [ray.put(np.ascontiguousarray(users))]
        rows = [
            {"partition": t.index, "start": offsets[i][0], "stop": offsets[i][1]}
            for i, t in enumerate(tasks)
        ]
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        ds = ds.map_batches(
            _Scorer,
            fn_constructor_args=(
                bundle,
                manifest,
                override,
                threads,
                dict(MODEL_REGISTRY),
                [p for p in sys.path if p],
                users_ref,
                opt,
                device,
            ),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=max(1, workers)),
            num_cpus=cpus_per_actor,
            num_gpus=0 if device == "cpu" else 1,
        )
        for row in ds.iter_rows():
            yield json.loads(row["record"])
    finally:
        if started:
            ray.shutdown()


def _start_ray(ray, threads: int, address: str | None) -> bool:
    """Start (or join, with ``address``) Ray unless it runs already; whether it was started."""
    if ray.is_initialized():
        return False
    env = {var: str(threads) for var in THREAD_VARS}
    kwargs = {
        "include_dashboard": False,
        "log_to_driver": False,
        "runtime_env": {"env_vars": env},
    }
    if address is None:
        # local workers import what this process imports (a checkout, test helpers);
        # cluster nodes have recogan installed and keep their own path
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        kwargs.update(num_cpus=n_cores(), object_store_memory=OBJECT_STORE_BYTES)
    else:
        kwargs["address"] = address
        del kwargs["include_dashboard"]
    log.info("starting Ray (%s)", address or "local")
    ray.init(**kwargs)
    return True
