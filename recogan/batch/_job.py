"""``batch_score``: plan a job, run its partitions on an engine, publish the result."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from recogan import _fs
from recogan._threads import n_cores
from recogan.artifacts import Bundle, load_model, open_bundle
from recogan.batch._inputs import resolve_filter, resolve_users
from recogan.batch._local import run_local
from recogan.batch._partition import (
    Options,
    Task,
    apply_override,
    auto_batch_size,
    noise_override,
)
from recogan.batch._publish import (
    FORMAT,
    FORMAT_VERSION,
    BatchError,
    StagingLock,
    check_output,
    combined_digest,
    publish,
    read_success,
    record_partitions,
    recover,
    staging_dir,
    verified_partitions,
)
from recogan.batch._ray import require_ray, run_ray
from recogan.diversity import check_diversity
from recogan.serving import check_mode, check_n

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class BatchConfig:
    """Options of a batch scoring job (every field is also a keyword of :func:`batch_score`)."""

    #: Items per user (users with fewer allowed items get fewer rows).
    n: int = 50
    #: Leave out items the user already bought (None: as ``mode`` says; the older spelling of
    #: the choice: True is ``discover``, False ``mixed``).
    exclude_seen: bool | None = None
    #: The lists (:data:`recogan.serving.MODES`): ``discover`` (items the customer never
    #: bought; the default), ``buy_again`` (only items they bought before, ranked by the
    #: model) or ``mixed`` (one list ranked by the model). Every row's ``repeat`` column says
    #: whether the customer bought the item before. Part of the job's identity: a resume with
    #: another mode is refused.
    mode: str | None = None
    #: Users per partition (= per output file). Partitions are fixed-size chunks of the users
    #: sorted by model index, so they are the same for every engine and worker count.
    partition_size: int = 10_000
    #: Users per ``recommend`` call inside a partition (None: as many as keep one score block
    #: ≤ 8M floats). Part of the job's identity: it never depends on the engine.
    batch_size: int | None = None
    #: Noise draws per user, set on models that have such a setting (``n_draws``); models
    #: without noise (the baselines) ignore it with a warning.
    noise_draws: int | None = None
    #: Diversity of the lists in [0, 1] (:mod:`recogan.diversity`): 0 (default) writes the
    #: model's ranking; more trades a little of the model's score for wider catalogue
    #: exposure (the model's own mechanism, else MMR re-ranking of its top max(50, 5n)).
    diversity: float = 0.0
    #: ``local`` (processes on this machine) or ``ray``.
    engine: str = "local"
    #: Worker processes / Ray actors (None: cores // threads, at most one per partition; one
    #: when the model runs on a GPU, which a single process keeps busy).
    workers: int | None = None
    #: BLAS / torch / faiss threads of each worker. Part of the job's identity: dense float
    #: math can change in the last bit with the thread count, so rows are byte-identical
    #: across engines and worker counts for the same ``threads``.
    threads: int = 1
    #: Where a torch model (the GAN) and its item index score: ``auto`` (CUDA when torch sees
    #: a GPU, else the CPU), ``cpu`` or ``cuda``. Models without torch weights ignore it. The
    #: device a job ran on is part of its identity (float math differs in the last bits).
    device: str = "auto"
    #: Ray cluster address (``ray`` engine); None starts a local Ray.
    ray_address: str | None = None
    #: CPUs each Ray actor asks for: fractional so that small machines do not deadlock.
    ray_cpus_per_actor: float = 0.5
    #: Keep verified partitions of an interrupted run of the same job instead of starting over.
    resume: bool = False
    #: Replace ``out`` even when it holds something other than a batch result (by default such
    #: a path is refused: only an absent, empty or earlier batch-result directory is replaced).
    force: bool = False
    #: tqdm progress bar (users/s, ETA).
    show_progress: bool = True


@dataclass
class BatchResult:
    """What a job did (also written, with the partitions, to ``_SUCCESS``)."""

    out: str
    model_version: str
    users: int
    rows: int
    partitions: int
    partitions_reused: int
    rows_sha256: str
    engine: str
    workers: int
    seconds: dict = field(default_factory=dict)

    @property
    def users_per_s(self) -> float:
        return self.users / max(self.seconds.get("score", 0.0), 1e-9)

    def summary(self) -> str:
        reused = f", {self.partitions_reused} reused" if self.partitions_reused else ""
        return (
            f"scored {self.users:,} users → {self.rows:,} rows in {self.partitions} partitions"
            f"{reused}; published {self.out} in {self.seconds.get('total', 0):.1f} s "
            f"({self.users_per_s:,.0f} users/s scoring; engine {self.engine}, "
            f"{self.workers} worker(s))"
        )

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["users_per_s"] = round(self.users_per_s, 1)
        return d


def batch_score(
    model_path: str | Path,
    out: str | Path,
    *,
    users=None,
    item_filter=None,
    config: BatchConfig | None = None,
    **options,
) -> BatchResult:
    """Score users of the bundle at ``model_path`` and publish their top-n lists at ``out``.

    ``users``: None (every user of the bundle), a file of external user ids (text, one per
    line; CSV or parquet with a ``user_id`` column) or an array of ids. ``item_filter``: an
    allow-list of external item ids (same forms, column ``item_id``); unknown items in it are
    ignored with a warning. ``options`` override fields of ``config`` (see
    :class:`BatchConfig`). Raises ``ValueError`` for bad inputs, :class:`BatchError` when the
    job cannot write its output (the previously published result stays as it was).

    The bundle version loaded here is the one every worker scores (pinned by its manifest's
    sha256 and kept on disk for the job's duration), even if the bundle is re-published while
    the job runs.
    """
    cfg = dataclasses.replace(config or BatchConfig(), **options)
    _check_config(cfg)
    model_path, out = _fs.as_path(model_path, "model_path"), _fs.as_path(out, "out")
    _check_paths(model_path, out, cfg.force)
    with open_bundle(model_path) as bundle:
        return _batch_score(bundle, model_path, out, users, item_filter, cfg)


def _check_paths(model_path: Path, out: Path, force: bool) -> None:
    m, o = model_path.resolve(), out.resolve()
    if m == o or m in o.parents or o in m.parents:
        raise ValueError(
            f"the output {out} and the model bundle {model_path} overlap: publishing would "
            "replace the model; choose another --out"
        )
    check_output(out, force=force)


@dataclass
class _Plan:
    """One job, decided before anything is written: the model, its users cut into
    partitions, the options, and the job's identity (``job``, ``job_key``)."""

    model: object
    model_path: Path
    bundle: Bundle
    user_idx: np.ndarray
    users_source: str
    bounds: list
    tasks: list
    override: dict
    candidates: np.ndarray | None
    n: int
    batch_size: int
    job: dict
    job_key: str

    @property
    def model_version(self) -> str:
        return self.job["model_version"]


def _plan(bundle: Bundle, model_path: Path, users, item_filter, cfg: BatchConfig) -> _Plan:
    model = load_model(model_path, device=cfg.device, manifest=bundle.manifest_bytes)
    manifest_sha = bundle.manifest_sha256
    override = noise_override(model, cfg.noise_draws)
    apply_override(model, override)
    user_idx, users_source = resolve_users(model, users)
    candidates, filter_info = resolve_filter(model, item_filter)
    n = check_n(cfg.n, model.n_items_)  # candidates: checked by resolve_filter
    batch_size = cfg.batch_size or auto_batch_size(model.n_items_, cfg.partition_size)
    bounds = [
        (s, min(s + cfg.partition_size, user_idx.size))
        for s in range(0, user_idx.size, cfg.partition_size)
    ]
    tasks = [Task(i, user_idx[s:e]) for i, (s, e) in enumerate(bounds)]
    job = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_version": f"{model.manifest_['created_at']}/{manifest_sha[:12]}",
        "manifest_sha256": manifest_sha,
        "n": n,
        "exclude_seen": bool(cfg.exclude_seen),
        "mode": cfg.mode,
        "partition_size": cfg.partition_size,
        "batch_size": batch_size,
        "threads": cfg.threads,
        "device": model_device(model),
        "noise_draws": cfg.noise_draws,
        "diversity": cfg.diversity,
        "config_override": override,
        "users_sha256": _fs.sha256_bytes(user_idx.astype("<i8").tobytes()),
        "filter": filter_info,
        "partitions": len(tasks),
    }
    job_key = _fs.sha256_bytes(json.dumps(job, sort_keys=True).encode())
    return _Plan(
        model, model_path, bundle, user_idx, users_source, bounds, tasks, override,
        candidates, n, batch_size, job, job_key,
    )  # fmt: skip


