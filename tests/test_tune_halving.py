"""The successive-halving tuner: its space, stages and promotion rule, ranges that follow the
choice, determinism, and an evaluation killed in the middle of tuning that goes on."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recogan.baselines import EASE, IALS, ItemKNN, Popularity
from recogan.evaluate import Protocol, evaluate, tune
from recogan.evaluate._halving import (
    Dim,
    OrderedHalvingPruner,
    parse_space,
    plan_stages,
    short_epochs,
    widen_ranges,
)
from recogan.gan.model import GANRecommender
from tests.tune_models import EPOCHS_DIR, EXIT_AFTER, register

register()

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def split3(clustered):
    split = Protocol().split(clustered)
    assert len(split.folds) == 3
    return split


# ---------------------------------------------------------------------- the space
def test_search_spaces_become_ranges_and_choices():
    (lam,) = parse_space(EASE)
    assert (lam.kind, lam.log) == ("float", True) and lam.low <= 200 <= lam.high
    k, shrink = parse_space(ItemKNN)
    assert (k.kind, k.log, shrink.kind, shrink.log) == ("int", True, "float", False)
    assert k.low <= ItemKNN.Config().k <= k.high  # the default is inside
    (window,) = parse_space(Popularity)  # None among numbers: a set of choices
    assert window.kind == "cat" and None in window.choices
    factors = next(d for d in parse_space(IALS) if d.name == "factors")
    assert factors.kind == "int" and factors.log
    gan = {d.name: d for d in parse_space(GANRecommender)}
    assert gan["pop_windows"].kind == "cat" and gan["basket_context"].kind == "cat"
    assert all(isinstance(x, str) for x in gan["pop_windows"].labels)  # tuples, stored as text
    assert gan["lr"].numeric and gan["history_dropout"].numeric and not gan["history_dropout"].log


def test_stages_latest_window_first_and_short_epochs():
    assert [s.folds for s in plan_stages(EASE, 3)] == [(0,), (1, 2)]
    assert [s.folds for s in plan_stages(EASE, 1)] == [(0,)]
    gan = plan_stages(GANRecommender, 3)
    assert [(s.folds, s.short) for s in gan] == [((0,), True), ((0,), False), ((1, 2), False)]
    assert short_epochs(20) == 7 and short_epochs(1) == 1


def test_short_stage_trains_a_third_of_the_epochs(split3, tmp_path, monkeypatch):
    monkeypatch.setenv(EPOCHS_DIR, str(tmp_path))
    res = tune("epochs", split3, budget=5, seed=0, jobs=1)
    given = sorted(int(p.read_text()) for p in tmp_path.iterdir())
    assert given.count(3) == 5  # every trial starts with 9 / 3 epochs on the latest window
    assert given.count(9) == len(given) - 5 > 0  # the promoted ones train with all 9
    assert res.refit_params["epochs"] == 8  # what early stopping chose, on full training


# ---------------------------------------------------------------------- the rule
def test_pruner_keeps_the_best_third_among_lower_numbered_trials():
    import optuna

    study = optuna.create_study(direction="maximize")
    pruner = OrderedHalvingPruner(3)
    decisions = []
    for v in [0.5, 0.4, 0.6, 0.55, 0.1, 0.7]:
        t = study.ask()
        t.report(v, 1)
        decisions.append(pruner.prune(study, study.get_trials(deepcopy=False)[t.number]))
    # 1st: alone; 2nd: below the best of 2; 3rd: best of 3; 4th: 2nd of 4 (keep 1);
    # 5th: worst; 6th: best of 6 (keep 2)
    assert decisions == [False, True, False, True, True, False]
    with pytest.raises(ValueError):
        OrderedHalvingPruner(1)


def test_halving_fits_less_and_chooses_on_every_window(split3):
    res = tune("itemknn", split3, budget=8, seed=0, jobs=1)
    full = tune("itemknn", split3, budget=8, seed=0, jobs=1, method="exhaustive")
    assert res.method == "halving" and len(res.trials) == 8
    states = res.trials["state"]
    assert (states == "pruned").any() and (states == "complete").any()
    assert res.fold_fits < full.fold_fits == 8 * 3
    best = res.trials.loc[res.trials["relative"].idxmax()]
    assert best["state"] == "complete" and best["params"] == res.best_params
    assert len(res.fold_scores) == 3 and np.isfinite(res.fold_scores).all()
    pruned = res.trials[states == "pruned"]
    assert pruned["NDCG@10"].isna().all()  # judged on the latest window only
    assert all(np.isfinite(f[0]) and np.isnan(f[1:]).all() for f in pruned["fold_scores"])


def test_same_seed_same_search_and_jobs_do_not_matter(split3):
    one = tune("ease", split3, budget=6, seed=4, jobs=1)
    again = tune("ease", split3, budget=6, seed=4, jobs=1)
    two = tune("ease", split3, budget=6, seed=4, jobs=2)
    other = tune("ease", split3, budget=6, seed=5, jobs=1)
    for r in (again, two):
        assert r.best_params == one.best_params and r.fold_scores == one.fold_scores
        assert list(r.trials["params"]) == list(one.trials["params"])
        assert list(r.trials["state"]) == list(one.trials["state"])
    assert list(other.trials["params"]) != list(one.trials["params"])
    assert one.trials["params"].iloc[0] == {"lam": EASE.Config().lam}  # defaults first


# ---------------------------------------------------------------------- ranges that follow
def test_widen_ranges_on_each_kind_of_edge():
    dims = [
        Dim("x", "float", 1.0, 2.0, log=True),
        Dim("k", "int", 3, 200, log=True),
        Dim("d", "float", 0.0, 0.3),
        Dim("s", "float", 0.5, 1.0),
        Dim("m", "float", 10.0, 20.0),
    ]
    ranges = {d.name: (d.low, d.high) for d in dims}
    best = {"x": 2.0, "k": 3, "d": 0.0, "s": 1.0, "m": 15.0}
    new, probes = widen_ranges(_Any, dims, ranges, best)
    assert new["x"] == (1.0, 4.0)  # by its own factor
    assert new["k"] == (1.0, 200)  # an int log range stops at 1
    assert new["d"] == (0.0, 0.3)  # 0 is the end of a non-negative range
    assert new["s"] == (0.5, 1.0)  # a share stays a share
    assert new["m"] == (10.0, 20.0)  # not on an edge
    assert {json.dumps(p, sort_keys=True) for p in probes} == {
        json.dumps({**best, "x": 2.0 * 2**0.5}, sort_keys=True),
        json.dumps({**best, "k": 2}, sort_keys=True),
    }
    new, _ = widen_ranges(_Any, dims, ranges, {**best, "d": 0.3, "m": 10.0})
    assert new["d"] == pytest.approx((0.0, 0.6)) and new["m"] == (0.0, 20.0)
    # a bound the model refuses is pulled back towards the old one: 0 and 0.25 are refused
    new, probes = widen_ranges(_Picky, [Dim("x", "float", 0.5, 1.0)], {"x": (0.5, 1.0)}, {"x": 0.5})
    assert new["x"] == (0.375, 1.0) and probes == [{"x": 0.4375}]


class _Any:
    name = "any"

    def __init__(self, **kw) -> None:
        pass


class _Picky(_Any):
    def __init__(self, x: float = 0.5) -> None:
        if x < 0.3:
            raise ValueError("x must be >= 0.3")


def test_search_follows_an_optimum_outside_the_range(split3):
    """A toy model whose validation score peaks at x = 10, searched over [1, 4]."""
    res = tune("bowl", split3, budget=16, seed=0, jobs=1)
    assert res.ranges["x"][1] > 10  # the range grew towards the optimum, round by round
    xs = [p["x"] for p in res.trials["params"]]
    assert all(1.0 <= x <= 4.0 for x in xs[:4])  # the first round within the given range
    assert xs[4] == 8.0  # the probe: the middle of the new part [4, 16]
    assert 6 < res.best_params["x"] < 16  # chosen outside the given range, near the optimum
    one_round = tune("bowl", split3, budget=4, seed=0, jobs=1)  # no room to widen
    assert one_round.best_params["x"] <= 4.0 and one_round.best_score < res.best_score


# ---------------------------------------------------------------------- ETA and timing
def test_evaluate_reports_eta_and_wall_time(clustered, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="recogan.evaluate._run"):
        rep = evaluate(clustered, models=["pop", "ease"], budget=4, n_boot=20, jobs=1,
                       show_progress=False, diversity_levels=())  # fmt: skip
    assert any("ease ETA" in r.getMessage() and "run ETA" in r.getMessage() for r in caplog.records)
    for name in ("pop", "ease"):
        t = rep.timing[name]
        assert t["wall_seconds"] >= t["tune_seconds"] > 0 and t["tuner"] == "halving"
        assert t["trials"] == 4 and t["complete"] + t["pruned"] <= 4
    doc = rep.to_dict()
    assert set(doc["timing"]) == {"pop", "ease"}
    md = rep.to_markdown()
    assert "## Wall time per model" in md and "halving" in md


# ---------------------------------------------------------------------- resuming
SCRIPT = """
import sys
from tests.tune_models import register
register()
from recogan.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _run(tmp_path, csv, out, env_extra):
    script = tmp_path / "run_eval.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env_extra}
    args = [
        "evaluate", "--interactions", str(csv), "--user-col", "customer", "--item-col",
        "product", "--time-col", "time", "--models", "pop,counted", "--budget", "6",
        "--jobs", "1", "--no-progress", "--out", str(out),
    ]  # fmt: skip
    return subprocess.run(
        [sys.executable, str(script), *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def _metrics(out: Path) -> dict:
    doc = json.loads((out / "metrics.json").read_text())
    doc.pop("timing")
    for m in doc["models"].values():
        m.pop("fit_seconds")
    return doc


def test_killed_evaluation_goes_on_without_repeating_fits(clustered, tmp_path):
    frame = clustered.interactions.assign(
        customer=clustered.users.to_ids(clustered.user_idx),
        product=clustered.items.to_ids(clustered.item_idx),
    )[["customer", "product", "time"]]
    csv = tmp_path / "i.csv"
    frame.to_csv(csv, index=False)
    whole, cut = tmp_path / "whole.txt", tmp_path / "cut.txt"
    a = _run(tmp_path, csv, tmp_path / "A", {EXIT_AFTER: f"1000:{whole}"})
    assert a.returncode == 0, a.stderr
    fits = whole.read_text().splitlines()
    assert len(fits) > 8  # trials on the latest window, the promoted ones on the rest, refit
    # killed after 7 fits of the second model: in the middle of its tuning
    b = _run(tmp_path, csv, tmp_path / "B", {EXIT_AFTER: f"7:{cut}"})
    assert b.returncode == 17, b.stderr
    assert len(cut.read_text().splitlines()) == 7
    assert (tmp_path / "B" / "tuning" / "models" / "pop" / "result.json").exists()
    assert not (tmp_path / "B" / "metrics.json").exists()
    c = _run(tmp_path, csv, tmp_path / "B", {EXIT_AFTER: f"1000:{cut}"})
    assert c.returncode == 0, c.stderr
    # every fit done once: the same fits as the uninterrupted run, none twice
    assert sorted(cut.read_text().splitlines()) == sorted(fits)
    assert _metrics(tmp_path / "B") == _metrics(tmp_path / "A")
    timing = json.loads((tmp_path / "B" / "metrics.json").read_text())["timing"]
    assert timing["pop"]["from_disk"] and not timing["counted"]["from_disk"]
    assert "wall time per model" in c.stdout
    # once more: everything is read back, nothing is fitted
    d = _run(tmp_path, csv, tmp_path / "B", {EXIT_AFTER: f"1000:{cut}"})
    assert d.returncode == 0 and sorted(cut.read_text().splitlines()) == sorted(fits)
    assert _metrics(tmp_path / "B") == _metrics(tmp_path / "A")


def test_foreign_tuning_folder_is_refused(clustered, tmp_path, capsys):
    from recogan.cli import main

    out = tmp_path / "o"
    (out / "tuning").mkdir(parents=True)
    (out / "tuning" / "notes.txt").write_text("mine")
    frame = clustered.interactions.assign(
        customer=clustered.users.to_ids(clustered.user_idx),
        product=clustered.items.to_ids(clustered.item_idx),
    )[["customer", "product", "time"]]
    frame.to_csv(tmp_path / "i.csv", index=False)
    args = ["evaluate", "--interactions", str(tmp_path / "i.csv"), "--user-col", "customer",
            "--item-col", "product", "--time-col", "time", "--models", "pop", "--no-tune",
            "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(args) == 1
    assert "not an evaluation's tuning state" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "tuning").iterdir()) == ["notes.txt"]


def test_stored_study_is_reused_and_named_by_its_arguments(split3, tmp_path):
    url = f"sqlite:///{tmp_path / 's.sqlite3'}"
    first = tune("ease", split3, budget=5, seed=1, jobs=1, storage=url)
    again = tune("ease", split3, budget=5, seed=1, jobs=1, storage=url)
    assert first.fold_fits > 0 and again.fold_fits == 0  # nothing fitted twice
    assert again.best_params == first.best_params and again.fold_scores == first.fold_scores
    pd.testing.assert_frame_equal(
        again.trials.drop(columns="fit_seconds"), first.trials.drop(columns="fit_seconds")
    )
    memory = tune("ease", split3, budget=5, seed=1, jobs=1)  # the same search, not stored
    assert memory.best_params == first.best_params
    other = tune("ease", split3, budget=4, seed=1, jobs=1, storage=url)  # another study
    assert other.fold_fits > 0 and len(other.trials) == 4
    import optuna

    names = [s.study_name for s in optuna.get_all_study_summaries(url)]
    assert len(names) == 2 and all(n.startswith("ease-seed1-budget") for n in names)


def test_cli_reads_finished_models_back_unless_told_not_to(clustered, tmp_path, capsys):
    from recogan.cli import main

    frame = clustered.interactions.assign(
        customer=clustered.users.to_ids(clustered.user_idx),
        product=clustered.items.to_ids(clustered.item_idx),
    )[["customer", "product", "time"]]
    frame.to_csv(tmp_path / "i.csv", index=False)
    out = tmp_path / "o"
    args = ["evaluate", "--interactions", str(tmp_path / "i.csv"), "--user-col", "customer",
            "--item-col", "product", "--time-col", "time", "--models", "pop", "--budget", "2",
            "--jobs", "1", "--no-progress", "--out", str(out)]  # fmt: skip

    def from_disk() -> bool:
        return json.loads((out / "metrics.json").read_text())["timing"]["pop"]["from_disk"]

    assert main(args) == 0 and not from_disk()
    assert (out / "tuning" / "recogan-state.json").exists()
    assert (out / "tuning" / "studies.sqlite3").exists()
    assert main(args) == 0 and from_disk()
    assert "(earlier run)" in capsys.readouterr().out  # the printed wall time says so
    assert main([*args, "--no-resume"]) == 0 and not from_disk()
