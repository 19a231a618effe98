"""``evaluate(...)``: tune, refit, score and compare models under one protocol → a Report."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from recogan._similarity import ItemSimilarity
from recogan._trials import check_jobs
from recogan.data import Dataset, Split
from recogan.diversity import check_diversity
from recogan.evaluate import _beyond as beyond
from recogan.evaluate._activity import activity_bucket
from recogan.evaluate._protocol import Protocol, score_model
from recogan.evaluate._report import Report
from recogan.evaluate._state import RunState
from recogan.evaluate._stats import bootstrap_ci, paired_test
from recogan.evaluate._tune import METHODS, TUNE_METRIC, _with_seed
from recogan.evaluate._tune import tune as tune_search
from recogan.fitting import fit_for_serving
from recogan.metrics import check_targets, target_matrix
from recogan.registry import resolve_model
from recogan.serving import Diversified

log = logging.getLogger(__name__)

#: The default of ``evaluate`` and the CLI: the four classic baselines, the GAN and its
#: ablation ``retrieval`` (the GAN without its adversarial part, tuned with the same budget;
#: the report's :meth:`~recogan.evaluate.Report.adversarial_ablation` compares the two). The
#: sequential and time-aware baselines cost more to tune: ask for them with ``--models``.
DEFAULT_MODELS = ("pop", "itemknn", "ease", "ials", "gan", "retrieval")
#: The models that count as baselines (the best of them is the reference of the paired tests).
#: ``retrieval`` is not one: it is a part of the GAN, not an alternative the GAN is judged
#: against, so it never becomes the reference; it is compared with the GAN in the report's
#: own line (``Report.adversarial_ablation``) and, like the GAN, against the best baseline.
BASELINES = ("pop", "itemknn", "ease", "ials", "sasrec", "itemknn_td", "ease_td", "tifuknn", "ppop")
#: Settings of the diversity knob (:mod:`recogan.diversity`) the report's trade-off curves
#: visit: recommend-time only, no refits.
DIVERSITY_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.5)
#: The baseline whose MMR curve is always drawn: the strong, obvious alternative a generative
#: model's own diversity is compared with. Other baselines are points.
MMR_REFERENCE = "ease"


def _progress(iterable, show: bool, **kw):
    return tqdm(iterable, **kw) if show else iterable


@dataclass
class _Period:
    """What every model's test scores are read against: the history before the test."""

    split: Split
    proto: Protocol
    ks: tuple
    seed: int

    def __post_init__(self) -> None:
        history = self.split.train_valid
        self.pop = history.item_popularity()
        self.n_hist_users = len(history.active_users())
        self.n_history = np.diff(history.csr().indptr)
        self.head = beyond.head_items(self.pop)


