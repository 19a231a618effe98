"""The audience tail, the GAN's own diversity (:class:`AudienceTail`, part of
:class:`~recogan.gan.model.GANRecommender`).

With ``diversity`` d > 0 the last ``d n`` positions of a list go to the best other items of
the customer's top ``DIVERSITY_DEPTH`` whose audience the customer is in: those it scores as
high for as the best ``AUDIENCE_SHARE`` of customers (:meth:`AudienceTail.audience_thresholds`;
a fractional ``d n`` gives that share of customers one more such position, a seeded choice
per customer). :func:`splice` joins the head and the tail into one list.
"""

from __future__ import annotations

import threading

import numpy as np
import scipy.sparse as sp


class AudienceTail:
    """Items' audiences and how many tail positions each list gets."""

    def diversity_slots(self, n: int, keys) -> np.ndarray:
        """How many of each list's ``n`` positions, the last ones, the diversity knob gives
        to the audience tail, per noise key ``(kind, key)`` (a customer's): ``diversity ×
        n`` on average, ``floor`` of it for most and one more for a seeded share of
        customers equal to its fractional part."""
        x = min(float(n), round(self.config.diversity * n, 9))
        whole = int(np.floor(x))
        if x == whole:  # no fractional share to draw (d = 0 included)
            return np.full(len(keys), whole, np.int64)
        return whole + (_key_uniform(self.config.seed, keys) < x - whole).astype(np.int64)

    #: Items per customer that the diversity knob's tail is chosen from (each draw's
    #: nearest, as retrieved for the head).
    DIVERSITY_DEPTH = 2000
    #: Customers (a seeded sample of those with a history) that measure items' audiences.
    AUDIENCE_USERS = 8192
    #: An item's audience: the share of the sampled customers it scores highest for. The
    #: tail takes items whose audience the customer is in (chosen on the validation windows
    #: of Online Retail and MovieLens-1M: benchmarks/RESULTS.md, "The tail from the items'
    #: audiences").
    AUDIENCE_SHARE = 0.003
    #: The fewest customers an audience holds (a quantile of fewer is mostly noise; with
    #: few customers the share is larger).
    AUDIENCE_MIN = 10

    def audience_thresholds(self) -> np.ndarray:
        """Each item's audience threshold ``(items,)``: the score (the retrieval score, prior
        included, seen items left out) that puts a customer in the best ``AUDIENCE_SHARE``
        of ``AUDIENCE_USERS`` sampled customers for that item, the ``ceil(share ×
        sampled)``-th highest of their scores (at least the ``AUDIENCE_MIN``-th). A
        customer scoring at least that is among the item's best customers, one of its
        reverse nearest neighbours; a hub, an item near many customers' queries, tops many
        lists but has no more of these than any other item. Computed when first needed and
        kept (per prior weight); products placed later get theirs when next needed."""
        self.check_fitted()
        cache = self._audience_cache
        key = float(self.config.prior_weight)
        with cache["lock"]:
            have = cache.get(key, np.zeros(0, np.float32))
            N = len(self.item_index_)
            if len(have) < N:
                have = np.concatenate([have, self._audiences(np.arange(len(have), N))])
                cache[key] = have
            return have[:N]

    def _audiences(self, items: np.ndarray) -> np.ndarray:
        c = self.config
        has = np.flatnonzero((self.user_hist_ >= 0).any(1))
        users = has
        if len(has) > self.AUDIENCE_USERS:
            rng = np.random.default_rng([c.seed, 2])
            users = np.sort(rng.choice(has, self.AUDIENCE_USERS, replace=False))
        if not len(users):
            return np.full(len(items), -np.inf, np.float32)
        _, q, _ = self._queries(*self._known_histories(users), draws=1)
        Q = self._index_queries(q[:, 0].cpu().numpy())  # the deterministic draw (z = 0)
        seen = sp.csr_matrix(self.seen_[users])
        k = max(1, int(np.ceil(round(self.AUDIENCE_SHARE * len(users), 9))))
        k = min(len(users), max(k, self.AUDIENCE_MIN))
        out = np.empty(len(items), np.float32)
        step = max(1, 2**22 // len(users))  # a (users, step) block of ~16 MB
        for s in range(0, len(items), step):
            cols = items[s : s + step]
            raw = Q @ self.item_index_[cols].T  # (users, cols)
            block = raw.copy()
            old = cols < seen.shape[1]
            sub = seen[:, cols[old]].tocoo()
            block[sub.row, np.flatnonzero(old)[sub.col]] = -np.inf
            # an item every sampled customer has bought keeps its scores, seen or not
            bought_by_all = ~np.isfinite(block).any(0)
            block[:, bought_by_all] = raw[:, bought_by_all]
            out[s : s + step] = -np.partition(-block, k - 1, axis=0)[k - 1]
        return out

    def _forget_audiences(self) -> None:
        """Drop the audience thresholds (the item index changed). They are kept by prior
        weight and shared with the shallow copies that recogan.diversity makes, so they are
        computed once per model."""
        self._audience_cache = {"lock": threading.Lock()}


def splice(parts):
    """Lists made of consecutive segments: ``parts`` is ``[(items, scores, count), ...]``,
    each a ``(B, ·)`` ranking (best first, -1/-inf padded) and ``count`` an int or one per
    row; each segment takes its ranking's first ``count`` items not already in the list,
    plus what the segments before it came short of. A segment's scores are capped at the
    list's score before it, so lists stay best first. Padding (-1 / -inf) comes only at the
    end."""
    B = len(parts[0][0])
    ids = np.zeros((B, 0), np.int64)
    sc = np.zeros((B, 0), np.float32)
    short = np.zeros(B, np.int64)  # positions the segments so far could not fill
    for p_ids, p_sc, count in parts:
        fresh = (p_ids >= 0) & ~(p_ids[:, :, None] == ids[:, None, :]).any(-1)
        order = np.argsort(~fresh, axis=1, kind="stable")  # fresh ones first, in order
        ok = np.take_along_axis(fresh, order, 1)
        want = count + short
        take = np.minimum(ok.sum(1), want)
        short = want - take
        width = int(take.max(initial=0))
        new_ids = np.take_along_axis(p_ids, order, 1)[:, :width]
        new_sc = np.take_along_axis(p_sc, order, 1)[:, :width]
        if ids.shape[1]:
            prev = np.where(np.isfinite(sc), sc, np.inf).min(1, keepdims=True)
            new_sc = np.minimum(new_sc, prev)
        used = np.arange(width)[None, :] < take[:, None]
        ids, sc = _packed(ids, sc, np.where(used, new_ids, -1), np.where(used, new_sc, -np.inf))
    total = int(np.max(sum(np.asarray(count) for _, _, count in parts), initial=0))
    pad = total - ids.shape[1]
    if pad > 0:
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        sc = np.pad(sc, ((0, 0), (0, pad)), constant_values=-np.inf)
    return ids, sc.astype(np.float32)


def _packed(ids, sc, new_ids, new_sc):
    """Rows of ``ids`` followed by ``new_ids`` with every row's -1 pads moved to its end."""
    both = np.hstack([ids, new_ids])
    both_sc = np.hstack([sc, new_sc]).astype(np.float32)
    order = np.argsort(both < 0, axis=1, kind="stable")
    both, both_sc = np.take_along_axis(both, order, 1), np.take_along_axis(both_sc, order, 1)
    width = int((both >= 0).sum(1).max(initial=0))
    return both[:, :width], both_sc[:, :width]


def _key_uniform(seed: int, keys) -> np.ndarray:
    """A number in [0, 1) per noise key ``(kind, key)``, fixed by ``seed`` (splitmix64), so
    a customer's share of a fractional tail never depends on who else is in the batch."""
    mask = (1 << 64) - 1
    x = np.array([((kind << 32) + key) & mask for kind, key in keys], np.uint64)
    x ^= np.uint64((int(seed) * 0x9E3779B97F4A7C15) & mask)
    x += np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)
