"""A probe model for the parallel tuning tests (registered as ``probe``): Popularity that can
fail on purpose and records where each fit ran."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path

from recogan.baselines import Popularity, PopularityConfig


@dataclass
class ProbeConfig(PopularityConfig):
    #: A model with a ``device`` setting gets one GPU per tuning worker.
    device: str = "cpu"
    #: Names the trial in the records.
    tag: int = 0
    #: "raise": fit raises; "exit": a worker process dies mid-fit; "sleep": fit hangs (120 s).
    fail: str = ""
    #: A directory where each fit writes ``<tag>.json``: pid, CUDA_VISIBLE_DEVICES, threads.
    record: str = ""


class Probe(Popularity):
    name = "probe"
    Config = ProbeConfig

    def _fit(self, train, valid) -> None:
        c = self.config
        if c.record:
            info = {
                "pid": os.getpid(),
                "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "omp": os.environ.get("OMP_NUM_THREADS"),
            }
            (Path(c.record) / f"{c.tag}.json").write_text(json.dumps(info))
        if c.fail == "raise":
            raise ValueError("planted failure in fit")
        if c.fail == "exit":
            if mp.parent_process() is None:  # never take the test process down
                raise RuntimeError("fail='exit' runs only in a worker process")
            os._exit(3)
        if c.fail == "sleep":
            time.sleep(120)
        super()._fit(train, valid)


def register() -> None:
    from recogan.registry import MODEL_REGISTRY

    MODEL_REGISTRY["probe"] = "tests.tune_models:Probe"
