"""Crash a publish at every file-system step and check what a reader finds afterwards.

Run as a program (the tests start it in a fresh interpreter):

    python -m tests.robustness.crashpoints MODE WORKDIR [OPS]

For k = 0, 1, 2, ... a forked child performs the publish of MODE and dies (``os._exit``, as
abruptly as kill -9: no handler, no ``finally``) just before its k-th call of one of ``OPS``
(rename, replace, mkdir, unlink, rmdir, fsync, rmtree), until a child gets through. After each
crash another child checks the published path: it must hold the old version or the new one,
whole and consistent, and a later publish must succeed and leave no temporary leftovers.
Prints one JSON line: the number of crash points and any failures. Everything that touches
pyarrow runs in the children, so the parent forks from a single-threaded state.

Modes: ``inplace`` (re-save over a versioned bundle), ``legacy`` (save over a format-1 flat
bundle), ``fresh`` (save to a new path), ``force`` (save over a user's folder with
force=True), ``batch`` (publish a batch result over an earlier one).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

ALL_OPS = ("rename", "replace", "mkdir", "unlink", "rmdir", "fsync", "rmtree")


def _models():
    from recogan.baselines import Popularity
    from recogan.datasets import synthetic_clusters

    data = synthetic_clusters(n_users=40, n_items=20, events_per_user=5)
    return Popularity().fit(data), Popularity(window_days=30).fit(data)


def setup(mode: str, root: Path) -> None:
    """The state before the publish, in ``root/template``."""
    from recogan.artifacts import save_model

    a, _ = _models()
    t = root / "template"
    t.mkdir()
    if mode == "inplace":
        save_model(a, t / "P")
    elif mode == "legacy":
        from tests.robustness.helpers import write_legacy

        write_legacy(a, t / "P")
    elif mode == "force":
        (t / "P").mkdir()
        (t / "P" / "notes.txt").write_text("mine")
        (t / "P" / "events.csv").write_text("user_id,item_id\n1,2\n")
    elif mode == "batch":
        from recogan.batch import batch_score

        save_model(a, t / "A")
        save_model(_models()[1], t / "B")
        batch_score(t / "A", t / "P", n=3, workers=1, show_progress=False)


def operate(mode: str, work: Path) -> None:
    """The publish that is crashed."""
    from recogan.artifacts import save_model

    if mode == "batch":
        from recogan.batch import batch_score

        batch_score(work / "B", work / "P", n=5, workers=1, show_progress=False)
    else:
        save_model(_models()[1], work / "P", force=(mode == "force"))


def check(mode: str, work: Path) -> str:
    """What a reader finds at P after the crash: 'old' or 'new' (raises when neither)."""
    if mode == "batch":
        from recogan.batch import read_recommendations, verify_output
        from recogan.batch._publish import recover

        recover(work / "P")
        n = verify_output(work / "P")["n"]
        rows = read_recommendations(work / "P")
        assert (rows.groupby("user_id").size() <= n).all()
        return {3: "old", 5: "new"}[n]
    from recogan.artifacts import load_model, recover_bundle

    p = work / "P"
    if not p.exists():
        recover_bundle(p)  # what any load does first
    if mode == "fresh" and not p.exists():
        return "old"  # nothing was there before, nothing is there now
    if mode == "force":
        if (p / "notes.txt").is_file():
            assert (p / "notes.txt").read_text() == "mine"
            assert (p / "events.csv").is_file()
            return "old"
    import numpy as np

    a, b = _models()
    got = load_model(work / "P")
    for label, want in (("old", a), ("new", b)):
        if got.config == want.config:
            # manifest and arrays must come from the same save
            np.testing.assert_array_equal(got.scores_, want.scores_)
            assert got.manifest_["model"]["config"] == want.params()
            return label
    raise AssertionError(f"unexpected config {got.config}")


def finish(mode: str, work: Path) -> None:
    """A later publish succeeds and leaves no temporary leftovers of the crashed one."""
    operate(mode, work)
    check(mode, work)
    left = sorted(p.name for p in work.iterdir() if p.name.startswith(".P."))
    assert not left, f"leftovers after a later publish: {left}"
    if mode != "batch":
        versions = [p for p in (work / "P").iterdir() if p.name.startswith("v-")]
        assert len(versions) <= 2, versions


def _crash_on(ops: tuple[str, ...], k: int) -> None:
    """Make the k-th call of any of ``ops`` end the process on the spot."""
    calls = [0]

    def wrap(mod, name):
        real = getattr(mod, name)

        def f(*args, **kwargs):
            if calls[0] == k:
                os._exit(77)
            calls[0] += 1
            return real(*args, **kwargs)

        setattr(mod, name, f)

    for op in ops:
        wrap(shutil if op == "rmtree" else os, op)


def _in_child(fn) -> int:
    """Run ``fn`` in a forked child; its exit status (0: returned, 1: raised)."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            fn()
        except BaseException as e:
            print(f"child error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def main(argv: list[str]) -> int:
    mode, root = argv[0], Path(argv[1])
    ops = tuple(argv[2].split(",")) if len(argv) > 2 else ALL_OPS
    if _in_child(lambda: setup(mode, root)) != 0:
        print(json.dumps({"error": "setup failed"}))
        return 1
    failures, outcomes, k = [], [], 0
    while k < 500:
        work = root / f"k{k}"
        shutil.copytree(root / "template", work, symlinks=True)
        status = _in_child(lambda k=k, work=work: (_crash_on(ops, k), operate(mode, work)))
        if status not in (0, 77):
            failures.append({"k": k, "stage": "publish", "status": status})
        seen = root / f"seen{k}"

        def verify(work=work, seen=seen):
            seen.write_text(check(mode, work))
            finish(mode, work)

        if _in_child(verify) != 0:
            failures.append({"k": k, "stage": "check"})
        outcomes.append(seen.read_text() if seen.exists() else "?")
        shutil.rmtree(work, ignore_errors=True)
        if status == 0:
            break
        k += 1
    print(json.dumps({"points": k, "outcomes": outcomes, "failures": failures}))
    return 0


if __name__ == "__main__":
    ROOT = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
