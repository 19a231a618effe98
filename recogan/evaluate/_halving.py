"""Successive-halving search with Optuna: cheap looks first, full fits for the promising.

A trial is judged in stages (:func:`plan_stages`), each a fit on some validation windows
(folds, latest first):

- a model that early-stops on epochs: the latest window with a third of the epochs, then the
  latest window with all of them, then the other windows;
- any other model: the latest window, then the other windows.

After each stage but the last a trial goes on only if its score there is among the best
``1/REDUCTION`` of the scores of that stage so far (:class:`OrderedHalvingPruner`, the rule
of ASHA, optuna's ``SuccessiveHalvingPruner``). Only trials that finish the last stage, fitted
on every window with full training, can be chosen, and the choice among them is the
rolling-origin rule of :func:`relative_scores` over every window.

Parameters come from a seeded Optuna sampler (TPE; brute force without repeats when every
setting is categorical) over the model's ``search_space()`` (:func:`parse_space`): a list
of two or more numbers is a range (int or float, log-scaled when it spans a factor of 3 or
more), anything else a set of choices; an optuna distribution is taken as it is. The first
trial is the model's defaults.

**Grids that follow the choice.** After each round, when the best trial so far has a numeric
setting in the outer ``EDGE`` of its range, that side of the range is widened by the range's
own width (its factor, for a log range), within what the model accepts, and the next round
starts with a probe: the best trial's settings with that one moved to the middle of the new
part. Later draws use the widened range.

**Determinism.** Trials run in rounds of ``ROUND`` (a constant, not ``jobs``): a round's
trials are drawn (each by a sampler seeded from the seed and the trial's number, seeing the
trials of earlier rounds), then each stage of the round is fitted in parallel, and the
results are told in trial-number order. A promotion depends only on the trials with a lower
number (a pure function of what is stored), so the result depends on the seed and the
budget, never on ``jobs``, on timing, or on whether the run was interrupted and resumed.

**Resuming.** With a storage (an SQLite file), every fold fit is stored as a user attribute
of its trial the moment it finishes; a re-run with the same arguments loads the study
(named from the model, the seed, the budget, the search space and the folds' data) and fits
only what is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from recogan._trials import Task, TrialPool, plan_workers, uses_device
from recogan.fitting import combine_refit

log = logging.getLogger(__name__)

#: Stage-to-stage reduction: a third of the trials go on.
REDUCTION = 3
#: Trials drawn per round (the unit of parallel work and of sampler updates).
ROUND = 4
#: The outer share of a range that counts as its edge.
EDGE = 0.1
#: Attempts to shrink a widened bound the model refuses, each halving the widening.
_WIDEN_TRIES = 6

optuna.logging.set_verbosity(optuna.logging.WARNING)


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


# ---------------------------------------------------------------------- the space
@dataclass(frozen=True)
class Dim:
    """One searched setting: a numeric range or a set of choices."""

    name: str
    #: ``"int"``, ``"float"`` or ``"cat"``.
    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    #: Choices (``cat``) and the labels optuna stores for them.
    choices: tuple = ()
    labels: tuple = ()

    @property
    def numeric(self) -> bool:
        return self.kind != "cat"


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _label(v):
    return v if v is None or isinstance(v, (bool, int, float, str)) else repr(v)


def parse_space(cls) -> list[Dim]:
    """The model's ``search_space()`` as :class:`Dim` (the default value is always inside)."""
    defaults = _defaults(cls)
    dims = []
    for name, spec in dict(cls.search_space()).items():
        if isinstance(spec, BaseDistribution):
            dims.append(_from_distribution(name, spec))
            continue
        values = list(spec)
        if name in defaults and not any(_same(defaults[name], v) for v in values):
            values.insert(0, defaults[name])
        nums = [float(v) for v in values if _is_number(v)]
        if len(nums) == len(values) and len(set(nums)) >= 2:
            lo, hi = min(nums), max(nums)
            is_int = all(isinstance(v, (int, np.integer)) for v in values)
            dims.append(Dim(name, "int" if is_int else "float", lo, hi, lo > 0 and hi >= 3 * lo))
        else:
            labels = tuple(_label(v) for v in values)
            if len(set(map(repr, labels))) != len(labels):
                raise ValueError(f"{cls.__name__}.search_space()[{name!r}] repeats a value")
            dims.append(Dim(name, "cat", choices=tuple(values), labels=labels))
    return dims


