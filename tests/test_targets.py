"""The evaluation's targets (new, all, repeat) and the repeat/explore split of accuracy
(issue 27; "Next Basket Recommendation Reality Check", Li et al., TOIS 2023)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recogan.evaluate import Protocol, evaluate
from recogan.metrics import score, target_matrix, validation_scorer

N_ITEMS = 6


class _Period:
    """A test period: user 0 buys items 1 (a re-purchase) and 4, user 1 buys 5, user 2 buys
    2 (a re-purchase)."""

    def __init__(self):
        rows, cols = [0, 0, 1, 2], [1, 4, 5, 2]
        self.X = sp.csr_matrix((np.ones(4), (rows, cols)), shape=(3, N_ITEMS))

    def csr(self, binary=True):
        return self.X.copy()

    def active_users(self):
        return np.arange(3)


class _Lists:
    """A model whose ranking is fixed: [1, 4, 0, 3] for everyone; seen items excluded when
    asked. History: user 0 bought 0 and 1, user 1 bought 3, user 2 bought 2."""

    seen_ = sp.csr_matrix((np.ones(4), ([0, 0, 1, 2], [0, 1, 3, 2])), shape=(3, N_ITEMS))

    def __init__(self):
        self.calls = []

    def recommend(self, users, n=10, exclude_seen=True, candidates=None):
        self.calls.append(exclude_seen)
        out = np.full((len(users), n), -1, dtype=np.int64)
        for r, u in enumerate(users):
            ranked = [i for i in (1, 4, 0, 3) if not (exclude_seen and self.seen_[u, i])]
            out[r, : min(n, len(ranked))] = ranked[:n]
        return out, np.where(out >= 0, 1.0, -np.inf).astype(np.float32)


def test_target_sets():
    seen = _Lists.seen_
    users, T = target_matrix(_Period(), seen, targets="new")
    assert users.tolist() == [0, 1] and T.toarray().nonzero()[1].tolist() == [4, 5]
    users, T = target_matrix(_Period(), seen, targets="repeat")
    assert users.tolist() == [0, 2] and T.nonzero()[1].tolist() == [1, 2]
    users, T = target_matrix(_Period(), seen, targets="all")
    assert users.tolist() == [0, 1, 2] and T.nnz == 4
    with pytest.raises(ValueError, match="targets must be one of new, all, repeat; got 'old'"):
        target_matrix(_Period(), seen, targets="old")


def test_new_targets_are_unchanged_and_exclude_seen():
    model = _Lists()
    frame, recs = score(model, _Period(), (2,))
    assert model.calls == [True] and recs[0].tolist() == [4, 3]
    assert frame["NDCG@2"].tolist() == [1.0, 0.0]
    assert not any(c.endswith(("repeat@2", "explore@2")) for c in frame.columns)


def test_all_targets_split_into_repeat_and_explore():
    model = _Lists()
    frame, recs = score(model, _Period(), (2, 4), targets="all")
    assert model.calls == [False] and recs[0].tolist() == [1, 4, 0, 3]
    f = frame.set_index("user")
    # user 0: list [1, 4], targets {1 (repeat), 4 (explore)}: both hit
    assert f.loc[0, "NDCG@2"] == 1.0 and f.loc[0, "target_repeat_share"] == 0.5
    assert f.loc[0, "repeat_ratio@2"] == 0.5 and f.loc[0, "repeat_ratio@4"] == 0.5
    assert f.loc[0, "Recall_repeat@2"] == 1.0 and f.loc[0, "Recall_explore@2"] == 1.0
    assert f.loc[0, "NDCG_explore@2"] == pytest.approx(1 / math.log2(3))  # 4 is second
    # user 1: target 5 is never listed; no repeat target (NaN, left out of the means)
    assert f.loc[1, "NDCG@4"] == 0.0 and math.isnan(f.loc[1, "NDCG_repeat@4"])
    assert f.loc[1, "repeat_ratio@4"] == 0.25  # item 3
    # user 2: only a repeat target (2), not in the list
    assert f.loc[2, "target_repeat_share"] == 1.0 and math.isnan(f.loc[2, "Recall_explore@4"])
    assert f.loc[2, "Recall_repeat@4"] == 0.0
    assert frame["Recall_repeat@4"].mean() == 0.5  # users 0 and 2 only


def test_repeat_targets():
    frame, _ = score(_Lists(), _Period(), (2,), targets="repeat")
    assert frame["user"].tolist() == [0, 2] and frame["HR@2"].tolist() == [1.0, 0.0]
    assert (frame["target_repeat_share"] == 1.0).all()
    assert frame["Recall_explore@2"].isna().all()


def test_protocol_targets_decide_exclude_seen():
    assert Protocol().targets == "new" and Protocol().exclude_seen
    p = Protocol(targets="all")
    assert not p.exclude_seen and "all purchases as targets" in p.label
    with pytest.raises(ValueError, match="got 'both'"):
        Protocol(targets="both")
    scorer = validation_scorer("repeat")
    assert scorer(_Lists(), _Period()) == pytest.approx(
        score(_Lists(), _Period(), (10,), targets="repeat")[0]["NDCG@10"].mean()
    )


def test_evaluate_all_targets_reports_the_split(clustered):
    report = evaluate(
        clustered, models=["pop", "ppop"], tune=False, targets="all", show_progress=False
    )
    assert report.protocol["targets"] == "all" and not report.protocol["exclude_seen"]
    split = report.repeat_explore_table()
    assert list(split.columns)[:2] == ["repeat_ratio@10", "target_repeat_share"]
    assert split.loc["ppop", "repeat_ratio@10"] > split.loc["pop", "repeat_ratio@10"]
    assert "## Repeat and explore (K = 10)" in report.to_markdown()
    new = evaluate(clustered, models=["pop"], tune=False, show_progress=False)
    assert new.repeat_explore_table().empty and new.protocol["targets"] == "new"
    with pytest.raises(ValueError, match="targets must be one of"):
        evaluate(clustered, models=["pop"], tune=False, targets="x", show_progress=False)


def test_fit_for_serving_scores_folds_by_the_given_targets(clustered):
    from recogan.fitting import fit_for_serving, holdout
    from tests.tune_models import Epochs

    folds = holdout(clustered, 0.2)
    _, new = fit_for_serving(Epochs, {}, clustered, folds)
    _, rep = fit_for_serving(Epochs, {}, clustered, folds, scorer=validation_scorer("repeat"))
    train, valid = folds[0]
    model = Epochs().fit(train)
    assert new.scores == [pytest.approx(score(model, valid, (10,))[0]["NDCG@10"].mean())]
    want = score(model, valid, (10,), targets="repeat")[0]["NDCG@10"].mean()
    assert rep.scores == [pytest.approx(want)] and rep.scores != new.scores


@pytest.mark.parametrize("method", ["exhaustive", "halving"])
def test_tuning_scores_validation_on_the_protocols_targets(clustered_split, method):
    from recogan.baselines import Popularity
    from recogan.evaluate import tune

    fixed = [{}] if method == "exhaustive" else None
    got = {
        t: tune("pop", clustered_split, 2, 0, candidates=fixed, jobs=1, method=method, targets=t)
        for t in ("new", "all")
    }
    train, valid = clustered_split.folds[-1]
    model = Popularity().fit(train)
    for t, result in got.items():
        scores = [s for s in result.fold_scores if s == s]  # folds the trial reached
        want = score(model, valid, (10,), targets=t)[0]["NDCG@10"].mean()
        assert scores[-1 if method == "exhaustive" else 0] == pytest.approx(want)
    assert got["new"].fold_scores != got["all"].fold_scores
