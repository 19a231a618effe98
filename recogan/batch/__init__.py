"""Batch scoring of every customer: partitioned, resumable, published atomically.

    from recogan.batch import batch_score, read_recommendations
    result = batch_score("models/demo", "recs/2024-06-01", n=50, workers=2)
    print(result.summary())
    recs = read_recommendations("recs/2024-06-01")   # user_id, rank, item_id, score

Users (sorted by model index) are cut into fixed-size partitions; each partition is scored by
the same function on every engine (``local`` processes or a ``ray`` actor pool) and written as
its own parquet file into a staging directory, whose manifest records each finished file's
sha256. ``resume=True`` keeps verified partitions of an interrupted run and redoes the rest.
The finished directory is published by one rename, with a ``_SUCCESS`` manifest (users, rows,
partitions, checksums); until then the previously published result stays as it was.

Rows are identical whatever the engine or worker count (``_SUCCESS["rows_sha256"]``), as long
as the model's ``recommend`` depends only on the user (true of every model of the contract;
noisy models draw their noise from a seed). ``model_version`` and ``generated_at`` are in each
file's metadata (``recogan.model_version``, ``recogan.generated_at``) and in ``_SUCCESS``.
"""

from recogan.batch._inputs import read_id_file
from recogan.batch._job import BatchConfig, BatchResult, batch_score
from recogan.batch._publish import (
    BatchError,
    is_batch_result,
    read_recommendations,
    read_success,
    verify_output,
)

__all__ = [
    "BatchConfig",
    "BatchError",
    "BatchResult",
    "batch_score",
    "is_batch_result",
    "read_id_file",
    "read_recommendations",
    "read_success",
    "verify_output",
]