def _from_distribution(name: str, d: BaseDistribution) -> Dim:
    if isinstance(d, IntDistribution):
        return Dim(name, "int", d.low, d.high, d.log)
    if isinstance(d, FloatDistribution):
        return Dim(name, "float", d.low, d.high, d.log)
    if isinstance(d, CategoricalDistribution):
        return Dim(name, "cat", choices=tuple(d.choices), labels=tuple(d.choices))
    raise TypeError(f"search space {name!r}: unsupported distribution {d!r}")


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b if not (_is_number(a) and _is_number(b)) else a == b


def _defaults(cls) -> dict:
    cfg = cls.Config()
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def _distribution(d: Dim, lo: float, hi: float) -> BaseDistribution:
    if d.kind == "int":
        return IntDistribution(int(lo), int(hi), log=d.log)
    if d.kind == "float":
        return FloatDistribution(float(lo), float(hi), log=d.log)
    return CategoricalDistribution(d.labels)


def _value(d: Dim, stored):
    """A stored optuna value as the model's setting."""
    if d.kind == "cat":
        return d.choices[d.labels.index(stored)]
    return int(stored) if d.kind == "int" else float(stored)


def _stored(d: Dim, value):
    """The model's setting as optuna stores it."""
    if d.kind == "cat":
        return d.labels[next(i for i, c in enumerate(d.choices) if _same(c, value))]
    return int(value) if d.kind == "int" else float(value)


# ---------------------------------------------------------------------- the stages
@dataclass(frozen=True)
class Stage:
    #: Indices into ``split.folds`` (0: the latest window).
    folds: tuple[int, ...]
    #: Train with a third of the epochs.
    short: bool = False


def plan_stages(cls, n_folds: int) -> list[Stage]:
    """The stages every trial goes through (see the module's doc)."""
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    stages = []
    if "epochs" in cls.early_stopping_params and "epochs" in fields:
        stages.append(Stage((0,), short=True))
    stages.append(Stage((0,)))
    if n_folds > 1:
        stages.append(Stage(tuple(range(1, n_folds))))
    return stages


def short_epochs(epochs: int) -> int:
    return max(1, math.ceil(int(epochs) / REDUCTION))


def _stage_units(stage: Stage) -> float:
    return len(stage.folds) / (REDUCTION if stage.short else 1)


