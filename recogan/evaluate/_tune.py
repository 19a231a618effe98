"""Hyperparameter search: the same budget for every model, chosen on validation NDCG@10.

Each model class may define ``search_space() -> {param: [values]}``. A search with budget N
tries the model's defaults plus N − 1 distinct points drawn (seeded) from the grid — or the
whole grid when it has at most N points. Each trial fits on every validation fold of the split
(``split.folds``: ``(train_k, valid_k)``, one fold for a plain split, several consecutive cut
points for rolling-origin validation), ``valid_k`` passed for early stopping, and scores
``valid_k``; its validation score is the mean over the folds, and the choice among
candidates is by the median over the folds of each one's score relative to the fold's best
(:func:`relative_scores`), so one odd window cannot decide alone. The best is refitted on
``split.train_valid`` (``valid=None``) for the test, with what early stopping learned combined
over the folds (the median epoch count): the fitting procedure of :mod:`recogan.fitting`.

Trials are independent, so they run in parallel worker processes when ``jobs`` allows
(:func:`plan_workers`): ``spawn``-started, one BLAS/torch/faiss thread each (set in the
environment before the worker imports anything), one trial per GPU for models with a
``device`` setting on a CUDA machine (``CUDA_VISIBLE_DEVICES`` per worker). Every trial runs
with one thread, in a worker or in this process, and keeps its seed, and the results are
put back in trial order: the outcome does not depend on ``jobs``. A trial that raises or a
worker that dies stops the search with a :class:`TrialError` naming the model and the
trial's parameters; workers ignore Ctrl-C (the search stops them) and die with their parent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import multiprocessing as mp
import os
import queue
import signal
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recogan._threads import THREAD_VARS, cuda_device_count, die_with_parent, n_cores, set_threads
from recogan.data import Split
from recogan.fitting import Fold, FoldFits, fit_folds
from recogan.metrics import VALIDATION_METRIC
from recogan.registry import MODEL_REGISTRY, resolve_model

log = logging.getLogger(__name__)

#: The metric every model is tuned on.
TUNE_METRIC = VALIDATION_METRIC


@dataclass
class TuneResult:
    """Outcome of :func:`tune`."""

    model: str
    #: The chosen hyperparameters.
    best_params: dict
    #: Its validation score (``TUNE_METRIC``).
    best_score: float
    #: One row per trial: the parameters, the validation score, fit seconds.
    trials: pd.DataFrame = field(repr=False)
    #: What to refit on train + valid (no validation split left for early stopping): the best
    #: trial's ``refit_params()`` combined over the folds (e.g. its early-stopped epoch count).
    refit_params: dict | None = None
    #: The best trial's validation score on each fold (latest fold first).
    fold_scores: list = field(default_factory=list)

    @property
    def folds(self) -> FoldFits:
        """The best trial's fold fits, as :func:`recogan.fitting.fit_for_serving` takes them."""
        return FoldFits(list(self.fold_scores), dict(self.refit_params or self.best_params))


def search_space(cls) -> dict[str, list]:
    """The class's ``search_space()`` (empty: only its defaults are tried)."""
    return dict(cls.search_space())


def _same(a: dict, b: dict) -> bool:
    return all(a.get(k) == b.get(k) for k in set(a) | set(b))


def candidate_params(cls, budget: int, seed: int = 0) -> list[dict]:
    """Up to ``budget`` parameter dicts: the defaults (restricted to the searched names), then
    distinct grid points in a seeded random order."""
    if budget < 1:
        raise ValueError(f"tuning budget must be >= 1, got {budget}")
    space = search_space(cls)
    defaults = dataclasses.asdict(cls.Config())
    first = {k: defaults[k] for k in space}
    grid = [dict(zip(space, vals)) for vals in itertools.product(*space.values())]
    rng = np.random.default_rng(seed)
    out = [first]
    for i in rng.permutation(len(grid)):
        if len(out) >= budget:
            break
        if not any(_same(grid[i], p) for p in out):
            out.append(grid[i])
    return out


def _with_seed(cls, params: dict, seed: int) -> dict:
    names = {f.name for f in dataclasses.fields(cls.Config)}
    return {**params, "seed": seed} if "seed" in names and "seed" not in params else params


