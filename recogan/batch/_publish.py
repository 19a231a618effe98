"""Staging and publishing of a batch result, and reading a published one.

A job writes into ``.NAME.staging`` next to the output ``NAME``:

    _job.json            what the job is (model version, options, users): a resume must match it
    _partitions.json     the finished partitions with their size and sha256 (atomic rewrites)
    part-NNNNN.parquet   one file per partition (written via tmp + fsync + rename)

When every partition is done, ``_SUCCESS`` is written and the staging directory is renamed to
``NAME``; a previously published ``NAME`` is moved aside first and removed only after the new
one is in place, so readers see the old result or the new one, never a mix
(:func:`recogan._fs.replace_dir`, under the parent directory's publish lock). ``NAME`` must be
absent, empty or an earlier batch result: anything else is refused unless ``force``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from recogan import _fs

log = logging.getLogger(__name__)

FORMAT = "recogan-batch"
FORMAT_VERSION = 1
SUCCESS = "_SUCCESS"
JOB = "_job.json"
PARTITIONS = "_partitions.json"


class BatchError(RuntimeError):
    """A batch job could not run or publish (the previous published result is untouched)."""


def staging_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.staging"


def is_batch_result(path: str | Path) -> bool:
    """Whether ``path`` holds a published batch result (a ``_SUCCESS`` of our format)."""
    try:
        success = json.loads((Path(path) / SUCCESS).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(success, dict) and success.get("format") == FORMAT


def check_output(out: Path, *, force: bool = False) -> str:
    """Refuse to publish over anything but an earlier batch result (unless ``force``)."""
    return _fs.check_output_dir(
        out, recognise=is_batch_result, what="a recogan batch result", force=force
    )


def combined_digest(records: list[dict]) -> str:
    """One digest of all rows: of the partitions' row digests, in partition order."""
    h = hashlib.sha256()
    for r in sorted(records, key=lambda r: r["partition"]):
        h.update(r["rows_sha256"].encode())
    return h.hexdigest()


def recover(out: Path) -> None:
    """Finish or undo a publish that was interrupted between its two renames."""
    if not _fs.aux_dirs(out, "old") or not out.parent.is_dir():
        return
    staging = staging_dir(out)
    with _fs.locked(out.parent):
        _fs.recover_dir(out, [staging] if (staging / SUCCESS).is_file() else [])


def verified_partitions(staging: Path, job_key: str) -> dict[int, dict]:
    """Finished partitions in ``staging`` whose file matches its recorded size and sha256.

    Files that are incomplete, altered or not recorded are removed (they will be redone).
    """
    try:
        job = json.loads((staging / JOB).read_text())
    except ValueError as e:
        raise BatchError(
            f"{staging / JOB} is unreadable ({e}); run without --resume to start over"
        ) from e
    if not isinstance(job, dict) or job.get("job_key") != job_key:
        raise BatchError(
            f"{staging} holds an unfinished job with different inputs or options "
            f"(model {job.get('model_version')}, n={job.get('n')}, mode={job.get('mode')}); "
            "run without --resume to start over"
        )
    recorded = {}
    mpath = staging / PARTITIONS
    if mpath.is_file():
        try:
            recorded = {int(k): v for k, v in json.loads(mpath.read_text()).items()}
        except (json.JSONDecodeError, ValueError, AttributeError):
            log.warning("%s is unreadable: redoing every partition", mpath)
    good = {}
    for index, rec in recorded.items():
        f = staging / rec["file"]
        if f.is_file() and f.stat().st_size == rec["bytes"] and _fs.sha256_file(f) == rec["sha256"]:
            good[index] = rec
        else:
            log.warning("%s: partition %d is missing or corrupt; redoing it", staging, index)
    keep = {r["file"] for r in good.values()} | {JOB, PARTITIONS}
    for f in staging.iterdir():
        if f.name not in keep:
            f.unlink() if f.is_file() else shutil.rmtree(f)
    return good


