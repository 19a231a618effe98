import numpy as np

from recogan.baselines import Popularity
from recogan.testing import ModelContract


class TestPopularityContract(ModelContract):
    learns_structure = False

    def make_model(self):
        return Popularity()


def test_popularity_ranks_by_distinct_buyers(clustered):
    model = Popularity().fit(clustered)
    items, _ = model.recommend(np.array([0]), n=3, exclude_seen=False)
    pop = clustered.item_popularity()
    assert list(pop[items[0]]) == sorted(pop, reverse=True)[:3]


def test_recent_window_changes_ranking(tiny_frame):
    from recogan.data import Dataset

    d = Dataset.from_frames(tiny_frame)
    recent = Popularity(window_days=1.5).fit(d)
    items, _ = recent.recommend(np.array([2]), n=3, exclude_seen=False)
    # only item 1 (bought on the last day) counts in the window; it comes first
    assert d.items.to_ids(items[0])[0] == 1