def _batch_score(bundle, model_path, out, users, item_filter, cfg) -> BatchResult:
    t_start = time.perf_counter()
    plan = _plan(bundle, model_path, users, item_filter, cfg)
    seconds = {"load": round(time.perf_counter() - t_start, 3)}
    staging = staging_dir(out)
    lock = StagingLock(staging, out)  # refuses while another job writes this output
    try:
        try:
            recover(out)
            if cfg.resume and not staging.exists() and _published_key(out) == plan.job_key:
                log.info("%s already holds this job's result: nothing to do", out)
                return _result_from(out, cfg, t_start)
            done, generated_at = _start_or_resume(plan, staging, lock, cfg)
        except OSError as e:
            raise _write_error(e, staging, out, 0) from e
        reused = len(done)
        t_score = time.perf_counter()
        workers = _score_all(plan, cfg, staging, out, done, generated_at)
        seconds["score"] = round(time.perf_counter() - t_score, 3)
        records = [done[i] for i in sorted(done)]
        if len(records) != len(plan.tasks):  # pragma: no cover - an engine lost a partition
            raise BatchError(f"only {len(records)} of {len(plan.tasks)} partitions were scored")
        success = _success(plan, cfg, records, reused, workers, generated_at, seconds)
        t_pub = time.perf_counter()
        try:
            publish(staging, out, success, force=cfg.force)
        except OSError as e:
            raise _write_error(e, staging, out, len(done)) from e
        seconds["publish"] = round(time.perf_counter() - t_pub, 3)
        seconds["total"] = round(time.perf_counter() - t_start, 3)
        return BatchResult(
            out=str(out),
            model_version=plan.model_version,
            users=success["users"],
            rows=success["rows"],
            partitions=len(records),
            partitions_reused=reused,
            rows_sha256=success["rows_sha256"],
            engine=cfg.engine,
            workers=workers,
            seconds=seconds,
        )
    finally:
        lock.release()


