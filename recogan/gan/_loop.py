"""The device-resident training loop: one epoch of batches, the losses and both optimisers'
steps (:class:`_Epochs`), over the pairs held as tensors on the training device
(:class:`DevicePairs`), with the samplers of negatives and hard negatives."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as Fn
from tqdm.auto import tqdm

from recogan.features import DAY, decay_weights
from recogan.gan.config import TrainConfig
from recogan.gan.networks import pool_vectors, pop_prior
from recogan.gan.pairs import TrainingPairs, WindowPopularity

#: Spacing of users in the (user, time) key of :class:`DevicePairs`: more seconds than any
#: span of timestamps (2**36 s is ~2,000 years; users up to 2**27 keep it in int64).
_KEY = 1 << 36


class DevicePairs:
    """The training pairs as tensors on the training device, built once: a batch is a slice
    of an index tensor, and its histories, their weights and its popularity days are
    gathered there (no per-batch host work). Same histories as
    :meth:`TrainingPairs.histories`.

    Memory: the event arrays (item, time, a (user, time) key) and seven numbers per pair."""

    def __init__(
        self,
        pairs: TrainingPairs,
        pop: WindowPopularity | None,
        device: str,
        half_life_days: float | None,
    ) -> None:
        def tensor(a, dtype=torch.int64):
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

        self.L, self.basket_context = pairs.max_history, pairs.basket_context
        self.half_life = float(half_life_days) if half_life_days else None
        self.items = tensor(pairs.items)
        self.times = tensor(pairs.times)
        self.start = tensor(pairs.indptr[pairs.user])
        self.end = tensor(pairs.cut)
        self.pos = tensor(pairs.pos)
        self.target = tensor(pairs.target)
        self.time = tensor(pairs.time)
        self.day = tensor(pop.day_of(pairs.time)) if pop is not None else None
        # (user, time) of every event as one sorted key: a lagged cut is a searchsorted
        self._t0 = int(pairs.times.min()) if len(pairs.times) else 0
        users = np.repeat(np.arange(len(pairs.indptr) - 1), np.diff(pairs.indptr))
        self.keys = tensor(users.astype(np.int64) * _KEY + (pairs.times - self._t0))
        self.user_key = tensor(pairs.user.astype(np.int64) * _KEY)
        width = self.L + 1 if self.basket_context else self.L
        self._offsets = torch.arange(-width, 0, device=device)
        self._cols = torch.arange(self.L, device=device)

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def histories(
        self, idx: torch.Tensor, lag: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(hist, age_days)``, both ``(B, max_history)``, most recent last; empty slots are
        item ``-1`` (their age is meaningless). ``lag`` (seconds, ``(B,)``): the histories
        end before ``time - lag`` instead, keeping at least one item."""
        start, end = self.start[idx], self.end[idx]
        lagged = None
        if lag is not None:
            at = self.time[idx] - self._t0 - lag  # the cut time, from the first event's
            # the first event at (or, with the basket's own items, after) the cut time
            cut = torch.searchsorted(self.keys, self.user_key[idx] + at, right=self.basket_context)
            cut = torch.where(at < 0, start, cut)  # before every event
            new_end = torch.maximum(torch.minimum(end, cut), start + 1)
            lagged, end = new_end < end, new_end
        pos = end[:, None] + self._offsets  # (B, width)
        valid = pos >= start[:, None]
        pos = pos.clamp(min=0)
        hist = torch.where(valid, self.items[pos], -1)
        ht = self.times[pos]
        if self.basket_context:
            # drop the target's own slot (or the oldest one when the basket outgrows it)
            slot = (self.pos[idx] - (end - (self.L + 1))).clamp(min=0)  # (B,)
            if lagged is not None:  # the basket is beyond a lagged cut: drop the oldest
                slot = torch.where(lagged, 0, slot)
            cols = self._cols[None, :] + (self._cols[None, :] >= slot[:, None])  # (B, L)
            hist, ht = hist.gather(1, cols), ht.gather(1, cols)
            hist = torch.where(hist == self.target[idx][:, None], -1, hist)  # repeats
        age = (self.time[idx][:, None] - ht).to(torch.float32) / DAY
        return hist, age

    def weights(self, age: torch.Tensor) -> torch.Tensor:
        """:func:`recogan.features.decay_weights` on the device."""
        if not self.half_life:
            return torch.ones_like(age)
        return torch.pow(0.5, age.clamp(min=0) / self.half_life)


