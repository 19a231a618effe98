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

import contextlib
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
from recogan.fitting import Fold, FoldFits, combine_refit, fit_fold
from recogan.metrics import validation_scorer
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


@dataclass(frozen=True)
class Task:
    """One unit of work: fit ``params`` on some of the folds (indices into the folds)."""

    params: dict
    folds: tuple[int, ...]
    #: How an error names it, e.g. ``trial 2/8 with params {...}``.
    label: str = ""


def fit_trials(
    model_name: str,
    trials: list[dict],
    folds: Sequence[Fold],
    plan: WorkerPlan | None = None,
    *,
    show_progress: bool = False,
    targets: str = "new",
) -> list[FoldFits]:
    """:func:`recogan.fitting.fit_folds` of the model ``model_name`` (a registry name) with
    each parameter dict of ``trials``, in trial order; in ``plan.workers`` worker processes
    (default: one per core, up to the trials); each fold scored on ``targets``
    (:func:`recogan.metrics.validation_scorer`)."""
    cls = resolve_model(model_name)
    if plan is None:
        plan = plan_workers("auto", len(trials), uses_device=uses_device(cls))
    every = tuple(range(len(folds)))
    tasks = [Task(p, every, _trial_name(i, trials)) for i, p in enumerate(trials)]
    if plan.workers > 1:
        log.info("tune %s: %d trials in %d worker processes", model_name, len(trials), plan.workers)
    with TrialPool(model_name, folds, plan, show_progress=show_progress, targets=targets) as pool:
        return [combine(f) for f in pool.run(tasks)]


def combine(fits: list[FoldFits]) -> FoldFits:
    """One FoldFits from the per-fold results of a task (scores in fold order, the refit
    settings combined as :func:`recogan.fitting.fit_folds` does)."""
    return FoldFits(
        [f.scores[0] for f in fits],
        combine_refit([f.refit for f in fits]),
        sum(f.seconds for f in fits),
    )


def _trial_name(i: int, trials: list[dict]) -> str:
    return f"trial {i + 1}/{len(trials)} with params {trials[i]}"


def _fit_task(cls, params: dict, folds: Sequence[Fold], idx, targets="new") -> list[FoldFits]:
    out = []
    scorer = validation_scorer(targets)
    params = {**params, **cls.judged_params(targets)}
    for k in idx:
        one = fit_fold(cls, params, folds[k], scorer=scorer)
        out.append(FoldFits(one.scores, one.refit, one.seconds))  # the model stays here
    return out


