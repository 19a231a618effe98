import errno
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from recogan.artifacts import BundleError, files_dir, load_model, manifest_digest, save_model
from recogan.baselines import Popularity
from recogan.batch import (
    BatchError,
    batch_score,
    read_recommendations,
    read_success,
    verify_output,
)
from recogan.cli import main
from tests.batch_models import Cooc, register

register()

FAST = {"show_progress": False, "workers": 1}


@pytest.fixture(scope="module")
def cooc_bundle(tmp_path_factory, clustered):
    path = tmp_path_factory.mktemp("bundles") / "cooc"
    save_model(Cooc().fit(clustered), path)
    return path


@pytest.fixture(scope="module")
def pop_bundle(tmp_path_factory, clustered):
    path = tmp_path_factory.mktemp("bundles") / "pop"
    save_model(Popularity().fit(clustered), path)
    return path


def expected_frame(model, users, n, exclude_seen=True, candidates=None):
    items, scores = model.recommend(users, n=n, exclude_seen=exclude_seen, candidates=candidates)
    valid = items >= 0
    rows = np.repeat(np.asarray(users), valid.sum(1))
    return pd.DataFrame(
        {
            "user_id": np.repeat(model.users_.to_ids(users), valid.sum(1)),
            "rank": np.cumsum(valid, 1)[valid].astype(np.int32),
            "item_id": model.items_.to_ids(items[valid]),
            "score": scores[valid].astype(np.float32),
            "repeat": np.asarray(model.seen_[rows, items[valid]]).ravel() > 0,
        }
    )


def same(a, b):
    pd.testing.assert_frame_equal(
        a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False
    )


def test_scores_every_user_like_recommend(cooc_bundle, tmp_path):
    out = tmp_path / "recs"
    res = batch_score(cooc_bundle, out, n=7, partition_size=30, **FAST)
    model = load_model(cooc_bundle)
    got = read_recommendations(out)
    same(got, expected_frame(model, np.arange(model.n_users_), 7))
    assert res.users == 200 and res.rows == 1400 and res.partitions == 7
    success = verify_output(out)
    assert success["users"] == 200 and success["rows"] == 1400
    assert [p["file"] for p in success["partitions"]] == [f"part-{i:05d}.parquet" for i in range(7)]
    assert not got.duplicated(["user_id", "rank"]).any()
    meta = pq.read_schema(out / "part-00003.parquet").metadata
    assert meta[b"recogan.model_version"].decode() == res.model_version
    assert meta[b"recogan.generated_at"].decode() == success["generated_at"]
    # nothing but the result is left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recs"]
    assert {p.name for p in out.iterdir()} == {"_SUCCESS"} | {
        f"part-{i:05d}.parquet" for i in range(7)
    }


def test_same_rows_for_any_worker_count_and_partition_size(cooc_bundle, tmp_path):
    one = batch_score(cooc_bundle, tmp_path / "a", n=5, partition_size=30, **FAST)
    two = batch_score(
        cooc_bundle, tmp_path / "b", n=5, partition_size=30, workers=2, show_progress=False
    )
    assert two.workers == 2 and one.rows_sha256 == two.rows_sha256
    same(read_recommendations(tmp_path / "a"), read_recommendations(tmp_path / "b"))
    for i in range(7):  # rows (not only the digest) are byte-identical
        ta = pq.read_table(tmp_path / "a" / f"part-{i:05d}.parquet")
        tb = pq.read_table(tmp_path / "b" / f"part-{i:05d}.parquet")
        assert ta.equals(tb)
    batch_score(cooc_bundle, tmp_path / "c", n=5, partition_size=7, **FAST)
    same(read_recommendations(tmp_path / "a"), read_recommendations(tmp_path / "c"))


def test_users_file_forms_and_errors(cooc_bundle, tmp_path):
    model = load_model(cooc_bundle)
    (tmp_path / "u.txt").write_text("u17\nu3\n\nu17\n# comment\nu150\n")
    batch_score(cooc_bundle, tmp_path / "o1", users=tmp_path / "u.txt", n=4, **FAST)
    got = read_recommendations(tmp_path / "o1")
    same(got, expected_frame(model, model.users_.lookup(["u3", "u17", "u150"]), 4))
    pd.DataFrame({"x": [1], "user_id": ["u3"]}).to_csv(tmp_path / "u.csv", index=False)
    res = batch_score(cooc_bundle, tmp_path / "o2", users=tmp_path / "u.csv", n=4, **FAST)
    assert res.users == 1
    (tmp_path / "bad.txt").write_text("u3\nnobody\n")
    with pytest.raises(ValueError, match=r"bad.txt: 1 user id\(s\) not in the model.*'nobody'"):
        batch_score(cooc_bundle, tmp_path / "o3", users=tmp_path / "bad.txt", **FAST)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty.txt: no ids in the file"):
        batch_score(cooc_bundle, tmp_path / "o3", users=tmp_path / "empty.txt", **FAST)
    pd.DataFrame({"a": [1], "b": [2]}).to_csv(tmp_path / "cols.csv", index=False)
    with pytest.raises(ValueError, match="no column 'user_id'"):
        batch_score(cooc_bundle, tmp_path / "o3", users=tmp_path / "cols.csv", **FAST)
    assert not (tmp_path / "o3").exists()


