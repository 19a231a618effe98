"""Measuring the generator's vectors against what customers bought next
(:class:`Measuring`, part of :class:`~recogan.gan.model.GANRecommender`; the measures are
:mod:`recogan.vector_quality`'s)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from recogan.data import Dataset
from recogan.gan.networks import decay_pool
from recogan.vector_quality import generation_quality


class Measuring:
    """``measure_generation``: run after every training epoch that has a validation split."""

    #: Customers and noise draws of the generated-vector measurement (:meth:`measure_generation`)
    #: run after every training epoch that has a validation split.
    GENERATION_USERS = 500
    GENERATION_DRAWS = 8

    def measure_generation(self, data: Dataset, users: int | None = None, draws: int | None = None):
        """How the generator's draws sit among what customers really bought next (see
        :mod:`recogan.vector_quality`): for up to ``users`` customers of ``data`` (seeded
        choice among those with a purchase there they had not made before), ``draws`` vectors
        ``G(b_u, z)`` with the training noise, against the vectors of those new purchases:
        Fréchet distance, k-NN precision / recall, draw spread and draw coverage (the share of
        a customer's purchases that are the nearest eligible item of at least one draw).
        Returns the summary dict (empty when no customer qualifies)."""
        c = self.config
        users = self.GENERATION_USERS if users is None else int(users)
        S = self.GENERATION_DRAWS if draws is None else int(draws)
        u, i = data.user_idx, data.item_idx
        known = (u < self.n_users_) & (i < self.n_items_)
        X = sp.csr_matrix(
            (np.ones(int(known.sum()), np.float32), (u[known], i[known])),
            shape=(self.n_users_, self.n_items_),
        )
        X = (X > 0).astype(np.float32) - self.seen_.multiply(X > 0)  # new purchases only
        X.eliminate_zeros()
        who = np.flatnonzero(np.diff(X.indptr) > 0)
        if not len(who):
            return {}
        rng = np.random.default_rng([c.seed, 7])
        if len(who) > users:
            who = np.sort(rng.choice(who, users, replace=False))
        hist, w, _ = self._known_histories(who)
        z = c.noise_std * rng.standard_normal((len(who) * S, c.noise_dim)).astype(np.float32)
        nets, dev = self.nets_, self.device_
        with torch.no_grad():
            E = nets.tower.vectors()
            b = decay_pool(
                E,
                torch.as_tensor(hist, device=dev),
                torch.as_tensor(w, dtype=torch.float32, device=dev),
            )
            q = nets.G(b.repeat_interleave(S, 0), torch.as_tensor(z, device=dev))
        generated = q.cpu().numpy().reshape(len(who), S, -1)
        quality = generation_quality(
            generated, X[who], self.item_index_[:, :-1], exclude=self.seen_[who], seed=c.seed
        )
        return quality.summary()
