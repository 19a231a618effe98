"""``batch-score --engine ray --ray-address`` against a real two-node Ray cluster on this machine:
a head node and a second node that joins it on 127.0.0.1, each with its own processes. The rows
must equal the local engine's. Slow (starting Ray takes tens of seconds), and skipped where Ray
is not installed (the optional ``ray`` extra)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recogan.artifacts import save_model
from recogan.baselines import EASE
from recogan.batch import batch_score

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).with_name("ray")
#: Each node's object store (bytes): the job ships only user-index slices and small records.
OBJECT_STORE = 80 * 1024**2


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _node_args() -> list[str]:
    """One node's settings: 1 logical CPU, a small object store, its own free ports (other
    Ray clusters may run on this machine)."""
    p = _free_ports(6)
    low = 20_000 + (p[5] % 400) * 100  # a worker-port range of its own
    return [
        "--block",  # stays in the foreground; SIGTERM stops the node's processes
        "--node-ip-address=127.0.0.1",
        "--num-cpus=1",
        f"--object-store-memory={OBJECT_STORE}",
        f"--node-manager-port={p[0]}",
        f"--object-manager-port={p[1]}",
        f"--dashboard-agent-listen-port={p[2]}",
        f"--dashboard-agent-grpc-port={p[3]}",
        f"--metrics-export-port={p[4]}",
        f"--runtime-env-agent-port={_free_ports(1)[0]}",
        f"--min-worker-port={low}",
        f"--max-worker-port={low + 99}",
        "--disable-usage-stats",
    ]


def _alive_nodes(address: str, env: dict) -> int:
    r = subprocess.run(
        [str(RAY), "status", f"--address={address}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if r.returncode != 0 or "Active:" not in r.stdout:
        return 0
    active = r.stdout.split("Active:")[1].split("Pending:")[0]
    return active.count("node_")


def _stop(procs: list[subprocess.Popen]) -> None:
    """Stop ``ray start --block`` processes (together: each drains its node for a while) and
    every process of their sessions (each in a process group of its own)."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        try:
            os.killpg(p.pid, signal.SIGKILL)  # what the node left behind, if anything
        except ProcessLookupError:
            pass


@pytest.fixture
def ray_cluster():
    """``(address, env)`` of a two-node cluster: token-authenticated with a token of its own,
    in a temporary directory of its own (short: Ray's socket paths have a length limit),
    stopped afterwards even when the test fails."""
    pytest.importorskip("ray", reason="the ray engine needs the optional 'ray' extra")
    pytest.importorskip("ray.data", reason="the ray engine needs ray[data]")
    if not RAY.exists():
        pytest.skip(f"no ray command next to {sys.executable}")
    tmp = tempfile.mkdtemp(prefix="rg-ray-", dir="/tmp")
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": os.urandom(32).hex(),
        # the nodes' workers import this checkout (as a cluster would have recogan installed)
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
    }
    gcs = _free_ports(1)[0]
    address = f"127.0.0.1:{gcs}"
    procs = []
    try:
        for name, args in (
            ("head", ["--head", f"--port={gcs}", "--include-dashboard=false", f"--temp-dir={tmp}"]),
            ("node2", [f"--address={address}"]),
        ):
            with open(Path(tmp) / f"{name}.log", "w") as log:
                node = [str(RAY), "start", *args, *_node_args()]
                procs.append(
                    subprocess.Popen(
                        node, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
        deadline = time.monotonic() + 180
        while _alive_nodes(address, env) < 2:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                logs = "\n".join(
                    (Path(tmp) / f"{n}.log").read_text()[-2000:] for n in ("head", "node2")
                )
                pytest.fail(f"the two-node Ray cluster did not come up:\n{logs}")
            time.sleep(2)
        yield address, env
    finally:
        _stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)


def test_ray_cluster_rows_equal_the_local_engine(ray_cluster, clustered, tmp_path):
    address, env = ray_cluster
    bundle = tmp_path / "ease"
    save_model(EASE().fit(clustered), bundle)
    local = batch_score(
        bundle, tmp_path / "local", n=5, partition_size=30, workers=1, show_progress=False
    )
    # 3 actors × 0.5 CPU do not fit on one 1-CPU node: both nodes score
    cmd = [sys.executable, "-m", "recogan", "batch-score", "--model", str(bundle)]
    cmd += ["--out", str(tmp_path / "ray"), "--engine", "ray", "--ray-address", address]
    cmd += ["--workers", "3", "--partition-size", "30", "--n", "5", "--no-progress", "--json"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout)
    assert summary["engine"] == "ray" and summary["users"] == local.users == 200
    assert summary["rows_sha256"] == local.rows_sha256
    for i in range(local.partitions):
        a = pq.read_table(tmp_path / "local" / f"part-{i:05d}.parquet")
        b = pq.read_table(tmp_path / "ray" / f"part-{i:05d}.parquet")
        assert a.equals(b)  # the same rows; metadata (generated_at) differs
    assert _alive_nodes(address, env) == 2  # the job left the cluster as it found it
