"""Bundles that are damaged, edited or crafted are refused with a message naming the problem;
failures while saving leave the published bundle as it was."""

from __future__ import annotations

import errno
import io
import logging
import os
import pickle

import numpy as np
import pytest

from recogan import _fs
from recogan.artifacts import BundleError, files_dir, load_model, read_manifest, save_model
from recogan.batch import batch_score
from recogan.recommender import Recommender
from tests.robustness.helpers import aux_entries, edit_manifest, relist, snapshot, write_legacy


# ---------------------------------------------------------------------- the manifest
def test_edited_settings_fail_the_manifest_checksum(bundle):
    def change(m):
        m["model"]["config"]["window_days"] = 7.0

    edit_manifest(bundle, change, fix_checksum=False)
    with pytest.raises(BundleError, match="manifest fails its checksum"):
        load_model(bundle)


def test_edited_dataset_name_fails_the_checksum(bundle):
    edit_manifest(bundle, lambda m: m["dataset"].update(name="other"), fix_checksum=False)
    with pytest.raises(BundleError, match="fails its checksum"):
        read_manifest(bundle, verify=False)


def test_removed_checksum_is_refused(bundle):
    edit_manifest(bundle, lambda m: m.pop("manifest_sha256"), fix_checksum=False)
    with pytest.raises(BundleError, match="fails its checksum"):
        load_model(bundle)


def test_manifest_that_is_not_json(bundle):
    (bundle / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="manifest is not valid JSON"):
        load_model(bundle)


def test_manifest_of_another_format(bundle):
    (bundle / "manifest.json").write_text("[1, 2]")
    with pytest.raises(BundleError, match="not a recogan bundle"):
        load_model(bundle)


def test_manifest_naming_a_missing_version(bundle):
    edit_manifest(bundle, lambda m: m.update(version="v-20200101T000000000000-00000000"))
    with pytest.raises(BundleError, match="version v-20200101T000000000000-00000000 .* missing"):
        load_model(bundle)


@pytest.mark.parametrize("version", ["../elsewhere", "/etc", "v-1"])
def test_manifest_naming_an_unsafe_version(bundle, version):
    edit_manifest(bundle, lambda m: m.update(version=version))
    with pytest.raises(BundleError, match="no valid version directory"):
        load_model(bundle)


def test_manifest_listing_an_unsafe_file(bundle):
    edit_manifest(
        bundle, lambda m: m["files"].update({"../../x.npy": {"sha256": "0" * 64, "bytes": 1}})
    )
    with pytest.raises(BundleError, match="unsafe file path"):
        load_model(bundle)


def test_manifest_naming_an_unknown_class(bundle):
    edit_manifest(bundle, lambda m: m["model"].update({"class": "Nonsense"}))
    with pytest.raises(BundleError, match="names model class 'Nonsense'.*does not know"):
        load_model(bundle)


def test_manifest_naming_another_model_class(bundle):
    edit_manifest(bundle, lambda m: m["model"].update({"class": "EASE", "config": {}}))
    with pytest.raises(BundleError, match="do not fit model class EASE .*missing 'weights'"):
        load_model(bundle)


@pytest.mark.parametrize(
    "config,match",
    [({"nope": 1}, "unknown parameter"), ({"window_days": "x"}, "must be a number")],
)
def test_manifest_with_settings_that_do_not_fit(bundle, config, match):
    edit_manifest(bundle, lambda m: m["model"].update(config=config))
    with pytest.raises(BundleError, match=f"settings do not fit Popularity.*{match}"):
        load_model(bundle)


def test_manifest_sizes_that_disagree_with_the_ids(bundle):
    edit_manifest(bundle, lambda m: m["dataset"].update(n_users=3))
    with pytest.raises(BundleError, match="disagree with the manifest"):
        load_model(bundle)


# ---------------------------------------------------------------------- files
def test_pickle_inside_an_npy_is_refused_naming_the_file(bundle):
    f = files_dir(bundle) / "arrays" / "model.scores.npy"
    np.save(f, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    relist(bundle, "arrays/model.scores.npy")
    with pytest.raises(BundleError, match=r"arrays/model.scores.npy cannot be read.*pickled"):
        load_model(bundle)


def test_pickle_in_weights_is_refused_naming_the_file(bundle):
    pytest.importorskip("torch")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    buf = io.BytesIO()
    pickle.dump({"G": Evil()}, buf, protocol=2)
    (files_dir(bundle) / "weights.pt").write_bytes(buf.getvalue())
    relist(bundle, "weights.pt")
    with pytest.raises(BundleError, match=r"file weights.pt cannot be read"):
        load_model(bundle)


def test_ids_file_without_its_column(bundle):
    import pandas as pd

    f = files_dir(bundle) / "users.parquet"
    pd.DataFrame({"other": [1]}).to_parquet(f)
    relist(bundle, "users.parquet")
    with pytest.raises(BundleError, match="users.parquet cannot be read.*no 'id' column"):
        load_model(bundle)


def test_garbage_parquet_names_the_file(bundle):
    (files_dir(bundle) / "items.parquet").write_bytes(b"PAR1 not really")
    relist(bundle, "items.parquet")
    with pytest.raises(BundleError, match="items.parquet cannot be read"):
        load_model(bundle)


def test_truncated_array(bundle):
    f = files_dir(bundle) / "arrays" / "popularity.npy"
    f.write_bytes(f.read_bytes()[:-8])
    with pytest.raises(BundleError, match="popularity.npy is .* bytes, the manifest says"):
        load_model(bundle)


def test_altered_array_same_size(bundle):
    f = files_dir(bundle) / "arrays" / "popularity.npy"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="popularity.npy fails its sha256"):
        load_model(bundle)


