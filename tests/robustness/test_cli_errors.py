"""Every command answers bad input with one line naming the problem and a non-zero exit
status, never a traceback."""

from __future__ import annotations

import pytest

from recogan.cli import main
from tests.robustness.conftest import DATA_ARGS
from tests.robustness.helpers import edit_manifest


def _fails(capsys, args, *, says, rc=1):
    assert main(args) == rc
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert says in err, err
    return err


def _train(events_csv, tmp_path, *extra):
    return [
        "train", "--interactions", str(events_csv), *DATA_ARGS, "--out", str(tmp_path / "m"),
        *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "model,param,says",
    [
        ("ease", "lam=abc", "--param lam: expected a number, got 'abc'"),
        ("ease", "lam=nan", "expected a finite number"),
        ("ease", "lam=0", "lam must be > 0"),
        ("pop", "window_days=-5", "window_days=-5: must not be negative"),
        ("pop", "window_days=0", "window_days must be > 0"),
        ("itemknn", "k=2.5", "--param k: expected an integer"),
        ("ials", "factors=", "--param factors: expected an integer"),
        ("gan", "epochs=ten", "--param epochs: expected an integer"),
        ("gan", "spectral_norm=maybe", "expected true or false"),
        ("gan", "pop_windows=a,b", "--param pop_windows"),
        ("gan", "merge=max", None),  # a valid one: nothing to say (the run is not started)
        ("pop", "nope=1", "unknown parameter(s) ['nope']"),
        ("pop", "window_days", "--param expects KEY=VALUE"),
    ],
    ids=lambda v: str(v),
)
def test_bad_params_are_one_line_errors(events_csv, tmp_path, capsys, model, param, says):
    if says is None:
        from recogan.cli._train import build_model

        assert build_model(model, [param], 0).config.merge == "max"
        return
    _fails(capsys, _train(events_csv, tmp_path, "--model", model, "--param", param), says=says)
    assert not (tmp_path / "m").exists()


def test_negative_seed(events_csv, tmp_path, capsys):
    _fails(capsys, _train(events_csv, tmp_path, "--model", "ials", "--seed", "-1"), says="--seed")


def test_valid_frac_out_of_range(events_csv, tmp_path, capsys):
    _fails(capsys, _train(events_csv, tmp_path, "--valid-frac", "1.5"), says="--valid-frac")


def test_a_directory_as_data(tmp_path, capsys):
    (tmp_path / "d.csv").mkdir()
    _fails(capsys, ["info", "--data", str(tmp_path / "d.csv")], says="is a directory")


def test_an_unknown_dataset_name(capsys):
    _fails(capsys, ["info", "--data", "online_retial"], says="not a bundled dataset")


def test_a_missing_catalog(events_csv, capsys):
    args = ["info", "--interactions", str(events_csv), *DATA_ARGS, "--catalog", "/nope.csv"]
    _fails(capsys, args, says="no such file: /nope.csv")


def test_recommend_from_a_bundle_naming_another_class(bundle, capsys):
    edit_manifest(bundle, lambda m: m["model"].update({"class": "EASE", "config": {}}))
    args = ["recommend", "--model", str(bundle), "--user", "u1"]
    _fails(capsys, args, says="do not fit model class EASE")


def test_recommend_from_an_edited_bundle(bundle, capsys):
    edit_manifest(bundle, lambda m: m["dataset"].update(name="x"), fix_checksum=False)
    _fails(capsys, ["recommend", "--model", str(bundle), "--user", "u1"], says="checksum")


def test_recommend_from_nothing(tmp_path, capsys):
    args = ["recommend", "--model", str(tmp_path / "none"), "--user", "u1"]
    _fails(capsys, args, says="no model bundle here")


def test_recommend_zero_items(bundle, capsys):
    args = ["recommend", "--model", str(bundle), "--user", "u1", "--n", "0"]
    _fails(capsys, args, says="n must be a positive int")


def test_recommend_unknown_similar_item(bundle, capsys):
    args = ["recommend", "--model", str(bundle), "--similar", "zz"]
    _fails(capsys, args, says="unknown item id 'zz'")


@pytest.mark.parametrize(
    "option,says",
    [
        (["--workers", "0"], "workers must be positive"),
        (["--threads", "0"], "threads must be a positive int"),
        (["--n", "0"], "n must be a positive int"),
        (["--noise-draws", "0"], "noise draws must be positive"),
        (["--batch-size", "-1"], "batch_size must be positive"),
    ],
    ids=["workers", "threads", "n", "noise_draws", "batch_size"],
)
def test_batch_options(bundle, tmp_path, capsys, option, says):
    args = ["batch-score", "--model", str(bundle), "--out", str(tmp_path / "o"), *option]
    _fails(capsys, [*args, "--no-progress"], says=says)
    assert not (tmp_path / "o").exists()


def test_batch_filter_of_unknown_items(bundle, tmp_path, capsys):
    (tmp_path / "f.txt").write_text("zz\nyy\n")
    args = ["batch-score", "--model", str(bundle), "--out", str(tmp_path / "o")]
    _fails(capsys, [*args, "--filter", str(tmp_path / "f.txt")], says="none of the 2 filter")


@pytest.mark.parametrize(
    "option,says",
    [
        (["--budget", "0"], "--budget must be at least 1"),
        (["--models", ","], "names no model"),
        (["--valid-folds", "0"], "--valid-folds must be at least 1"),
    ],
    ids=["budget", "models", "valid-folds"],
)
def test_evaluate_options(events_csv, tmp_path, capsys, option, says):
    args = ["evaluate", "--interactions", str(events_csv), *DATA_ARGS, "--out", str(tmp_path)]
    _fails(capsys, [*args, *option], says=says)


def test_bad_option_values_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--data", "x", "--out", "y", "--k", "abc"])
    assert e.value.code == 2 and "Traceback" not in capsys.readouterr().err


def test_an_unforeseen_failure_is_still_one_line(monkeypatch, capsys, bundle):
    from recogan.cli import _recommend

    def boom(args):
        raise AssertionError("something impossible")

    monkeypatch.setattr(_recommend, "run", boom)
    args = ["recommend", "--model", str(bundle), "--user", "u1"]
    err = _fails(capsys, args, says="internal error: AssertionError: something impossible", rc=2)
    assert "--verbose" in err
