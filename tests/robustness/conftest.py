"""Fixtures of the robustness suite: two distinguishable models, their bundles, CSV inputs."""

from __future__ import annotations

import pandas as pd
import pytest

from recogan.artifacts import save_model


@pytest.fixture(scope="session")
def pop_a(clustered):
    from recogan.baselines import Popularity

    return Popularity().fit(clustered)


@pytest.fixture(scope="session")
def pop_b(clustered):
    from recogan.baselines import Popularity

    return Popularity(window_days=30).fit(clustered)


@pytest.fixture
def bundle(tmp_path, pop_a):
    path = tmp_path / "model"
    save_model(pop_a, path)
    return path


@pytest.fixture(scope="session")
def retail_frame(clustered):
    """The clustered data shaped like a shop's export: int customer ids, string SKUs."""
    ev = clustered.interactions
    return pd.DataFrame(
        {
            "customer": 17000 + ev["user"].astype("int64"),
            "sku": clustered.items.to_ids(ev["item"]),
            "ts": ev["time"],
        }
    )


@pytest.fixture(scope="session")
def events_csv(retail_frame, tmp_path_factory):
    path = tmp_path_factory.mktemp("inputs") / "events.csv"
    retail_frame.to_csv(path, index=False)
    return path


DATA_ARGS = ["--user-col", "customer", "--item-col", "sku", "--time-col", "ts"]
