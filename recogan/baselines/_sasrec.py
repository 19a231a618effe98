"""SASRec (Kang & McAuley, ICDM 2018) trained with cross-entropy over the catalogue.

Causal self-attention over each customer's purchase sequence (the last ``max_len`` events,
oldest first); the hidden state after a position scores every item through the tied item
embeddings. Trained, as in "Turning Dross Into Gold Loss" (Klenitskiy & Vasilev, RecSys 2023),
with the full softmax over the catalogue, or above ``full_softmax_items`` items with a sampled
softmax (shared negatives drawn by popularity, logQ-corrected).

Baskets. Items bought at one timestamp do not predict each other. The target at position
``q`` is predicted from the hidden state of the *last position of the previous basket*
(the last position whose time is strictly earlier than ``t_q``); under the causal mask that
state has attended only to positions ``<= p``, all at times ``<= t_p < t_q``. Positions that
are not the last of their basket predict nothing (they still serve as keys to later ones),
and the first basket's items are never targets. Recommending uses the state after the whole
history, so its last basket is seen in full.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from recogan._config import require
from recogan._threads import set_torch_threads
from recogan._topk import topn
from recogan.base import Model

log = logging.getLogger(__name__)

#: Shared negatives of the sampled softmax when it is chosen automatically.
AUTO_SAMPLED = 2048


@dataclass
class SASRecConfig:
    #: Width of the item embeddings and of every block.
    hidden: int = 64
    #: Self-attention blocks.
    blocks: int = 2
    #: Attention heads per block (``hidden`` must divide by it).
    heads: int = 1
    #: Dropout on embeddings, attention and feed-forward layers.
    dropout: float = 0.2
    #: Longest purchase sequence read per customer (the latest events).
    max_len: int = 50
    #: Adam learning rate.
    lr: float = 1e-3
    #: Adam L2 weight decay.
    weight_decay: float = 0.0
    #: Sequences (customers) per training step.
    batch_size: int = 128
    #: Most epochs; with a validation window, the epoch count early stopping keeps.
    epochs: int = 100
    #: Epochs without a better validation score before training stops.
    patience: int = 5
    #: Stop after the epoch during which this many seconds of training have passed (None: no
    #: limit). For benchmarks on a time budget; the epoch count then depends on the machine.
    max_seconds: float | None = None
    #: Shared negatives of the sampled softmax; 0: always the full softmax; None: automatic,
    #: the full softmax up to ``full_softmax_items`` items, ``AUTO_SAMPLED`` negatives above.
    n_sampled: int | None = None
    #: Catalogue size above which the automatic choice samples (the full softmax's
    #: ``(targets, items)`` score block stops paying for itself there).
    full_softmax_items: int = 20000
    #: "auto" (CUDA when present), "cpu" or "cuda".
    device: str = "auto"
    #: torch CPU threads used by ``fit`` (process-wide; one is safe on a shared machine).
    threads: int = 1
    #: Seed of the initialisation, the batch order, dropout and the negatives.
    seed: int = 0

    def __post_init__(self) -> None:
        require(self, "hidden", ge=1)
        require(self, "blocks", ge=1)
        require(self, "heads", ge=1)
        require(self, "dropout", ge=0, lt=1)
        require(self, "max_len", ge=2)
        require(self, "lr", gt=0)
        require(self, "weight_decay", ge=0)
        require(self, "batch_size", ge=1)
        require(self, "epochs", ge=1)
        require(self, "patience", ge=1)
        require(self, "max_seconds", gt=0, optional=True)
        require(self, "n_sampled", ge=0, optional=True)
        require(self, "full_softmax_items", ge=1)
        require(self, "threads", ge=1)
        require(self, "seed", ge=0)
        if self.hidden % self.heads:
            raise ValueError(
                f"SASRecConfig.hidden ({self.hidden}) must be a multiple of heads ({self.heads})"
            )
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(
                f"SASRecConfig.device must be 'auto', 'cpu' or 'cuda', not {self.device!r}"
            )


def _torch():
    import torch  # behind the lazy boundary: naming the model never imports torch

    return torch


def _device(device: str) -> str:
    torch = _torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device='cuda' but CUDA is not available")
    return device


def _build_net(n_items: int, c: SASRecConfig):
    """The network: item + position embeddings, ``blocks`` pre-LN attention blocks."""
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(c.hidden), nn.LayerNorm(c.hidden)
            self.qkv = nn.Linear(c.hidden, 3 * c.hidden)
            self.proj = nn.Linear(c.hidden, c.hidden)
            self.ff = nn.Sequential(
                nn.Linear(c.hidden, c.hidden),
                nn.GELU(),
                nn.Dropout(c.dropout),
                nn.Linear(c.hidden, c.hidden),
            )
            self.drop = nn.Dropout(c.dropout)

        def forward(self, x, mask):  # x (B, L, d), mask (B, 1, L, L) True = may attend
            B, L, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
            shape = (B, L, c.heads, d // c.heads)
            q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))  # (B, h, L, d/h)
            p = c.dropout if self.training else 0.0
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            x = x + self.drop(self.proj(a.transpose(1, 2).reshape(B, L, d)))
            return x + self.drop(self.ff(self.ln2(x)))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.item = nn.Embedding(n_items + 1, c.hidden, padding_idx=0)  # row 0: padding
            self.pos = nn.Embedding(c.max_len, c.hidden)
            self.drop = nn.Dropout(c.dropout)
            self.blocks = nn.ModuleList(Block() for _ in range(c.blocks))
            self.ln = nn.LayerNorm(c.hidden)
            nn.init.normal_(self.item.weight, std=c.hidden**-0.5)
            nn.init.normal_(self.pos.weight, std=0.02)
            with torch.no_grad():
                self.item.weight[0].zero_()

        def forward(self, seq):  # seq (B, L) item index + 1, 0 = padding (left)
            L = seq.shape[1]
            valid = seq > 0
            x = self.item(seq) * math.sqrt(c.hidden) + self.pos.weight[-L:][None]
            x = self.drop(x) * valid[..., None]
            causal = torch.ones(L, L, dtype=torch.bool, device=seq.device).tril()
            # a padded query attends to itself only, so no row of the mask is empty
            eye = torch.eye(L, dtype=torch.bool, device=seq.device)
            mask = (causal[None] & valid[:, None, :]) | eye[None]
            mask = mask[:, None]  # (B, 1, L, L)
            for block in self.blocks:
                x = block(x, mask)
            return self.ln(x)  # (B, L, d)

        def items_out(self):
            return self.item.weight[1:]  # (n_items, d), tied output embeddings

    return Net()


def basket_sources(times: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """For each position ``q`` of left-padded rows: the position whose hidden state predicts
    the item at ``q`` (the last position of the previous basket, i.e. the last one with a
    strictly earlier time), or -1 where there is none (padding, the first basket).

    ``times`` and ``valid`` are ``(B, L)``; times are non-decreasing along each valid row."""
    B, L = times.shape
    src = np.full((B, L), -1, dtype=np.int64)
    for b in range(B):
        pos = np.flatnonzero(valid[b])
        if pos.size < 2:
            continue
        t = times[b, pos]
        # index (within pos) of the last event with time < t[j]: searchsorted left - 1
        prev = np.searchsorted(t, t, side="left") - 1
        ok = prev >= 0
        src[b, pos[ok]] = pos[prev[ok]]
    return src


class SASRec(Model):
    """Self-attentive sequential recommendation, cross-entropy over the catalogue, baskets
    masked (see the module docstring). Early-stops on validation like the GAN."""

    name = "sasrec"
    Config = SASRecConfig
    early_stopping_params = ("epochs",)

    @classmethod
    def search_space(cls) -> dict[str, list]:
        # the ranges of the SASRec papers and of RecBole/RecTools' tuning guides
        return {
            "hidden": [64, 128, 256],
            "blocks": [1, 2, 3],
            "dropout": [0.1, 0.2, 0.3, 0.5],
            "lr": [3e-4, 1e-3, 3e-3],
            "max_len": [50, 100, 200],
        }

    def refit_params(self) -> dict:
        return {**self.params(), "epochs": int(max(1, self.best_epoch_))}

    # ------------------------------------------------------------------ sequences
    def _sequences(self, data) -> tuple[np.ndarray, np.ndarray]:
        """Every user's last ``max_len`` events, left-padded: item index + 1 (0 = padding)
        and times, both ``(n_users, max_len)``."""
        L = self.config.max_len
        indptr, items, times = data.histories()
        seq = np.zeros((data.n_users, L), dtype=np.int64)
        tim = np.zeros((data.n_users, L), dtype=np.int64)
        counts = np.diff(indptr)
        for u in np.flatnonzero(counts):
            s, e = indptr[u], indptr[u + 1]
            s = max(s, e - L)
            seq[u, L - (e - s) :] = items[s:e] + 1
            tim[u, L - (e - s) :] = times[s:e]
        return seq, tim

    def _n_sampled(self) -> int:
        c = self.config
        if c.n_sampled is not None:
            return int(c.n_sampled)
        return 0 if self.n_items_ <= c.full_softmax_items else AUTO_SAMPLED

    # ------------------------------------------------------------------ fitting
    def _fit(self, train, valid) -> None:
        torch = _torch()
        c = self.config
        set_torch_threads(c.threads)
        torch.manual_seed(c.seed)
        self.device_ = _device(c.device)
        dev = self.device_
        seq, tim = self._sequences(train)
        src = basket_sources(tim, seq > 0)
        users = np.flatnonzero((src >= 0).any(1))  # users with at least one target
        self.seqs_ = seq.astype(np.int32)
        self.net_ = _build_net(self.n_items_, c).to(dev)
        if users.size == 0:
            log.warning("sasrec: no customer has two baskets; the model ranks by popularity")
            self.best_epoch_ = 1
            self.history_ = []
            self.net_.eval()
            return
        opt = torch.optim.Adam(self.net_.parameters(), lr=c.lr, weight_decay=c.weight_decay)
        rng = np.random.default_rng(c.seed)
        m = self._n_sampled()
        logq = None
        if m:
            pop = np.bincount(train.item_idx, minlength=self.n_items_).astype(np.float64) + 1.0
            q = pop / pop.sum()
            q_t = torch.as_tensor(q, dtype=torch.float32, device=dev)
            logq = torch.log(q_t * m)
            gen = torch.Generator(device=dev).manual_seed(c.seed)
        best, best_state, bad, best_epoch = -np.inf, None, 0, c.epochs
        t0 = time.perf_counter()
        self.history_ = []
        for epoch in range(1, c.epochs + 1):
            self.net_.train()
            order = rng.permutation(users)
            total, n_targets = 0.0, 0
            for start in range(0, order.size, c.batch_size):
                b = order[start : start + c.batch_size]
                s = torch.as_tensor(seq[b], device=dev)
                sr = src[b]
                qi, qj = np.nonzero(sr >= 0)  # (row, target position) pairs
                h = self.net_(s)  # (B, L, d)
                hq = h[torch.as_tensor(qi, device=dev), torch.as_tensor(sr[qi, qj], device=dev)]
                y = s[torch.as_tensor(qi, device=dev), torch.as_tensor(qj, device=dev)] - 1  # (N,)
                E = self.net_.items_out()
                if not m:
                    loss = torch.nn.functional.cross_entropy(hq @ E.T, y)
                else:
                    neg = torch.multinomial(q_t, m, replacement=True, generator=gen)  # (m,)
                    pos_logit = (hq * E[y]).sum(1, keepdim=True) - logq[y][:, None]
                    neg_logit = hq @ E[neg].T - logq[neg][None]
                    neg_logit = neg_logit.masked_fill(neg[None] == y[:, None], -torch.inf)
                    logits = torch.cat([pos_logit, neg_logit], 1)
                    loss = -torch.log_softmax(logits, 1)[:, 0].mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(qi)
                n_targets += len(qi)
            row = {"epoch": epoch, "loss": total / max(1, n_targets)}
            self.net_.eval()
            if valid is not None:
                score = self.validation_score(valid)
                row["valid_score"] = score
                if score > best:
                    best, bad, best_epoch = score, 0, epoch
                    best_state = copy.deepcopy(self.net_.state_dict())
                else:
                    bad += 1
            self.history_.append(row)
            log.info("sasrec %s", row)
            if valid is not None and bad >= c.patience:
                break
            if c.max_seconds is not None and time.perf_counter() - t0 > c.max_seconds:
                log.info("sasrec: time budget of %.0f s spent after epoch %d", c.max_seconds, epoch)
                break
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        if valid is None:
            best_epoch = min(best_epoch, len(self.history_))
        elif best_state is None:  # no validation score to go by (e.g. no validation user)
            best_epoch = len(self.history_)
        self.best_epoch_ = best_epoch
        self.net_.eval()

    # ------------------------------------------------------------------ scoring
    def _score_sequences(self, seq: np.ndarray) -> np.ndarray:
        """Scores ``(B, n_items)`` after each left-padded sequence; an empty one gets the
        recent popularity every model keeps."""
        torch = _torch()
        out = np.empty((len(seq), self.n_items_), dtype=np.float32)
        empty = ~(seq > 0).any(1)
        with torch.no_grad():
            E = self.net_.items_out()
            for start in range(0, len(seq), 1024):
                s = torch.as_tensor(seq[start : start + 1024], dtype=torch.long)
                h = self.net_(s.to(self.device_))[:, -1]  # (B, d): after the whole history
                out[start : start + 1024] = (h @ E.T).float().cpu().numpy()
        if empty.any():
            out[empty] = self.popularity_.astype(np.float32)
        return out

    def score_users(self, user_idx: np.ndarray) -> np.ndarray:
        return self._score_sequences(self.seqs_[user_idx].astype(np.int64))

    def recommend_history(self, histories, n=10, exclude_seen=True, candidates=None, times=None):
        """As :meth:`Model.recommend_history`; the order of each history is its sequence
        (or the order of ``times`` where given: a stable sort, so a basket keeps its order)."""
        self.check_fitted()
        X = self.history_matrix(histories)  # checks the indices
        n = self.check_n(n, candidates)
        L = self.config.max_len
        seq = np.zeros((len(histories), L), dtype=np.int64)
        for r, h in enumerate(histories):
            h = np.asarray(h, dtype=np.int64).ravel()
            if times is not None:
                t = np.asarray(times[r], dtype=np.float64).ravel()
                if t.size != h.size:
                    raise ValueError(
                        f"times[{r}] has {t.size} entries for a history of {h.size} items"
                    )
                h = h[np.argsort(t, kind="stable")]
            h = h[-L:]
            if h.size:
                seq[r, L - h.size :] = h + 1
        scores = self._score_sequences(seq)
        return topn(scores, n, exclude=X if exclude_seen else None, candidates=candidates)

    # ------------------------------------------------------------------ persistence
    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"seqs": self.seqs_}

    def set_state_arrays(self, arrays) -> None:
        self.seqs_ = arrays["seqs"].astype(np.int32)

    def torch_state(self) -> dict[str, dict]:
        return {"net": {k: v.detach().cpu() for k, v in self.net_.state_dict().items()}}

    def set_torch_state(self, states, device: str = "cpu") -> None:
        self.device_ = _device(device)
        self.net_ = _build_net(self.n_items_, self.config).to(self.device_)
        self.net_.load_state_dict(states["net"])
        self.net_.eval()