def evaluate(
    data_or_split: Dataset | Split,
    models: Sequence[str] = DEFAULT_MODELS,
    protocol: str | Protocol = "temporal",
    ks: Sequence[int] = (5, 10, 20),
    *,
    tune: bool = True,
    budget: int = 8,
    seed: int = 0,
    params: dict[str, dict] | None = None,
    ranking: str = "full",
    n_negatives: int = 100,
    valid_folds: int = 3,
    n_boot: int = 1000,
    test: str = "wilcoxon",
    diversity_levels: Sequence[float] = DIVERSITY_LEVELS,
    jobs: int | str = "auto",
    show_progress: bool = True,
    tuner: str = "halving",
    state_dir=None,
    targets: str = "new",
) -> Report:
    """Evaluate ``models`` (registry names) on a Dataset (split by ``protocol``) or a Split.

    With ``tune``, every model gets the same search ``budget`` on the validation split
    (NDCG@10), else its defaults (or ``params[name]``); the chosen model is refitted on train +
    valid and scored on test. K = 10 is always included (tuning and the summary use it).

    ``diversity_levels``: the diversity knob's settings for the trade-off curves (accuracy
    against coverage, intra-list diversity and novelty at K = 10), drawn for EASE (MMR
    re-ranking), for models with their own mechanism (``diversity_param()``) and for every
    model that is not a baseline; the other baselines are points. Empty: no curves.

    ``jobs``: worker processes for each model's tuning trials ("auto": one per core, or one
    per GPU for a model that trains on the device, never more than the trials); results are
    identical to ``jobs=1``.

    ``tuner``: ``"halving"`` (successive halving with Optuna, the default) or
    ``"exhaustive"`` (every trial on every window), see :mod:`recogan.evaluate._tune`.
    ``state_dir``: a folder where the tuning studies (SQLite) and each finished model's
    results are kept as the run goes (:class:`recogan.evaluate._state.RunState`): a run
    interrupted and started again with the same arguments goes on from there, refitting
    nothing that was done. None: nothing is kept.

    ``targets``: what counts as a hit on test (:data:`recogan.metrics.TARGETS`): ``new``
    (the default: items the customer had not bought before, lists without the seen items),
    ``all`` (every test purchase) or ``repeat`` (only re-purchases); the last two rank with
    the seen items kept and report the repeat/explore split of the accuracy. Tuning (and the
    early stopping inside it) counts the same targets on validation.
    """
    if not isinstance(data_or_split, (Dataset, Split)):
        raise TypeError(f"evaluate takes a Dataset or a Split, not {type(data_or_split).__name__}")
    names, ks, proto = _check_args(
        models, protocol, ks, budget, ranking, n_negatives, valid_folds, targets
    )
    levels = sorted({check_diversity(d) for d in diversity_levels})
    jobs = check_jobs(jobs)
    if tuner not in METHODS:
        raise ValueError(f"unknown tuner {tuner!r} (known: {', '.join(METHODS)})")
    classes = {n: resolve_model(n) for n in names}  # fail before any fitting
    params = params or {}
    split = data_or_split if isinstance(data_or_split, Split) else proto.split(data_or_split)
    full = data_or_split if isinstance(data_or_split, Dataset) else None
    if full is None:
        full = split.train_valid.concat(split.test)
    if split.test.n_interactions == 0:
        raise ValueError(f"{full.name}: the {proto.name} split has an empty test set")

    period = _Period(split, proto, ks, seed)
    state = (
        state_dir if isinstance(state_dir, RunState) or state_dir is None else RunState(state_dir)
    )
    per_user, rows, tuning, tradeoff, rec_pop, curves, generation = [], {}, {}, {}, {}, {}, {}
    timing = {}
    bar = _progress(names, show_progress, desc="models")
    eta = _Eta(names, bar if show_progress else None)
    run = dict(tune=tune, budget=budget, seed=seed, tuner=tuner, jobs=jobs, levels=levels)
    split_key = state.split_key(split) if state else None
    for name in bar:
        cls = classes[name]
        key = (
            state.model_key(name, full, proto, ks, run, params.get(name), split_key)
            if state
            else None
        )
        got = state.load_model(name, key) if state else None
        if got is None:
            eta.start(name)
            got = _evaluate_model(name, cls, period, params.get(name), run, state, eta)
            if state is not None:
                state.save_model(name, key, got)
        else:
            log.info("%s: finished in an earlier run, read from %s", name, state.root)
            got["timing"]["from_disk"] = True
        eta.done(name, got["timing"]["wall_seconds"])
        per_user.append(got["per_user"])
        rows[name], tuning[name], timing[name] = got["row"], got["tuning"], got["timing"]
        rec_pop[name] = got["rec_pop"]
        for store, part in ((tradeoff, "tradeoff"), (curves, "curve"), (generation, "generation")):
            if got.get(part) is not None:
                store[name] = got[part]
    per_user_frame = pd.concat(per_user, ignore_index=True)
    return _summarise(
        per_user_frame,
        rows,
        names,
        ks,
        full,
        split,
        proto,
        tuning,
        tradeoff,
        rec_pop,
        curves,
        generation,
        dict(
            seed=seed,
            tuned=tune,
            budget=budget if tune else None,
            n_boot=n_boot,
            test=test,
            tuner=tuner if tune else None,
        ),
        timing,
    )