class StagingLock:
    """An exclusive lock on a job's staging directory, held for the whole job: a second job
    writing the same output is refused instead of mixing its partitions into the first's."""

    def __init__(self, staging: Path, out: Path) -> None:
        self.staging, self.out, self.fd = staging, out, None
        if staging.exists():
            self.fd = _fs.try_lock(staging)
            if self.fd is None and staging.exists():
                raise self._busy()

    def _busy(self) -> BatchError:
        return BatchError(
            f"another batch job is writing {self.out} (its staging directory {self.staging} "
            "is locked); wait for it to finish"
        )

    def start(self, job: dict) -> None:
        """Replace the staging directory by a fresh one holding ``job`` (and keep it locked)."""
        staging = self.staging
        staging.parent.mkdir(parents=True, exist_ok=True)
        with _fs.locked(staging.parent):
            _fs.remove_stale(staging)  # fresh staging directories of killed jobs
        if staging.exists():
            shutil.rmtree(staging)  # ours: locked above, or left by a job that died
        tmp = _fs.aux_name(staging, "tmp")
        tmp.mkdir()
        fd = _fs.try_lock(tmp)
        try:
            _fs.atomic_write_json(tmp / JOB, job)
            _fs.atomic_write_json(tmp / PARTITIONS, {})
            os.rename(tmp, staging)
        except OSError as e:
            _fs.release(fd)
            _fs.remove(tmp)
            if staging.exists():  # another job created it meanwhile
                raise self._busy() from e
            raise
        _fs.release(self.fd)
        self.fd = fd

    def release(self) -> None:
        _fs.release(self.fd)
        self.fd = None


def record_partitions(staging: Path, done: dict[int, dict]) -> None:
    _fs.atomic_write_json(staging / PARTITIONS, {str(k): v for k, v in sorted(done.items())})


def publish(staging: Path, out: Path, success: dict, *, force: bool = False) -> None:
    """Write ``_SUCCESS`` into ``staging`` and swap it in as ``out``."""
    _fs.atomic_write_json(staging / SUCCESS, success)
    with _fs.locked(out.parent):
        _fs.recover_dir(out)
        check_output(out, force=force)  # again, under the lock: it may have changed meanwhile
        _fs.replace_dir(staging, out)
    # the bookkeeping stays in staging until the swap, so a failed publish can be resumed
    for name in (JOB, PARTITIONS):
        (out / name).unlink(missing_ok=True)


# ---------------------------------------------------------------------- readers
def read_success(out: str | Path) -> dict:
    """The ``_SUCCESS`` manifest of a published result."""
    out = Path(out)
    path = out / SUCCESS
    if not path.is_file():
        raise BatchError(f"{out}: no {SUCCESS} manifest (not a published batch result)")
    try:
        success = json.loads(path.read_text())
    except ValueError as e:
        raise BatchError(f"{path}: unreadable ({e})") from e
    if not isinstance(success, dict) or success.get("format") != FORMAT:
        fmt = success.get("format") if isinstance(success, dict) else None
        raise BatchError(f"{path}: not a recogan batch result (format={fmt!r})")
    return success


def verify_output(out: str | Path) -> dict:
    """Check every partition file of a published result against ``_SUCCESS``; return it."""
    out = Path(out)
    success = read_success(out)
    for rec in success["partitions"]:
        f = out / rec["file"]
        if not f.is_file():
            raise BatchError(f"{out}: partition file {rec['file']} is missing")
        if f.stat().st_size != rec["bytes"] or _fs.sha256_file(f) != rec["sha256"]:
            raise BatchError(f"{out}: partition file {rec['file']} fails its checksum")
    return success


def read_recommendations(out: str | Path, *, verify: bool = True):
    """All rows of a published result as one DataFrame (``user_id, rank, item_id, score,
    repeat``),
    in partition order (users by model index, then rank)."""
    out = Path(out)
    success = verify_output(out) if verify else read_success(out)
    frames = [pq.read_table(out / r["file"]).to_pandas() for r in success["partitions"]]
    if not frames:
        return pd.DataFrame(columns=["user_id", "rank", "item_id", "score", "repeat"])
    return pd.concat(frames, ignore_index=True)
