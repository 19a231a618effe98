"""The report's line "what the adversarial part added": the GAN against its retrieval part,
from hand-made per-user frames and end to end; ``retrieval`` in the default models and never
the best baseline."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recogan.evaluate import (
    BASELINES,
    DEFAULT_MODELS,
    ablation_line,
    adversarial_ablation,
    evaluate,
    paired_test,
)
from recogan.evaluate._activity import activity_order
from tests.fast_gan import FAST


def _frame() -> pd.DataFrame:
    """Users 0-3 in bucket 10-19 (gan 0.5 each, retrieval 0.25 on average), users 4-7 in
    5-9 (both equal), user 8 scored by gan only, and a model that is neither."""
    rows = []
    for u, v in zip(range(4), (0.25, 0.25, 0.3, 0.2)):
        rows += [("gan", u, "10-19", 0.5), ("retrieval", u, "10-19", v)]
    for u, v in zip(range(4, 8), (0.1, 0.2, 0.3, 0.4)):
        rows += [("gan", u, "5-9", v), ("retrieval", u, "5-9", v)]
    rows += [("gan", 8, "5-9", 1.0)] + [("pop", u, "5-9", 0.9) for u in range(8)]
    return pd.DataFrame(rows, columns=["model", "user", "activity", "NDCG@10"])


def test_ablation_by_hand():
    t = adversarial_ablation(_frame(), {"gan": 0.2, "retrieval": 0.3, "pop": 0.01})
    assert list(t.index) == ["all", "5-9", "10-19"]  # least active first, not as text
    assert list(t["users"]) == [8, 4, 4]  # user 8 has no retrieval score: left out
    ab = t.loc["all"]
    assert ab["NDCG@10 gan"] == pytest.approx((4 * 0.5 + 1.0) / 8)
    assert ab["NDCG@10 retrieval"] == pytest.approx((4 * 0.25 + 1.0) / 8)
    assert ab["difference"] == pytest.approx(0.125)
    assert ab["relative"] == pytest.approx(0.125 / 0.25)
    gan = [0.5] * 4 + [0.1, 0.2, 0.3, 0.4]
    ret = [0.25, 0.25, 0.3, 0.2, 0.1, 0.2, 0.3, 0.4]
    assert ab["p_value"] == pytest.approx(paired_test(gan, ret)["p_value"])
    assert (ab["coverage@10 gan"], ab["coverage@10 retrieval"]) == (0.2, 0.3)
    assert t.loc["10-19", "relative"] == pytest.approx(1.0)
    assert t.loc["5-9", "difference"] == 0 and t.loc["5-9", "p_value"] == 1.0
    assert t.loc[["5-9", "10-19"], "coverage@10 gan"].isna().all()  # a list metric: all only
    # the paired t-test when the report asks for it
    t2 = adversarial_ablation(_frame(), test="t")
    assert t2.loc["all", "p_value"] == pytest.approx(paired_test(gan, ret, "t")["p_value"])
    assert np.isnan(t2.loc["all", "coverage@10 gan"])


def test_ablation_line_says_it_plainly():
    t = adversarial_ablation(_frame(), {"gan": 0.2, "retrieval": 0.3})
    line = ablation_line(t)
    assert line.startswith("What the adversarial part added (gan against its retrieval part")
    assert "NDCG@10 0.3750 vs 0.2500, +50.0%" in line
    assert "coverage@10 0.2000 vs 0.3000" in line
    assert "5-9 +0.0% (4 users, p = 1)" in line and "10-19 +100.0% (4 users" in line
    # eight users, four of them better: the signed-rank test cannot call it (p > 0.05)
    assert "within noise" in line
    # many users with the same shift: a gain; the other way round, a loss
    big = pd.DataFrame(
        [("gan", u, "1-4", 0.5 + 0.001 * u) for u in range(40)]
        + [("retrieval", u, "1-4", 0.2) for u in range(40)],
        columns=["model", "user", "activity", "NDCG@10"],
    )
    assert "a gain" in ablation_line(adversarial_ablation(big))
    swapped = big.assign(model=big["model"].map({"gan": "retrieval", "retrieval": "gan"}))
    assert "a loss" in ablation_line(adversarial_ablation(swapped))


def test_ablation_by_buckets_of_its_own():
    f = _frame()
    f["n_history"] = f["user"].map(lambda u: 2 if u < 2 else 7)  # users 0, 1: 1-3 items
    t = adversarial_ablation(f, edges=(1, 4))
    assert list(t.index) == ["all", "1-3", "4+"] and list(t["users"]) == [8, 2, 6]
    assert t.loc["1-3", "NDCG@10 gan"] == 0.5 and t.loc["1-3", "NDCG@10 retrieval"] == 0.25
    assert t.loc["all"].equals(adversarial_ablation(f).loc["all"])
    for bad in ((), (4, 1), (-1, 3)):
        with pytest.raises(ValueError, match="edges must be increasing"):
            adversarial_ablation(f, edges=bad)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['n_history'\]"):
        adversarial_ablation(_frame(), edges=(1, 4))


def test_ablation_needs_both_models_and_the_columns():
    f = _frame()
    assert adversarial_ablation(f[f["model"] != "retrieval"]) is None
    assert adversarial_ablation(f[f["model"] != "gan"]) is None
    with pytest.raises(ValueError, match=r"missing column\(s\) \['activity'\]"):
        adversarial_ablation(f.drop(columns="activity"))
    assert activity_order(["50+", "10-19", "0", "1-4", "5-9"]) == [
        "0",
        "1-4",
        "5-9",
        "10-19",
        "50+",
    ]


def test_retrieval_runs_by_default_and_is_no_baseline():
    assert DEFAULT_MODELS.index("retrieval") == DEFAULT_MODELS.index("gan") + 1
    assert "retrieval" not in BASELINES and "gan" not in BASELINES


def test_cli_evaluates_retrieval_by_default(tmp_path, monkeypatch):
    from recogan.cli import _evaluate, main

    seen = {}

    def fake_evaluate(data, **kw):
        seen.update(kw)
        raise SystemExit(0)  # the plumbing is what is checked here, not the report

    monkeypatch.setattr(_evaluate, "evaluate", fake_evaluate)
    monkeypatch.setattr(_evaluate, "load_data", lambda args: None)
    with pytest.raises(SystemExit):
        main(["evaluate", "--data", "online_retail", "--out", str(tmp_path / "o")])
    assert seen["models"] == list(DEFAULT_MODELS)


def test_report_says_what_the_adversarial_part_added(clustered, tmp_path):
    small = {**FAST, "epochs": 2, "draw_choices": ()}
    report = evaluate(
        clustered,
        models=["pop", "gan", "retrieval"],
        tune=False,
        params={"gan": {**small, "d_weights": (1.0,)}, "retrieval": small},
        valid_folds=1,
        diversity_levels=(),
        jobs=1,
        show_progress=False,
    )
    m = report.metrics
    # retrieval learns the planted groups far better than popularity, yet pop stays the
    # reference: the GAN's own part is never the baseline it is judged against
    assert m.loc["retrieval", "NDCG@10"] > 2 * m.loc["pop", "NDCG@10"]
    assert report.protocol["best_baseline"] == "pop"
    assert set(report.tests["model"]) == {"gan", "retrieval"}
    assert set(report.tests["vs"]) == {"pop"}
    assert report.params["retrieval"]["adversarial"] is False
    t = report.adversarial_ablation()
    users = report.per_user.query("model == 'gan'")["user"].nunique()
    assert t.loc["all", "users"] == users
    assert t.loc["all", "NDCG@10 gan"] == pytest.approx(m.loc["gan", "NDCG@10"])
    assert t.loc["all", "NDCG@10 retrieval"] == pytest.approx(m.loc["retrieval", "NDCG@10"])
    assert t.loc["all", "coverage@10 retrieval"] == m.loc["retrieval", "coverage@10"]
    buckets = t.drop(index="all")
    assert buckets["users"].sum() == users
    assert set(buckets.index) == set(report.per_user["activity"])
    own = report.adversarial_ablation(edges=(1, 8))  # buckets of its own: 1-7, 8+ items
    assert list(own.index) == ["all", "1-7", "8+"] and own["users"].iloc[1:].sum() == users
    line = report.ablation_line()
    assert line in report.header_lines()
    md = report.to_markdown()
    assert "## What the adversarial part added" in md and line in md
    doc = report.to_dict()
    json.dumps(doc, allow_nan=False)  # NaN cells become null
    assert doc["adversarial_ablation"]["line"] == line
    segments = doc["adversarial_ablation"]["segments"]
    assert [s["customers"] for s in segments] == list(t.index)
    assert segments[0]["coverage@10 gan"] == pytest.approx(m.loc["gan", "coverage@10"])
    assert segments[1]["coverage@10 gan"] is None
    paths = report.save(tmp_path / "r")
    assert "What the adversarial part added" in paths["html"].read_text()
    # without the GAN there is nothing to compare
    report.metrics = m.drop(index="gan")
    assert report.adversarial_ablation() is None and report.ablation_line() is None