def test_filter_and_include_seen(cooc_bundle, tmp_path):
    model = load_model(cooc_bundle)
    allowed = ["i1", "i5", "i9", "i13", "i42", "unknown-item"]
    (tmp_path / "f.txt").write_text("\n".join(allowed))
    batch_score(
        cooc_bundle, tmp_path / "o", item_filter=tmp_path / "f.txt", n=3, exclude_seen=False, **FAST
    )
    got = read_recommendations(tmp_path / "o")
    cand = np.sort(model.items_.lookup(allowed[:-1]))
    same(got, expected_frame(model, np.arange(200), 3, exclude_seen=False, candidates=cand))
    assert set(got["item_id"]) <= set(allowed)
    (tmp_path / "none.txt").write_text("nothing\n")
    with pytest.raises(ValueError, match="none of the 1 filter item"):
        batch_score(cooc_bundle, tmp_path / "o2", item_filter=tmp_path / "none.txt", **FAST)


def test_noise_draws_reach_the_model(cooc_bundle, pop_bundle, tmp_path, caplog):
    a = batch_score(cooc_bundle, tmp_path / "a", n=5, noise_draws=1, **FAST)
    b = batch_score(cooc_bundle, tmp_path / "b", n=5, noise_draws=4, **FAST)
    assert a.rows_sha256 != b.rows_sha256
    assert read_success(tmp_path / "b")["config_override"] == {"n_draws": 4}
    model = load_model(cooc_bundle)
    model.config.n_draws = 4
    same(read_recommendations(tmp_path / "b"), expected_frame(model, np.arange(200), 5))
    # a model without noise ignores the option (with a warning)
    p1 = batch_score(pop_bundle, tmp_path / "p1", n=5, noise_draws=3, **FAST)
    p2 = batch_score(pop_bundle, tmp_path / "p2", n=5, **FAST)
    assert p1.rows_sha256 == p2.rows_sha256 and "noise_draws=3 is ignored" in caplog.text


