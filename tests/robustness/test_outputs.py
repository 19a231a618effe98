"""Output paths: a command replaces only what it published itself; leftovers are cleaned."""

from __future__ import annotations

import os

import pytest

from recogan._fs import OutputDirError
from recogan.artifacts import files_dir, load_model, read_manifest, save_model
from recogan.batch import batch_score, verify_output
from recogan.cli import main
from tests.robustness.conftest import DATA_ARGS
from tests.robustness.helpers import aux_entries, snapshot, write_legacy

FAST = {"show_progress": False, "workers": 1}


def _train(events_csv, out, *extra):
    args = ["train", "--interactions", str(events_csv), *DATA_ARGS, "--model", "pop"]
    return main([*args, "--out", str(out), *extra])


def _user_folder(path, kind):
    path.mkdir()
    if kind == "csv_and_notes":
        (path / "events.csv").write_text("customer,sku,ts\n1,a,1700000000\n")
        (path / "notes.md").write_text("my notes")
    elif kind == "single_file":
        (path / "data.bin").write_bytes(b"\x00\x01")
    elif kind == "hidden_file":
        (path / ".env").write_text("SECRET=1")
    elif kind == "subfolder":
        (path / "raw").mkdir()
        (path / "raw" / "x.txt").write_text("x")
    return snapshot(path)


# ---------------------------------------------------------------------- train --out
@pytest.mark.parametrize("kind", ["csv_and_notes", "single_file", "hidden_file", "subfolder"])
def test_train_refuses_a_folder_that_is_not_a_bundle(events_csv, tmp_path, capsys, kind):
    out = tmp_path / "out"
    before = _user_folder(out, kind)
    assert _train(events_csv, out) == 1
    err = capsys.readouterr().err
    assert "is not a recogan model bundle; refusing to replace it" in err and "--force" in err
    assert snapshot(out) == before


def test_train_refuses_a_file(events_csv, tmp_path, capsys):
    out = tmp_path / "model.txt"
    out.write_text("keep me")
    assert _train(events_csv, out) == 1
    assert "is a file" in capsys.readouterr().err and out.read_text() == "keep me"


def test_train_refuses_the_folder_of_its_input_even_with_force(events_csv, tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    csv = out / "events.csv"
    csv.write_bytes(events_csv.read_bytes())
    args = ["train", "--interactions", str(csv), *DATA_ARGS, "--model", "pop"]
    assert main([*args, "--out", str(out), "--force"]) == 1
    assert "holds the input data" in capsys.readouterr().err and csv.is_file()


def test_train_force_replaces_a_user_folder(events_csv, tmp_path):
    out = tmp_path / "out"
    _user_folder(out, "csv_and_notes")
    assert _train(events_csv, out, "--force") == 0
    assert load_model(out).name == "pop" and not (out / "notes.md").exists()
    assert aux_entries(tmp_path, "out") == []


def test_train_replaces_its_own_bundle(events_csv, tmp_path):
    out = tmp_path / "out"
    assert _train(events_csv, out) == 0
    first = read_manifest(out)["version"]
    assert _train(events_csv, out, "--param", "window_days=30") == 0
    assert load_model(out).config.window_days == 30
    assert read_manifest(out)["version"] != first


def test_train_into_an_empty_folder(events_csv, tmp_path):
    (tmp_path / "out").mkdir()
    assert _train(events_csv, tmp_path / "out") == 0
    assert load_model(tmp_path / "out").is_fitted


def test_train_refuses_a_batch_result(events_csv, bundle, tmp_path, capsys):
    batch_score(bundle, tmp_path / "recs", n=3, **FAST)
    before = snapshot(tmp_path / "recs")
    assert _train(events_csv, tmp_path / "recs") == 1
    assert "refusing" in capsys.readouterr().err
    assert snapshot(tmp_path / "recs") == before


def test_save_api_refuses_a_user_folder(pop_a, tmp_path):
    before = _user_folder(tmp_path / "out", "csv_and_notes")
    with pytest.raises(OutputDirError, match="not a recogan model bundle"):
        save_model(pop_a, tmp_path / "out")
    assert snapshot(tmp_path / "out") == before


def test_save_api_force_replaces(pop_a, tmp_path):
    _user_folder(tmp_path / "out", "single_file")
    save_model(pop_a, tmp_path / "out", force=True)
    assert load_model(tmp_path / "out").is_fitted


def test_save_over_a_format_1_bundle_converts_it(pop_a, pop_b, tmp_path):
    write_legacy(pop_a, tmp_path / "m")
    assert load_model(tmp_path / "m").config.window_days is None
    save_model(pop_b, tmp_path / "m")
    m = read_manifest(tmp_path / "m")
    assert m["format_version"] == 2 and load_model(tmp_path / "m").config.window_days == 30
    assert aux_entries(tmp_path, "m") == []


# ---------------------------------------------------------------------- batch-score --out
def _batch(bundle, out, *extra):
    args = ["batch-score", "--model", str(bundle), "--out", str(out), "--n", "3"]
    return main([*args, "--workers", "1", "--no-progress", *extra])


def test_batch_refuses_a_model_bundle(bundle, pop_b, tmp_path, capsys):
    other = tmp_path / "other-model"
    save_model(pop_b, other)
    before = snapshot(other)
    assert _batch(bundle, other) == 1
    assert "is not a recogan batch result" in capsys.readouterr().err
    assert snapshot(other) == before and load_model(other).config.window_days == 30


@pytest.mark.parametrize("kind", ["csv_and_notes", "hidden_file"])
def test_batch_refuses_a_user_folder(bundle, tmp_path, capsys, kind):
    before = _user_folder(tmp_path / "recs", kind)
    assert _batch(bundle, tmp_path / "recs") == 1
    assert "refusing to replace it" in capsys.readouterr().err
    assert snapshot(tmp_path / "recs") == before
    assert aux_entries(tmp_path, "recs") == []


def test_batch_refuses_a_file(bundle, tmp_path, capsys):
    (tmp_path / "recs").write_text("x")
    assert _batch(bundle, tmp_path / "recs") == 1
    assert "is a file" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["same", "inside"])