def _evaluate_model(name, cls, period: _Period, given, run, state, eta) -> dict:
    """Tune, refit and score one model: everything the report keeps of it."""
    split, seed = period.split, run["seed"]
    t_start, cpu_start = time.perf_counter(), time.process_time()
    # untuned: the given settings are scored on the validation folds the same way, so
    # every model has a validation estimate to compare with its test score
    fixed = None if run["tune"] else [_with_seed(cls, dict(given or {}), seed)]
    result = tune_search(
        name, split, run["budget"], seed, candidates=fixed, jobs=run["jobs"],
        method=run["tuner"], storage=state.storage if state else None,
        on_progress=lambda *a: eta.update(name, *a), targets=period.proto.targets,
    )  # fmt: skip
    tuning = {
        "params": result.best_params,
        "valid_" + TUNE_METRIC: result.best_score,
        "fold_scores": result.fold_scores,
        "trials": len(result.trials),
        "table": result.trials,
    }
    t0 = time.perf_counter()
    model, _ = fit_for_serving(cls, result.best_params, split.train_valid, fitted=result.folds)
    fit_s = time.perf_counter() - t0
    frame, recs, agg = _score(model, name, period)
    got = {"per_user": frame, "tuning": tuning}
    got["row"] = {"agg": agg, "fit_seconds": fit_s, "params": model.params()}
    k10 = recs[:, :10]
    got["rec_pop"] = period.pop[k10[k10 >= 0]]
    spec = cls.tradeoff_param()
    if spec is not None:
        got["tradeoff"] = _tradeoff(model, spec, period)
    own = cls.diversity_param() is not None
    levels = run["levels"]
    if levels and (name == MMR_REFERENCE or own or name not in BASELINES):
        got["curve"] = _diversity_curve(model, levels, period)
    quality = model.measure_generation(split.test)  # the final model's draws on test
    if quality:
        got["generation"] = generation_frame(quality)
    elif quality is None and model.generation_quality_ is not None:  # measured in fit
        got["generation"] = generation_frame(model.generation_quality_)
    wall = time.perf_counter() - t_start
    states = result.trials["state"] if "state" in result.trials else None
    got["timing"] = {
        "wall_seconds": wall,
        # this process's CPU seconds (worker processes not counted): on a shared machine,
        # less swayed by the other load than the wall time
        "cpu_seconds": time.process_time() - cpu_start,
        "tune_seconds": result.seconds,
        "refit_seconds": fit_s,
        "score_seconds": wall - result.seconds - fit_s,
        "trials": len(result.trials),
        "complete": int((states == "complete").sum()) if states is not None else len(result.trials),
        "pruned": int((states == "pruned").sum()) if states is not None else 0,
        "fold_fits": result.fold_fits,
        "tuner": result.method if run["tune"] else "none",
        "from_disk": False,
    }
    log.info("%s: %.1f s (tuning %.1f s, refit %.1f s)", name, wall, result.seconds, fit_s)
    return got


class _Eta:
    """A rate-based estimate of the time left: the current model's from the seconds per
    fold fit so far and the fits its search still expects (plus one for the final refit);
    models not started yet at the mean wall time of the finished ones (or, before any has
    finished, at the current model's estimated total)."""

    def __init__(self, names, bar) -> None:
        self.names, self.bar = list(names), bar
        self.walls: dict[str, float] = {}
        self.current, self.t0 = None, 0.0

    def start(self, name: str) -> None:
        self.current, self.t0 = name, time.perf_counter()

    def done(self, name: str, wall: float) -> None:
        self.walls[name] = wall

    def update(self, name: str, fitted: float, left: float, seconds: float) -> None:
        if fitted <= 0:
            return
        model_left = seconds / fitted * (left + 1)
        elapsed = time.perf_counter() - self.t0
        waiting = len(self.names) - len(self.walls) - 1
        per_model = np.mean(list(self.walls.values())) if self.walls else elapsed + model_left
        run_left = model_left + waiting * per_model
        text = f"{name} ETA {_hms(model_left)}, run ETA {_hms(run_left)}"
        if self.bar is not None:
            self.bar.set_postfix_str(text)
        log.info("%s", text)