class TrialPool:
    """Runs batches of :class:`Task` of one model on the same folds, in this process
    (``plan.workers == 1``) or in worker processes started once and kept for every batch.
    Results come back in task order; a task that raises, or a worker that dies, raises a
    :class:`TrialError` naming the task (in this process: the fit's own exception, with the
    task named in a note)."""

    def __init__(
        self,
        model_name: str,
        folds: Sequence[Fold],
        plan: WorkerPlan,
        *,
        show_progress: bool = False,
        processes: bool | None = None,
        targets: str = "new",
    ) -> None:
        self.model_name = model_name
        self.targets = targets
        self.cls = resolve_model(model_name)
        self.folds = list(folds)
        self.plan = plan
        self.show_progress = show_progress
        self.processes = plan.workers > 1 if processes is None else processes
        self._procs: list = []
        self._running: dict[int, int] = {}  # worker -> the task it runs
        self._exited: set[int] = set()

    def __enter__(self) -> TrialPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, tasks: Sequence[Task], on_done=None) -> list[list[FoldFits]]:
        """Per task, its folds' results (in the task's fold order). ``on_done(i, fits)`` is
        called as each task finishes (in the order they finish), e.g. to store it."""
        if not tasks:
            return []
        if not self.processes:
            return self._run_here(tasks, on_done)
        if not self._procs:
            self._start()
        return self._run_pool(tasks, on_done)

    def _run_here(self, tasks, on_done) -> list[list[FoldFits]]:
        restore = set_threads(1)  # as in a worker: the scores do not depend on ``jobs``
        try:
            desc = f"tune {self.model_name}"
            it = tqdm(tasks, desc=desc, leave=False) if self.show_progress else tasks
            out = []
            for i, task in enumerate(it):
                try:
                    out.append(
                        _fit_task(self.cls, task.params, self.folds, task.folds, self.targets)
                    )
                except Exception as e:
                    e.add_note(f"tuning {self.model_name}: {task.label}")
                    raise
                if on_done is not None:
                    on_done(i, out[-1])
            return out
        finally:
            restore()

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        # results: a SimpleQueue, whose put writes to the pipe before it returns (a Queue
        # hands the message to a feeder thread, and a worker that dies right after loses it,
        # so its death would be blamed on the task before)
        self._tasks, self._results = ctx.Queue(), ctx.SimpleQueue()
        args = (
            self.model_name, self.folds, dict(MODEL_REGISTRY), list(sys.path),
            self._tasks, self._results, self.targets,
        )  # fmt: skip
        try:
            for wid, device in enumerate(self.plan.devices):
                env = {v: "1" for v in THREAD_VARS}  # read by BLAS/torch/faiss when imported
                if device is not None:
                    env["CUDA_VISIBLE_DEVICES"] = device
                proc = ctx.Process(
                    target=_worker, args=(wid, *args), name=f"recogan-tune-{wid}", daemon=True
                )
                with environ(env):
                    proc.start()
                self._procs.append(proc)
        except BaseException:
            self.close()
            raise

    def _run_pool(self, tasks, on_done) -> list[list[FoldFits]]:
        out: list = [None] * len(tasks)
        bar = tqdm(
            total=len(tasks), desc=f"tune {self.model_name}", leave=False,
            disable=not self.show_progress,
        )  # fmt: skip
        name = self.model_name

        def where(i) -> str:
            return tasks[i].label if i is not None else "before its first trial"

        def handle(msg) -> None:
            kind, wid, i, payload = msg
            if kind == "start":
                self._running[wid] = i
            elif kind == "done":
                out[i] = payload
                self._running.pop(wid, None)
                bar.update(1)
                if on_done is not None:
                    on_done(i, payload)
            elif kind == "exit":
                self._exited.add(wid)
            else:  # error
                summary, text = payload
                raise TrialError(
                    f"tuning {name}: {where(i)} failed in a worker process: {summary}"
                ) from _RemoteTraceback(text)

        try:
            for i, task in enumerate(tasks):
                self._tasks.put((i, task.params, task.folds))
            results = self._results
            while any(x is None for x in out):
                if not results.empty():
                    handle(results.get())
                    continue
                procs = self._procs
                if all(p.is_alive() or w in self._exited for w, p in enumerate(procs)):
                    time.sleep(0.05)
                    continue
                # a worker is gone: read what it sent before it went, then name what it ran
                while not results.empty():
                    handle(results.get())
                for w, p in enumerate(procs):
                    if not p.is_alive() and w not in self._exited:
                        raise TrialError(
                            f"tuning {name}: a worker process died {where(self._running.get(w))}"
                            f" (exit code {p.exitcode}: out of memory, killed, or it could not "
                            "start: a script that calls evaluate with jobs > 1 must guard it "
                            "with `if __name__ == '__main__':`)"
                        )
        except BaseException:
            self.close()  # the workers may hold tasks of this batch: never reuse them
            raise
        finally:
            bar.close()
        return out

    def close(self) -> None:
        procs, self._procs = self._procs, []
        if not procs:
            return
        for _ in procs:
            with contextlib.suppress(Exception):
                self._tasks.put(None)
        for p in procs:
            p.join(timeout=0.5)
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():  # pragma: no cover - ignored SIGTERM
                p.kill()
                p.join()
        self._tasks.cancel_join_thread()
        self._tasks.close()
        self._results.close()


def _worker(wid, model_name, folds, registry, sys_path, tasks, results, targets="new") -> None:
    """A worker process: fit the tasks it takes from ``tasks`` until it takes None."""
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
            i, params, idx = task
            results.put(("start", wid, i, None))
            fits = _fit_task(cls, params, folds, idx, targets)
            results.put(("done", wid, i, fits))
            i = None
    except BaseException as e:
        text = "".join(traceback.format_exception(e))
        results.put(("error", wid, i, (f"{type(e).__name__}: {e}", text)))
        return
    results.put(("exit", wid, None, None))


def _run_pool(model_name, trials, folds, plan: WorkerPlan, show_progress) -> list[FoldFits]:
    """Every trial on every fold in worker processes (even one)."""
    every = tuple(range(len(folds)))
    tasks = [Task(p, every, _trial_name(i, trials)) for i, p in enumerate(trials)]
    with TrialPool(model_name, folds, plan, show_progress=show_progress, processes=True) as pool:
        return [combine(f) for f in pool.run(tasks)]