class _Epochs:
    """One epoch at a time: batches of pairs, the losses, both optimisers' steps.

    Everything per batch happens on the training device: the batch is a slice of a
    permutation drawn there, its histories are gathered from :class:`DevicePairs`, the noise,
    dropout and negatives come from a seeded generator there, and the losses are summed
    there (read once per epoch). With ``item_lr == 0`` the item vectors are constants: no
    gradient flows to them and their normalised rows are computed once.
    """

    def __init__(self, nets, pairs, pop, c: TrainConfig, half_life_days, seed, device) -> None:
        self.nets, self.c, self.device = nets, c, device
        tower, G, D = nets.tower, nets.G, nets.D
        self.F0 = tower.emb.detach().clone()
        self.N = self.F0.shape[0]
        self.free_items = c.item_lr > 0 or c.anchor > 0
        tower.emb.requires_grad_(self.free_items)
        g_params = [p for n_, p in tower.named_parameters() if n_ != "emb"]
        groups = [
            # scalars and biases: few, and each sees every batch; a larger step lets the
            # popularity prior settle within the first epoch
            {"params": g_params, "weight_decay": 0.0, "lr": c.lr * 5},
            {"params": G.parameters(), "weight_decay": c.weight_decay},
        ]
        if self.free_items:
            groups.insert(0, {"params": [tower.emb], "weight_decay": 0.0, "lr": c.lr * c.item_lr})
        # fused: one kernel per step instead of a few ops per parameter (same update)
        self.opt_g = torch.optim.Adam(groups, lr=c.lr, fused=True)
        self.opt_d = torch.optim.Adam(
            D.parameters(), lr=c.d_lr, weight_decay=c.weight_decay, fused=True
        )
        self.data = DevicePairs(pairs, pop, device, half_life_days)
        self.gen = torch.Generator(device=device).manual_seed(int(seed))
        self.cdf = None
        if c.pair_half_life_days:
            age = (pairs.time.max() - pairs.time) / DAY
            p_pairs = decay_weights(age, c.pair_half_life_days)
            self.cdf = torch.as_tensor(np.cumsum(p_pairs / p_pairs.sum()), device=device)
        self.n_epoch = c.pairs_per_epoch or len(pairs)
        # (W, n_days, N): one contiguous day x item table per window
        self.pop_table = (
            torch.as_tensor(np.ascontiguousarray(pop.table.transpose(1, 0, 2)), device=device)
            if pop is not None
            else None
        )
        self.n_sampled = sampled_negatives(c, self.N)
        if self.n_sampled:
            # logQ correction: the expected count of each item among a batch's candidates
            # (in-batch targets follow the pairs' target distribution; shared ones uniform)
            w = None if self.cdf is None else np.diff(np.r_[0.0, self.cdf.cpu().numpy()])
            freq = np.bincount(pairs.target, weights=w, minlength=self.N)
            expected = c.batch_size * freq / freq.sum() + self.n_sampled / self.N
            self.log_q = torch.as_tensor(np.log(expected), dtype=torch.float32, device=device)
        self.amp = c.amp and str(device).startswith("cuda")

    def _order(self) -> torch.Tensor:
        c, n, dev = self.c, len(self.data), self.device
        if self.cdf is None and c.pairs_per_epoch is None:
            return torch.randperm(n, generator=self.gen, device=dev)
        # with replacement, by weight (inverse CDF: no category limit)
        u = torch.rand(self.n_epoch, generator=self.gen, device=dev, dtype=torch.float64)
        if self.cdf is None:
            return (u * n).long().clamp(max=n - 1)
        return torch.searchsorted(self.cdf, u * self.cdf[-1]).clamp(max=n - 1)

    def run(self, epoch: int, show_progress: bool, last_score: float | None = None) -> dict:
        """Train one epoch; returns its mean losses. The progress bar counts pairs (so its
        rate is pairs/s) and shows the last validation score."""
        c = self.c
        self.nets.train()
        order = self._order()
        sums = torch.zeros(3, device=self.device)  # ret, d, g_adv (x batch size)
        with torch.no_grad():
            E_fixed = None if self.free_items else self.nets.tower.vectors()
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
                self._step(idx, sums, E_fixed)
                bar.update(len(idx))
        ret, d, g_adv = (sums / len(order)).tolist()  # the epoch's one host sync
        return {"ret": ret, "d": d, "g_adv": g_adv}

    def _step(self, idx: torch.Tensor, sums: torch.Tensor, E_fixed) -> None:
        c, dev, data = self.c, self.device, self.data
        tower, G = self.nets.tower, self.nets.G
        B = len(idx)
        lag = None
        if c.history_lag_days > 0:
            u = torch.rand(B, generator=self.gen, device=dev, dtype=torch.float64)
            lag = (u * (c.history_lag_days * DAY)).long()
        hist, age = data.histories(idx, lag)
        if c.history_dropout > 0:
            drop = torch.rand(hist.shape, generator=self.gen, device=dev) < c.history_dropout
            hist = hist.masked_fill(drop, -1)
        w = data.weights(age)
        target = data.target[idx]
        days = data.day[idx] if data.day is not None else None
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            E = E_fixed if E_fixed is not None else tower.vectors()  # (N, d)
            h = E.index_select(0, hist.clamp(min=0).view(-1)).view(*hist.shape, -1)  # (B, L, d)
            b = pool_vectors(h, hist, w)  # (B, d)
            K = c.train_draws
            z = c.noise_std * torch.randn(B * K, G.noise_dim, generator=self.gen, device=dev)
            f = G(b.repeat_interleave(K, 0) if K > 1 else b, z)  # (B K, d), a user's K rows
            ret, neg = self._retrieval(E, f, hist, target, days)
            loss = ret if c.retrieval else torch.zeros((), device=dev)
            if c.anchor > 0:
                loss = loss + c.anchor * ((tower.emb - self.F0) ** 2).sum(1).mean()
            if c.adversarial:
                Ed, hv = E.detach(), h.detach()
                g_adv, d_loss = self._adversarial(Ed, hv, b.detach(), f, hist, target, neg)
                loss = loss + c.adv_weight * g_adv
                sums[1:] += torch.stack([d_loss.detach(), g_adv.detach()]).float() * B
        sums[0] += ret.detach().float() * B
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()

    def _retrieval(self, E, f, hist, target, days):
        """Cross-entropy of the bought item among the catalogue (full softmax) or among the
        batch's candidates (sampled softmax), for ``f`` ``(B K, d)`` (K draws per pair: the
        mixture likelihood); and ``(B, k)`` hard negatives for D drawn from the first draw's
        softmax (``None`` when D needs none)."""
        c, tower, B, dev = self.c, self.nets.tower, len(target), self.device
        K = c.train_draws
        rows = torch.arange(B, device=dev)
        rk = torch.arange(B * K, device=dev)  # row of draw k of pair b: b K + k
        own = rk // K
        days = days.repeat_interleave(K) if days is not None and K > 1 else days
        n_hard = c.n_negatives // 2 if c.adversarial else 0
        if self.n_sampled:
            neg = torch.randint(0, self.N, (self.n_sampled,), generator=self.gen, device=dev)
            cand = torch.cat([target, neg])  # (C,) = (B + S,)
            base = tower.bias[cand] - self.log_q[cand]  # the prior, logQ-corrected
            logits = self._scores(f, E[cand], base, days, cand)  # (B K, C)
            # the row's own target is column b; other columns holding it, or an item of
            # the row's history (never recommended), are no negatives
            mask = _same_or_seen(cand, hist, B, self.N)
            mask[rows, rows] = False
            logp = logits.masked_fill(_per_draw(mask, K), -1e9).log_softmax(-1)
            ret = _mixture_nll(logp[rk, own], B, K)
            m = self._adv_rows(B)
            hard = self._draw(logp[: m * K : K], rows[:m], rows[:m], n_hard)
            return ret, (None if hard is None else cand[hard])
        logits = self._scores(f, E, tower.bias, days, None).float()  # (B K, N)
        # seen items are never recommended: do not spend the softmax on them
        logp_t, hard = _SeenSoftmax.apply(
            logits, target[own], _per_draw(hist, K), n_hard, K, self.gen, self._adv_rows(B) * K
        )
        return _mixture_nll(logp_t, B, K), (hard if n_hard else None)

    def _scores(self, f, E, base, days, items):
        """``s f·e_i + base_i + popularity part``, the scale applied to the ``(B, d)``
        queries and, in float32, the prior added inside the matrix product (no extra
        ``(B, N)`` pass)."""
        tower = self.nets.tower
        prior = base
        if self.pop_table is not None:
            prior = pop_prior(tower.pop_weight, self.pop_table, days, items, base=base)
        q = f * tower.log_scale.exp()
        if self.amp:  # the product in bfloat16, the prior added in float32
            return torch.mm(q, E.T).float() + prior
        if self.pop_table is not None and items is None:  # a fresh (B, N) block: add into it
            return prior.addmm_(q, E.T)
        return torch.addmm(prior, q, E.T)

    def _draw(self, logp, rows, own, k):
        """``k`` columns per row drawn from the softmax ``logp`` without the row's own
        positive column ``own`` (hard negatives), or None."""
        if not k:
            return None
        probs = logp.detach().exp()
        probs[rows, own] = 0.0
        return sample_columns(probs, k, self.gen)

    def _adv_rows(self, B: int) -> int:
        """The leading pairs of a batch of ``B`` that the adversarial step uses."""
        return min(B, max(1, round(self.c.adv_share * B)))

    def _adversarial(self, Ed, hv, bd, f, hist, target, hard):
        """One discriminator step; returns G's non-saturating adversarial loss (and D's)."""
        c, D, dev = self.c, self.nets.D, self.device
        B = self._adv_rows(len(target))
        if B < len(target):  # (the hard negatives were drawn for these rows only)
            K = c.train_draws
            hv, bd, f, hist, target = hv[:B], bd[:B], f[: B * K], hist[:B], target[:B]
        hm = (hist >= 0).to(hv.dtype)  # (B, L)
        # real-but-not-bought items: half hard (from G's softmax), half uniform
        n_uni = c.n_negatives - (0 if hard is None else hard.shape[1])
        uni = torch.randint(0, self.N, (B, n_uni), generator=self.gen, device=dev)
        uni = torch.where(uni == target[:, None], (uni + 1) % self.N, uni)
        neg = uni if hard is None else torch.cat([hard, uni], 1)  # (B, k)
        f = f.view(B, c.train_draws, -1)  # (B, K, d)
        # real, fake (the first draw) and negatives scored in one pass: (B, 2 + k)
        shown = torch.cat([Ed[target][:, None], f[:, :1].detach(), Ed[neg]], 1)
        logit = D(bd, shown, hv, hm).float()
        bce = Fn.binary_cross_entropy_with_logits
        real, fake, negl = logit[:, 0], logit[:, 1], logit[:, 2:]
        d_loss = bce(real, torch.ones_like(real)) + 0.5 * (
            bce(fake, torch.zeros_like(fake)) + bce(negl, torch.zeros_like(negl))
        )
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        # G's loss through D, whose weights take no gradient from it
        D.requires_grad_(False)
        try:
            g_logit = D(bd, f, hv, hm).float()
        finally:
            D.requires_grad_(True)
        g_adv = bce(g_logit, torch.ones_like(g_logit))  # non-saturating, every draw
        return g_adv, d_loss.detach()


