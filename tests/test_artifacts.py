import json

import numpy as np
import pytest

from recogan.artifacts import BundleError, files_dir, load_model, read_manifest, save_model
from recogan.baselines import Popularity


@pytest.fixture
def bundle(tmp_path, clustered):
    path = tmp_path / "m"
    save_model(Popularity().fit(clustered), path)
    return path


def test_manifest_contents(bundle, clustered):
    m = read_manifest(bundle)
    assert m["format_version"] == 2 and m["model"]["class"] == "Popularity"
    assert (bundle / m["version"]).is_dir() and len(m["manifest_sha256"]) == 64
    assert m["dataset"]["fingerprint"] == clustered.fingerprint()
    assert "arrays/popularity.npy" in m["files"]
    assert all(len(f["sha256"]) == 64 for f in m["files"].values())


def test_tampered_file_refused(bundle):
    f = files_dir(bundle) / "arrays" / "model.scores.npy"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.scores.npy fails its sha256"):
        load_model(bundle)


def test_truncated_and_missing_files_refused(bundle):
    f = files_dir(bundle) / "items.parquet"
    f.write_bytes(f.read_bytes()[:10])
    with pytest.raises(BundleError, match="items.parquet is 10 bytes"):
        load_model(bundle)
    f.unlink()
    with pytest.raises(BundleError, match="items.parquet listed in the manifest is missing"):
        load_model(bundle)


def test_extra_file_and_bad_manifest_refused(bundle, tmp_path):
    (files_dir(bundle) / "arrays" / "evil.npy").write_bytes(b"x")
    with pytest.raises(BundleError, match="not listed"):
        load_model(bundle)
    (files_dir(bundle) / "arrays" / "evil.npy").unlink()
    m = json.loads((bundle / "manifest.json").read_text())
    m["format_version"] = 99
    (bundle / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="format version 99 is not supported"):
        load_model(bundle)
    with pytest.raises(BundleError, match="not a directory"):
        load_model(tmp_path / "nothing")


def test_overwrite_is_atomic_and_leaves_no_temp(bundle, clustered):
    first = read_manifest(bundle)["version"]
    save_model(Popularity(window_days=30).fit(clustered), bundle)
    assert load_model(bundle).config.window_days == 30
    assert [p.name for p in bundle.parent.iterdir()] == ["m"]
    # the version it replaced stays for readers still loading it; older ones are removed
    second = read_manifest(bundle)["version"]
    assert sorted(p.name for p in bundle.iterdir()) == sorted(["manifest.json", first, second])
    save_model(Popularity(window_days=7).fit(clustered), bundle)
    third = read_manifest(bundle)["version"]
    assert sorted(p.name for p in bundle.iterdir()) == sorted(["manifest.json", second, third])


def test_failed_write_keeps_previous_bundle(bundle, clustered, monkeypatch):
    model = Popularity().fit(clustered)
    monkeypatch.setattr(model, "state_arrays", lambda: {"bad": np.array([object()])})
    with pytest.raises(BundleError, match="dtype object"):
        save_model(model, bundle)
    assert load_model(bundle).config.window_days is None
    assert [p.name for p in bundle.parent.iterdir()] == ["m"]
