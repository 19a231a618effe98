"""Fitting many settings of one model on the same folds, in parallel worker processes.

Tuning fits every candidate setting on every validation fold (:func:`recogan.fitting.fit_folds`);
the candidates are independent, so they run in worker processes when ``jobs`` allows
(:func:`plan_workers`): ``spawn``-started, one BLAS/torch/faiss thread each (set in the
environment before the worker imports anything), one trial per GPU for a model with a
``device`` setting on a CUDA machine (``CUDA_VISIBLE_DEVICES`` per worker). Every trial runs
with one thread, in a worker or in this process, keeps its parameters (and so its seed), and
the results come back in trial order: the outcome does not depend on ``jobs``.

A trial that raises, or a worker that dies, stops the search with a :class:`TrialError` that
names the model and the trial's parameters (never a hang). Workers ignore Ctrl-C (the parent
stops them as it unwinds) and are killed by the kernel if the parent dies.

This module sits outside :mod:`recogan.evaluate` so that a worker imports only what fitting
needs (not the report's plotting and statistics).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from recogan._threads import (
    THREAD_VARS,
    cuda_device_count,
    die_with_parent,
    environ,
    n_cores,
    set_threads,
)
from recogan.fitting import Fold, FoldFits, fit_folds
from recogan.registry import MODEL_REGISTRY, resolve_model

log = logging.getLogger(__name__)


class TrialError(RuntimeError):
    """A tuning trial failed (its fit raised, or its worker process died)."""


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker process (the cause of a TrialError)."""

    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class WorkerPlan:
    """How the trials of one model run."""

    #: Worker processes (1: in this process).
    workers: int
    #: ``CUDA_VISIBLE_DEVICES`` of each worker (None: left as it is).
    devices: tuple = ()


def uses_device(cls) -> bool:
    """Whether the model has a ``device`` setting (it may train on a GPU)."""
    return "device" in {f.name for f in dataclasses.fields(cls.Config)}


def check_jobs(jobs) -> int | str:
    """``jobs`` checked: ``"auto"`` or a positive int."""
    if isinstance(jobs, str) and jobs.strip().lower() == "auto":
        return "auto"
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise ValueError(f"jobs must be a positive int or 'auto', got {jobs!r}")
    return int(jobs)


def plan_workers(
    jobs: int | str,
    n_trials: int,
    *,
    uses_device: bool = False,
    cores: int | None = None,
    gpus: int | None = None,
) -> WorkerPlan:
    """Workers for ``n_trials`` trials: never more than the trials; ``"auto"``: one per core,
    or one per GPU for a model with a ``device`` setting on a CUDA machine (``gpus``: counted
    when not given, only for such models). Workers of a model with a ``device`` setting get
    the GPUs in turn."""
    jobs = check_jobs(jobs)
    if uses_device and gpus is None:
        gpus = cuda_device_count()
    gpus = int(gpus or 0) if uses_device else 0
    cores = n_cores() if cores is None else int(cores)
    if jobs == "auto":
        jobs = gpus if gpus else cores
    workers = max(1, min(int(jobs), int(n_trials)))
    if workers == 1:
        return WorkerPlan(1, (None,))
    devices = tuple(str(w % gpus) if gpus else None for w in range(workers))
    return WorkerPlan(workers, devices)


def fit_trials(
    model_name: str,
    trials: list[dict],
    folds: Sequence[Fold],
    plan: WorkerPlan | None = None,
    *,
    show_progress: bool = False,
) -> list[FoldFits]:
    """:func:`recogan.fitting.fit_folds` of the model ``model_name`` (a registry name) with
    each parameter dict of ``trials``, in trial order; in ``plan.workers`` worker processes
    (default: one per core, up to the trials)."""
    cls = resolve_model(model_name)
    if plan is None:
        plan = plan_workers("auto", len(trials), uses_device=uses_device(cls))
    if plan.workers <= 1:
        restore = set_threads(1)  # as in a worker: the scores do not depend on ``jobs``
        try:
            it = tqdm(trials, desc=f"tune {model_name}", leave=False) if show_progress else trials
            out = []
            for i, params in enumerate(it):
                try:
                    out.append(fit_folds(cls, params, folds))
                except Exception as e:
                    e.add_note(f"tuning {model_name}: {_trial_name(i, trials)}")
                    raise
            return out
        finally:
            restore()
    log.info("tune %s: %d trials in %d worker processes", model_name, len(trials), plan.workers)
    return _run_pool(model_name, trials, folds, plan, show_progress)


