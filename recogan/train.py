"""Training the generator and discriminator: (history, target) pairs, losses, early stopping.

A training pair is one purchase event ``(u, i, t)`` with the condition ``u``'s events strictly
before ``t`` (the last ``max_history`` of them): the condition never contains its target, nor
anything bought in the same basket. Two losses, each switchable:

- retrieval: the generated vector must score the bought item above the rest of the catalog
  (full softmax; or ``n_sampled`` uniform negatives for big catalogs); items already in the
  history are masked, as they are at recommendation time;
- adversarial: D learns real purchases (label 1) against generated vectors and real-but-not-
  bought items (label 0; half sampled from G's own softmax, i.e. hard negatives, half uniform);
  G gets the non-saturating loss ``-log D(G(b, z))``. D is spectrally normalised.

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
import torch.nn.functional as Fn
from tqdm.auto import tqdm

from recogan._threads import set_torch_threads
from recogan.data import Dataset
from recogan.features import DAY, decay_weights
from recogan.gan import decay_pool

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    #: Maximum epochs; early stopping on validation NDCG@10 may stop sooner.
    epochs: int = 20
    #: Epochs without a validation improvement before stopping.
    patience: int = 2
    batch_size: int = 512
    #: Learning rate of G and the item tower; of D.
    lr: float = 2e-3
    d_lr: float = 1e-3
    #: L2 weight decay of the G/D MLPs.
    weight_decay: float = 1e-5
    #: Learning-rate multiplier of the free item vectors (0: they stay at the item features
    #: and only the generator, the item prior and the score scale learn). Free per-item
    #: vectors can memorise the training baskets within an epoch.
    item_lr: float = 0.0
    #: Pull of the learned item vectors towards their features (keeps content meaning, so new
    #: items stay comparable): ``anchor · mean ||e_i - F_i||²``.
    anchor: float = 0.0
    #: Switches of the two losses.
    retrieval: bool = True
    adversarial: bool = True
    #: Weight of G's adversarial loss next to the retrieval loss.
    adv_weight: float = 0.1
    #: Real-but-not-bought items per pair shown to D as negatives.
    n_negatives: int = 4
    #: None: full softmax; else this many uniform negatives shared by a batch.
    n_sampled: int | None = None
    #: Pairs drawn per epoch (None: all pairs once, shuffled).
    pairs_per_epoch: int | None = None
    #: Draw recent pairs more often: weight ``0.5 ** (age / half_life)``, age to the end of
    #: training (None: uniform).
    pair_half_life_days: float | None = None
    #: Keep only pairs whose target was not bought before (evaluation ranks unseen items only).
    skip_repeats: bool = True
    #: A pair's history also holds the other items of its own basket (same user, same
    #: timestamp): the within-basket co-purchase signal, and pairs from first baskets.
    basket_context: bool = False
    #: Probability of dropping each history item during training (denoising regulariser).
    history_dropout: float = 0.0
    #: Std of the training noise z.
    noise_std: float = 1.0
    #: "auto" (CUDA when present), "cpu" or "cuda".
    device: str = "auto"
    #: torch CPU threads. One is the safe default: on a busy shared machine extra threads
    #: spin at every op's barrier and made training ~5x slower.
    threads: int = 1


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', not {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device='cuda' but CUDA is not available")
    return device


# ---------------------------------------------------------------------- pairs
class TrainingPairs:
    """All (history-before-t, item-bought-at-t) pairs of a Dataset, built lazily per batch.

    Attributes: ``user``, ``target``, ``time`` per pair and ``cut``: the position in the
    time-sorted event arrays where the pair's history ends (exclusive), so the history is
    ``items[max(start_u, cut - L):cut]``, all strictly earlier than ``time``.
    """

    def __init__(
        self,
        data: Dataset,
        *,
        max_history: int,
        skip_repeats: bool = True,
        min_history: int = 1,
        basket_context: bool = False,
    ) -> None:
        indptr, items, times = data.histories()
        self.indptr, self.items, self.times = indptr, items, times
        self.max_history = int(max_history)
        n = len(items)
        user = np.repeat(np.arange(data.n_users), np.diff(indptr))
        # first position of each (user, time) group = where this pair's history ends
        starts = np.ones(n, dtype=bool)
        starts[1:] = (user[1:] != user[:-1]) | (times[1:] != times[:-1])
        cut = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
        self.basket_context = bool(basket_context)
        if self.basket_context:
            # the history runs to the end of the pair's own basket, the target left out
            ends = np.ones(n, dtype=bool)
            ends[:-1] = starts[1:]
            end = np.minimum.accumulate(np.where(ends, np.arange(1, n + 1), n)[::-1])[::-1]
            keep = (end - indptr[user] - 1) >= min_history
        else:
            end = cut
            keep = (cut - indptr[user]) >= min_history
        if skip_repeats:
            # a repeat: the same item bought by the same user at an earlier time
            key = user.astype(np.int64) * data.n_items + items
            order = np.lexsort((times, key))
            first_t = np.empty(n, dtype=np.int64)
            k_sorted = key[order]
            grp_start = np.ones(n, dtype=bool)
            grp_start[1:] = k_sorted[1:] != k_sorted[:-1]
            first_idx = np.maximum.accumulate(np.where(grp_start, np.arange(n), 0))
            first_t[order] = times[order][first_idx]
            keep &= first_t >= times
        # one pair per (user, time, item) even if the event repeats in the basket
        dup = np.zeros(n, dtype=bool)
        dup[1:] = (user[1:] == user[:-1]) & (times[1:] == times[:-1]) & (items[1:] == items[:-1])
        keep &= ~dup
        self.user = user[keep]
        self.target = items[keep].astype(np.int64)
        self.time = times[keep]
        self.cut = end[keep]
        self.pos = np.arange(n)[keep]

    def __len__(self) -> int:
        return len(self.target)

    def histories(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(hist, hist_times)``, both ``(len(idx), max_history)``, most recent last;
        empty slots are item ``-1``. The target itself never appears in its history."""
        L = self.max_history
        start, end = self.indptr[self.user[idx]], self.cut[idx]
        if not self.basket_context:
            return history_window(self.items, self.times, start, end, L)
        hist, ht = history_window(self.items, self.times, start, end, L + 1)  # (B, L + 1)
        # drop the target's own slot (or the oldest one when the basket outgrows the window)
        slot = self.pos[idx] - (end - (L + 1))
        slot = np.where(slot >= 0, slot, 0)
        keep = np.ones(hist.shape, dtype=bool)
        keep[np.arange(len(idx)), slot] = False
        hist, ht = hist[keep].reshape(-1, L), ht[keep].reshape(-1, L)
        hist = np.where(hist == self.target[idx][:, None], -1, hist)  # repeats of the target
        return hist, ht