# ---------------------------------------------------------------------- the pruner
class OrderedHalvingPruner(optuna.pruners.BasePruner):
    """ASHA's promotion rule (as optuna's ``SuccessiveHalvingPruner``) with the competitors
    fixed by trial number: at a step, a trial goes on if its value is among the best
    ``max(1, n // reduction_factor)`` of the ``n`` values reported at that step by itself and
    the trials numbered below it. It reads only stored intermediate values and writes
    nothing, so a decision taken again (after a resume) is the same, whatever ran when."""

    def __init__(self, reduction_factor: int = REDUCTION) -> None:
        if reduction_factor < 2:
            raise ValueError(f"reduction_factor must be >= 2, got {reduction_factor}")
        self.reduction_factor = int(reduction_factor)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        value = trial.intermediate_values[step]
        if not np.isfinite(value):
            return True
        values = [value]
        for t in study.get_trials(deepcopy=False):
            if t.number < trial.number and step in t.intermediate_values:
                v = t.intermediate_values[step]
                if np.isfinite(v):
                    values.append(v)
        keep = max(1, len(values) // self.reduction_factor)
        return value < sorted(values, reverse=True)[keep - 1]


# ---------------------------------------------------------------------- widening ranges
def _position(d: Dim, v: float, lo: float, hi: float) -> float:
    if hi <= lo:
        return 0.5
    if d.log:
        return (math.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return (v - lo) / (hi - lo)


def _accepts(cls, name: str, value) -> bool:
    try:
        cls(**{name: value})
    except (ValueError, TypeError):
        return False
    return True


def _widen(cls, d: Dim, lo: float, hi: float, side: str) -> float | None:
    """The new bound on ``side`` ("low"/"high"), or None when it cannot move."""
    old = lo if side == "low" else hi
    if d.log:
        factor = hi / lo
        new = lo / factor if side == "low" else hi * factor
    else:
        width = hi - lo
        new = lo - width if side == "low" else hi + width
        if lo >= 0 and new < 0:
            new = 0.0  # a range of non-negative values stays non-negative
        if d.kind == "float" and lo >= 0 and hi <= 1 and new > 1:
            new = 1.0  # a share stays a share
    if d.kind == "int":
        new = math.floor(new) if side == "low" else math.ceil(new)
        new = max(new, 1 if d.log or old >= 1 else 0)
    for _ in range(_WIDEN_TRIES):
        if new == old:
            return None
        if _accepts(cls, d.name, int(new) if d.kind == "int" else float(new)):
            return float(new)
        new = (new + old) / 2
        if d.kind == "int":
            new = math.floor(new) if side == "low" else math.ceil(new)
    return None


def _middle(d: Dim, a: float, b: float):
    mid = math.sqrt(a * b) if d.log else (a + b) / 2
    return round(mid) if d.kind == "int" else float(mid)


def widen_ranges(cls, dims: list[Dim], ranges: dict, best: dict) -> tuple[dict, list[dict]]:
    """Ranges widened where ``best`` (a trial's settings) sits on an edge, and a probe per
    widened setting: ``best`` with that setting in the middle of the new part."""
    ranges, probes = dict(ranges), []
    for d in dims:
        if not d.numeric:
            continue
        lo, hi = ranges[d.name]
        pos = _position(d, float(best[d.name]), lo, hi)
        side = "high" if pos >= 1 - EDGE else "low" if pos <= EDGE else None
        if side is None:
            continue
        new = _widen(cls, d, lo, hi, side)
        if new is None:
            continue
        old = hi if side == "high" else lo
        ranges[d.name] = (lo, new) if side == "high" else (new, hi)
        probe = _middle(d, old, new)
        log.info("tune %s: %s=%s is on the %s edge of [%s, %s]: range now %s, probing %s",
                 cls.name, d.name, best[d.name], side, lo, hi, ranges[d.name], probe)  # fmt: skip
        if probe != best[d.name]:
            probes.append({**best, d.name: probe})
    return ranges, probes


# ---------------------------------------------------------------------- the search
@dataclass
class HalvingOutcome:
    """The trials of a search, in trial order."""

    #: Per trial: its settings (with the seed), state, per-fold scores (NaN where not
    #: fitted), per-fold refit settings, fit seconds, and the stages it went through.
    trials: list[dict]
    #: The ranges the search ended with (after any widening).
    ranges: dict
    #: Fits done now (not loaded from an earlier, interrupted run), in fold-fit units.
    fitted_units: float = 0.0


def study_name(
    model_name: str, seed: int, budget: int, dims, stages, folds, targets: str = "new"
) -> str:
    """Deterministic from everything the search's result depends on (the validation
    targets only when not ``new``, so earlier studies keep their names)."""
    h = hashlib.sha256()
    key = {
        "model": model_name, "seed": seed, "budget": budget, "round": ROUND,
        "reduction": REDUCTION, "edge": EDGE, "dims": [repr(d) for d in dims],
        "stages": [repr(s) for s in stages],
    }  # fmt: skip
    if targets != "new":
        key["targets"] = targets
    h.update(json.dumps(key, sort_keys=True).encode())
    for train, valid in folds:
        h.update(train.fingerprint().encode())
        h.update(valid.fingerprint().encode())
    return f"{model_name}-seed{seed}-budget{budget}-{h.hexdigest()[:16]}"


def _trial_seed(seed: int, number: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{number}".encode()).digest()[:4], "little")


def _sampler(dims, seed: int, number: int, fixed: dict | None) -> optuna.samplers.BaseSampler:
    s = _trial_seed(seed, number)
    with warnings.catch_warnings():  # brute force and partial fixing are "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if dims and all(not d.numeric for d in dims):
            base = optuna.samplers.BruteForceSampler(seed=s)
        else:
            base = optuna.samplers.TPESampler(seed=s, n_startup_trials=ROUND)
        return optuna.samplers.PartialFixedSampler(fixed, base) if fixed else base


def _n_trials(dims: list[Dim], budget: int) -> int:
    if dims and all(not d.numeric for d in dims):
        return min(budget, math.prod(len(d.choices) for d in dims))
    return budget if dims else 1


def halving_search(
    model_name: str,
    cls,
    folds: Sequence,
    budget: int,
    seed: int,
    *,
    jobs: int | str = "auto",
    storage: str | None = None,
    with_seed: Callable[[dict], dict] = dict,
    on_progress: Callable[[float, float, float], None] | None = None,
    targets: str = "new",
) -> HalvingOutcome:
    """Run (or resume) the search; ``storage``: an optuna storage URL (None: in memory).
    ``on_progress(fitted, left, seconds)`` after each fold fit: the fold fits done by this
    call, those expected still to come (a short fit counting a third; later stages weighted
    by the share of trials expected to reach them) and the seconds this call has run."""
    dims = parse_space(cls)
    stages = plan_stages(cls, len(folds))
    n_total = _n_trials(dims, budget)
    name = study_name(model_name, seed, budget, dims, stages, folds, targets)
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        load_if_exists=True,
        pruner=OrderedHalvingPruner(),
    )
    defaults = _defaults(cls)
    ranges = {d.name: (d.low, d.high) for d in dims if d.numeric}
    plan = plan_workers(jobs, min(ROUND, n_total), uses_device=uses_device(cls))
    units = [_stage_units(s) for s in stages]
    per_trial = sum(u / REDUCTION**i for i, u in enumerate(units))  # expected, halving
    t0, fitted = time.perf_counter(), 0.0

    def progress() -> None:
        if on_progress is not None:
            left = (n_total - len(study.trials)) * per_trial + _units_left(study, stages)
            on_progress(fitted, left, time.perf_counter() - t0)

    with TrialPool(model_name, folds, plan, targets=targets) as pool:
        n_rounds = math.ceil(n_total / ROUND)
        for r in range(n_rounds):
            numbers = list(range(r * ROUND, min(n_total, (r + 1) * ROUND)))
            probes: list[dict] = []
            if r == 0:
                probes = [{d.name: defaults[d.name] for d in dims if d.name in defaults}]
            else:
                best = _best(study, dims, stages, below=r * ROUND)
                if best is not None:
                    ranges, probes = widen_ranges(cls, dims, ranges, best)
            trials = _ask_round(study, dims, ranges, numbers, probes, seed)
            for s, stage in enumerate(stages):
                snap = study.get_trials(deepcopy=False)
                todo = [(t, k) for t in trials for k in _missing(snap[t], s, stage)]
                tasks = []
                for t, k in todo:
                    params = with_seed(_params(snap[t], dims))
                    label = f"trial {t + 1}/{n_total} with params {params}"
                    tasks.append(Task(_stage_params(cls, params, stage), (k,), label))

                unit = _stage_units(stage) / len(stage.folds)

                def store(i, fits, s=s, todo=todo, unit=unit):
                    nonlocal fitted
                    t, k = todo[i]
                    _store_fold(study, t, s, k, fits[0])
                    fitted += unit
                    progress()

                pool.run(tasks, on_done=store)
                for t in trials:
                    _decide(study, t, s, stages)
                progress()
            log.info("tune %s: round %d/%d done", model_name, r + 1, n_rounds)
    snap = study.get_trials(deepcopy=False)
    trials = [_record(snap[t], dims, stages, len(folds), with_seed) for t in range(n_total)]
    return HalvingOutcome(trials, ranges, fitted)


def _frozen(study, number: int) -> FrozenTrial:
    return study.get_trials(deepcopy=False)[number]


def _ask_round(study, dims, ranges, numbers, probes, seed) -> list[int]:
    """The round's trials drawn (those a killed run drew already are kept)."""
    have = len(study.get_trials(deepcopy=False))
    for k, number in enumerate(numbers):
        if number < have:
            continue
        fixed = None
        if k < len(probes):
            fixed = {d.name: _stored(d, probes[k][d.name]) for d in dims if d.name in probes[k]}
        study.sampler = _sampler(dims, seed, number, fixed)
        dists = {d.name: _distribution(d, *ranges.get(d.name, (d.low, d.high))) for d in dims}
        trial = study.ask(dists)
        study.sampler = optuna.samplers.RandomSampler(seed=0)  # tell() runs its after_trial
        if trial.number != number:  # pragma: no cover - another writer in the study
            raise RuntimeError(f"study {study.study_name}: expected trial {number}, got "
                               f"{trial.number}; is another run using the same --out?")  # fmt: skip
    return list(numbers)


def _params(t: FrozenTrial, dims) -> dict:
    return {d.name: _value(d, t.params[d.name]) for d in dims}


def _stage_params(cls, params: dict, stage: Stage) -> dict:
    if not stage.short:
        return params
    epochs = params.get("epochs", _defaults(cls)["epochs"])
    return {**params, "epochs": short_epochs(epochs)}


def _key(s: int, k: int) -> str:
    return f"s{s}f{k}"


def _missing(t: FrozenTrial, s: int, stage: Stage) -> list[int]:
    """The folds of stage ``s`` a running trial has yet to fit."""
    if t.state != TrialState.RUNNING:
        return []
    return [k for k in stage.folds if _key(s, k) not in t.user_attrs]


def _store_fold(study, number: int, s: int, k: int, fit) -> None:
    t = _frozen(study, number)
    record = {"score": fit.scores[0], "refit": fit.refit, "seconds": fit.seconds}
    study._storage.set_trial_user_attr(t._trial_id, _key(s, k), _jsonable(record))


def _stage_rec(t: FrozenTrial, s: int, stage: Stage) -> dict | None:
    """Stage ``s`` of a trial: its folds, scores, refit settings and seconds (None until
    every fold of the stage is fitted)."""
    recs = [t.user_attrs.get(_key(s, k)) for k in stage.folds]
    if any(r is None for r in recs):
        return None
    return {
        "folds": list(stage.folds),
        "scores": [np.nan if r["score"] is None else r["score"] for r in recs],
        "refits": [r["refit"] for r in recs],
        "seconds": sum(r["seconds"] for r in recs),
    }


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def _stage_value(t: FrozenTrial, s: int, stages) -> float:
    """What a trial reports after stage ``s``: the latest window's score; after the last
    stage, the mean over every window fitted with full training."""
    if s < len(stages) - 1:
        return float(np.mean(_stage_rec(t, s, stages[s])["scores"]))
    scores = _full_scores(t, stages)
    return float(np.nanmean(scores)) if not np.isnan(scores).all() else float("nan")


def _full_scores(t: FrozenTrial, stages, n_folds: int | None = None) -> np.ndarray:
    n = n_folds or 1 + max(max(s.folds) for s in stages)
    out = np.full(n, np.nan)
    for s, stage in enumerate(stages):
        rec = _stage_rec(t, s, stage)
        if rec is not None and not stage.short:
            out[rec["folds"]] = rec["scores"]
    return out


def _decide(study, number: int, s: int, stages) -> None:
    """Report stage ``s`` of a running trial that has done it, and promote, prune or
    complete it (in trial order: the pruner sees only lower-numbered trials)."""
    t = _frozen(study, number)
    if t.state != TrialState.RUNNING or _stage_rec(t, s, stages[s]) is None:
        return
    if s + 1 < len(stages) and any(_key(s + 1, k) in t.user_attrs for k in stages[s + 1].folds):
        return  # promoted and gone on before an interruption
    value = _stage_value(t, s, stages)
    if s + 1 not in t.intermediate_values:
        study._storage.set_trial_intermediate_value(t._trial_id, s + 1, value)
        t = _frozen(study, number)
    if s == len(stages) - 1:
        if np.isfinite(value):
            study.tell(number, value)
        else:
            study.tell(number, state=TrialState.FAIL)
    elif study.pruner.prune(study, t):
        study.tell(number, state=TrialState.PRUNED)


def _units_done(study, stages) -> float:
    return sum(
        _stage_units(stage) / len(stage.folds)
        for t in study.get_trials(deepcopy=False)
        for s, stage in enumerate(stages)
        for k in stage.folds
        if _key(s, k) in t.user_attrs
    )


def _units_left(study, stages) -> float:
    left = 0.0
    for t in study.get_trials(deepcopy=False):
        if t.state != TrialState.RUNNING:
            continue
        for i, (s, stage) in enumerate(
            (s, st) for s, st in enumerate(stages) if _stage_rec(t, s, st) is None
        ):
            missing = sum(_key(s, k) not in t.user_attrs for k in stage.folds)
            left += _stage_units(stage) * missing / len(stage.folds) / REDUCTION**i
    return left


def _best(study, dims, stages, below: int) -> dict | None:
    """The settings of the best complete trial numbered below ``below``, by the
    rolling-origin rule."""
    done = [
        t for t in study.get_trials(deepcopy=False)
        if t.state == TrialState.COMPLETE and t.number < below
    ]  # fmt: skip
    if not done:
        return None
    rel = relative_scores(np.array([_full_scores(t, stages) for t in done], dtype=float))
    best = done[int(np.argmax(np.where(np.isnan(rel), -np.inf, rel)))]
    return {d.name: _value(d, best.params[d.name]) for d in dims}


def _record(t: FrozenTrial, dims, stages, n_folds: int, with_seed) -> dict:
    scores = _full_scores(t, stages, n_folds)
    refits: list = [None] * n_folds
    seconds, reached = 0.0, 0
    for s, stage in enumerate(stages):
        seconds += sum(
            t.user_attrs[_key(s, k)]["seconds"] for k in stage.folds if _key(s, k) in t.user_attrs
        )
        rec = _stage_rec(t, s, stage)
        if rec is None:
            continue
        reached = s + 1
        if not stage.short:
            for f, refit in zip(rec["folds"], rec["refits"]):
                refits[f] = refit
    full = [r for r in refits if r is not None]
    return {
        "number": t.number,
        "params": with_seed(_params(t, dims)),
        "state": t.state.name.lower(),
        "scores": scores,
        "refit": combine_refit(full) if len(full) == n_folds else None,
        "seconds": seconds,
        "stages": reached,
    }
