"""Generator, discriminator and the item scorer they share (torch modules).

Shapes: ``B`` customers, ``L`` history slots (``-1`` = empty), ``C`` candidate items, ``d`` the
item-vector dimension, ``N`` the catalog size.

- :class:`ItemTower` holds the item vectors used for retrieval (initialised from the item
  features ``F``, refined by training), a learned item bias and the weight of a recent-
  popularity features (one per window): ``score(q, i) = s · q·e_i + b_i + Σ_w α_w logpop_wi``,
  an inner product of ``[s q, 1]`` with ``[e_i, prior_i]``, so nearest-neighbour search applies.
- :class:`Generator` ``G(b_u, z) -> f̂``: maps a behaviour embedding and noise to a unit vector
  in item space.
- :class:`Discriminator` ``D(b_u, f, history) -> logit``: is ``f`` something this customer
  would buy? It attends over the history's items one by one (item-to-item signal), not only
  the pooled ``b_u``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as Fn
from torch import nn

from recogan.gan.config import GANConfig


def decay_pool(E: torch.Tensor, hist: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weighted mean of item vectors ``E[hist]`` (``hist`` ``(B, L)``, -1 = empty, weights
    ``(B, L)``), L2-normalised: the behaviour embedding ``b_u`` ``(B, d)``."""
    return pool_vectors(E[hist.clamp(min=0)], hist, w)


