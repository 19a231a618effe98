"""Shared fixtures: seeded rng, tiny datasets with known structure, thread limits."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

# A busy core can make multi-threaded BLAS/torch far slower than one thread: pin it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def pytest_configure(config):
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def clustered():
    """200 users × 80 items in 4 planted groups (see ``synthetic_clusters``)."""
    from recogan.datasets import synthetic_clusters

    return synthetic_clusters()


@pytest.fixture(scope="session")
def clustered_split(clustered):
    from recogan.data import temporal_split

    return temporal_split(clustered, test_frac=0.15, valid_frac=0.15)


@pytest.fixture
def tiny_frame():
    """Five events, three users, three items, string timestamps."""
    return pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "c", "b"],
            "item_id": [1, 2, 2, 3, 1],
            "timestamp": ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04", "2020-01-05"],
        }
    )


@pytest.fixture(scope="session")
def online_retail():
    from recogan.datasets import online_retail

    return online_retail()
