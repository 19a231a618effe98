"""Kill the batch job (SIGKILL) at random moments, resume, and compare with a clean run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recogan.artifacts import save_model
from recogan.batch import batch_score, read_recommendations, read_success, verify_output
from recogan.batch._publish import recover
from tests.batch_models import Cooc, register

ROOT = Path(__file__).resolve().parent.parent
N_PARTS = 25
JOB = """
import sys
sys.path.insert(0, {root!r})
from tests.batch_models import register
register()
from recogan.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _start(bundle, out, workers, mode="discover"):
    args = ["batch-score", "--model", str(bundle), "--out", str(out), "--n", "5"]
    args += ["--mode", mode]
    args += ["--partition-size", "8", "--workers", str(workers), "--resume", "--no-progress"]
    args += ["--json"]
    code = JOB.format(root=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _finished(staging: Path) -> int:
    try:
        return len(json.loads((staging / "_partitions.json").read_text()))
    except (OSError, ValueError):
        return 0


# every mode resumes in-process in tests/test_batch.py; killed, discover by default and the
# other modes in the slow run (each kill run lasts about 30 s)
@pytest.mark.parametrize(
    "mode",
    ["discover", *(pytest.param(m, marks=pytest.mark.slow) for m in ("buy_again", "mixed"))],
)
def test_sigkill_and_resume_gives_the_uninterrupted_result(tmp_path, clustered, mode):
    register()
    bundle = tmp_path / "slow"
    # 0.06 s per partition: a run of 25 partitions lasts long enough to be killed mid-way
    save_model(Cooc(delay=0.06).fit(clustered), bundle)
    out = tmp_path / "recs"
    staging = tmp_path / ".recs.staging"
    # a previously published result (another n) that must survive every kill
    batch_score(bundle, out, n=3, partition_size=8, workers=1, show_progress=False)
    previous = read_recommendations(out)

    rng = np.random.default_rng(2024)
    progress = []
    for attempt in range(5):
        proc = _start(bundle, out, workers=1 + attempt % 2, mode=mode)
        # kill once a few more partitions are done (up to all: then it dies publishing)...
        target = min(N_PARTS, _finished(staging) + int(rng.integers(1, 9)))
        deadline = time.monotonic() + 60
        while proc.poll() is None and _finished(staging) < target:
            if time.monotonic() > deadline:  # pragma: no cover - a hung job
                proc.kill()
                pytest.fail("batch job made no progress")
            time.sleep(0.005)
        time.sleep(float(rng.uniform(0.0, 0.08)))  # ... plus a random moment
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        progress.append((target, _finished(staging), proc.returncode))
        # what a reader sees after the kill: the old result or the complete new one
        recover(out)
        success = verify_output(out)
        if success["n"] == 3:
            pd.testing.assert_frame_equal(read_recommendations(out), previous)
        if proc.returncode == 0:
            break
    print("kills (target, finished, rc):", progress)
    assert any(rc == -signal.SIGKILL for _, _, rc in progress), progress

    proc = _start(bundle, out, workers=2, mode=mode)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    final = json.loads(stdout)
    killed_mid_run = [p for p in progress if p[2] == -signal.SIGKILL and 0 < p[1] < N_PARTS]
    if killed_mid_run and progress[-1][2] != 0:
        assert final["partitions_reused"] > 0

    clean = tmp_path / "clean"
    batch_score(bundle, clean, n=5, partition_size=8, workers=1, show_progress=False, mode=mode)
    got, want = read_recommendations(out), read_recommendations(tmp_path / "clean")
    pd.testing.assert_frame_equal(got, want)
    assert read_success(out)["rows_sha256"] == read_success(tmp_path / "clean")["rows_sha256"]
    assert not got.duplicated(["user_id", "rank"]).any()
    assert set(got["user_id"]) == {f"u{i}" for i in range(200)}
    assert read_success(out)["mode"] == mode
    if mode == "buy_again":  # only what each customer bought before: some have fewer than 5
        assert got["repeat"].all() and (got.groupby("user_id").size() <= 5).all()
    else:
        assert (got.groupby("user_id").size() == 5).all()
        assert got["repeat"].any() == (mode == "mixed")
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert leftovers == [], leftovers
