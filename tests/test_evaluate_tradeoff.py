"""The report's diversity trade-off curves and its generated-vectors section."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recogan.baselines import EASE
from recogan.evaluate import evaluate
from recogan.registry import MODEL_REGISTRY
from recogan.vector_quality import generation_quality


class GenEASE(EASE):
    """EASE that reports the quality of 'generated' vectors, as a generative model would."""

    name = "gen"

    def _fit(self, train, valid) -> None:
        super()._fit(train, valid)
        rng = np.random.default_rng(0)
        V = rng.standard_normal((self.n_items_, 3))
        targets = [rng.choice(self.n_items_, 2, replace=False) for _ in range(30)]
        per_epoch = []
        for noise in (1.0, 0.1):  # two "epochs": the draws get closer to the purchases
            G = np.stack([V[t[[0, 1, 0]]] for t in targets])
            G = G + noise * rng.standard_normal(G.shape)
            per_epoch.append(
                {"epoch": len(per_epoch) + 1, **generation_quality(G, targets, V).summary()}
            )
        self.generation_quality_ = pd.DataFrame(per_epoch)


@pytest.fixture(scope="module")
def report(clustered):
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(MODEL_REGISTRY, "knob", "tests.test_diversity:KnobEASE")
        mp.setitem(MODEL_REGISTRY, "gen", "tests.test_evaluate_tradeoff:GenEASE")
        return evaluate(
            clustered, models=["pop", "ease", "knob", "gen"], tune=False, show_progress=False
        )


def test_curves_for_ease_and_own_mechanisms_points_for_other_baselines(report):
    assert set(report.diversity) == {"ease", "knob", "gen"}  # pop: a baseline, a point
    ease = report.diversity["ease"]
    assert list(ease["diversity"]) == [0.0, 0.1, 0.2, 0.3, 0.5]
    assert set(ease["mechanism"]) == {"MMR"} and set(report.diversity["knob"]["mechanism"]) == {
        "spread"
    }
    # the curve's first point is the model's own result
    row = report.metrics.loc["ease"]
    for c in ("NDCG@10", "coverage@10", "diversity@10", "novelty@10"):
        assert ease[c].iloc[0] == pytest.approx(row[c], rel=1e-9), c
    # MMR buys intra-list diversity with accuracy
    assert ease["diversity@10"].iloc[-1] > ease["diversity@10"].iloc[0]
    assert ease["NDCG@10"].iloc[-1] <= ease["NDCG@10"].iloc[0]
    t = report.diversity_table()
    pop = t[t.model == "pop"]
    assert len(pop) == 1 and pop["mechanism"].iloc[0] == "point"
    assert len(t) == 1 + 3 * 5


def test_report_shows_curves_and_generated_vectors(report, tmp_path):
    paths = report.save(tmp_path / "r")
    md = paths["markdown"].read_text()
    assert "## Diversity vs accuracy (K = 10)" in md and "MMR" in md
    assert "## Generated vectors" in md and "### Generated vectors by epoch: gen" in md
    html = paths["html"].read_text()
    assert "Diversity vs accuracy" in html and "Generated vectors" in html
    assert html.count("data:image/png;base64,") == 5
    doc = json.loads(paths["metrics"].read_text())
    curves = doc["tradeoff"]["diversity"]
    assert set(curves) == {"ease", "knob", "gen"} and len(curves["ease"]) == 5
    assert {p["model"] for p in doc["tradeoff"]["points"]} == {"pop"}
    gen = doc["generated_vectors"]["gen"]
    assert [e["epoch"] for e in gen] == [1, 2]
    assert gen[1]["frechet"] < gen[0]["frechet"]
    table = report.generation_table()
    assert list(table.index) == ["gen"] and table.loc["gen", "epoch"] == 2


def test_no_curves_and_no_generation_section_when_not_asked(clustered):
    r = evaluate(
        clustered, models=["pop", "ease"], tune=False, diversity_levels=(), show_progress=False
    )
    assert r.diversity == {} and r.generation == {}
    md = r.to_markdown()
    assert "Diversity vs accuracy" not in md and "Generated vectors" not in md
    assert "generated_vectors" not in r.to_dict() and "tradeoff" not in r.to_dict()
    with pytest.raises(ValueError, match="diversity must be in"):
        evaluate(clustered, models=["pop"], tune=False, diversity_levels=(0, 2))
