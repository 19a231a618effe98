import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recogan.evaluate import ranking_metrics


def _targets(rows, n_items=10):
    r = [i for i, t in enumerate(rows) for _ in t]
    c = [j for t in rows for j in t]
    return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(rows), n_items))


def test_hand_computed_values():
    # targets {1, 3}; list [3, 0, 1, 4]: hits at ranks 1 and 3
    m = ranking_metrics(np.array([[3, 0, 1, 4]]), _targets([[1, 3]]), ks=(2, 4)).iloc[0]
    assert m["HR@2"] == 1 and m["Precision@2"] == 0.5 and m["Recall@2"] == 0.5
    assert m["NDCG@2"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    ideal4 = 1 + 1 / math.log2(3)
    assert m["NDCG@4"] == pytest.approx((1 + 1 / math.log2(4)) / ideal4)
    assert m["MRR@4"] == 1.0 and m["Recall@4"] == 1.0
    assert m["MAP@4"] == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_first_hit_late_and_padding():
    m = ranking_metrics(np.array([[5, 6, 2, -1]]), _targets([[2]]), ks=(4,)).iloc[0]
    assert m["MRR@4"] == pytest.approx(1 / 3) and m["HR@4"] == 1
    assert m["NDCG@4"] == pytest.approx(1 / math.log2(4))
    none = ranking_metrics(np.array([[5, 6, -1, -1]]), _targets([[0]]), ks=(4,)).iloc[0]
    assert none.sum() == 0


lists = st.lists(st.integers(0, 19), min_size=5, max_size=5, unique=True)
target_sets = st.sets(st.integers(0, 19), min_size=1, max_size=8)


@settings(max_examples=100, deadline=None)
@given(lists, target_sets)
def test_metrics_in_unit_interval(rec, targets):
    m = ranking_metrics(np.array([rec]), _targets([sorted(targets)], 20), ks=(1, 3, 5))
    assert ((m.to_numpy() >= 0) & (m.to_numpy() <= 1 + 1e-12)).all()


@settings(max_examples=50, deadline=None)
@given(target_sets)
def test_perfect_ranking_scores_one(targets):
    t = sorted(targets)
    rec = (t + [i for i in range(20) if i not in targets])[:5]
    m = ranking_metrics(np.array([rec]), _targets([t], 20), ks=(5,)).iloc[0]
    assert m["NDCG@5"] == pytest.approx(1.0) and m["MAP@5"] == pytest.approx(1.0)
    assert m["HR@5"] == 1 and m["MRR@5"] == 1


@settings(max_examples=50, deadline=None)
@given(lists, st.integers(0, 19))
def test_ndcg_rewards_earlier_hits(rec, target):
    if target in rec:
        rec = [r for r in rec if r != target]
    early = np.array([[target, *rec[:4]]])
    late = np.array([[*rec[:4], target]])
    T = _targets([[target]], 20)
    e = ranking_metrics(early, T, ks=(5,))["NDCG@5"][0]
    lt = ranking_metrics(late, T, ks=(5,))["NDCG@5"][0]
    assert e > lt > 0


def test_evaluate_model_excludes_repurchases(clustered_split):
    from recogan.baselines import Popularity
    from recogan.evaluate import evaluate_model, target_matrix

    s = clustered_split
    model = Popularity().fit(s.train_valid)
    users, T = target_matrix(s.test, model.seen_)
    assert not T.multiply(model.seen_[users]).nnz  # no target was already bought
    per_user = evaluate_model(model, s.test, ks=(5, 10))
    assert list(per_user["user"]) == list(users)
    assert {"HR@5", "NDCG@10", "MAP@10"} <= set(per_user.columns)
