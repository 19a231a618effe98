"""The contract every model passes (see recogan.base). Subclass ``ModelContract`` and give
``make_model``; the subclass's tests then run this whole suite on that model."""

from __future__ import annotations

import numpy as np
import pytest

from recogan.base import NotFittedError


class ModelContract:
    #: does the model learn the planted groups (hit-rate far above random)?
    learns_structure = True

    def make_model(self):
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, clustered_split):
        return cls().make_model().fit(clustered_split.train, clustered_split.valid)

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
        with pytest.raises(NotFittedError):
            self.make_model().recommend(np.array([0]), n=3)

    def test_deterministic(self, fitted, clustered_split):
        again = self.make_model().fit(clustered_split.train, clustered_split.valid)
        users = np.arange(30)
        a, sa = fitted.recommend(users, n=10)
        b, sb = again.recommend(users, n=10)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(sa, sb, rtol=1e-5)

    def test_save_load_identical(self, fitted, tmp_path):
        from recogan.artifacts import load_model

        fitted.save(tmp_path / "bundle")
        loaded = load_model(tmp_path / "bundle")
        assert type(loaded) is type(fitted)
        users = np.arange(fitted.n_users_)
        a, sa = fitted.recommend(users, n=10)
        b, sb = loaded.recommend(users, n=10)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(sa, sb, rtol=1e-5)

    def test_recommend_history(self, fitted, clustered):
        # an anonymous basket of group-0 items
        basket = [0, 4, 8]
        items, scores = fitted.recommend_history([basket, []], n=5)
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