def relative_scores(scores: np.ndarray) -> np.ndarray:
    """Per candidate (rows of ``scores``, one column per fold): the median over the folds of
    its score relative to the fold's best candidate. A candidate that wins one odd window
    (a seasonal peak, a fad) by a mile but trails in the others ranks below one that is
    close to the best in most windows; a mean of the raw scores would be decided by the odd
    window alone."""
    best = np.nanmax(np.where(np.isnan(scores), -np.inf, scores), axis=0)  # (folds,)
    rel = np.where(best > 0, scores / np.where(best > 0, best, 1.0), 1.0)
    rel = np.where(np.isnan(scores), np.nan, rel)
    with np.errstate(all="ignore"):
        out = np.nanmedian(rel, axis=1) if rel.size else np.zeros(len(scores))
    return out


def tune(
    model_name: str,
    split: Split,
    budget: int = 8,
    seed: int = 0,
    *,
    candidates: list[dict] | None = None,
    jobs: int | str = "auto",
    show_progress: bool = False,
) -> TuneResult:
    """Search ``model_name``'s space on ``split`` (fit on each fold's train, score its valid);
    ``candidates`` replaces the search with the given parameter dicts (``[params]`` scores a
    fixed setting the same way). ``jobs``: worker processes for the trials (``"auto"``: as
    many as the trials and the cores, or the GPUs, allow; 1: all in this process)."""
    cls = resolve_model(model_name)
    trials = candidate_params(cls, budget, seed) if candidates is None else list(candidates)
    if not trials:
        raise ValueError("tune needs at least one candidate")
    fulls = [_with_seed(cls, params, seed) for params in trials]
    plan = plan_workers(jobs, len(fulls), uses_device=uses_device(cls))
    fits = _run_trials(model_name, cls, fulls, split.folds, plan, show_progress)
    rows = []
    for full, fit in zip(fulls, fits):
        folds = fit.scores
        score = float(np.nanmean(folds)) if not np.isnan(folds).all() else float("nan")
        log.info(
            "tune %s %s: valid %s=%.4f %s (%.1fs)",
            model_name, full, TUNE_METRIC, score, np.round(folds, 4).tolist(), fit.seconds,
        )  # fmt: skip
        rows.append({"params": full, TUNE_METRIC: score, "fold_scores": folds,
                     "fit_seconds": fit.seconds, "refit": fit.refit})  # fmt: skip
    frame = pd.DataFrame(rows).drop(columns="refit")
    frame["relative"] = relative_scores(np.array([r["fold_scores"] for r in rows], dtype=float))
    best = int(np.argmax(frame["relative"].fillna(-np.inf)))  # first best: defaults win ties
    return TuneResult(
        model_name,
        rows[best]["params"],
        float(frame[TUNE_METRIC].iloc[best]),
        frame,
        rows[best]["refit"],
        rows[best]["fold_scores"],
    )


# ---------------------------------------------------------------------- parallel trials


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


def _run_trials(
    model_name: str,
    cls,
    trials: list[dict],
    folds: Sequence[Fold],
    plan: WorkerPlan,
    show_progress: bool,
) -> list[FoldFits]:
    """Each trial's fold fits, in trial order."""
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


@contextlib.contextmanager
def _environ(env: dict[str, str]):
    """``os.environ`` updated by ``env`` for the block (a spawned worker inherits it)."""
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
        set_threads(1)
        cls = resolve_model(model_name)
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
    tasks, results = ctx.Queue(), ctx.Queue()
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
            with _environ(env):
                proc.start()
            procs.append(proc)
        while any(x is None for x in out):
            with contextlib.suppress(queue.Empty):
                handle(results.get(timeout=0.5))
            if all(p.is_alive() or w in exited for w, p in enumerate(procs)):
                continue
            # a worker is gone: read what it sent before it went, then name what it ran
            with contextlib.suppress(queue.Empty):
                while True:
                    handle(results.get(timeout=0.5))
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
        results.cancel_join_thread()
        tasks.close()
        results.close()
    return out