def _start_or_resume(plan: _Plan, staging: Path, lock, cfg: BatchConfig):
    """The partitions already done (verified, when resuming) and the job's generated-at."""
    if cfg.resume and (staging / "_job.json").is_file():
        done = verified_partitions(staging, plan.job_key)
        generated_at = json.loads((staging / "_job.json").read_text())["generated_at"]
        log.info("resuming: %d of %d partitions verified", len(done), len(plan.tasks))
        return done, generated_at
    generated_at = _now()
    lock.start({**plan.job, "job_key": plan.job_key, "generated_at": generated_at})
    _warn_disk(staging, plan.user_idx.size * plan.n)
    return {}, generated_at


def _score_all(plan: _Plan, cfg: BatchConfig, staging, out, done: dict, generated_at) -> int:
    """Score the partitions not in ``done`` on the engine, recording each as it finishes;
    returns the number of workers."""
    todo = [t for t in plan.tasks if t.index not in done]
    opt = Options(
        staging=str(staging),
        n=plan.n,
        exclude_seen=bool(cfg.exclude_seen),
        candidates=plan.candidates,
        batch_size=plan.batch_size,
        model_version=plan.model_version,
        generated_at=generated_at,
        diversity=cfg.diversity,
        mode=cfg.mode,
    )
    workers = _workers(cfg, len(todo), plan.job["device"])
    bar = _progress(cfg.show_progress, plan.user_idx.size, sum(r["users"] for r in done.values()))
    try:
        for record in _engine(cfg, plan, todo, opt, workers):
            done[record["partition"]] = record
            record_partitions(staging, done)
            if bar is not None:
                bar.update(record["users"])
    except OSError as e:
        raise _write_error(e, staging, out, len(done)) from e
    except (BatchError, ImportError):
        raise
    except Exception as e:
        # a model's own errors keep their type; engine failures (a dead worker, a Ray error)
        # become a BatchError that says what is kept
        if cfg.engine == "local" and not isinstance(e, RuntimeError):
            raise
        raise BatchError(
            f"{cfg.engine} engine failed: {e} (the published result at {out} is untouched; "
            f"{len(done)} finished partition(s) are kept for --resume)"
        ) from e
    finally:
        if bar is not None:
            bar.close()
    return workers


def _success(plan: _Plan, cfg, records, reused, workers, generated_at, seconds) -> dict:
    """The ``_SUCCESS`` manifest of a finished job."""
    manifest = plan.model.manifest_
    return {
        **plan.job,
        "generated_at": generated_at,
        "published_at": _now(),
        "job_key": plan.job_key,
        "model": {
            "path": str(plan.model_path),
            "class": manifest["model"]["class"],
            "created_at": manifest["created_at"],
            "dataset": manifest["dataset"]["name"],
            "catalog": manifest.get("catalog"),
        },
        "users_source": plan.users_source,
        "users": int(plan.user_idx.size),
        "rows": int(sum(r["rows"] for r in records)),
        "rows_sha256": combined_digest(records),
        "partitions": records,
        "partitions_reused": reused,
        "engine": cfg.engine,
        "workers": workers,
        "seconds": seconds,
    }