class _SeenSoftmax(torch.autograd.Function):
    """``log p(target)`` per row of the full softmax over ``logits`` ``(R, N)`` with the row's
    history items ``hist`` ``(R, L)`` (-1 = empty) masked, unless one is the row's ``target``;
    and ``k`` hard negatives per ``every``-th row of the first ``upto`` (all: None) drawn from
    that softmax without the target (:func:`sample_columns`; an empty tensor when ``k`` is 0).
    Same value and gradient as
    ``logits.masked_fill(seen, -1e9).log_softmax(-1)[rows, target]``, in a few passes over
    the ``(R, N)`` block instead of a dozen: the mask is scattered into ``logits`` at the
    history's columns, the exponentials are taken in place, and the backward rescales them
    in place. ``logits`` is overwritten (pass the scores' own fresh output, used nowhere
    else); the backward runs once."""

    @staticmethod
    def forward(ctx, logits, target, hist, k, every, gen, upto=None):
        R = logits.shape[0]
        tcol = target[:, None]
        t = logits.gather(1, tcol)  # (R, 1)
        logits.scatter_(1, torch.where(hist >= 0, hist, tcol), -1e9).scatter_(1, tcol, t)
        m = logits.amax(1, keepdim=True)
        p = logits.sub_(m).exp_()  # unnormalised probabilities, in place
        s = p.sum(1, keepdim=True)
        logp_t = (t - m - s.log()).squeeze(1)
        hard = torch.empty(0, k, dtype=torch.long, device=logits.device)
        if k:
            # without the target: zero its column while drawing, then restore it
            upto = R if upto is None else upto
            first, rows = p[:upto:every], torch.arange(0, upto, every, device=p.device)
            t_col = target[:upto:every]
            p_t = p[rows, t_col]
            p[rows, t_col] = 0.0
            hard = sample_columns(first, k, gen)
            p[rows, t_col] = p_t
        ctx.save_for_backward(p, s, target)
        ctx.mark_non_differentiable(hard)
        return logp_t, hard

    @staticmethod
    def backward(ctx, grad, _grad_hard):
        p, s, target = ctx.saved_tensors
        if getattr(ctx, "done", False):
            raise RuntimeError("_SeenSoftmax's backward runs once (it reuses its buffer)")
        ctx.done = True
        # d log p_t / d x_j = [j = t] - p_j
        g = p.mul_(-(grad[:, None] / s))
        g.scatter_add_(1, target[:, None], grad[:, None])
        return g, None, None, None, None, None, None


