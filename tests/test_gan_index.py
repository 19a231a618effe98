"""The GAN retrieves through the FAISS ItemIndex: approximate kinds agree with exact search,
and the index travels in the bundle. Four GAN fits on a larger catalog: slow."""

import numpy as np
import pytest

from recogan.artifacts import files_dir, load_model, save_model
from recogan.datasets import synthetic_clusters
from recogan.gan.model import GANRecommender
from tests.fast_gan import FAST

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big_catalog():
    # enough items that IVF has real lists to probe
    return synthetic_clusters(n_users=300, n_items=600, n_clusters=6, events_per_user=10, seed=3)


def test_index_kinds_agree_with_exact(big_catalog):
    users = np.arange(big_catalog.n_users)
    exact = GANRecommender(**FAST, index_kind="exact").fit(big_catalog)
    ref, _ = exact.recommend(users, n=10)
    assert exact.index_.kind_ == "exact"
    for kind in ("ivf", "hnsw"):
        model = GANRecommender(**FAST, index_kind=kind).fit(big_catalog)
        assert model.index_.kind_ == kind
        got, _ = model.recommend(users, n=10)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ref, got)])
        assert recall >= 0.95, f"{kind}: recall@10 vs exact {recall:.3f}"


def test_index_saved_and_verified_in_bundle(clustered, tmp_path):
    model = GANRecommender(**FAST, index_kind="hnsw").fit(clustered)
    save_model(model, tmp_path / "b")
    assert (files_dir(tmp_path / "b") / "index.faiss").is_file()
    loaded = load_model(tmp_path / "b")
    assert loaded.index_.kind_ == "hnsw"
    users = np.arange(clustered.n_users)
    np.testing.assert_array_equal(model.recommend(users, 10)[0], loaded.recommend(users, 10)[0])
