import numpy as np
import pytest

from recogan.baselines import EASE, IALS, ItemKNN, Popularity
from recogan.testing import ModelContract


class TestItemKNNContract(ModelContract):
    def make_model(self):
        return ItemKNN(k=20, shrinkage=5.0)


class TestEASEContract(ModelContract):
    def make_model(self):
        return EASE(lam=50.0)


class TestIALSContract(ModelContract):
    def make_model(self):
        return IALS(factors=8, iterations=8, reg=0.1, alpha=10.0)


def test_ease_closed_form_matches_definition(clustered):
    model = EASE(lam=30.0).fit(clustered)
    X = clustered.csr().toarray().astype(np.float64)
    P = np.linalg.inv(X.T @ X + 30.0 * np.eye(X.shape[1]))
    B = np.eye(len(P)) - P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    np.testing.assert_allclose(model.weights_, B, atol=1e-5)
    assert np.all(np.diag(model.weights_) == 0)


def test_itemknn_keeps_top_k_cosine(clustered):
    model = ItemKNN(k=5, shrinkage=0.0).fit(clustered)
    S = model.similarity_
    assert np.diff(S.indptr).max() <= 5 and S.diagonal().sum() == 0
    X = clustered.csr().toarray()
    co = X.T @ X
    n = np.sqrt(np.diag(co))
    cos = co / np.outer(n, n)
    np.fill_diagonal(cos, 0)
    i = 7
    row = S[i].toarray().ravel()
    kept = np.flatnonzero(row)
    np.testing.assert_allclose(row[kept], cos[i, kept], rtol=1e-5)
    assert row[kept].min() >= np.sort(cos[i])[-5] - 1e-6


def test_itemknn_shrinkage_damps_rare_pairs(clustered):
    a = ItemKNN(k=10, shrinkage=0.0).fit(clustered).similarity_
    b = ItemKNN(k=10, shrinkage=50.0).fit(clustered).similarity_
    assert b.sum() < a.sum()


def test_ials_fold_in_matches_training_user_step(clustered):
    model = IALS(factors=8, iterations=10, cg_steps=8).fit(clustered)
    users = np.arange(10)
    folded = model.fold_in(model.seen_[users])
    # the stored factors come from CG steps of the same system: close, not identical
    cos = np.sum(folded * model.user_factors_[users], 1) / (
        np.linalg.norm(folded, axis=1) * np.linalg.norm(model.user_factors_[users], axis=1)
    )
    assert cos.min() > 0.95
    v = model.item_vectors()
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)


def test_ials_seed_changes_factors(clustered):
    a = IALS(factors=4, iterations=2, seed=0).fit(clustered).item_factors_
    b = IALS(factors=4, iterations=2, seed=1).fit(clustered).item_factors_
    assert not np.allclose(a, b)


@pytest.mark.parametrize(
    "cls,params",
    [
        (ItemKNN, {"k": 0}),
        (ItemKNN, {"shrinkage": -1.0}),
        (EASE, {"lam": 0.0}),
        (IALS, {"factors": 0}),
    ],
)
def test_bad_hyperparameters(cls, params):
    # refused when the model is made, naming the setting (not later, inside fit)
    with pytest.raises(ValueError, match=f"{next(iter(params))} must be"):
        cls(**params)


@pytest.mark.parametrize("cls", [Popularity, ItemKNN, EASE, IALS])
def test_search_space_values_are_valid(cls, clustered):
    space = cls.search_space()
    params = {name: values[0] for name, values in space.items()}
    model = cls(**params).fit(clustered)
    # the settings give a working model: real items with finite scores for every user
    items, scores = model.recommend(np.arange(clustered.n_users), n=5)
    assert (items >= 0).all() and np.isfinite(scores).all()
