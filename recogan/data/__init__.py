"""Reading, validating and splitting interaction data.

``Dataset`` holds interactions in dense index space with id maps, an optional catalog, a CSR
matrix and per-event times. Splits (`temporal_split`, `day_split`, `split_at_times`,
`leave_last_out`) return new Datasets over the same id space.
"""

from recogan.data._clean import drop_rows, normalise_ids, parse_times
from recogan.data._dataset import Dataset, read_dataset, read_frame
from recogan.data._idmap import IdMap, check_id, check_ids
from recogan.data._split import (
    Split,
    day_split,
    leave_last_out,
    split_at_times,
    temporal_split,
)

__all__ = [
    "Dataset",
    "IdMap",
    "Split",
    "check_id",
    "check_ids",
    "day_split",
    "drop_rows",
    "leave_last_out",
    "normalise_ids",
    "parse_times",
    "read_dataset",
    "read_frame",
    "split_at_times",
    "temporal_split",
]
