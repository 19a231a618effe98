"""Evaluation: beyond-accuracy metrics, statistics, tuning, protocols, the report and CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recogan.baselines import EASE, EASEConfig, Popularity
from recogan.data import Dataset
from recogan.evaluate import (
    Protocol,
    activity_bucket,
    bootstrap_ci,
    candidate_params,
    copurchase_similarity,
    coverage,
    evaluate,
    gini,
    intra_list_diversity,
    list_metrics,
    paired_test,
    popularity_percentile,
    sampled_candidates,
    score_model,
    self_information,
    significance_mark,
    tune,
    vector_similarity,
)
from recogan.registry import MODEL_REGISTRY

# ---------------------------------------------------------------------- beyond-accuracy metrics


def test_coverage_and_gini_hand_computed():
    recs = np.array([[0, 1], [0, 2]])
    assert coverage(recs, 4) == 0.75
    # exposure counts [2, 1, 1, 0] → sorted [0, 1, 1, 2]: Σ(2i − n − 1)x / (n Σx) = 6 / 16
    assert gini(recs, 4) == pytest.approx(0.375)
    assert gini(np.array([[0, 1, 2, 3]]), 4) == 0.0  # equal exposure
    assert coverage(np.array([[0, -1]]), 4) == 0.25  # padding is not an item


def test_novelty_and_popularity_percentile_hand_computed():
    np.testing.assert_allclose(self_information(np.array([0, 9]), 9), [np.log2(10), 0.0])
    np.testing.assert_allclose(popularity_percentile(np.array([5, 1, 3])), [1.0, 0.0, 0.5])
    per_user, agg = list_metrics(
        np.array([[0, 1]]), (2,), np.array([9, 0, 4]), 9, vector_similarity(np.eye(3))
    )
    assert per_user["novelty@2"][0] == pytest.approx((0.0 + np.log2(10)) / 2)
    assert per_user["popbias@2"][0] == pytest.approx((1.0 + 0.0) / 2)
    assert per_user["diversity@2"][0] == pytest.approx(1.0)
    assert agg == {"coverage@2": pytest.approx(2 / 3), "gini@2": pytest.approx(1 / 3)}


def test_intra_list_diversity_hand_computed():
    V = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    # pairs (0,1): 1 − 0, (0,2): 1 − 1, (1,2): 1 − 0 → 2/3
    ild = intra_list_diversity(np.array([[0, 1, 2], [0, 2, -1]]), vector_similarity(V))
    np.testing.assert_allclose(ild, [2 / 3, 0.0])


def test_copurchase_similarity_hand_computed():
    # item 0 bought by users 0,1; item 1 by user 1; item 2 by users 0,1
    X = sp.csr_matrix(np.array([[1, 0, 1], [1, 1, 1]], dtype=np.float32))
    S = copurchase_similarity(X)(np.array([0, 1, 2]))
    np.testing.assert_allclose(S[0, 1], 1 / np.sqrt(2))
    np.testing.assert_allclose(S[0, 2], 1.0)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(
                st.lists(st.integers(-1, n - 1), min_size=3, max_size=3), min_size=1, max_size=8
            ),
            st.lists(st.integers(0, 6), min_size=n, max_size=n),  # ≤ the 6 users
        )
    )
)
def test_list_metric_bounds(case):
    n, recs, pop = case
    recs = np.array(recs)
    X = sp.random(6, n, density=0.5, random_state=0, format="csr")
    per_user, agg = list_metrics(recs, (1, 3), np.array(pop), 6, copurchase_similarity(X))
    for v in agg.values():
        assert 0.0 <= v <= 1.0
    for c in ("popbias@3", "diversity@3", "popbias@1"):
        vals = per_user[c].dropna()
        assert ((vals >= -1e-9) & (vals <= 1 + 1e-9)).all()
    assert (per_user["novelty@3"].dropna() >= 0).all()


# ---------------------------------------------------------------------- statistics


def test_bootstrap_ci_contains_mean_and_is_seeded(rng):
    v = rng.random(300)
    lo, hi = bootstrap_ci(v, seed=1)
    assert lo < v.mean() < hi and hi - lo < 0.15
    assert bootstrap_ci(v, seed=1) == (lo, hi)
    assert bootstrap_ci(v, seed=2) != (lo, hi)
    assert bootstrap_ci(np.full(10, 0.3)) == pytest.approx((0.3, 0.3))


def test_paired_test_detects_shift_and_not_noise(rng):
    a = rng.random(200)
    assert paired_test(a, a)["p_value"] == 1.0
    shifted = paired_test(a + 0.1 + 0.01 * rng.random(200), a)
    assert shifted["p_value"] < 1e-6 and shifted["mean_diff"] > 0
    t = paired_test(a + 0.1 + 0.01 * rng.random(200), a, method="t")
    assert t["p_value"] < 1e-6
    with pytest.raises(ValueError, match="equal lengths"):
        paired_test(a, a[:-1])
    assert significance_mark(0.001, 0.2) == "▲**"
    assert significance_mark(0.2, 0.2) == ""
    assert significance_mark(0.0001, -0.1) == "▼***"


def test_activity_buckets():
    labels = activity_bucket(np.array([0, 1, 4, 5, 19, 20, 50, 500]))
    assert list(labels) == ["0", "1-4", "1-4", "5-9", "10-19", "20-49", "50+", "50+"]


# ---------------------------------------------------------------------- tuning


def test_candidate_params_budget_defaults_first_distinct():
    c = candidate_params(EASE, budget=4, seed=0)
    assert len(c) == 4 and c[0] == {"lam": EASEConfig().lam}
    assert len({json.dumps(p, sort_keys=True) for p in c}) == 4
    assert set(p["lam"] for p in c) <= set(EASE.search_space()["lam"]) | {EASEConfig().lam}
    assert candidate_params(EASE, 4, seed=0) == c
    assert len(candidate_params(EASE, 100)) == len(EASE.search_space()["lam"])
    with pytest.raises(ValueError, match="budget"):
        candidate_params(EASE, 0)


def test_tune_picks_the_best_validation_trial(clustered_split):
    res = tune("ease", clustered_split, budget=3, seed=0)
    assert len(res.trials) == 3
    assert res.best_score == pytest.approx(res.trials["NDCG@10"].max())
    assert res.best_params in list(res.trials["params"])


# ---------------------------------------------------------------------- protocols


class SpyModel(Popularity):
    """Records what each fit saw."""

    name = "spy"
    fits: list = []  # noqa: RUF012

    def _fit(self, train, valid):
        SpyModel.fits.append((int(train.times.max()), valid))
        super()._fit(train, valid)


@pytest.fixture
def spy(monkeypatch):
    monkeypatch.setitem(MODEL_REGISTRY, "spy", "tests.test_evaluate:SpyModel")
    SpyModel.fits = []
    return SpyModel


def test_no_leakage_tuning_on_train_refit_before_test(spy, clustered):
    split = Protocol().split(clustered)
    assert len(split.folds) == 3  # rolling-origin validation by default
    # jobs=1: the spy records its fits in this process (workers would fit out of its sight)
    evaluate(split, models=["spy"], tune=True, budget=2, jobs=1, show_progress=False)
    *trials, final = SpyModel.fits
    # successive halving: each trial on the latest window, the promoted ones on the others
    valids = [v for _, v in split.folds]
    assert len(split.folds) < len(trials) <= 2 * len(split.folds)
    for t_max, valid in trials:
        assert any(valid is v for v in valids)
        assert t_max < valid.times.min()
    assert {id(v) for _, v in trials} == {id(v) for v in valids}
    assert split.folds[0][1] is split.valid
    t_max, valid = final
    assert valid is None and t_max < split.test.times.min()
    assert t_max == split.train_valid.times.max()


def test_targets_exclude_history_and_sampled_ranking(clustered_split):
    model = EASE(lam=50.0).fit(clustered_split.train_valid)
    full, recs = score_model(model, clustered_split.test, (10,))
    seen = model.seen_[full["user"].to_numpy()].toarray() > 0
    assert not seen[np.arange(len(recs))[:, None], recs].any()
    proto = Protocol(ranking="sampled", n_negatives=20)
    assert "sampled" in proto.label
    sampled, _ = score_model(model, clustered_split.test, (10,), proto)
    assert sampled["HR@10"].mean() >= full["HR@10"].mean()


def test_sampled_candidates_hold_targets_and_no_seen(rng):
    T = sp.csr_matrix(np.array([[0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1]], dtype=np.float32))
    seen = sp.csr_matrix(np.array([[1, 0, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=np.float32))
    c = sampled_candidates(np.array([0, 1]), T, seen, 2, seed=0)
    assert c.shape == (2, 4)
    assert c[0, 0] == 1 and set(c[1, :2]) == {4, 5}
    assert not np.isin(c[0], [0, 2]).any() and 0 not in c[1]


def test_unknown_protocol_and_unimportable_model(clustered, monkeypatch):
    with pytest.raises(ValueError, match="unknown protocol"):
        Protocol(name="random")
    # a registered model whose module cannot be imported is an error, never skipped
    monkeypatch.setitem(MODEL_REGISTRY, "broken", "recogan_no_such_module:Model")
    with pytest.raises(ValueError, match="'broken' .* cannot be imported"):
        evaluate(clustered, models=["pop", "broken"], show_progress=False)
    with pytest.raises(ValueError, match="unknown model"):
        evaluate(clustered, models=["nope"], show_progress=False)


# ---------------------------------------------------------------------- end to end


def test_itemknn_beats_popularity_on_planted_groups(clustered):
    report = evaluate(clustered, models=["pop", "itemknn"], tune=False, show_progress=False)
    m = report.metrics
    assert m.loc["itemknn", "NDCG@10"] > 2 * m.loc["pop", "NDCG@10"]
    assert report.protocol["best_baseline"] == "itemknn"
    t = report.tests[(report.tests["model"] == "pop") & (report.tests["metric"] == "NDCG@10")]
    assert t["p_value"].iloc[0] < 0.01 and t["mean_diff"].iloc[0] < 0
    # per-user rows: one per (model, test user), same users for both models
    pu = report.per_user
    assert set(pu[pu.model == "pop"].user) == set(pu[pu.model == "itemknn"].user)


@dataclass
class BlendConfig(EASEConfig):
    #: weight of the popularity prior added at recommend time (no refit needed)
    blend: float = 0.0


class BlendEASE(EASE):
    name = "blend"
    Config = BlendConfig

    @classmethod
    def tradeoff_param(cls):
        return "blend", [0.0, 1.0, 100.0]

    def score_users(self, user_idx):
        return super().score_users(user_idx) + self.config.blend * self.popularity_[None, :]


def test_report_files_schema_and_tradeoff(clustered, tmp_path, monkeypatch):
    monkeypatch.setitem(MODEL_REGISTRY, "blend", "tests.test_evaluate:BlendEASE")
    report = evaluate(
        clustered,
        models=["pop", "ease", "blend"],
        ks=(5, 20),
        tune=True,
        budget=2,
        show_progress=False,
    )
    assert report.ks == [5, 10, 20]
    paths = report.save(tmp_path / "r")
    for name in ("metrics.json", "report.md", "report.html", "per_user.parquet"):
        assert (tmp_path / "r" / name).stat().st_size > 0
    doc = json.loads(paths["metrics"].read_text())
    assert set(doc) == {"dataset", "protocol", "models", "warnings", "tradeoff", "timing"}
    assert doc["dataset"] == {"users": 200, "items": 80, "interactions": 2400}
    assert doc["protocol"]["name"] == "temporal" and doc["protocol"]["ks"] == [5, 10, 20]
    expected = {
        f"{m}@{k}"
        for k in (5, 10, 20)
        for m in (
            "HR",
            "NDCG",
            "Recall",
            "Precision",
            "MRR",
            "MAP",
            "coverage",
            "gini",
            "novelty",
            "diversity",
            "popbias",
        )
    }
    for name, entry in doc["models"].items():
        assert expected <= set(entry), name
        assert all(isinstance(entry[k], float) for k in expected)
        assert isinstance(entry["fit_seconds"], float) and isinstance(entry["params"], dict)
        assert len(entry["valid_fold_NDCG@10"]) == 3
        assert entry["valid_NDCG@10"] == pytest.approx(np.mean(entry["valid_fold_NDCG@10"]))
    assert doc["models"]["ease"]["params"]["lam"] in EASE.search_space()["lam"] + [200.0]
    # the knob is evaluated at each value, without refitting
    t = report.tradeoff["blend"]
    assert list(t["value"]) == [0.0, 1.0, 100.0]
    assert t["coverage@10"].iloc[-1] < t["coverage@10"].iloc[0]
    html = (tmp_path / "r" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5 and "<script" not in html
    md = (tmp_path / "r" / "report.md").read_text()
    assert "NDCG@10" in md and "(ref)" in md
    pu = pd.read_parquet(tmp_path / "r" / "per_user.parquet")
    assert set(pu["model"]) == {"pop", "ease", "blend"} and "activity" in pu


def test_same_seed_same_report(clustered):
    a = evaluate(clustered, models=["ials"], tune=True, budget=2, show_progress=False)
    b = evaluate(clustered, models=["ials"], tune=True, budget=2, show_progress=False)
    pd.testing.assert_frame_equal(
        a.metrics.drop(columns="fit_seconds"), b.metrics.drop(columns="fit_seconds")
    )
    assert a.ci == b.ci


def test_leave_last_out_protocol(clustered):
    r = evaluate(
        clustered,
        models=["pop", "ease"],
        protocol="leave-last-out",
        tune=False,
        show_progress=False,
    )
    assert r.protocol["name"] == "leave-last-out"
    assert r.metrics["users"].iloc[0] > 100  # most users have a last basket with a new item


def test_cli_evaluate(tmp_path, clustered, capsys):
    from recogan.cli import main

    frame = clustered.interactions.assign(
        customer=clustered.users.to_ids(clustered.user_idx),
        product=clustered.items.to_ids(clustered.item_idx),
    )[["customer", "product", "time"]]
    frame.to_csv(tmp_path / "i.csv", index=False)
    args = [
        "evaluate",
        "--interactions",
        str(tmp_path / "i.csv"),
        "--user-col",
        "customer",
        "--item-col",
        "product",
        "--time-col",
        "time",
        "--models",
        "pop,itemknn",
        "--no-tune",
        "--k",
        "5,10",
        "--seed",
        "3",
        "--no-progress",
        "--out",
        str(tmp_path / "o"),
    ]
    assert main([*args, "--valid-folds", "2"]) == 0
    printed = capsys.readouterr().out
    assert "valid NDCG@10" in printed.splitlines()[0]
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert set(doc["models"]) == {"pop", "itemknn"} and doc["protocol"]["seed"] == 3
    assert doc["protocol"]["valid_folds"] == 2
    assert len(doc["models"]["pop"]["valid_fold_NDCG@10"]) == 2
    assert main([*args[:-2], "--models", "pop,nope", "--out", str(tmp_path / "x")]) == 1
    assert "unknown model" in capsys.readouterr().err


def test_offline_evaluation_pipeline_writes_dated_directory(tmp_path, clustered):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "pipelines" / "offline_evaluation.py"
    spec = importlib.util.spec_from_file_location("offline_evaluation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    frame = pd.DataFrame(
        {
            "user_id": clustered.users.to_ids(clustered.user_idx),
            "item_id": clustered.items.to_ids(clustered.item_idx),
            "timestamp": clustered.times,
        }
    )
    frame.to_parquet(tmp_path / "events.parquet")
    args = ["--reports", str(tmp_path / "reports"), "--date", "2026-01-02",
            "--interactions", str(tmp_path / "events.parquet"), "--models", "pop",
            "--no-tune", "--no-progress"]  # fmt: skip
    assert module.main(args) == 0
    day = tmp_path / "reports" / "2026-01-02"
    assert sorted(p.name for p in day.iterdir()) == [
        "metrics.json", "per_user.parquet", "report.html", "report.md", "tuning"
    ]  # fmt: skip
    with pytest.raises(SystemExit):
        module.main(["--date", "yesterday"])


def test_report_warns_when_validation_and_test_ranks_disagree(clustered):
    report = evaluate(clustered, models=["pop", "ease"], tune=False, show_progress=False)
    table = report.validation_table()
    assert list(table.index) == ["pop", "ease"]
    assert set(table["valid rank"]) == {1, 2} and set(table["test rank"]) == {1, 2}
    assert report.warnings() == []  # EASE wins both on this planted-structure data
    # swap the validation scores: the validation winner now loses the test
    report.tuning["pop"]["valid_NDCG@10"], report.tuning["ease"]["valid_NDCG@10"] = (
        report.tuning["ease"]["valid_NDCG@10"],
        report.tuning["pop"]["valid_NDCG@10"],
    )
    (warning,) = [w for w in report.warnings() if w.startswith("validation picked")]
    assert "pop" in warning and "ease is best" in warning
    assert "## Warnings" in report.to_markdown() and "Validation vs test" in report.to_markdown()


def _fad_data(seed=0):
    """Shoppers buy from 60 staple items (Zipf popularity) every day except during days
    73-89, when a fad sends every purchase to 60 other items; after it, staples again. The
    latest of three validation windows (days 80-89) lies inside the fad."""
    r = np.random.default_rng(seed)
    rows = []
    zipf = 1.0 / np.arange(1, 61)
    zipf /= zipf.sum()
    for u in range(300):
        for day in np.sort(r.choice(100, 25, replace=False)):
            kind = "fad" if 73 <= day < 90 else "staple"
            rows.append((f"u{u}", f"{kind}{r.choice(60, p=zipf)}", 1_700_000_000 + day * 86400))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Dataset.from_frames(frame, name="fad")


def test_rolling_origin_tuning_is_not_fooled_by_one_odd_window():
    """Regression: with one validation window, a fad that fills exactly that window makes
    tuning pick 7-day popularity, which scores ~0 on the test period after the fad; averaged
    over three consecutive windows (the median of each candidate's score relative to the
    window's best) the all-time choice wins and holds up on test."""
    data = _fad_data()
    one = Protocol(valid_folds=1).split(data)
    three = Protocol(valid_folds=3).split(data)
    assert one.test.n_interactions == three.test.n_interactions
    space = [{"window_days": None}, {"window_days": 7.0}]
    fooled = tune("pop", one, candidates=space)
    robust = tune("pop", three, candidates=space)
    assert fooled.best_params["window_days"] == 7.0
    assert robust.best_params["window_days"] is None
    # the fold scores say why: the 7-day choice wins only the latest (fad) window
    by_params = {
        str(p["window_days"]): s
        for p, s in zip(robust.trials["params"], robust.trials["fold_scores"])
    }
    assert by_params["7.0"][0] > by_params["None"][0]
    assert by_params["7.0"][1] < by_params["None"][1] and by_params["7.0"][2] < by_params["None"][2]
    tested = {
        w: evaluate(one, models=["pop"], tune=False, params={"pop": {"window_days": w}},
                    show_progress=False).metrics.loc["pop", "NDCG@10"]
        for w in (None, 7.0)
    }  # fmt: skip
    assert tested[None] > 5 * tested[7.0]


def test_relative_scores_median_over_folds():
    from recogan.evaluate._tune import relative_scores

    s = np.array([[0.1, 0.5, 0.5], [0.9, 0.45, 0.45], [np.nan, 0.5, 0.4]])
    rel = relative_scores(s)
    assert rel[0] == pytest.approx(1.0) and rel[1] == pytest.approx(0.9)
    assert rel[2] == pytest.approx(0.9)  # a failed fold is left out, not counted as zero
    assert np.argmax(rel) == 0  # the one-window winner does not win


def test_rank_warnings_ignore_test_ties(clustered):
    report = evaluate(clustered, models=["pop", "ease", "ials"], tune=False, show_progress=False)
    names = list(report.metrics.index)
    # make the two weaker models tie on test (within 1%) in the opposite order to validation
    report.tuning["pop"]["valid_NDCG@10"] = 0.5
    report.tuning["ials"]["valid_NDCG@10"] = 0.4
    report.tuning["ease"]["valid_NDCG@10"] = 0.9
    report.metrics.loc["ease", "NDCG@10"] = 0.9
    report.metrics.loc["pop", "NDCG@10"] = 0.2
    report.metrics.loc["ials", "NDCG@10"] = 0.201
    assert set(names) == {"pop", "ease", "ials"} and report.warnings() == []
    report.metrics.loc["ials", "NDCG@10"] = 0.25  # a real swap is reported
    assert report.warnings() == [
        "pop: validation rank 2 but test rank 3",
        "ials: validation rank 3 but test rank 2",
    ]
