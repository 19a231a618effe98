"""Injected faults: crashes at every file-system step, kill -9 at random moments, readers and
batch workers racing a re-publish. Nothing is lost, nothing is mixed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from recogan import _fs
from recogan.artifacts import BundleError, load_model, open_bundle, save_model
from recogan.batch import batch_score, read_recommendations, read_success
from tests.robustness import publish_loop
from tests.robustness.helpers import aux_entries, write_legacy

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _crashpoints(mode: str, workdir: Path, ops: str | None = None, timeout: int = 600) -> dict:
    args = [sys.executable, str(ROOT / "tests" / "robustness" / "crashpoints.py"), mode]
    args += [str(workdir)] + ([ops] if ops else [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=ENV)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _assert_all_points_safe(result: dict) -> None:
    assert result["failures"] == [], result
    assert result["points"] >= 2, result
    # crashing before the switch shows the old version, after it the new one; never anything else
    outcomes = result["outcomes"]
    assert set(outcomes) <= {"old", "new"}, outcomes
    assert outcomes == sorted(outcomes, key=["old", "new"].index), outcomes


def test_crash_at_every_rename_of_a_resave(tmp_path):
    _assert_all_points_safe(_crashpoints("inplace", tmp_path, "rename,replace,rmtree"))


def test_crash_at_every_rename_of_a_swap(tmp_path):
    # a format-1 bundle is replaced by moving it aside: the crash between the two renames
    _assert_all_points_safe(_crashpoints("legacy", tmp_path, "rename,replace"))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["inplace", "legacy", "fresh", "force", "batch"])
def test_crash_at_every_file_system_step(tmp_path, mode):
    _assert_all_points_safe(_crashpoints(mode, tmp_path))


# ---------------------------------------------------------------------- kill -9
def _key(model) -> str:
    return json.dumps(model.params(), sort_keys=True)


def _expected():
    return {_key(m): m.scores_ for m in publish_loop.models()}


def _check_consistent(path: Path, expected: dict) -> None:
    """The loaded settings (from the manifest) and arrays come from the same save."""
    model = load_model(path)
    assert _key(model) in expected, model.config
    np.testing.assert_array_equal(model.scores_, expected[_key(model)])
    assert model.manifest_["model"]["config"] == model.params()


@pytest.mark.parametrize(
    "kills", [3, pytest.param(25, marks=pytest.mark.slow)], ids=["3-kills", "25-kills"]
)
def test_kill_9_at_random_moments_of_a_save_loop(tmp_path, kills):
    rng = np.random.default_rng(20240601)
    path = tmp_path / "P"
    expected = _expected()
    published = False
    script = str(ROOT / "tests" / "robustness" / "publish_loop.py")
    for _ in range(kills):
        proc = subprocess.Popen(
            [sys.executable, script, str(path)], stdout=subprocess.PIPE, text=True, env=ENV
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.0, 0.4)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # once anything was published, the path must load whole (old or new); a kill before
        # the first publish leaves only a temporary folder and nothing to load, correctly
        published = published or path.exists() or bool(_fs.aux_dirs(path, "old"))
        if published:
            _check_consistent(path, expected)
    save_model(publish_loop.models()[0], path)  # the next save cleans up after the killed ones
    assert aux_entries(tmp_path, "P") == []
    assert len([p for p in path.iterdir() if p.name.startswith("v-")]) <= 2


# ---------------------------------------------------------------------- concurrent re-publish
def test_readers_never_see_a_mix_while_a_thread_republishes(tmp_path):
    path = tmp_path / "P"
    pair = publish_loop.models()
    expected = _expected()
    save_model(pair[0], path)
    stop, errors, loads = threading.Event(), [], [0]

    def writer():
        i = 1
        while not stop.is_set():
            save_model(pair[i % 2], path)
            i += 1

    def reader():
        while not stop.is_set():
            try:
                _check_consistent(path, expected)
                loads[0] += 1
            except Exception as e:  # collected: the test fails below, naming it
                errors.append(repr(e))

    threads = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader) for _ in range(3)
    ]
    for t in threads:
        t.start()
    time.sleep(3.0)
    stop.set()
    for t in threads:
        t.join()
    assert errors == [] and loads[0] > 5, (errors[:3], loads)
    assert aux_entries(tmp_path, "P") == []


@pytest.mark.slow
def test_readers_never_see_a_mix_while_another_process_republishes(tmp_path):
    path = tmp_path / "P"
    expected = _expected()
    save_model(publish_loop.models()[0], path)
    script = str(ROOT / "tests" / "robustness" / "publish_loop.py")
    proc = subprocess.Popen(
        [sys.executable, script, str(path)], stdout=subprocess.PIPE, text=True, env=ENV
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline, n = time.monotonic() + 15, 0
        while time.monotonic() < deadline:
            _check_consistent(path, expected)
            n += 1
    finally:
        proc.kill()
        proc.wait()
    assert n > 20


def test_a_version_held_by_a_reader_outlives_republishing(tmp_path, pop_a, pop_b):
    path = tmp_path / "P"
    save_model(pop_a, path)
    with open_bundle(path) as held:
        for m in (pop_b, pop_a, pop_b):
            save_model(m, path)
        assert held.files_dir.is_dir()
        old = load_model(path, manifest=held.manifest_bytes)
        assert old.config == pop_a.config and load_model(path).config == pop_b.config
    save_model(pop_a, path)
    assert not held.files_dir.exists()


def test_load_starts_over_when_its_version_is_removed_under_it(tmp_path, pop_a, pop_b, monkeypatch):
    path = tmp_path / "P"
    save_model(pop_a, path)
    real, calls = _fs.try_lock, []

    def try_lock(p, *, shared=False):
        calls.append(p)
        if shared and len(calls) == 1:  # between reading the manifest and locking its version
            save_model(pop_b, path)
            save_model(pop_a, path)
            save_model(pop_b, path)  # the version the reader is after is gone now
        return real(p, shared=shared)

    monkeypatch.setattr(_fs, "try_lock", try_lock)
    assert load_model(path).config == pop_b.config


def test_worker_refuses_a_format_1_bundle_changed_since_the_job_started(tmp_path, pop_a, pop_b):
    path = tmp_path / "P"
    write_legacy(pop_a, path)
    with open_bundle(path) as b:
        pinned = b.manifest_bytes
    (path / "manifest.json").write_text(
        (path / "manifest.json").read_text().replace('"created_at": "', '"created_at": "1')
    )
    with pytest.raises(BundleError, match="changed since this job verified it"):
        load_model(path, manifest=pinned)


def test_batch_workers_score_the_pinned_version_while_it_is_republished(tmp_path, clustered):
    from recogan.baselines import Popularity

    a, b, c = (Popularity(window_days=w).fit(clustered) for w in (None, 7, 14))
    path = tmp_path / "P"
    save_model(a, path)
    # manifest sha256 -> the model published under it (one writer: the manifest is its own)
    published = {_fs.sha256_file(path / "manifest.json"): a}
    stop = threading.Event()

    def republish():
        # a is never published again: a worker that reloaded the path would score b or c
        time.sleep(0.3)  # the job has loaded and pinned a by now (where it has not, the
        i = 0  # checks below still hold for whichever version it pinned)
        while not stop.is_set():
            m = (b, c)[i % 2]
            save_model(m, path)
            published[_fs.sha256_file(path / "manifest.json")] = m
            i += 1

    t = threading.Thread(target=republish)
    t.start()
    try:
        res = batch_score(
            path, tmp_path / "recs", n=5, partition_size=25, workers=2, show_progress=False
        )
    finally:
        stop.set()
        t.join()
    assert len(published) > 2  # it was re-published while the job ran
    success = read_success(tmp_path / "recs")
    sha = success["manifest_sha256"]
    assert res.model_version.endswith(sha[:12]) and sha in published
    model = published[sha]
    items, _ = model.recommend(np.arange(model.n_users_), n=5)
    want = model.items_.to_ids(items.ravel()).tolist()
    for other in {a, b, c} - {model}:  # the versions' rows differ
        assert not np.array_equal(items, other.recommend(np.arange(model.n_users_), n=5)[0])
    assert read_recommendations(tmp_path / "recs")["item_id"].tolist() == want


def test_a_second_batch_job_on_the_same_output_is_refused(tmp_path, clustered):
    from recogan.batch import BatchError
    from tests.batch_models import Cooc, register

    register()
    save_model(Cooc(delay=0.05).fit(clustered), tmp_path / "slow")
    out, errors = tmp_path / "recs", []

    def first():
        try:
            batch_score(
                tmp_path / "slow", out, n=3, partition_size=10, workers=1, show_progress=False
            )
        except Exception as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=first)
    t.start()
    deadline = time.monotonic() + 30
    while not (tmp_path / ".recs.staging" / "_partitions.json").exists():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(BatchError, match="another batch job is writing"):
        batch_score(tmp_path / "slow", out, n=5, partition_size=10, workers=1, show_progress=False)
    t.join()
    assert errors == [] and read_success(out)["n"] == 3
    assert aux_entries(tmp_path, "recs") == []