def _trial_name(i: int, trials: list[dict]) -> str:
    return f"trial {i + 1}/{len(trials)} with params {trials[i]}"


def _worker(wid, model_name, folds, registry, sys_path, tasks, results) -> None:
    """A worker process: fit the trials it takes from ``tasks`` until it takes None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the search, which stops us
    die_with_parent()
    i = None
    try:
        for p in sys_path:
            if p not in sys.path:
                sys.path.append(p)
        MODEL_REGISTRY.update(registry)
        cls = resolve_model(model_name)  # may import torch (which reads OMP_NUM_THREADS)
        set_threads(1)  # and pin what is loaded now, whatever it read
        while (task := tasks.get()) is not None:
            i, params = task
            results.put(("start", wid, i, None))
            fits = fit_folds(cls, params, folds)
            results.put(("done", wid, i, FoldFits(fits.scores, fits.refit, fits.seconds)))
            i = None
    except BaseException as e:
        text = "".join(traceback.format_exception(e))
        results.put(("error", wid, i, (f"{type(e).__name__}: {e}", text)))
        return
    results.put(("exit", wid, None, None))


def _run_pool(model_name, trials, folds, plan: WorkerPlan, show_progress) -> list[FoldFits]:
    ctx = mp.get_context("spawn")
    # results: a SimpleQueue, whose put writes to the pipe before it returns (a Queue hands
    # the message to a feeder thread, and a worker that dies right after loses it, so its
    # death would be blamed on the trial before)
    tasks, results = ctx.Queue(), ctx.SimpleQueue()
    for i, params in enumerate(trials):
        tasks.put((i, params))
    for _ in range(plan.workers):
        tasks.put(None)
    out: list[FoldFits | None] = [None] * len(trials)
    running: dict[int, int] = {}  # worker -> the trial it runs
    exited: set[int] = set()
    procs = []
    bar = tqdm(total=len(trials), desc=f"tune {model_name}", leave=False, disable=not show_progress)

    def handle(msg) -> None:
        kind, wid, i, payload = msg
        if kind == "start":
            running[wid] = i
        elif kind == "done":
            out[i] = payload
            running.pop(wid, None)
            bar.update(1)
        elif kind == "exit":
            exited.add(wid)
        else:  # error
            summary, text = payload
            where = _trial_name(i, trials) if i is not None else "before its first trial"
            raise TrialError(
                f"tuning {model_name}: {where} failed in a worker process: {summary}"
            ) from _RemoteTraceback(text)

    try:
        args = (model_name, list(folds), dict(MODEL_REGISTRY), list(sys.path), tasks, results)
        for wid, device in enumerate(plan.devices):
            env = {v: "1" for v in THREAD_VARS}  # read by BLAS/torch/faiss when imported
            if device is not None:
                env["CUDA_VISIBLE_DEVICES"] = device
            proc = ctx.Process(
                target=_worker, args=(wid, *args), name=f"recogan-tune-{wid}", daemon=True
            )
            with environ(env):
                proc.start()
            procs.append(proc)
        while any(x is None for x in out):
            if not results.empty():
                handle(results.get())
                continue
            if all(p.is_alive() or w in exited for w, p in enumerate(procs)):
                time.sleep(0.05)
                continue
            # a worker is gone: read what it sent before it went, then name what it ran
            while not results.empty():
                handle(results.get())
            for w, p in enumerate(procs):
                if not p.is_alive() and w not in exited:
                    i = running.get(w)
                    where = _trial_name(i, trials) if i is not None else "before its first trial"
                    raise TrialError(
                        f"tuning {model_name}: a worker process died {where} (exit code "
                        f"{p.exitcode}: out of memory, killed, or it could not start: a script "
                        "that calls evaluate with jobs > 1 must guard it with "
                        "`if __name__ == '__main__':`)"
                    )
    finally:
        bar.close()
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():  # pragma: no cover - ignored SIGTERM
                p.kill()
                p.join()
        tasks.cancel_join_thread()
        tasks.close()
        results.close()
    return out