# ---------------------------------------------------------------------- pieces
def _check_config(cfg: BatchConfig) -> None:
    if cfg.engine not in ENGINES:
        raise ValueError(f"unknown engine {cfg.engine!r} (choose from {', '.join(ENGINES)})")
    if not isinstance(cfg.partition_size, int) or cfg.partition_size <= 0:
        raise ValueError(f"partition_size must be a positive int, got {cfg.partition_size!r}")
    if cfg.workers is not None and cfg.workers <= 0:
        raise ValueError(f"workers must be positive, got {cfg.workers}")
    if not isinstance(cfg.threads, int) or cfg.threads <= 0:
        raise ValueError(f"threads must be a positive int, got {cfg.threads!r}")
    cfg.diversity = check_diversity(cfg.diversity)
    cfg.mode, cfg.exclude_seen = check_mode(cfg.mode, cfg.exclude_seen)
    if cfg.batch_size is not None and cfg.batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {cfg.batch_size}")
    if cfg.device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, not {cfg.device!r}")
    if cfg.device == "cuda":
        import torch  # only a job that asks for the GPU needs torch here

        if not torch.cuda.is_available():
            raise ValueError("device='cuda' but torch sees no CUDA GPU (use 'auto' or 'cpu')")
    if cfg.engine == "ray":
        require_ray()


def model_device(model) -> str:
    """Where a loaded model scores: its torch device (``cpu`` for models without one)."""
    return str(model.device_)


def _workers(cfg: BatchConfig, n_tasks: int, device: str = "cpu") -> int:
    if cfg.workers is None and device != "cpu":
        return 1  # one process keeps a GPU busy; more would each hold a copy of the model
    wanted = cfg.workers or max(1, n_cores() // cfg.threads)
    return max(1, min(wanted, max(n_tasks, 1)))


def _engine(cfg: BatchConfig, plan: _Plan, todo, opt, workers: int):
    manifest = plan.bundle.manifest_bytes
    if cfg.engine == "ray":
        return run_ray(
            str(plan.model_path),
            manifest,
            todo,
            plan.user_idx,
            [plan.bounds[t.index] for t in todo],
            opt,
            workers=workers,
            threads=cfg.threads,
            override=plan.override,
            device=plan.job["device"],
            address=cfg.ray_address,
            cpus_per_actor=cfg.ray_cpus_per_actor,
        )
    return run_local(
        plan.model,
        str(plan.model_path),
        manifest,
        todo,
        opt,
        workers=workers,
        threads=cfg.threads,
        override=plan.override,
        device=plan.job["device"],
    )


def _progress(show: bool, total: int, initial: int):
    if not show:
        return None
    return tqdm(total=total, initial=initial, unit="users", unit_scale=True, desc="batch-score")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _published_key(out: Path) -> str | None:
    try:
        return read_success(out).get("job_key")
    except (BatchError, OSError, ValueError):
        return None


def _result_from(out: Path, cfg: BatchConfig, t_start: float) -> BatchResult:
    s = read_success(out)
    return BatchResult(
        out=str(out),
        model_version=s["model_version"],
        users=s["users"],
        rows=s["rows"],
        partitions=len(s["partitions"]),
        partitions_reused=len(s["partitions"]),
        rows_sha256=s["rows_sha256"],
        engine=cfg.engine,
        workers=0,
        seconds={"score": 0.0, "total": round(time.perf_counter() - t_start, 3)},
    )


def _warn_disk(staging: Path, rows: int) -> None:
    # ~24 bytes a row before compression: a cheap early warning, the writes still check
    free = shutil.disk_usage(staging).free
    if free < 24 * rows:
        log.warning(
            "%s: only %.1f MB free for about %.1f MB of output",
            staging,
            free / 1e6,
            24 * rows / 1e6,
        )


def _write_error(e: OSError, staging: Path, out: Path, n_done: int) -> BatchError:
    where = e.filename or staging
    what = e.strerror or str(e)
    keep = (
        f"; re-run with --resume to keep the {n_done} finished partition(s) in {staging}"
        if n_done
        else ""
    )
    return BatchError(
        f"cannot write the batch output ({what}: {where}). The published result at {out} "
        f"is untouched{keep}"
    )
