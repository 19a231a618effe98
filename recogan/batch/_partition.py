"""One partition of a batch job: score its users, write one parquet file, report checksums.

This is the unit of work every engine runs (in-process, in a worker process, in a Ray actor),
so the rows of a partition depend only on the model, the partition's users and the options,
never on the engine or the number of workers.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recogan import _fs
from recogan.serving import Filter, Pipeline

log = logging.getLogger(__name__)

#: Scores held at once per recommend call (floats): bounds a worker's memory whatever the
#: catalog size (dense models build a ``(batch, n_items)`` score block).
SCORE_BLOCK = 1 << 23


@dataclass(frozen=True)
class Task:
    """A partition to score: its number and its users (sorted model indices)."""

    index: int
    users: np.ndarray

    @property
    def file(self) -> str:
        return partition_file(self.index)


@dataclass(frozen=True)
class Options:
    """What every partition of one job shares (picklable; sent to workers once per task)."""

    #: Directory the partition files are written to.
    staging: str
    #: Items per user.
    n: int
    #: Drop items the user already bought.
    exclude_seen: bool
    #: Allowed item indices (1-D), or None for the whole catalog.
    candidates: np.ndarray | None
    #: Users per ``recommend`` call inside a partition.
    batch_size: int
    #: Written into each file's metadata.
    model_version: str
    generated_at: str
    #: The diversity knob in [0, 1] (:mod:`recogan.diversity`; 0: the model's ranking).
    diversity: float = 0.0
    #: The list mode (:data:`recogan.serving.MODES`; decides ``exclude_seen``).
    mode: str = "discover"


def partition_file(index: int) -> str:
    return f"part-{index:05d}.parquet"


def auto_batch_size(n_items: int, partition_size: int) -> int:
    return int(max(1, min(partition_size, SCORE_BLOCK // max(n_items, 1), 4096)))


def noise_override(model, noise_draws: int | None) -> dict:
    """The recommend-time override that sets ``noise_draws`` on ``model`` (through its
    ``noise_draws_param()``; {} for a model without noise draws).

    Models without noise (every baseline) ignore the option; a warning says so.
    """
    if noise_draws is None:
        return {}
    if int(noise_draws) <= 0:
        raise ValueError(f"noise draws must be positive, got {noise_draws}")
    name = model.noise_draws_param()
    if name is not None:
        return {name: int(noise_draws)}
    log.warning(
        "%s has no noise-draws setting: noise_draws=%s is ignored",
        type(model).__name__,
        noise_draws,
    )
    return {}


def apply_override(model, override: dict) -> None:
    model.set_recommend_params(**override)


def score_partition(model, task: Task, opt: Options) -> dict:
    """Score ``task``'s users, write ``part-NNNNN.parquet`` atomically, return its record."""
    t0 = time.perf_counter()
    users = np.asarray(task.users, dtype=np.int64)
    cols: dict[str, list[np.ndarray]] = {
        "user": [],
        "rank": [],
        "item": [],
        "score": [],
        "repeat": [],
    }
    # the serving pipeline (recogan.serving): withdrawn products, the allow-list and the
    # diversity knob exactly as the service API applies them; the item similarity MMR needs
    # is built once per partition, when it runs
    pipe = Pipeline(model)
    request = pipe.request(
        opt.n, opt.diversity, opt.exclude_seen, Filter(opt.candidates), mode=opt.mode
    )
    for start in range(0, users.size, opt.batch_size):
        u = users[start : start + opt.batch_size]
        items, scores = pipe.users(u, request)
        valid = np.asarray(items) >= 0  # rows are padded with -1 when too few items remain
        counts = valid.sum(axis=1)
        cols["user"].append(np.repeat(u, counts))
        cols["rank"].append((np.cumsum(valid, axis=1, dtype=np.int32))[valid])
        cols["item"].append(np.asarray(items, dtype=np.int64)[valid])
        cols["score"].append(np.asarray(scores, dtype=np.float32)[valid])
        cols["repeat"].append(pipe.repeats(items, users=u)[valid])
    user = _cat(cols["user"], np.int64)
    rank = _cat(cols["rank"], np.int32)
    item = _cat(cols["item"], np.int64)
    score = _cat(cols["score"], np.float32)
    repeat = _cat(cols["repeat"], bool)
    rows_sha = rows_digest(user, rank, item, score, repeat)
    table = pa.table(
        {
            "user_id": _id_array(model.users_, user),
            "rank": pa.array(rank, pa.int32()),
            "item_id": _id_array(model.items_, item),
            "score": pa.array(score, pa.float32()),
            "repeat": pa.array(repeat, pa.bool_()),
        }
    )
    meta = {
        "recogan.model_version": opt.model_version,
        "recogan.generated_at": opt.generated_at,
        "recogan.partition": str(task.index),
        "recogan.n": str(opt.n),
        "recogan.mode": opt.mode,
    }
    table = table.replace_schema_metadata(meta)
    path = Path(opt.staging) / task.file
    sha, size = write_parquet(table, path)
    return {
        "partition": task.index,
        "file": task.file,
        "users": int(users.size),
        "first_user": int(users[0]) if users.size else -1,
        "last_user": int(users[-1]) if users.size else -1,
        "rows": int(table.num_rows),
        "bytes": size,
        "sha256": sha,
        "rows_sha256": rows_sha,
        "seconds": round(time.perf_counter() - t0, 4),
        "peak_rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (Linux ``VmHWM``; None elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:  # pragma: no cover - not Linux
        pass
    return None


def _cat(parts: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def _id_array(idmap, idx: np.ndarray):
    ids = idmap.to_ids(idx)
    if np.issubdtype(np.asarray(idmap.ids[:1]).dtype, np.integer):
        return pa.array(np.asarray(ids, dtype=np.int64), pa.int64())
    return pa.array([str(v) for v in ids], pa.string())


def rows_digest(user, rank, item, score, repeat=None) -> str:
    """sha256 of a partition's rows (model indices, rank, score bytes, the repeat flags):
    equal rows ⇔ equal digest, whatever the file's metadata or compression."""
    h = hashlib.sha256()
    cols = [(user, "<i8"), (rank, "<i4"), (item, "<i8"), (score, "<f4")]
    if repeat is not None:
        cols.append((repeat, "u1"))
    for arr, dtype in cols:
        h.update(np.ascontiguousarray(arr, dtype=dtype).tobytes())
    return h.hexdigest()


def write_parquet(table, path: Path) -> tuple[str, int]:
    """Write ``table`` to ``path`` atomically (temporary file + fsync + rename), so ``path`` is
    either absent or complete. Returns the file's sha256 and size."""
    with _fs.atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
        sha, size = _fs.sha256_file(tmp), tmp.stat().st_size
    return sha, size