def test_batch_refuses_to_publish_over_its_model(bundle, capsys, where):
    out = bundle if where == "same" else bundle / "recs"
    before = snapshot(bundle)
    assert _batch(bundle, out, "--force") == 1
    assert "overlap" in capsys.readouterr().err
    assert snapshot(bundle) == before


def test_batch_replaces_its_own_result(bundle, tmp_path):
    assert _batch(bundle, tmp_path / "recs") == 0
    assert _batch(bundle, tmp_path / "recs", "--n", "5") == 0
    assert verify_output(tmp_path / "recs")["n"] == 5


def test_batch_force_replaces_a_user_folder(bundle, tmp_path):
    _user_folder(tmp_path / "recs", "csv_and_notes")
    assert _batch(bundle, tmp_path / "recs", "--force") == 0
    verify_output(tmp_path / "recs")
    assert not (tmp_path / "recs" / "notes.md").exists()


# ---------------------------------------------------------------------- evaluate --out
def test_evaluate_refuses_a_model_bundle(bundle, events_csv, capsys):
    before = snapshot(bundle)
    args = ["evaluate", "--interactions", str(events_csv), *DATA_ARGS, "--models", "pop"]
    assert main([*args, "--no-tune", "--no-progress", "--out", str(bundle)]) == 1
    assert "holds a recogan model bundle" in capsys.readouterr().err
    assert snapshot(bundle) == before


def test_evaluate_refuses_foreign_report_files(events_csv, tmp_path, capsys):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "metrics.json").write_text('{"mine": true}')
    args = ["evaluate", "--interactions", str(events_csv), *DATA_ARGS, "--models", "pop"]
    assert main([*args, "--no-tune", "--no-progress", "--out", str(out)]) == 1
    assert "not from a recogan report" in capsys.readouterr().err
    assert (out / "metrics.json").read_text() == '{"mine": true}'


# ---------------------------------------------------------------------- leftovers
def test_save_removes_temporaries_of_dead_writers_only(pop_a, tmp_path):
    dead = tmp_path / ".m.tmp-999999999-deadbeef"  # no such pid
    live = tmp_path / f".m.tmp-{os.getpid()}-cafef00d"  # this process: a live writer
    for d in (dead, live):
        d.mkdir()
        (d / "half").write_text("x")
    mine = tmp_path / ".m.tmp-notes"  # the user's, not our name pattern
    mine.write_text("keep")
    save_model(pop_a, tmp_path / "m")
    assert not dead.exists() and live.exists() and mine.read_text() == "keep"


def test_interrupted_manifest_write_is_cleaned(bundle, pop_b):
    stray = bundle / ".manifest.json.tmp-999999999-0badf00d"
    stray.write_text("{")
    assert load_model(bundle).is_fitted  # a reader ignores it
    save_model(pop_b, bundle)
    assert not stray.exists()


def test_orphan_version_of_a_crashed_save_is_removed(bundle, pop_a, pop_b):
    orphan = bundle / "v-20000101T000000000000-0000dead"
    orphan.mkdir()
    (orphan / "users.parquet").write_bytes(b"half")
    assert load_model(bundle).config.window_days is None
    save_model(pop_b, bundle)
    save_model(pop_a, bundle)
    assert not orphan.exists()
    assert len([p for p in bundle.iterdir() if p.name.startswith("v-")]) == 2


def test_load_restores_a_bundle_moved_aside_by_a_crashed_swap(bundle, tmp_path):
    # killed between "move the old bundle aside" and "rename the new one into place"
    os.rename(bundle, tmp_path / ".model.old-999999999-0000beef")
    assert load_model(bundle).config.window_days is None
    assert aux_entries(tmp_path, "model") == []


def test_load_completes_a_swap_whose_new_bundle_was_ready(bundle, pop_b, tmp_path):
    new = tmp_path / "staged"
    save_model(pop_b, new)
    os.rename(bundle, tmp_path / ".model.old-999999999-0000beef")
    os.rename(new, tmp_path / ".model.tmp-999999999-0000cafe")
    assert load_model(bundle).config.window_days == 30
    assert aux_entries(tmp_path, "model") == []


def test_a_users_files_inside_a_bundle_are_left_alone(bundle, pop_b):
    (bundle / "README.txt").write_text("trained on March data")
    save_model(pop_b, bundle)
    assert (bundle / "README.txt").read_text() == "trained on March data"
    assert files_dir(bundle).name.startswith("v-")