def test_deleted_file(bundle):
    (files_dir(bundle) / "arrays" / "seen_indptr.npy").unlink()
    with pytest.raises(BundleError, match="seen_indptr.npy listed in the manifest is missing"):
        load_model(bundle)


def test_extra_file_in_the_version(bundle):
    (files_dir(bundle) / "arrays" / "model.extra.npy").write_bytes(b"x")
    with pytest.raises(BundleError, match="not listed in the manifest"):
        load_model(bundle)


def test_empty_directory_is_not_a_bundle(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="missing manifest.json"):
        load_model(tmp_path / "empty")


def test_a_file_is_not_a_bundle(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(BundleError, match="not a directory"):
        load_model(tmp_path / "f")


def test_nothing_there(tmp_path):
    with pytest.raises(BundleError, match="no model bundle here"):
        load_model(tmp_path / "absent")


def test_batch_refuses_a_tampered_bundle_and_publishes_nothing(bundle, tmp_path):
    edit_manifest(
        bundle, lambda m: m["model"]["config"].update(window_days=3.0), fix_checksum=False
    )
    with pytest.raises(BundleError, match="checksum"):
        batch_score(bundle, tmp_path / "recs", show_progress=False, workers=1)
    assert not (tmp_path / "recs").exists() and aux_entries(tmp_path, "recs") == []


def test_service_refuses_a_tampered_bundle(bundle):
    (files_dir(bundle) / "arrays" / "popularity.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(BundleError, match="popularity.npy"):
        Recommender.load(bundle, device="cpu")


# ---------------------------------------------------------------------- older bundles
def test_format_1_bundle_loads_with_a_resave_warning(pop_a, tmp_path, caplog):
    write_legacy(pop_a, tmp_path / "old")
    with caplog.at_level(logging.WARNING, logger="recogan.artifacts"):
        model = load_model(tmp_path / "old")
    assert model.config.window_days is None
    assert "re-save it" in caplog.text


def test_format_1_bundle_still_verifies_its_files(pop_a, tmp_path):
    write_legacy(pop_a, tmp_path / "old")
    f = tmp_path / "old" / "arrays" / "popularity.npy"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="popularity.npy fails its sha256"):
        load_model(tmp_path / "old")


def test_unsupported_format_version(bundle):
    edit_manifest(bundle, lambda m: m.update(format_version=99))
    with pytest.raises(BundleError, match="format version 99 is not supported"):
        load_model(bundle)


# ---------------------------------------------------------------------- failures while saving
def _keeps(bundle, tmp_path, expected_window=None):
    assert load_model(bundle).config.window_days == expected_window
    assert aux_entries(tmp_path, bundle.name) == []


def test_disk_full_while_writing_keeps_the_bundle(bundle, pop_b, tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    before = snapshot(bundle)
    with pytest.raises(OSError, match="No space left"):
        save_model(pop_b, bundle)
    monkeypatch.undo()
    assert snapshot(bundle) == before
    _keeps(bundle, tmp_path)


def test_failing_version_rename_keeps_the_bundle(bundle, pop_b, tmp_path, monkeypatch):
    real = os.rename

    def rename(src, dst):
        if str(dst).startswith(str(bundle) + os.sep):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real(src, dst)

    monkeypatch.setattr(_fs.os, "rename", rename)
    with pytest.raises(OSError, match="cross-device"):
        save_model(pop_b, bundle)
    monkeypatch.undo()
    _keeps(bundle, tmp_path)


def test_failing_manifest_switch_keeps_the_bundle(bundle, pop_b, tmp_path, monkeypatch):
    real = os.replace

    def replace(src, dst):
        if str(dst).endswith("manifest.json"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(src, dst)

    monkeypatch.setattr(_fs.os, "replace", replace)
    with pytest.raises(PermissionError):
        save_model(pop_b, bundle)
    monkeypatch.undo()
    _keeps(bundle, tmp_path)
    save_model(pop_b, bundle)  # the orphaned version of the failed save goes with the next one
    assert len([p for p in bundle.iterdir() if p.name.startswith("v-")]) == 2


def test_failing_second_rename_of_a_swap_moves_the_old_bundle_back(
    pop_a, pop_b, tmp_path, monkeypatch
):
    write_legacy(pop_a, tmp_path / "m")  # a format-1 bundle is replaced by a swap
    real = os.rename

    def rename(src, dst):
        if ".tmp-" in str(src) and str(dst) == str(tmp_path / "m"):
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(_fs.os, "rename", rename)
    with pytest.raises(OSError, match="Input/output"):
        save_model(pop_b, tmp_path / "m")
    monkeypatch.undo()
    _keeps(tmp_path / "m", tmp_path)


def test_model_error_while_writing_keeps_the_bundle(bundle, pop_b, tmp_path, monkeypatch):
    monkeypatch.setattr(type(pop_b), "state_arrays", lambda self: {"x": np.array([object()])})
    with pytest.raises(BundleError, match="dtype object"):
        save_model(pop_b, bundle)
    monkeypatch.undo()
    _keeps(bundle, tmp_path)
