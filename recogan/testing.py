"""The model contract as a test suite, for recogan's models and your own.

Subclass :class:`ModelContract` in a pytest module and give ``make_model``; pytest then runs
the whole suite on that model (it needs ``pytest``, not a dependency of recogan itself)::

    from recogan.testing import ModelContract

    class TestMyModel(ModelContract):
        def make_model(self):
            return MyModel(factors=8)

The data is :func:`recogan.datasets.synthetic_clusters`: 200 users and 80 items in four
planted groups, split by time. A model that does not personalise sets
``learns_structure = False``.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from recogan import catalog
from recogan.artifacts import load_model, save_model
from recogan.base import CannotPlaceItemsError, Model, NotFittedError
from recogan.data import temporal_split
from recogan.datasets import synthetic_clusters
from recogan.fitting import DEFAULT_SCORER
from recogan.serving import recommend as recommend_diverse

__all__ = ["ModelContract"]


class ModelContract:
    """Tests every model of the contract in :mod:`recogan.base` passes."""

    #: does the model learn the planted groups (hit-rate far above random)?
    learns_structure = True

    def make_model(self) -> Model:
        raise NotImplementedError("give the model to check: def make_model(self): ...")

    @pytest.fixture(scope="class")
    @classmethod
    def contract_data(cls):
        return synthetic_clusters()

    @pytest.fixture(scope="class")
    @classmethod
    def contract_split(cls, contract_data):
        return temporal_split(contract_data, test_frac=0.15, valid_frac=0.15)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, contract_split):
        model = cls().make_model()
        return model.fit(contract_split.train, contract_split.valid, scorer=DEFAULT_SCORER)

    def test_is_a_model(self):
        assert isinstance(self.make_model(), Model)

    def test_recommend_shapes_and_types(self, fitted):
        users = np.arange(5)
        items, scores = fitted.recommend(users, n=7)
        assert items.shape == scores.shape == (5, 7)
        assert items.dtype == np.int64 and scores.dtype == np.float32
        assert ((items >= 0) & (items < fitted.n_items_)).all()
        # best first, no duplicates in a row
        assert (np.diff(scores, axis=1) <= 1e-6).all()
        assert all(len(set(row)) == len(row) for row in items)

    def test_scalar_user(self, fitted):
        items, _ = fitted.recommend(3, n=4)
        assert items.shape == (1, 4)

    def test_excludes_seen(self, fitted):
        users = np.arange(20)
        items, _ = fitted.recommend(users, n=10)
        seen = fitted.seen_[users].toarray() > 0
        assert not seen[np.arange(20)[:, None], items].any()

    def test_include_seen_allowed(self, fitted):
        items, _ = fitted.recommend(np.arange(3), n=fitted.n_items_, exclude_seen=False)
        assert (items >= 0).all()  # the full catalog comes back when nothing is excluded

    def test_exclude_seen_choice(self, fitted):
        """``exclude_seen=False`` scores the items a user bought before (the ``mixed`` and
        ``buy_again`` lists, targets ``all``/``repeat``); ``True`` never returns one."""
        users = np.flatnonzero(np.diff(fitted.seen_.indptr) > 0)[:8]
        seen = fitted.seen_[users].toarray() > 0
        rows = np.arange(len(users))[:, None]
        kept, _ = fitted.recommend(users, n=fitted.n_items_, exclude_seen=False)
        assert seen[rows, kept].sum() == seen.sum()  # every seen item can come back
        dropped, _ = fitted.recommend(users, n=fitted.n_items_, exclude_seen=True)
        listed = dropped >= 0
        assert not (seen[rows, np.maximum(dropped, 0)] & listed).any()
        assert (listed.sum(1) == fitted.n_items_ - seen.sum(1)).all()
        # ranking a user's own history (buy again) returns only, and all of, those items
        width = int(seen.sum(1).max())
        hist = np.full((len(users), width), -1, dtype=np.int64)
        for r, u in enumerate(users):
            h = fitted.seen_.indices[fitted.seen_.indptr[u] : fitted.seen_.indptr[u + 1]]
            hist[r, : h.size] = h
        again, _ = fitted.recommend(users, n=width, exclude_seen=False, candidates=hist)
        for r in range(len(users)):
            assert set(again[r][again[r] >= 0]) == set(hist[r][hist[r] >= 0])

    def test_candidates_1d(self, fitted):
        allowed = np.array([1, 5, 9, 13, 17, 21])
        items, _ = fitted.recommend(np.arange(4), n=3, exclude_seen=False, candidates=allowed)
        assert np.isin(items, allowed).all()

    def test_candidates_2d_rank_given_items(self, fitted):
        cand = np.array([[0, 1, 2, 3], [4, 5, 6, -1]])
        items, scores = fitted.recommend(np.array([0, 1]), n=4, exclude_seen=False, candidates=cand)
        assert set(items[0]) == {0, 1, 2, 3}
        assert set(items[1][:3]) == {4, 5, 6} and items[1][3] == -1 and scores[1][3] == -np.inf

    def test_padding_when_too_few_items(self, fitted):
        allowed = np.array([2, 3])
        items, scores = fitted.recommend(np.array([0]), n=5, exclude_seen=False, candidates=allowed)
        assert set(items[0][:2]) == {2, 3}
        assert (items[0][2:] == -1).all() and np.isneginf(scores[0][2:]).all()

    def test_bad_inputs(self, fitted):
        with pytest.raises(IndexError, match="out of range"):
            fitted.recommend(np.array([fitted.n_users_]), n=3)
        with pytest.raises(IndexError, match="out of range"):
            fitted.recommend(np.array([-1]), n=3)
        with pytest.raises(ValueError, match="positive"):
            fitted.recommend(np.array([0]), n=0)
        with pytest.raises(ValueError, match="catalog size"):
            fitted.recommend(np.array([0]), n=fitted.n_items_ + 1)

    def test_not_fitted(self):
        model = self.make_model()
        assert not model.is_fitted
        with pytest.raises(NotFittedError):
            model.recommend(np.array([0]), n=3)

    def test_deterministic(self, fitted, contract_split):
        again = self.make_model().fit(
            contract_split.train, contract_split.valid, scorer=DEFAULT_SCORER
        )
        users = np.arange(30)
        a, sa = fitted.recommend(users, n=10)
        b, sb = again.recommend(users, n=10)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(sa, sb, rtol=1e-5)

    def test_save_load_identical(self, fitted, tmp_path):
        save_model(fitted, tmp_path / "bundle")
        loaded = load_model(tmp_path / "bundle")
        assert type(loaded) is type(fitted)
        users = np.arange(fitted.n_users_)
        a, sa = fitted.recommend(users, n=10)
        b, sb = loaded.recommend(users, n=10)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(sa, sb, rtol=1e-5)

    def test_recommend_history(self, fitted):
        # an anonymous basket of group-0 items
        basket = [0, 4, 8]
        items, _ = fitted.recommend_history([basket, []], n=5)
        assert items.shape == (2, 5)
        assert not np.isin(items[0], basket).any()

    def test_learns_planted_groups(self, fitted):
        if not self.learns_structure:
            pytest.skip("this model does not personalise")
        n_groups = 4
        users = np.arange(fitted.n_users_)
        items, _ = fitted.recommend(users, n=5)
        user_group = np.array([int(u[1:]) % n_groups for u in fitted.users_.to_ids(users)])
        item_group = np.array([int(i[1:]) % n_groups for i in fitted.items_.ids])
        share = (item_group[items] == user_group[:, None]).mean()
        assert share > 0.6, f"only {share:.2f} of recommendations in the user's own group"

    def test_settings_round_trip_through_json(self, fitted):
        model = type(fitted)(**json.loads(json.dumps(fitted.params())))
        assert model.params() == fitted.params()

    def test_hooks_name_config_fields(self, fitted):
        fields = {f.name for f in dataclasses.fields(fitted.Config)}
        assert set(fitted.search_space()) <= fields
        assert set(fitted.recommend_params()) <= fields
        assert set(fitted.early_stopping_params) <= set(fitted.refit_params())
        noise, tradeoff = fitted.noise_draws_param(), fitted.tradeoff_param()
        assert noise is None or noise in fitted.recommend_params()
        assert tradeoff is None or tradeoff[0] in fitted.recommend_params()
        knob = fitted.diversity_param()
        assert knob is None or knob in fitted.recommend_params()

    def test_diversity_knob(self, fitted):
        users = np.arange(12)
        plain, plain_scores = fitted.recommend(users, n=6)
        same, same_scores = recommend_diverse(fitted, users, n=6, diversity=0.0)
        np.testing.assert_array_equal(same, plain)  # 0: the model's lists exactly
        np.testing.assert_array_equal(same_scores, plain_scores)
        items, scores = recommend_diverse(fitted, users, n=6, diversity=0.5)
        assert items.shape == scores.shape == (12, 6)
        assert items.dtype == np.int64 and scores.dtype == np.float32
        assert ((items >= 0) & (items < fitted.n_items_)).all()
        assert all(len(set(row)) == len(row) for row in items)
        seen = fitted.seen_[users].toarray() > 0
        assert not seen[users[:, None], items].any()
        allowed = np.array([1, 5, 9, 13, 17, 21])
        items, _ = recommend_diverse(fitted, users, 3, 0.5, exclude_seen=False, candidates=allowed)
        assert np.isin(items, allowed).all()

    def test_recommend_params_change_nothing_else(self, fitted):
        before = fitted.params()
        with pytest.raises(ValueError, match="no recommend-time setting"):
            fitted.set_recommend_params(not_a_setting=1)
        assert fitted.params() == before
        for name in fitted.recommend_params():
            value = getattr(fitted.config, name)
            fitted.set_recommend_params(**{name: value})
        assert fitted.params() == before

    # ------------------------------------------------------------------ catalogue hooks
    def _copy(self, fitted, path):
        save_model(fitted, path)  # a bundle round trip: a copy the test may change
        return load_model(path)

    def test_withdrawing_products(self, fitted, tmp_path):
        model = self._copy(fitted, tmp_path / "bundle")
        users = np.arange(20)
        plain, _ = recommend_diverse(model, users, n=5)
        gone = np.unique(plain[:, :2])
        idx, n_unknown = catalog.remove_items(model, model.items_.to_ids(gone))
        assert n_unknown == 0 and sorted(idx.tolist()) == sorted(gone.tolist())
        for d in (0.0, 0.5):
            items, _ = recommend_diverse(model, users, n=5, diversity=d)
            assert items.shape == (20, 5) and (items >= 0).all()
            assert not np.isin(items, gone).any()  # withdrawn products never come back
        catalog.restore_items(model, model.items_.to_ids(gone))
        again, _ = recommend_diverse(model, users, n=5)
        np.testing.assert_array_equal(again, plain)  # restoring undoes withdrawing

    def test_adding_products(self, fitted, tmp_path):
        model = self._copy(fitted, tmp_path / "bundle")
        n_before = model.n_items_
        users = np.arange(20)
        plain, _ = model.recommend(users, n=5)
        rows = pd.DataFrame(
            {"item_id": ["new-a", "new-b"], "title": ["red mug", "blue lamp"],
             "category": ["kitchen", "home"], "price": [3.5, 12.0]}
        )  # fmt: skip
        try:
            new = catalog.add_items(model, rows)
        except CannotPlaceItemsError:  # the model cannot place them: nothing changed
            assert model.n_items_ == n_before and catalog.withdrawn_mask(model) is None
            np.testing.assert_array_equal(model.recommend(users, n=5)[0], plain)
            return
        assert new.tolist() == [n_before, n_before + 1] and model.n_items_ == n_before + 2
        assert list(model.items_.to_ids(new)) == ["new-a", "new-b"]
        items, _ = model.recommend(users, n=model.n_items_, exclude_seen=False)
        assert items.shape == (20, n_before + 2)
        assert all(np.isin(new, row).all() for row in items)  # every product can be ranked
