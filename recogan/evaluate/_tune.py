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

Two searches (``method``):

- ``"halving"`` (default): successive halving with Optuna (:mod:`recogan.evaluate._halving`):
  every trial is first judged on the latest window (with a third of the epochs for a model
  that early-stops), and only the best fraction goes on to every window and full training;
  ranges whose best value sits on an edge are widened; the study can be stored (SQLite) and
  resumed.
- ``"exhaustive"``: the tuner above, every candidate on every fold (also what ``candidates``
  uses).

Trials are independent: they run in parallel worker processes when ``jobs`` allows, with
the same results as in one process (:mod:`recogan._trials`).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recogan._trials import fit_trials, plan_workers, uses_device
from recogan.data import Split
from recogan.evaluate._halving import halving_search, relative_scores
from recogan.fitting import FoldFits
from recogan.metrics import VALIDATION_METRIC
from recogan.registry import resolve_model

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
    #: ``"halving"`` or ``"exhaustive"``.
    method: str = "exhaustive"
    #: Seconds the search took (wall time, fits and waiting), and fold fits done now (a
    #: short fit counts a third; 0 for trials loaded from an earlier, interrupted run).
    seconds: float = 0.0
    fold_fits: float = 0.0
    #: The numeric ranges the search ended with (``halving``; after any widening).
    ranges: dict = field(default_factory=dict)

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


METHODS = ("halving", "exhaustive")


def tune(
    model_name: str,
    split: Split,
    budget: int = 8,
    seed: int = 0,
    *,
    candidates: list[dict] | None = None,
    jobs: int | str = "auto",
    show_progress: bool = False,
    method: str = "halving",
    storage: str | None = None,
    on_progress=None,
    targets: str = "new",
) -> TuneResult:
    """Search ``model_name``'s space on ``split`` (fit on each fold's train, score its valid);
    ``candidates`` replaces the search with the given parameter dicts, each fitted on every
    fold (``[params]`` scores a fixed setting the same way). ``jobs``: worker processes for
    the trials (``"auto"``: as many as the trials and the cores, or the GPUs, allow; 1: all in
    this process). ``method``: ``"halving"`` or ``"exhaustive"`` (see the module's doc);
    ``storage``: where a halving study is kept (an optuna storage URL such as
    ``sqlite:///DIR/studies.sqlite3``; None: in memory); ``on_progress(done, expected,
    seconds)``: called as the halving search goes (fold-fit units). ``targets``: what the
    validation NDCG@10 counts (:data:`recogan.metrics.TARGETS`)."""
    if method not in METHODS:
        raise ValueError(f"unknown tuning method {method!r} (known: {', '.join(METHODS)})")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"tuning budget must be >= 1, got {budget}")
    cls = resolve_model(model_name)
    t0 = time.perf_counter()
    if candidates is None and method == "halving":
        out = halving_search(
            model_name, cls, split.folds, int(budget), seed, jobs=jobs, storage=storage,
            with_seed=lambda p: _with_seed(cls, p, seed), on_progress=on_progress,
            targets=targets,
        )  # fmt: skip
        rows = [
            {"params": t["params"], "fold_scores": t["scores"], "fit_seconds": t["seconds"],
             "refit": t["refit"], "state": t["state"], "stages": t["stages"]}
            for t in out.trials
        ]  # fmt: skip
        result = _result(model_name, rows, complete=[t["state"] == "complete" for t in rows])
        result.method, result.ranges, result.fold_fits = "halving", out.ranges, out.fitted_units
    else:
        trials = candidate_params(cls, budget, seed) if candidates is None else list(candidates)
        if not trials:
            raise ValueError("tune needs at least one candidate")
        fulls = [_with_seed(cls, params, seed) for params in trials]
        plan = plan_workers(jobs, len(fulls), uses_device=uses_device(cls))
        fits = fit_trials(
            model_name, fulls, split.folds, plan, show_progress=show_progress, targets=targets
        )
        rows = [
            {"params": full, "fold_scores": fit.scores, "fit_seconds": fit.seconds,
             "refit": fit.refit}
            for full, fit in zip(fulls, fits)
        ]  # fmt: skip
        result = _result(model_name, rows)
        result.fold_fits = float(len(fulls) * len(split.folds))
    result.seconds = time.perf_counter() - t0
    return result


def _result(model_name: str, rows: list[dict], complete: list[bool] | None = None):
    """The TuneResult of scored trials: the choice among the ``complete`` ones (all by
    default) by :func:`relative_scores` over the folds; first best wins ties (the defaults
    are first)."""
    complete = complete or [True] * len(rows)
    for r, whole in zip(rows, complete):
        folds = np.asarray(r["fold_scores"], dtype=float)
        # a trial stopped early has no score over every window (its fold_scores show what
        # it was judged on)
        ok = whole and not np.isnan(folds).all()
        r[TUNE_METRIC] = float(np.nanmean(folds)) if ok else float("nan")
        log.info(
            "tune %s %s: valid %s=%.4f %s (%.1fs)",
            model_name, r["params"], TUNE_METRIC, r[TUNE_METRIC], np.round(folds, 4).tolist(),
            r["fit_seconds"],
        )  # fmt: skip
    if not any(complete):
        raise ValueError(f"tuning {model_name}: no trial finished every validation window")
    frame = pd.DataFrame(rows).drop(columns="refit")
    frame = frame[["params", TUNE_METRIC, "fold_scores", "fit_seconds",
                   *[c for c in ("state", "stages") if c in frame]]]  # fmt: skip
    scores = np.array([np.asarray(r["fold_scores"], dtype=float) for r in rows], dtype=float)
    rel = np.full(len(rows), np.nan)
    idx = np.flatnonzero(complete)
    rel[idx] = relative_scores(scores[idx])
    frame["relative"] = rel
    best = int(np.argmax(frame["relative"].fillna(-np.inf)))
    return TuneResult(
        model_name,
        rows[best]["params"],
        float(frame[TUNE_METRIC].iloc[best]),
        frame,
        rows[best]["refit"],
        list(rows[best]["fold_scores"]),
    )