def history_window(items, times, start, end, L):
    """The last ``L`` events in ``[start, end)`` per row of the sorted event arrays."""
    pos = np.asarray(end)[:, None] + np.arange(-L, 0)[None, :]  # (B, L)
    valid = pos >= np.asarray(start)[:, None]
    pos = np.where(valid, pos, 0)
    hist = np.where(valid, items[pos], -1).astype(np.int64)
    ht = np.where(valid, times[pos], 0).astype(np.int64)
    return hist, ht


class WindowPopularity:
    """Events per item in windows of whole days before a time, as ``log1p``, from a day grid
    (one feature per window: short windows follow trends, long ones are stable; a window of
    0 days means all time so far). The day of ``t`` itself is left out, so a pair's own basket
    never counts towards its feature."""

    def __init__(self, data: Dataset, windows_days) -> None:
        t = data.times
        self.t0 = int(t.min()) if len(t) else 0
        self.windows = [int(w) for w in np.atleast_1d(windows_days)]
        if not self.windows or min(self.windows) < 0:
            raise ValueError(
                f"popularity windows must be >= 1 day (or 0: all time), got {windows_days}"
            )
        day = (t - self.t0) // int(DAY)
        n_days = int(day.max()) + 2 if len(t) else 2
        counts = np.zeros((n_days, data.n_items), dtype=np.int32)
        np.add.at(counts, (day, data.item_idx), 1)
        cum = np.vstack([np.zeros((1, data.n_items), np.int32), np.cumsum(counts, 0)])
        days = np.arange(len(cum))
        #: ``table[d, w]``: log1p of the events per item on days ``[d - window_w, d)``.
        self.table = np.stack(
            [np.log1p(cum - cum[np.maximum(days - w, 0)] if w else cum) for w in self.windows],
            axis=1,
        ).astype(np.float32)  # (n_days + 1, W, n_items)

    def day_of(self, times: np.ndarray) -> np.ndarray:
        d = (np.asarray(times, dtype=np.int64) - self.t0) // int(DAY)
        return np.clip(d, 0, self.table.shape[0] - 1)

    def logpop(self, times: np.ndarray) -> np.ndarray:
        """``(B, W, n_items)`` float32 features for events at ``times``."""
        return self.table[self.day_of(times)]

    def after(self, t_end: int) -> np.ndarray:
        """``(W, n_items)``: the features for recommending after the last training event (its
        day included)."""
        return self.table[min(int(self.day_of([t_end])[0]) + 1, self.table.shape[0] - 1)].copy()


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
    if len(pairs) == 0:
        raise ValueError("no training pairs (every user has a single basket?)")
    set_torch_threads(c.threads)
    torch.manual_seed(seed)
    epochs = _Epochs(nets, pairs, pop, c, half_life_days, np.random.default_rng(seed), device)
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


