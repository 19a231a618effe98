"""A probe model for the parallel tuning tests (registered as ``probe``): Popularity that can
fail on purpose and records where each fit ran."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recogan.baselines import EASE, EASEConfig, Popularity, PopularityConfig


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
    MODEL_REGISTRY["counted"] = "tests.tune_models:Counted"
    MODEL_REGISTRY["bowl"] = "tests.tune_models:Bowl"
    MODEL_REGISTRY["epochs"] = "tests.tune_models:Epochs"


#: When set (``N:PATH``), a Counted fit appends a line to PATH when it finishes, and the fit
#: that would be the (N + 1)-th in PATH kills its process first (``os._exit``, as abruptly as
#: kill -9): an evaluation killed in the middle of its tuning.
EXIT_AFTER = "RECOGAN_TEST_EXIT_AFTER_FITS"


@dataclass
class CountedConfig(PopularityConfig):
    #: A numeric setting for the sampler; it blends noise into the scores (0: none).
    noise: float = 0.2
    #: Where each finished fit appends a line (empty: nowhere).
    record: str = ""


class Counted(Popularity):
    """Popularity with some noise, counting its fits in a file (see :data:`EXIT_AFTER`)."""

    name = "counted"
    Config = CountedConfig

    @classmethod
    def search_space(cls) -> dict[str, list]:
        return {"window_days": [None, 7.0, 30.0], "noise": [0.01, 1.0]}

    def _fit(self, train, valid) -> None:
        spec = os.environ.get(EXIT_AFTER, "")
        if spec:
            n, path = spec.split(":", 1)
            done = Path(path).read_text().count("\n") if Path(path).exists() else 0
            if done >= int(n):
                os._exit(17)
        super()._fit(train, valid)
        rng = np.random.default_rng(len(self.scores_))
        noise = rng.random(self.n_items_) * float(self.scores_.max() or 1.0)
        self.scores_ = (self.scores_ + self.config.noise * noise).astype(np.float32)
        if spec:
            with open(path, "a") as f:
                f.write(f"{self.config.window_days} {self.config.noise}\n")


@dataclass
class BowlConfig(EASEConfig):
    #: EASE's scores blurred by noise of weight |ln(x / 10)|: best at x = 10, outside the
    #: searched range.
    x: float = 2.0


class Bowl(EASE):
    name = "bowl"
    Config = BowlConfig

    @classmethod
    def search_space(cls) -> dict[str, list]:
        return {"x": [1.0, 4.0]}

    def _fit(self, train, valid) -> None:
        if self.config.x <= 0:
            raise ValueError(f"x must be positive, got {self.config.x}")
        super()._fit(train, valid)
        rng = np.random.default_rng(0)
        self.noise_ = rng.standard_normal((self.n_users_, self.n_items_)).astype(np.float32)

    def score_users(self, user_idx):
        base = super().score_users(user_idx)
        w = abs(np.log(self.config.x / 10.0)) * float(np.std(base) or 1.0)
        return base + w * self.noise_[user_idx]


#: A directory where each Epochs fit writes the epochs it trained with (one file per fit).
EPOCHS_DIR = "RECOGAN_TEST_EPOCHS_DIR"


@dataclass
class EpochsConfig(PopularityConfig):
    epochs: int = 9


class Epochs(Popularity):
    """A model that early-stops on epochs (it records the epochs each fit was given)."""

    name = "epochs"
    Config = EpochsConfig
    early_stopping_params = ("epochs",)

    @classmethod
    def search_space(cls) -> dict[str, list]:
        return {"window_days": [None, 7.0, 14.0, 30.0, 60.0]}

    def _fit(self, train, valid) -> None:
        if os.environ.get(EPOCHS_DIR):
            name = f"{os.getpid()}-{time.monotonic_ns()}"
            (Path(os.environ[EPOCHS_DIR]) / name).write_text(str(self.config.epochs))
        super()._fit(train, valid)
        self.best_epoch_ = max(1, self.config.epochs - 1)

    def refit_params(self) -> dict:
        return {**self.params(), "epochs": int(self.best_epoch_)}