def sample_columns(w: torch.Tensor, k: int, gen: torch.Generator | None, block: int = 64):
    """``k`` columns per row of the non-negative weights ``w`` ``(R, N)``, drawn with
    replacement with probability ``w_rj / Σ_j w_rj`` (every row needs a positive weight), as
    ``torch.multinomial(w, k, replacement=True)`` draws them: a block of ``block`` columns
    by the blocks' sums, then a column of that block by its weights (the product of the two is
    the column's probability). One pass over ``w`` (the blocks' sums) where ``multinomial``
    builds a normalised cumulative sum of every row; the two small draws are inverse-CDF
    look-ups. Columns of weight 0 are never drawn."""
    R, N = w.shape
    full = N // block * block
    sums = w[:, :full].reshape(R, -1, block).sum(-1)  # (R, N // block)
    if full < N:
        sums = torch.cat([sums, w[:, full:].sum(1, keepdim=True)], 1)
    first = _inverse_cdf(sums, k, gen) * block  # (R, k) each draw's block's first column
    cols = first[:, :, None] + torch.arange(block, device=w.device)  # (R, k, block)
    inside = cols < N
    ww = w.gather(1, cols.clamp(max=N - 1).view(R, -1)).view(R * k, block)
    ww = ww * inside.view(R * k, block)
    return first + _inverse_cdf(ww, 1, gen).view(R, k)