class _Epochs:
    """One epoch at a time: batches of pairs, the losses, both optimisers' steps."""

    def __init__(self, nets, pairs, pop, c: TrainConfig, half_life_days, rng, device) -> None:
        self.nets, self.pairs, self.pop, self.c = nets, pairs, pop, c
        self.half_life_days, self.rng, self.device = half_life_days, rng, device
        tower, G, D = nets.tower, nets.G, nets.D
        self.F0 = tower.emb.detach().clone()
        self.N = self.F0.shape[0]
        g_params = [p for n_, p in tower.named_parameters() if n_ != "emb"]
        self.opt_g = torch.optim.Adam(
            [
                {"params": [tower.emb], "weight_decay": 0.0, "lr": c.lr * c.item_lr},
                # scalars and biases: few, and each sees every batch; a larger step lets the
                # popularity prior settle within the first epoch
                {"params": g_params, "weight_decay": 0.0, "lr": c.lr * 5},
                {"params": G.parameters(), "weight_decay": c.weight_decay},
            ],
            lr=c.lr,
        )
        self.opt_d = torch.optim.Adam(D.parameters(), lr=c.d_lr, weight_decay=c.weight_decay)
        self.p_pairs = None
        if c.pair_half_life_days:
            age = (pairs.time.max() - pairs.time) / DAY
            p_pairs = decay_weights(age, c.pair_half_life_days)
            self.p_pairs = p_pairs / p_pairs.sum()
        self.n_epoch = c.pairs_per_epoch or len(pairs)
        self.pop_table = torch.as_tensor(pop.table, device=device) if pop is not None else None

    def run(self, epoch: int, show_progress: bool, last_score: float | None = None) -> dict:
        """Train one epoch; returns its mean losses. The progress bar counts pairs (so its
        rate is pairs/s) and shows the last validation score."""
        c, pairs = self.c, self.pairs
        self.nets.train()
        if self.p_pairs is None and c.pairs_per_epoch is None:
            order = self.rng.permutation(len(pairs))
        else:
            order = self.rng.choice(len(pairs), size=self.n_epoch, replace=True, p=self.p_pairs)
        sums = {"ret": 0.0, "d": 0.0, "g_adv": 0.0}
        bar = tqdm(
            total=len(order),
            desc=f"epoch {epoch}/{c.epochs}",
            unit="pair",
            unit_scale=True,
            mininterval=1.0,  # a log file, not only a terminal, may be reading it
            disable=not show_progress,
            leave=False,
        )
        if last_score is not None:
            bar.set_postfix(valid_ndcg=f"{last_score:.4f}")
        with bar:
            for start in range(0, len(order), c.batch_size):
                idx = order[start : start + c.batch_size]
                self._step(idx, sums)
                bar.update(len(idx))
        return {k: v / len(order) for k, v in sums.items()}

    def _batch(self, idx: np.ndarray):
        """The batch's tensors: histories, their weights, targets, popularity features."""
        c, pairs, device = self.c, self.pairs, self.device
        hist_np, ht_np = pairs.histories(idx)
        if c.history_dropout > 0:
            drop = self.rng.random(hist_np.shape) < c.history_dropout
            hist_np = np.where(drop, -1, hist_np)
        w_np = decay_weights((pairs.time[idx][:, None] - ht_np) / DAY, self.half_life_days)
        hist = torch.as_tensor(hist_np, device=device)  # (B, L)
        w = torch.as_tensor(w_np, dtype=torch.float32, device=device)  # (B, L)
        target = torch.as_tensor(pairs.target[idx], device=device)  # (B,)
        if self.pop_table is not None:
            days = torch.as_tensor(self.pop.day_of(pairs.time[idx]), device=device)
            logpop = self.pop_table[days]  # (B, W, N)
        else:
            logpop = torch.zeros((), device=device)
        return hist, w, target, logpop

    def _step(self, idx: np.ndarray, sums: dict) -> None:
        c, device, N = self.c, self.device, self.N
        tower, G = self.nets.tower, self.nets.G
        hist, w, target, logpop = self._batch(idx)
        B = len(idx)
        E = tower.vectors()  # (N, d)
        b = decay_pool(E, hist, w)  # (B, d)
        z = c.noise_std * torch.randn(B, G.noise_dim, device=device)
        f = G(b, z)  # (B, d)
        # seen items are never recommended: do not spend the softmax on them
        seen = torch.zeros(B, N, dtype=torch.bool, device=device)
        seen.scatter_(1, hist.clamp(min=0), hist >= 0)
        seen[torch.arange(B, device=device), target] = False
        loss = torch.zeros((), device=device)
        ret, full = self._retrieval_loss(f, logpop, seen, target)
        if c.retrieval:
            loss = loss + ret
        sums["ret"] += float(ret.detach()) * B
        if c.anchor > 0:
            loss = loss + c.anchor * ((tower.emb - self.F0) ** 2).sum(1).mean()
        if c.adversarial:
            loss = loss + c.adv_weight * self._adversarial(E, b, f, hist, full, seen, target, sums)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()

    def _retrieval_loss(self, f, logpop, seen, target):
        """Cross-entropy of the bought item among the catalog (or sampled negatives); also
        the full score rows ``(B, N)`` when computed (hard negatives for D)."""
        c, tower, B = self.c, self.nets.tower, len(target)
        if c.n_sampled:
            neg = torch.randint(0, self.N, (c.n_sampled,), device=self.device)
            cand = torch.cat([target, neg])  # (B + S,)
            logits = tower.scores(f, logpop, cand)  # (B, B + S)
            logits = logits.masked_fill(seen[:, cand], -1e9)
            same = cand[None, :] == target[:, None]
            same[torch.arange(B), torch.arange(B)] = False
            logits = logits.masked_fill(same, -1e9)  # duplicates of the target
            return Fn.cross_entropy(logits, torch.arange(B, device=self.device)), None
        full = tower.scores(f, logpop).masked_fill(seen, -1e9)  # (B, N)
        return Fn.cross_entropy(full, target), full

    def _adversarial(self, E, b, f, hist, full, seen, target, sums) -> torch.Tensor:
        """One discriminator step; returns G's non-saturating adversarial loss."""
        c, D, B = self.c, self.nets.D, len(target)
        Ed = E.detach()
        hv, hm = Ed[hist.clamp(min=0)], (hist >= 0).float()  # (B, L, d), (B, L)
        bd = b.detach()
        neg = _negatives(full, seen, target, c.n_negatives, self.N, self.device)  # (B, k)
        real = D(bd, Ed[target], hv, hm)  # (B,)
        fake = D(bd, f.detach(), hv, hm)  # (B,)
        negl = D(bd, Ed[neg], hv, hm)  # (B, k)
        bce = Fn.binary_cross_entropy_with_logits
        d_loss = bce(real, torch.ones_like(real)) + 0.5 * (
            bce(fake, torch.zeros_like(fake)) + bce(negl, torch.zeros_like(negl))
        )
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        sums["d"] += float(d_loss.detach()) * B
        g_adv = bce(D(bd, f, hv, hm), torch.ones_like(real))  # non-saturating
        sums["g_adv"] += float(g_adv.detach()) * B
        return g_adv


def _negatives(full, seen, target, k, N, device):
    """Real-but-not-bought items: half drawn from G's softmax (hard), half uniform."""
    B = target.shape[0]
    n_hard = k // 2 if full is not None else 0
    parts = []
    if n_hard:
        probs = full.detach().masked_fill(seen, -1e9)
        probs[torch.arange(B, device=device), target] = -1e9
        parts.append(torch.multinomial(probs.softmax(-1), n_hard, replacement=True))
    uni = torch.randint(0, N, (B, k - n_hard), device=device)
    uni = torch.where(uni == target[:, None], (uni + 1) % N, uni)
    parts.append(uni)
    return torch.cat(parts, 1)