def test_bundle_that_fails_verification(cooc_bundle, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(cooc_bundle, bad)
    f = files_dir(bad) / "arrays" / "model.C.npy"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.C.npy fails its sha256"):
        batch_score(bad, tmp_path / "o", **FAST)
    assert not (tmp_path / "o").exists()


def _fail_at(monkeypatch, index):
    from recogan.batch import _local

    real = _local.score_partition

    def flaky(model, task, opt):
        if task.index == index:
            raise RuntimeError(f"boom at partition {index}")
        return real(model, task, opt)

    monkeypatch.setattr(_local, "score_partition", flaky)


@pytest.mark.parametrize("mode", ["discover", "buy_again", "mixed"])
def test_resume_keeps_verified_partitions_and_redoes_corrupt_ones(
    cooc_bundle, tmp_path, monkeypatch, mode
):
    fast = {**FAST, "mode": mode}
    out = tmp_path / "recs"
    with monkeypatch.context() as m:
        _fail_at(m, 4)
        with pytest.raises(BatchError, match="boom at partition 4"):
            batch_score(cooc_bundle, out, n=5, partition_size=30, **fast)
    staging = tmp_path / ".recs.staging"
    assert not out.exists()
    done = json.loads((staging / "_partitions.json").read_text())
    assert sorted(done) == ["0", "1", "2", "3"]
    f1 = staging / "part-00001.parquet"
    f1.write_bytes(f1.read_bytes()[:-20])  # truncated
    f2 = staging / "part-00002.parquet"
    data = bytearray(f2.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, altered
    f2.write_bytes(bytes(data))
    (staging / "part-00005.parquet").write_bytes(b"half a file")  # not in the manifest
    (staging / "part-00006.parquet.tmp-999").write_bytes(b"tmp")
    res = batch_score(cooc_bundle, out, n=5, partition_size=30, resume=True, **fast)
    assert res.partitions_reused == 2  # partitions 0 and 3
    batch_score(cooc_bundle, tmp_path / "clean", n=5, partition_size=30, **fast)
    assert res.rows_sha256 == read_success(tmp_path / "clean")["rows_sha256"]
    same(read_recommendations(out), read_recommendations(tmp_path / "clean"))
    assert not staging.exists()
    # resuming an already published job does nothing
    again = batch_score(cooc_bundle, out, n=5, partition_size=30, resume=True, **fast)
    assert again.partitions_reused == again.partitions == 7
    assert read_success(out)["mode"] == mode


def test_resume_refuses_a_different_job(cooc_bundle, tmp_path, monkeypatch):
    out = tmp_path / "recs"
    with monkeypatch.context() as m:
        _fail_at(m, 2)
        with pytest.raises(BatchError):
            batch_score(cooc_bundle, out, n=5, partition_size=30, **FAST)
    with pytest.raises(BatchError, match="different inputs or options.*without --resume"):
        batch_score(cooc_bundle, out, n=6, partition_size=30, resume=True, **FAST)
    with pytest.raises(BatchError, match="different inputs or options"):
        batch_score(cooc_bundle, out, n=5, partition_size=30, threads=2, resume=True, **FAST)
    # the mode is part of the job: a resume in another mode is refused, naming the mode
    with pytest.raises(BatchError, match="mode=discover.*without --resume"):
        batch_score(cooc_bundle, out, n=5, partition_size=30, mode="mixed", resume=True, **FAST)
    # without --resume it starts over
    assert batch_score(cooc_bundle, out, n=6, partition_size=30, **FAST).partitions_reused == 0


@pytest.mark.parametrize(
    "where,err",
    [
        ("partition", OSError(errno.ENOSPC, "No space left on device")),
        ("partition", PermissionError(errno.EACCES, "Permission denied")),
        ("publish", OSError(errno.ENOSPC, "No space left on device")),
    ],
)
def test_write_failures_leave_the_published_result(cooc_bundle, tmp_path, monkeypatch, where, err):
    from recogan import _fs
    from recogan.batch import _partition

    out = tmp_path / "recs"
    batch_score(cooc_bundle, out, n=4, partition_size=50, **FAST)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def fail(*args, **kwargs):
        err.filename = str(tmp_path / "somewhere")
        raise err

    if where == "partition":
        monkeypatch.setattr(_partition, "write_parquet", fail)
    else:  # the swap fails after the old result was moved aside: it must come back
        real = _fs.os.rename

        def rename(src, dst):
            if str(src).endswith(".staging"):
                fail()
            return real(src, dst)

        monkeypatch.setattr(_fs.os, "rename", rename)
    with pytest.raises(BatchError, match=rf"{err.strerror}.*{out} is untouched"):
        batch_score(cooc_bundle, out, n=6, partition_size=50, **FAST)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    verify_output(out)
    monkeypatch.undo()
    res = batch_score(cooc_bundle, out, n=6, partition_size=50, resume=True, **FAST)
    assert res.partitions_reused == (4 if where == "publish" else 0)
    assert read_success(out)["n"] == 6


def test_interrupted_publish_is_completed_or_undone(cooc_bundle, tmp_path):
    from recogan.batch._publish import recover

    out = tmp_path / "recs"
    batch_score(cooc_bundle, out, n=4, partition_size=50, **FAST)
    # killed between "move the old result aside" and "rename staging": staging incomplete
    out.rename(tmp_path / ".recs.old-deadbeef")
    recover(out)
    assert verify_output(out)["n"] == 4
    # ... and with a complete staging directory: the new result is published
    batch_score(cooc_bundle, tmp_path / "new", n=3, partition_size=50, **FAST)
    out.rename(tmp_path / ".recs.old-deadbeef")
    (tmp_path / "new").rename(tmp_path / ".recs.staging")
    recover(out)
    assert verify_output(out)["n"] == 3 and not list(tmp_path.glob(".recs.*"))


def test_cli_summary_and_errors(cooc_bundle, tmp_path, capsys, monkeypatch):
    args = ["batch-score", "--model", str(cooc_bundle), "--out", str(tmp_path / "o")]
    assert main([*args, "--n", "3", "--workers", "1", "--no-progress"]) == 0
    line = capsys.readouterr().out
    assert "scored 200 users → 600 rows in 1 partitions" in line and "users/s" in line
    (tmp_path / "u.txt").write_text("ghost\n")
    assert main([*args, "--users", str(tmp_path / "u.txt"), "--no-progress"]) == 1
    assert "1 user id(s) not in the model bundle" in capsys.readouterr().err
    assert main([*args, "--partition-size", "0", "--no-progress"]) == 1
    assert "partition_size must be a positive int" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "ray", None)
    assert main([*args, "--engine", "ray", "--no-progress"]) == 1
    assert "pip install 'recogan[ray]'" in capsys.readouterr().err


@pytest.mark.slow
def test_ray_engine_matches_local(cooc_bundle, tmp_path):
    pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    local = batch_score(cooc_bundle, tmp_path / "local", n=5, partition_size=30, **FAST)
    ray_res = batch_score(
        cooc_bundle,
        tmp_path / "ray",
        n=5,
        partition_size=30,
        engine="ray",
        workers=2,
        show_progress=False,
    )
    assert ray_res.engine == "ray" and ray_res.rows_sha256 == local.rows_sha256
    for i in range(7):
        ta = pq.read_table(tmp_path / "local" / f"part-{i:05d}.parquet")
        tb = pq.read_table(tmp_path / "ray" / f"part-{i:05d}.parquet")
        assert ta.equals(tb)


def _nightly():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "pipelines" / "nightly.py"
    spec = importlib.util.spec_from_file_location("nightly", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nightly_pipeline_uses_the_latest_bundle(cooc_bundle, pop_bundle, tmp_path):
    import shutil

    nightly = _nightly()
    models = tmp_path / "models"
    shutil.copytree(pop_bundle, models / "a-pop")
    shutil.copytree(cooc_bundle, models / "b-cooc")
    for name, when in (
        ("a-pop", "2031-01-01T00:00:00+00:00"),
        ("b-cooc", "2030-01-01T00:00:00+00:00"),
    ):
        m = json.loads((models / name / "manifest.json").read_text())
        m["created_at"] = when
        m["manifest_sha256"] = manifest_digest(m)  # an edit without it is refused
        (models / name / "manifest.json").write_text(json.dumps(m))
    assert nightly.latest_bundle(models).name == "a-pop"
    args = ["--models", str(models), "--out-root", str(tmp_path / "recs")]
    rc = nightly.main(
        [*args, "--date", "2031-01-02", "--n", "4", "--workers", "1", "--no-progress"]
    )
    assert rc == 0
    summary = json.loads((tmp_path / "recs" / "_runs" / "2031-01-02.json").read_text())
    assert summary["status"] == "ok" and summary["users"] == 200 and summary["rows"] == 800
    assert summary["bundle"].endswith("a-pop") and summary["throughput_users_per_s"] > 0
    assert set(summary["durations_s"]) >= {"load", "score", "publish", "total"}
    verify_output(tmp_path / "recs" / "2031-01-02")
    # no bundle: a clear error, and the summary records the failure
    (tmp_path / "empty").mkdir()
    assert (
        nightly.main(["--models", str(tmp_path / "empty"), "--out-root", str(tmp_path / "r2")]) == 1
    )
    failed = next((tmp_path / "r2" / "_runs").glob("*.json"))
    assert json.loads(failed.read_text())["status"] == "failed"


@pytest.mark.parametrize("mode", ["discover", "buy_again", "mixed"])
def test_modes_match_the_service_api(cooc_bundle, tmp_path, mode):
    from recogan.recommender import Recommender

    out = tmp_path / mode
    res = batch_score(cooc_bundle, out, n=4, partition_size=64, mode=mode, **FAST)
    got = read_recommendations(out)
    model = load_model(cooc_bundle)
    want = Recommender(model).recommend_many(model.users_.ids, n=4, mode=mode)
    same(got, want.drop(columns="fallback"))
    assert got["repeat"].any() == (mode != "discover") and (mode != "buy_again" or got.repeat.all())
    assert read_success(out)["mode"] == mode
    assert res.rows == len(got)


def test_mode_is_checked_and_part_of_the_job(cooc_bundle, tmp_path):
    with pytest.raises(
        ValueError, match=r"mode must be one of discover, buy_again, mixed; got 'x'"
    ):
        batch_score(cooc_bundle, tmp_path / "o", mode="x", **FAST)
    with pytest.raises(ValueError, match="contradicts"):
        batch_score(cooc_bundle, tmp_path / "o", mode="discover", exclude_seen=False, **FAST)
    a = batch_score(cooc_bundle, tmp_path / "a", n=4, exclude_seen=False, **FAST)
    b = batch_score(cooc_bundle, tmp_path / "b", n=4, mode="mixed", **FAST)
    assert a.rows_sha256 == b.rows_sha256  # --include-seen is the mixed mode
    assert main(["batch-score", "--model", str(cooc_bundle), "--out", str(tmp_path / "c"),
                 "--n", "4", "--mode", "mixed", "--no-progress"]) == 0  # fmt: skip
    assert read_success(tmp_path / "c")["rows_sha256"] == b.rows_sha256