def _inverse_cdf(w: torch.Tensor, k: int, gen: torch.Generator | None) -> torch.Tensor:
    """``k`` draws per row of the small non-negative weights ``w`` ``(R, M)``: the first
    column whose cumulative weight exceeds a uniform draw on ``[0, total)``."""
    cdf = w.cumsum(1)
    total = cdf[:, -1:]
    u = torch.rand(w.shape[0], k, generator=gen, device=w.device, dtype=w.dtype) * total
    u = torch.minimum(u, torch.nextafter(total, torch.zeros_like(total)))  # below the total
    return torch.searchsorted(cdf, u, right=True).clamp_(max=w.shape[1] - 1)


def _per_draw(mask: torch.Tensor, K: int) -> torch.Tensor:
    """A per-pair ``(B, ·)`` mask for the ``B K`` rows of K draws per pair."""
    return mask.repeat_interleave(K, 0) if K > 1 else mask


def _mixture_nll(logp_target: torch.Tensor, B: int, K: int) -> torch.Tensor:
    """``-mean_b log (1/K) Σ_k p_k(target_b)`` from the ``(B K,)`` log-probabilities (the
    plain cross-entropy when K = 1)."""
    if K == 1:
        return -logp_target.mean()
    return -(logp_target.view(B, K).logsumexp(1) - np.log(K)).mean()


def _same_or_seen(cand: torch.Tensor, hist: torch.Tensor, B: int, n_items: int) -> torch.Tensor:
    """``(B, C)`` mask of a sampled softmax's candidates ``cand`` (the ``B`` targets first)
    that are no negatives for a row: the row's own target item (in any column) or an item of
    its history ``hist`` ``(B, L)`` (-1 = empty). Through each item's first column among the
    candidates, so the work is ``O(B (L + C))`` whatever the catalogue size."""
    C, dev = len(cand), cand.device
    first = torch.full((n_items + 1,), C, dtype=torch.long, device=dev)  # C: not a candidate
    first.scatter_reduce_(0, cand, torch.arange(C, device=dev), reduce="amin")
    canon = first[cand]  # (C,) each column's item, as its first column
    hit = torch.zeros(B, C + 1, dtype=torch.bool, device=dev)  # column C: a sink
    hcol = torch.where(hist >= 0, first[hist.clamp(min=0)], C)  # (B, L)
    hit.scatter_(1, hcol, True)
    hit[torch.arange(B, device=dev), canon[:B]] = True  # the row's own target
    return hit[:, canon]


def sampled_negatives(c: TrainConfig, n_items: int) -> int:
    """Shared negatives per batch of the sampled softmax, 0 for the full softmax:
    ``n_sampled`` when set (0 forces the full softmax), else the full softmax up to
    ``full_softmax_items`` items and ``AUTO_SAMPLED`` shared negatives above."""
    if c.n_sampled is not None:
        if c.n_sampled < 0:
            raise ValueError(f"n_sampled must be >= 0 or None, got {c.n_sampled}")
        return int(c.n_sampled)
    return AUTO_SAMPLED if n_items > c.full_softmax_items else 0


#: Shared uniform negatives of the automatic sampled softmax (next to the batch's targets).
AUTO_SAMPLED = 2048
