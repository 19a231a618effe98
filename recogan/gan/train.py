"""Training the generator and discriminator: (history, target) pairs, losses, early stopping.

A training pair is one purchase event ``(u, i, t)`` with the condition ``u``'s events strictly
before ``t`` (the last ``max_history`` of them): the condition never contains its target, nor
anything bought in the same basket. Two losses, each switchable:

- retrieval: the generated vector must score the bought item above the rest of the catalog
  (full softmax; for big catalogs a sampled softmax over the batch's targets and shared
  uniform negatives, logQ-corrected); items already in the history are masked, as they are
  at recommendation time;
- adversarial: D learns real purchases (label 1) against generated vectors and real-but-not-
  bought items (label 0; half sampled from G's own softmax, i.e. hard negatives, half uniform);
  G gets the non-saturating loss ``-log D(G(b, z))``. D is spectrally normalised.

The loop keeps the device busy (:mod:`recogan.gan._loop`): the pairs live on
the training device as tensors, a batch is an index slice, nothing per batch goes back to the
host, and the popularity prior is computed without a ``(batch, windows, items)`` tensor
(:func:`recogan.gan.networks.pop_prior`). On CUDA the forward passes run under bfloat16 autocast.

Early stopping watches a validation score passed in as a callback (the model's scorer,
NDCG@10 by default; this module knows neither the model class nor the metrics) and restores
the best epoch.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from recogan._threads import set_torch_threads
from recogan.gan._loop import _Epochs
from recogan.gan.config import TrainConfig
from recogan.gan.pairs import TrainingPairs, WindowPopularity

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', not {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device='cuda' but CUDA is not available")
    return device


# ---------------------------------------------------------------------- the loop
@dataclass
class Networks:
    """What training updates: the item tower, G and D (torch modules)."""

    tower: object
    G: object
    D: object

    def modules(self) -> tuple:
        return self.tower, self.G, self.D

    def train(self) -> None:
        for m in self.modules():
            m.train()

    def eval(self) -> None:
        for m in self.modules():
            m.eval()


def train_gan(
    nets: Networks,
    pairs: TrainingPairs,
    pop: WindowPopularity | None,
    config: TrainConfig,
    *,
    half_life_days: float | None,
    seed: int,
    device: str,
    evaluate: Callable[[], float] | None = None,
    show_progress: bool = False,
) -> list[dict]:
    """Train ``nets`` in place; returns per-epoch history (losses, the validation score as
    ``valid_ndcg``). With ``evaluate`` (the validation score after an epoch, higher is better)
    training stops after ``patience`` epochs without improvement and the best epoch's weights
    are restored at the end."""
    c = config
    if not (c.retrieval or c.adversarial):
        raise ValueError("at least one of the retrieval and adversarial losses must be on")
    if c.train_draws < 1:
        raise ValueError(f"train_draws must be >= 1, got {c.train_draws}")
    if not 0 < c.adv_share <= 1:
        raise ValueError(f"adv_share must be in (0, 1], got {c.adv_share}")
    if len(pairs) == 0:
        raise ValueError("no training pairs (every user has a single basket?)")
    set_torch_threads(c.threads)
    torch.manual_seed(seed)
    epochs = _Epochs(nets, pairs, pop, c, half_life_days, seed, device)
    stop = _EarlyStopping(nets, c.patience)
    history: list[dict] = []
    for epoch in range(1, c.epochs + 1):
        last = history[-1].get("valid_ndcg") if history else None
        row = {"epoch": epoch, **epochs.run(epoch, show_progress, last)}
        if evaluate is not None:
            nets.eval()
            stop.update(row, float(evaluate()))
        history.append(row)
        log.info("epoch %s", row)
        if evaluate is not None and stop.done:
            break
    stop.restore()
    nets.eval()
    return history


class _EarlyStopping:
    """Tracks the best validation score, its weights, and the epochs since it improved."""

    def __init__(self, nets: Networks, patience: int) -> None:
        self.nets, self.patience = nets, patience
        self.best, self.best_state, self.bad = -np.inf, None, 0

    def update(self, row: dict, score: float) -> None:
        row["valid_ndcg"] = score
        if score > self.best:
            self.best, self.bad = score, 0
            self.best_state = [copy.deepcopy(m.state_dict()) for m in self.nets.modules()]
            row["best"] = True
        else:
            self.bad += 1

    @property
    def done(self) -> bool:
        return self.bad >= self.patience

    def restore(self) -> None:
        if self.best_state is not None:
            for m, state in zip(self.nets.modules(), self.best_state):
                m.load_state_dict(state)