def _hms(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def _check_args(models, protocol, ks, budget, ranking, n_negatives, valid_folds, targets="new"):
    """The model names, the K values (10 always among them) and the protocol, checked."""
    if isinstance(models, str):  # "ease,pop" (a bare string is not a list of one-letter names)
        models = models.split(",")
    if isinstance(ks, (int, np.integer)):
        ks = [ks]
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget must be a positive int, got {budget!r}")
    check_targets(targets)
    if isinstance(protocol, Protocol):
        if targets != "new" and targets != protocol.targets:
            raise ValueError(
                f"targets={targets!r} but the Protocol given has targets={protocol.targets!r}; "
                "set it on the Protocol"
            )
        proto = protocol
    else:
        proto = Protocol(
            name=protocol,
            ranking=ranking,
            n_negatives=n_negatives,
            valid_folds=valid_folds,
            targets=targets,
        )
    ks = tuple(sorted({int(k) for k in ks} | {10}))
    if min(ks) <= 0:
        raise ValueError(f"K values must be positive, got {ks}")
    names = [str(m).strip().lower() for m in models if str(m).strip()]
    if not names:
        raise ValueError("no models to evaluate")
    if len(set(names)) != len(names):
        raise ValueError(f"models listed twice: {names}")
    return names, ks, proto


def _score(model, name: str, period: _Period):
    """The model's per-user frame on the test period (accuracy, list metrics, activity,
    head-item hits), its lists and its aggregate list metrics."""
    frame, recs = score_model(model, period.split.test, period.ks, period.proto, seed=period.seed)
    sim = ItemSimilarity.of(model, device="cpu").matrix
    lists, agg = beyond.list_metrics(recs, period.ks, period.pop, period.n_hist_users, sim)
    frame = pd.concat([frame, lists], axis=1)
    k10 = recs[:, :10]
    head = period.head
    frame["head_recs@10"] = (head[np.maximum(k10, 0)] & (k10 >= 0)).sum(1)
    frame.insert(0, "model", name)
    frame.insert(2, "n_history", period.n_history[frame["user"].to_numpy()])
    frame.insert(3, "activity", activity_bucket(frame["n_history"].to_numpy()))
    frame["head_hits@10"], frame["hits@10"] = _head_hits(
        k10, period.split.test, model, head, period.proto.targets
    )
    return frame, recs, agg


def _head_hits(k10, test, model, head, targets="new"):
    _, T = target_matrix(test, model.seen_, targets=targets)
    safe = np.maximum(k10, 0)
    rows = np.repeat(np.arange(len(k10)), k10.shape[1])
    hit = (np.asarray(T[rows, safe.ravel()]).reshape(k10.shape) > 0) & (k10 >= 0)
    return (hit & head[safe]).sum(1), hit.sum(1)


def _point(model, scored, period: _Period, sim) -> dict:
    """Accuracy and the list metrics at K = 10 of ``scored`` (the model or a view of it)."""
    frame, recs = score_model(scored, period.split.test, (10,), period.proto, seed=period.seed)
    lists, agg = beyond.list_metrics(recs, (10,), period.pop, period.n_hist_users, sim.matrix)
    return {
        "NDCG@10": float(frame["NDCG@10"].mean()),
        "HR@10": float(frame["HR@10"].mean()),
        "coverage@10": agg["coverage@10"],
        "diversity@10": float(np.nanmean(lists["diversity@10"])),
        "novelty@10": float(np.nanmean(lists["novelty@10"])),
    }


def _tradeoff(model, spec, period: _Period) -> pd.DataFrame:
    """Accuracy and the list metrics as a recommend-time knob (no refit) takes each of its
    values."""
    pname, values = spec
    original = model.config
    sim = ItemSimilarity.of(model, device="cpu")
    out = []
    try:
        for v in values:
            model.set_recommend_params(**{pname: v})
            out.append({"param": pname, "value": v, **_point(model, model, period, sim)})
    finally:
        model.config = original
    return pd.DataFrame(out)


def _diversity_curve(model, levels, period: _Period) -> pd.DataFrame:
    """Accuracy and the list metrics at each setting of the diversity knob (recommend only:
    the model's own mechanism, else MMR re-ranking)."""
    sim = ItemSimilarity.of(model, device="cpu")
    knob = model.diversity_param()
    mechanism = "MMR" if knob is None else knob
    rows = []
    for d in levels:
        view = Diversified(model, d, sim)
        rows.append({"diversity": d, "mechanism": mechanism, **_point(model, view, period, sim)})
    return pd.DataFrame(rows)


def generation_frame(value) -> pd.DataFrame:
    """A model's ``generation_quality_`` (a dict of numbers or a DataFrame, e.g. one row per
    epoch) as a DataFrame."""
    if isinstance(value, pd.DataFrame):
        return value.reset_index(drop=True)
    if isinstance(value, dict):
        return pd.DataFrame([value])
    raise TypeError(
        f"generation_quality_ must be a dict or a DataFrame, got {type(value).__name__}"
    )


def _summarise(
    per_user,
    rows,
    names,
    ks,
    full,
    split,
    proto,
    tuning,
    tradeoff,
    rec_pop,
    curves,
    generation,
    opts,
    timing,
):
    metrics, ci = _metric_table(per_user, rows, names, opts["seed"], opts["n_boot"])
    baselines = [n for n in names if n in BASELINES]
    best = max(baselines, key=lambda n: metrics.loc[n, "NDCG@10"]) if baselines else None
    activity = (
        per_user.groupby(["model", "activity"], sort=False)
        .agg(users=("user", "size"), **{m: (m, "mean") for m in ("HR@10", "NDCG@10")})
        .reset_index()
    )
    s = full.summary()
    protocol = {
        **proto.to_dict(),
        "ks": list(ks),
        "split": split.summary(),
        # test users with at least one target (new targets: an item not bought before)
        "users_scored": int(per_user["user"].nunique()),
        "best_baseline": best,
        "tune_metric": TUNE_METRIC,
        **opts,
    }
    return Report(
        dataset={
            "name": s["name"],
            "users": s["users"],
            "items": s["items"],
            "interactions": s["interactions"],
        },
        protocol=protocol,
        ks=list(ks),
        metrics=metrics,
        ci=ci,
        per_user=per_user,
        tests=_paired_tests(per_user, names, best, opts["test"]),
        activity=activity,
        tuning=tuning,
        params={n: rows[n]["params"] for n in names},
        tradeoff=tradeoff,
        rec_popularity=rec_pop,
        diversity=curves,
        generation=generation,
        timing=timing,
    )


def _metric_table(per_user, rows, names, seed, n_boot):
    """One row per model (mean metrics, list metrics, head-item shares, users, fit seconds)
    and the bootstrap intervals of the per-user metrics."""
    metric_cols = [c for c in per_user.columns if "@" in c and not c.startswith(("head_", "hits"))]
    table, ci = {}, {}
    for name in names:
        f = per_user[per_user["model"] == name]
        row = {c: float(f[c].mean()) for c in metric_cols}
        if "target_repeat_share" in f:
            row["target_repeat_share"] = float(f["target_repeat_share"].mean())
        row.update(rows[name]["agg"])
        hits = f["hits@10"].sum()
        row["head_hit_share@10"] = float(f["head_hits@10"].sum() / hits) if hits else float("nan")
        row["head_rec_share@10"] = float(f["head_recs@10"].sum() / (10 * max(len(f), 1)))
        row["users"] = len(f)
        row["fit_seconds"] = rows[name]["fit_seconds"]
        table[name] = row
        ci[name] = {c: bootstrap_ci(f[c].to_numpy(), n_boot=n_boot, seed=seed) for c in metric_cols}
    metrics = pd.DataFrame.from_dict(table, orient="index")
    metrics.index.name = "model"
    return metrics, ci


def _paired_tests(per_user, names, best, test: str) -> pd.DataFrame:
    """Every model against the best baseline on NDCG@10 and HR@10, paired by user."""
    tests = []
    if best is not None:
        ref = per_user[per_user["model"] == best].set_index("user")
        for name in names:
            if name == best:
                continue
            cur = per_user[per_user["model"] == name].set_index("user").loc[ref.index]
            for m in ("NDCG@10", "HR@10"):
                r = paired_test(cur[m].to_numpy(), ref[m].to_numpy(), test)
                tests.append({"model": name, "vs": best, "metric": m, **r})
    return pd.DataFrame(tests)