def pool_vectors(h: torch.Tensor, hist: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """:func:`decay_pool` of history vectors already gathered, ``h = E[hist]`` ``(B, L, d)``
    (training gathers them once for G and D)."""
    mask = (hist >= 0).to(h.dtype) * w  # (B, L)
    b = torch.bmm(mask.unsqueeze(1), h).squeeze(1)  # (B, d)
    return Fn.normalize(b / mask.sum(1, keepdim=True).clamp(min=1e-12), dim=-1)


class _PopPrior(torch.autograd.Function):
    """``base_c + Σ_w α_w T[w, day_b, item_c]`` per batch row and candidate item ``(B, C)``,
    one window at a time: the item prior without a ``(B, W, C)`` tensor (the backward gathers
    each window's features again instead of keeping them)."""

    @staticmethod
    def forward(ctx, base, alpha, table, index):
        out = None
        for w in range(table.shape[0]):
            g = _cells(table[w], index)
            out = g.mul_(alpha[w]) if out is None else out.addcmul_(g, alpha[w])
        out.add_(base)
        ctx.save_for_backward(alpha, table, index)
        return out

    @staticmethod
    def backward(ctx, grad):
        alpha, table, index = ctx.saved_tensors
        flat = grad.float().reshape(-1)
        g_alpha = torch.stack(
            [flat @ _cells(table[w], index).reshape(-1) for w in range(len(table))]
        )
        return grad.sum(0), g_alpha.to(alpha.dtype), None, None


class _PopPriorByDay(torch.autograd.Function):
    """The prior of every item ``(B, N)``, computed once per distinct day of the batch (a
    batch of 512 pairs spans ~220 days on the real datasets) and copied to the rows; the
    backward sums the gradient's rows by day first, then takes each window's dot product over
    those days only. Same value and gradient as gathering each window's ``(B, N)`` rows, in
    about half the memory passes over ``(B, N)`` blocks. With ``by_day`` False (on a GPU, where
    finding the distinct days would wait for the device) every row counts as its own day."""

    @staticmethod
    def forward(ctx, base, alpha, table, days, by_day=True):
        udays, inv = torch.unique(days, return_inverse=True) if by_day else (days, None)
        W, N = table.shape[0], table.shape[2]
        feats = table.index_select(1, udays).float()  # (W, U, N)
        per_day = (alpha.float()[None, :] @ feats.view(W, -1)).view(-1, N)  # (U, N)
        per_day.add_(base)
        ctx.save_for_backward(feats, inv)
        ctx.dtypes = base.dtype, alpha.dtype
        return per_day if inv is None else per_day.index_select(0, inv)

    @staticmethod
    def backward(ctx, grad):
        feats, inv = ctx.saved_tensors
        W, U, N = feats.shape
        if inv is None:
            by_day = grad.float()
        else:
            by_day = grad.new_zeros(U, N, dtype=torch.float32).index_add_(0, inv, grad.float())
        g_alpha = feats.view(W, -1) @ by_day.reshape(-1)  # (W,)
        g_base = by_day.sum(0)
        return g_base.to(ctx.dtypes[0]), g_alpha.to(ctx.dtypes[1]), None, None, None


def _cells(table_w: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """One window's ``(n_days, N)`` features at the cells ``index`` (flat ``day * N + item``,
    ``(B, C)``)."""
    return table_w.reshape(-1).index_select(0, index.reshape(-1)).view(index.shape)


def pop_prior(alpha: torch.Tensor, table: torch.Tensor, days: torch.Tensor, items=None, base=None):
    """The prior of every item (or of ``items`` ``(C,)``) for batch rows on ``days``
    ``(B,)``: ``base_i + Σ_w alpha_w table[w, days_b, i]`` with ``table`` the
    ``(W, n_days, N)`` log-popularity features and ``base`` ``(N,)`` or ``(C,)`` (e.g. the
    learned bias; zeros when None); ``(B, N)`` or ``(B, C)``, differentiable in ``alpha`` and
    ``base``."""
    if base is None:
        base = table.new_zeros(table.shape[2] if items is None else int(items.shape[0]))
    if items is None:
        return _PopPriorByDay.apply(base, alpha, table, days, days.device.type == "cpu")
    flat = days[:, None] * table.shape[2] + items[None, :]  # (B, C) cells of a day x item grid
    return _PopPrior.apply(base, alpha, table, flat)


class ItemTower(nn.Module):
    def __init__(
        self, F: torch.Tensor, logit_scale: float = 10.0, n_pop: int = 1, pop_weight: float = 1.0
    ):
        super().__init__()
        self.emb = nn.Parameter(F.clone().float())  # (N, d), starts at the item features
        self.bias = nn.Parameter(torch.zeros(F.shape[0]))  # (N,)
        # starting at 1 makes the untrained model rank by recent popularity: a strong prior
        # on temporal splits, which personalisation then has to beat
        self.pop_weight = nn.Parameter(torch.full((max(n_pop, 1),), pop_weight / max(n_pop, 1)))
        self.log_scale = nn.Parameter(torch.tensor(float(logit_scale)).log())

    def vectors(self) -> torch.Tensor:
        return Fn.normalize(self.emb, dim=-1)  # (N, d) unit rows

    def scores(self, q: torch.Tensor, logpop: torch.Tensor, items=None) -> torch.Tensor:
        """``(B, N)`` scores of every item (or of ``items``) for queries ``q`` ``(B, d)``;
        ``logpop`` (popularity features) is ``(W, N)``, per query ``(B, W, N)``, or a 0-d zero."""
        E = self.vectors()
        bias = self.bias
        if items is not None:
            E, bias = E[items], bias[items]
            logpop = logpop[..., items] if logpop.dim() else logpop
        prior = (self.pop_weight[:, None] * logpop).sum(-2) if logpop.dim() else logpop
        return self.log_scale.exp() * q @ E.T + bias + prior

    def prior(self, logpop: torch.Tensor) -> torch.Tensor:
        """``(N,)`` item prior ``b_i + Σ_w α_w logpop_wi`` for features ``(W, N)``."""
        return self.bias + (self.pop_weight[:, None] * logpop).sum(0)


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` with a cheaper mask on the CPU: 16 random bits per element
    (four elements per 64-bit draw) compared with a threshold, where torch's CPU Bernoulli
    draws a full random number per element (several times the cost of a matrix product of
    the same size). The drop probability is ``p`` rounded to a multiple of ``2**-16`` and the
    kept values are scaled by ``1 / (1 - that)``, so the expectation is unchanged. The bits
    come from torch's default generator, as ``nn.Dropout``'s do; on other devices it is
    ``nn.Dropout``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        drop = round(self.p * 65536)
        if drop >= 65536:
            return x * 0.0
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
        keep = bits.view(torch.int16)[:n].view(x.shape) >= drop - 32768  # P = 1 - drop / 2**16
        # (through uint8: torch converts bytes to floats several times faster than bools)
        return x * keep.view(torch.uint8).to(x.dtype).mul_(65536 / (65536 - drop))


def attend(f, hist_vecs, valid, tau):
    """The history attended with each ``f`` ``(B, C, d)`` as the query: ``ctx`` ``(B, C, d)``,
    the softmax over ``tau f·h_l`` of the valid items ``valid`` ``(B, L)`` of ``hist_vecs``
    ``(B, L, d)`` (zero for an empty history), and ``best`` ``(B, C, 1)``, the largest
    ``f·h_l`` among them (-1 for none). When only ``tau`` takes a gradient (the
    discriminator's own step, on the CPU) :class:`_AttendTau` computes the same."""
    if (
        tau.requires_grad
        and torch.is_grad_enabled()
        and not (f.requires_grad or hist_vecs.requires_grad)
        and f.device.type == "cpu"
    ):
        return _AttendTau.apply(f, hist_vecs, valid, tau)
    sim = f @ hist_vecs.transpose(1, 2)  # (B, C, L)
    valid = valid.unsqueeze(1)  # (B, 1, L)
    att = (tau * sim).masked_fill(~valid, -1e9).softmax(-1)
    att = att * valid.any(-1, keepdim=True)  # empty history: no context
    best = sim.masked_fill(~valid, -1.0).max(-1, keepdim=True).values  # (B, C, 1)
    return att @ hist_vecs, best


class _AttendTau(torch.autograd.Function):
    """:func:`attend` differentiable in ``tau`` only. Its gradient, ``Σ g·∂ctx/∂tau =
    Σ_l a_l s_l (g·h_l) - (g·ctx) Σ_l a_l s_l`` (``a`` the weights, ``s`` the similarities),
    takes one batched product ``Σ_l a_l s_l h_l`` in the forward pass, where autograd would
    take the ``(B, C, L)`` gradient of the weights through a product with the transposed
    history vectors and the softmax's and masks' backward passes (several times as long on
    the CPU)."""

    @staticmethod
    def forward(ctx, f, h, valid, tau):
        sim = f @ h.transpose(1, 2)  # (B, C, L)
        inval = ~valid.unsqueeze(1)  # (B, 1, L)
        a = (sim * tau).masked_fill_(inval, -1e9).softmax(-1)
        a.mul_(valid.any(-1).to(a.dtype)[:, None, None])  # empty history: no context
        out = torch.bmm(a, h)  # (B, C, d)
        best = sim.masked_fill_(inval, -1.0).amax(-1, keepdim=True)  # (B, C, 1)
        a_s = a.mul_(sim)  # (the masked slots: a = 0)
        ctx.save_for_backward(out, torch.bmm(a_s, h), a_s.sum(-1, keepdim=True))
        ctx.mark_non_differentiable(best)
        return out, best

    @staticmethod
    def backward(ctx, g_out, _g_best):
        out, u, a_s = ctx.saved_tensors
        g_tau = (g_out * u).sum() - ((g_out * out).sum(-1, keepdim=True) * a_s).sum()
        return None, None, None, g_tau


def _mlp(d_in: int, hidden: int, depth: int, d_out: int, dropout: float, sn: bool = False):
    wrap = nn.utils.parametrizations.spectral_norm if sn else (lambda m: m)
    layers: list[nn.Module] = []
    width = d_in
    for _ in range(depth):
        layers += [wrap(nn.Linear(width, hidden)), nn.GELU(), Dropout(dropout)]
        width = hidden
    layers.append(wrap(nn.Linear(width, d_out)))
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """``f̂ = normalize(b_u + MLP([b_u, z]))``: the residual keeps f̂ near the history."""

    def __init__(self, d: int, config: GANConfig) -> None:
        super().__init__()
        self.noise_dim = config.noise_dim
        self.net = _mlp(d + config.noise_dim, config.g_hidden, config.g_depth, d, config.dropout)

    def forward(self, b: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        if z is None:
            z = b.new_zeros(b.shape[0], self.noise_dim)  # deterministic mode
        x = torch.cat([b, z], dim=-1)  # (B, d + nz)
        return Fn.normalize(b + self.net(x), dim=-1)  # (B, d)


class Discriminator(nn.Module):
    """Logit that item vector ``f`` is a real next purchase of a customer.

    Features per (customer, item): ``f ⊙ b_u``, ``f·b_u``, and with attention ``f ⊙ ctx``,
    ``f·ctx`` and the largest similarity of ``f`` to any history item, where ``ctx`` is the
    history attended with ``f`` as the query.
    """

    def __init__(self, d: int, config: GANConfig) -> None:
        super().__init__()
        self.attention = config.d_attention
        n_in = d + 1 + (d + 2 if self.attention else 0)
        self.temp = nn.Parameter(torch.tensor(10.0).log())
        self.net = _mlp(
            n_in, config.d_hidden, config.d_depth, 1, config.dropout, config.spectral_norm
        )

    def forward(
        self,
        b: torch.Tensor,
        f: torch.Tensor,
        hist_vecs: torch.Tensor | None = None,
        hist_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``b`` (B, d); ``f`` (B, d) or (B, C, d); ``hist_vecs`` (B, L, d) with ``hist_mask``
        (B, L) (1 = real item). Returns logits (B,) or (B, C)."""
        single = f.dim() == 2
        if single:
            f = f.unsqueeze(1)  # (B, 1, d)
        bb = b.unsqueeze(1).expand_as(f)  # (B, C, d)
        fb = f * bb
        feats = [fb, fb.sum(-1, keepdim=True)]
        if self.attention:
            if hist_vecs is None or hist_mask is None:
                raise ValueError("this discriminator attends over the history: pass hist_vecs")
            ctx, best = attend(f, hist_vecs, hist_mask > 0, self.temp.exp())
            fc = f * ctx
            feats += [fc, fc.sum(-1, keepdim=True), best]
        logit = self.net(torch.cat(feats, dim=-1)).squeeze(-1)  # (B, C)
        return logit[:, 0] if single else logit
