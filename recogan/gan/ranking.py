"""Recommending from the GAN's queries: noise draws, their merge and the discriminator's
re-rank (:class:`Ranking`, part of :class:`~recogan.gan.model.GANRecommender`).

Per customer: behaviour embedding ``b_u`` of the last ``max_history`` purchases → ``S`` query
vectors ``G(b_u, z_s)`` (draw 0 uses ``z = 0``; the others noise seeded by ``(seed, user)``,
so a user's list never depends on who else is in the batch) → the nearest eligible items per
query (seen items and candidates applied inside the search of the item index,
:func:`recogan.index.retrieve`) → merge the draws' lists (``max`` score, ``mean`` score or
reciprocal-rank fusion ``rrf``) → optional re-rank of the top ``rerank_depth`` adding
``d_weight × D(b_u, item)`` and the co-purchase evidence (whose strongest
``copurchase_candidates`` eligible items join the candidates first) → top ``n``. With
``diversity`` d > 0 the last ``d n`` positions are the audience tail (:mod:`recogan.gan.tail`).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch

from recogan._similarity import neighbour_matrix
from recogan._topk import top_k, topn
from recogan.features import DAY, decay_weights
from recogan.gan.networks import decay_pool
from recogan.gan.tail import splice
from recogan.index import retrieve


class Ranking:
    """``recommend`` and ``recommend_history`` of the GAN: queries, search, merge, re-rank."""

    def recommend(self, user_idx, n=10, exclude_seen=True, candidates=None):
        users = self.check_users(user_idx)
        n = self.check_n(n, candidates)
        hist, w, keys = self._known_histories(users)
        exclude = self.seen_[users] if exclude_seen else None
        repeats = None if exclude_seen else self._known_repeats(users)
        return self._rank(hist, w, keys, n, exclude, candidates, repeats)

    def _known_histories(self, users: np.ndarray):
        """Known customers' kept histories ``(B, L)``, their decay weights at the end of
        training and their noise keys (for :meth:`_rank`)."""
        hist, ht = self.user_hist_[users], self.user_hist_t_[users]
        w = decay_weights((self.train_end_ - ht) / DAY, self.config.half_life_days)
        return hist, w, [(0, int(u)) for u in users]

    def recommend_history(
        self,
        histories: Sequence[Sequence[int]],
        n: int = 10,
        exclude_seen: bool = True,
        candidates: np.ndarray | None = None,
        times: Sequence[Sequence[float]] | None = None,
    ):
        self.check_fitted()
        X = self.history_matrix(histories)  # validates indices
        n = self.check_n(n, candidates)
        L = self.config.max_history
        hist = np.full((len(histories), L), -1, dtype=np.int64)
        w = np.zeros((len(histories), L))
        keys = []
        for b, h in enumerate(histories):
            h = np.asarray(h, dtype=np.int64).ravel()
            t = None if times is None else np.asarray(times[b], dtype=np.float64).ravel()
            if t is not None and t.shape != h.shape:
                raise ValueError(f"history {b}: {h.size} items but {t.size} times")
            if t is not None:  # oldest first, as documented; sort to be safe
                order = np.argsort(t, kind="stable")
                h, t = h[order], t[order]
            h, t = h[-L:], (None if t is None else t[-L:])
            if h.size:
                hist[b, L - h.size :] = h
                now = max(float(self.train_end_), float(t.max())) if t is not None else 0.0
                age = (now - t) / DAY if t is not None else np.zeros(h.size)
                w[b, L - h.size :] = decay_weights(age, self.config.half_life_days)
            keys.append((1, zlib.crc32(h.astype(np.int64).tobytes())))
        repeats = None if exclude_seen else self._history_repeats(histories, times)
        return self._rank(hist, w, keys, n, X if exclude_seen else None, candidates, repeats)

    def _queries(self, hist: np.ndarray, w: np.ndarray, keys, draws: int | None = None):
        """Behaviour embeddings ``(B, d)`` and query vectors ``(B, S, d)`` (torch); ``S``
        is ``draws`` or else ``n_draws``."""
        c = self.config
        nets = self.nets_
        dev = self.device_
        S = draws or c.n_draws
        z = np.zeros((len(keys), S, c.noise_dim), dtype=np.float32)
        if S > 1 and c.inference_noise > 0:
            for i, (kind, key) in enumerate(keys):
                g = np.random.default_rng([c.seed, kind, key])
                z[i, 1:] = c.inference_noise * g.standard_normal((S - 1, c.noise_dim))
        with torch.no_grad():
            E = nets.tower.vectors()
            hist_t = torch.as_tensor(hist, device=dev)
            b = decay_pool(E, hist_t, torch.as_tensor(w, dtype=torch.float32, device=dev))
            B, d = b.shape
            zt = torch.as_tensor(z, device=dev).reshape(B * S, -1)
            q = nets.G(b.repeat_interleave(S, 0), zt).reshape(B, S, d)  # (B, S, d)
        return b, q, hist_t

    def _rank(self, hist, w, keys, n, exclude, candidates, repeats=None):
        """The lists of the customers ``hist``/``w``/``keys``; ``repeats``: their bought
        items' repeat gains (:mod:`recogan.gan.repeats`; None: no repeat evidence)."""
        c = self.config
        B = len(keys)
        if B == 0:
            return np.zeros((0, n), np.int64), np.zeros((0, n), np.float32)
        if not np.isfinite(w).all():
            raise ValueError("history weights contain NaN/inf (bad event times?)")
        b, q, hist_t = self._queries(hist, w, keys)
        S = q.shape[1]
        count = self.diversity_slots(n, keys)  # (B,) tail positions
        tail = bool(count.any())
        depth = n
        if self._reranks(repeats):
            depth = max(depth, c.rerank_depth)
        if tail:
            depth = max(depth, self.DIVERSITY_DEPTH)
        depth = min(self.n_items_, depth)
        queries = self._index_queries(q.cpu().numpy().reshape(B * S, -1))
        # every draw of a user searches with the user's exclusions and candidates
        per_draw = np.repeat(np.arange(B), S)
        ids, sc = self._search(
            queries,
            depth,
            exclude=None if exclude is None else sp.csr_matrix(exclude)[per_draw],
            candidates=_rows(candidates, per_draw),
        )
        copurchase = self._copurchase_evidence(hist, w)
        extra = []  # items that join every draw's candidates: the bought items (repeats)
        if repeats is not None:  # and the co-purchase evidence's strongest eligible items
            repeats = _allowed(repeats, candidates)
            extra.append(_row_top(repeats, c.rerank_depth))
        if copurchase is not None and c.copurchase_candidates:
            eligible = _allowed(_without(copurchase, exclude), candidates)
            extra.append(_row_top(eligible, c.copurchase_candidates))
        if extra:
            ids, sc = self._with_extra(queries, ids, sc, np.hstack(extra)[per_draw])
        # each source added widens the re-rank's pool by rerank_depth of the merged lists
        evidence = (copurchase, repeats, c.rerank_depth * len(extra))
        plain = self._order(b, hist_t, ids, sc, S, n, ids.shape[1], None, evidence)
        if not tail:
            return plain
        # the head in the model's order, then the tail: each draw's list cut to the items
        # whose audience this customer is in (score >= the item's audience threshold)
        # before the merge and D. diversity x n tail positions on average: a fractional
        # part w gives a seeded w share of customers one more. The model's order fills what
        # a short audience list leaves (so padding can only come at the end)
        floor = self.audience_thresholds()
        tail_order = self._order(b, hist_t, ids, sc, S, n, ids.shape[1], floor, evidence)
        return splice([(*plain, n - count), (*tail_order, count), (*plain, 0)])

    def _order(self, b, hist_t, ids, sc, S, n, depth, floor, evidence):
        """The top ``n`` per customer from the draws' ``(B S, depth)`` search results: those
        scoring at least ``floor[item]`` (None: all), the draws merged, then the re-rank of
        the top ``rerank_depth`` by the discriminator and the ``evidence``: co-purchase
        (:meth:`_copurchase_evidence`) and the bought items' repeat gains (or None each),
        and how many more of the merged candidates the re-rank keeps for the items added to
        each draw's (:meth:`_with_extra`)."""
        c = self.config
        B = len(b)
        copurchase, repeats, added = evidence
        keep = max(n, c.rerank_depth) if self._reranks(repeats) else n  # the re-rank's
        keep += added  # candidates, and the items added to them
        # an item among the merged best `keep` by its best draw is among that draw's best
        # `keep`, so one draw or the max rule needs no deeper lists
        deep = depth if S > 1 and c.merge != "max" else min(keep, depth)
        if floor is not None:
            sc = np.where((ids >= 0) & (sc >= floor[np.maximum(ids, 0)]), sc, -np.inf)
            ids, sc = top_k(sc.astype(np.float32), deep, ids)
        ids, sc = ids[:, :deep], sc[:, :deep]
        pool, pool_scores = _merge(ids.reshape(B, S, -1), sc.reshape(B, S, -1), keep, c.merge)
        if not self._reranks(repeats):
            return pool, pool_scores
        final = pool_scores
        if c.d_weight:
            final = final + c.d_weight * self._discriminate(b, hist_t, pool)
        if copurchase is not None:
            final = final + c.copurchase_weight * _pool_evidence(copurchase, pool)
        if repeats is not None:
            final = final + _pool_values(repeats, pool)  # bought items only
        final = np.where(pool >= 0, final, -np.inf)
        return top_k(final.astype(np.float32), n, pool)

    def _reranks(self, repeats=None) -> bool:
        c = self.config
        return bool(c.d_weight) or bool(c.copurchase_weight) or repeats is not None

    def _with_extra(self, queries, ids, sc, extra: np.ndarray):
        """Every draw's search results ``ids``/``sc`` ``(B S, depth)`` with the items
        ``extra`` ``(B S, R)`` (``-1`` pads) added, scored exactly by the draw's query and best
        first; an item the search found, or listed twice, is kept once."""
        extra = np.where(_first_in_row(extra), extra, -1)
        if self.index_ is not None:  # withdrawn products stay out
            extra = np.where(self.index_.live(extra), extra, -1)
        q_items = self.item_index_[np.maximum(extra, 0)]  # (B S, R, d+1)
        scores = np.einsum("qd,qrd->qr", queries, q_items)
        found = (extra[:, :, None] == ids[:, None, :]).any(2)
        scores = np.where((extra >= 0) & ~found, scores, -np.inf).astype(np.float32)
        both_ids = np.concatenate([ids, extra], axis=1)
        both = np.concatenate([sc.astype(np.float32), scores], axis=1)
        return top_k(both, both.shape[1], both_ids)

    def _discriminate(self, b, hist_t, pool: np.ndarray) -> np.ndarray:
        """The discriminator's logits ``(B, m)`` for the candidates ``pool``."""
        with torch.no_grad():
            nets = self.nets_
            E = nets.tower.vectors()
            p = torch.as_tensor(np.maximum(pool, 0), device=self.device_)
            hm = (hist_t >= 0).float()
            return nets.D(b, E[p], E[hist_t.clamp(min=0)], hm).cpu().numpy()  # (B, m)

    def copurchase_graph(self) -> sp.csr_matrix:
        """The items' co-purchase graph from the training purchases ``seen_`` (item-kNN's
        similarity, :func:`recogan._similarity.neighbour_matrix`), for the re-rank's
        co-purchase evidence."""
        c = self.config
        return neighbour_matrix(self.seen_, c.copurchase_k, c.copurchase_shrinkage)

    def _copurchase_evidence(self, hist: np.ndarray, w: np.ndarray) -> sp.csr_matrix | None:
        """Each customer's summed similarity to every item ``(B, n_graph)`` (sparse): the
        histories ``hist`` ``(B, L)`` (``-1`` pads) weighted by their decay ``w`` times the
        co-purchase graph; None when the knob is off."""
        if not self.config.copurchase_weight:
            return None
        graph = getattr(self, "copurchase_", None)
        if graph is None:
            raise ValueError(
                "copurchase_weight > 0 needs the co-purchase graph, which this model does not "
                "have (a bundle saved before it existed): refit, or set copurchase_weight=0"
            )
        n = graph.shape[0]
        ok = (hist >= 0) & (hist < n)  # products placed after the fit have no edges yet
        rows = np.broadcast_to(np.arange(len(hist))[:, None], hist.shape)[ok]
        H = sp.csr_matrix((w[ok].astype(np.float64), (rows, hist[ok])), shape=(len(hist), n))
        return (H @ graph).tocsr()

    def _index_queries(self, q: np.ndarray) -> np.ndarray:
        """Query vectors ``(Q, d)`` as the index searches them: ``[s q, γ]`` against items
        ``[e_i, prior_i]`` (``γ`` the prior's weight)."""
        prior = np.full((len(q), 1), self.config.prior_weight, np.float32)
        return np.hstack([q * self.scale_, prior]).astype(np.float32)

    def _search(self, queries: np.ndarray, k: int, exclude, candidates):
        """Maximum-inner-product search of ``queries`` ``(Q, d+1)`` over the item vectors
        ``[e_i, bias_i]``, eligible items only: ``(items, scores)``, each ``(Q, k)``, best
        first. Through the fitted :class:`~recogan.index.ItemIndex`; exact numpy while
        training (no index yet)."""
        if self.index_ is None:
            scores = queries @ self.item_index_.T  # (Q, N)
            return topn(scores, k, exclude=exclude, candidates=candidates)
        return retrieve(self.index_, queries, k, exclude=exclude, candidates=candidates)


def _pool_values(matrix: sp.csr_matrix, pool: np.ndarray) -> np.ndarray:
    """``matrix[b, pool[b, j]]`` ``(B, m)`` for the candidates ``pool`` (``-1`` pads: 0)."""
    B, m = pool.shape
    ok = (pool >= 0) & (pool < matrix.shape[1])
    out = np.zeros((B, m), np.float32)
    r, col = np.nonzero(ok)
    if len(r):
        out[r, col] = np.asarray(matrix[r, pool[r, col]]).ravel()
    return out


def _pool_evidence(evidence: sp.csr_matrix, pool: np.ndarray) -> np.ndarray:
    """The evidence of each candidate ``(B, m)`` (``pool``, ``-1`` pads), divided by the
    customer's largest among them (so in [0, 1]; 0 for a customer without any)."""
    out = _pool_values(evidence, pool)
    top = out.max(axis=1, keepdims=True)
    return np.divide(out, top, out=np.zeros_like(out), where=top > 0)


def _row_top(M: sp.csr_matrix, k: int) -> np.ndarray:
    """The ``k`` largest stored entries' columns of each row of ``M`` ``(B, k)``, largest
    first (ties by column), ``-1`` pads."""
    M = sp.csr_matrix(M)
    rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
    order = np.lexsort((M.indices, -M.data, rows))
    rows, cols = rows[order], M.indices[order]
    rank = np.arange(len(rows)) - M.indptr[rows]
    out = np.full((M.shape[0], k), -1, np.int64)
    keep = rank < k
    out[rows[keep], rank[keep]] = cols[keep]
    return out


def _first_in_row(items: np.ndarray) -> np.ndarray:
    """Whether each entry of ``items`` ``(Q, R)`` is its row's first occurrence of the item."""
    order = np.argsort(items, axis=1, kind="stable")
    s = np.take_along_axis(items, order, axis=1)
    repeat = np.zeros_like(s, dtype=bool)
    repeat[:, 1:] = s[:, 1:] == s[:, :-1]
    first = np.empty_like(repeat)
    np.put_along_axis(first, order, ~repeat, axis=1)
    return first


def _without(M: sp.csr_matrix, exclude) -> sp.csr_matrix:
    """``M`` without the entries where ``exclude`` (a sparse matrix of the same shape, or
    None: nothing) is nonzero."""
    if exclude is None:
        return M
    M = sp.csr_matrix(M)
    return (M - M.multiply(sp.csr_matrix(exclude) != 0)).tocsr()


def _allowed(M: sp.csr_matrix, candidates) -> sp.csr_matrix:
    """``M``'s entries on the ``candidates`` (a 1-D allow-list, or per-row lists with ``-1``
    pads; None: all)."""
    if candidates is None:
        return M
    cand = np.asarray(candidates, np.int64)
    rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
    if cand.ndim == 1:
        keep = np.isin(M.indices, cand)
    else:
        r, j = np.nonzero(cand >= 0)
        n = M.shape[1] + 1
        keep = np.isin(rows * n + M.indices, r * n + cand[r, j])
    return sp.csr_matrix((M.data[keep], (rows[keep], M.indices[keep])), shape=M.shape)


def _rows(candidates, rows: np.ndarray):
    """Candidates for repeated query rows: a 1-D allow-list applies to every row, 2-D
    per-user lists are repeated with their users."""
    if candidates is None or np.ndim(candidates) == 1:
        return candidates
    return np.asarray(candidates)[rows]


def _merge(ids: np.ndarray, sc: np.ndarray, k: int, rule: str):
    """Merge ``S`` retrieved lists per row (``ids``, ``sc``: ``(B, S, m)``, ``-1`` pads) into
    the best ``k`` items of each row: ``(items, scores)``, ``(B, k)``, ties by item id.

    ``max``: an item's best score over the draws; ``rrf``: Σ 1 / (60 + its rank in each draw
    that retrieved it); ``mean``: its mean score over the draws, a draw that missed it
    counting with its lowest retrieved score."""
    B, S, m = ids.shape
    valid = ids >= 0
    row = np.broadcast_to(np.arange(B)[:, None, None], ids.shape)[valid]
    item = ids[valid]
    # one group per (row, item): keys sorted by row, then item
    keys, first, group = np.unique(
        row * (int(item.max(initial=0)) + 1) + item, return_index=True, return_inverse=True
    )
    g_row, g_item = row[first], item[first]
    if rule == "max" or S == 1:
        merged = np.full(len(keys), -np.inf)
        np.maximum.at(merged, group, sc[valid])
    elif rule == "rrf":
        rank = np.broadcast_to(np.arange(m)[None, None, :], ids.shape)[valid]
        merged = np.zeros(len(keys))
        np.add.at(merged, group, 1.0 / (60.0 + rank))
    else:  # mean
        floor = np.where(valid, sc, np.inf).min(axis=2)  # (B, S)
        merged = floor.sum(1)[g_row].astype(np.float64)
        np.add.at(merged, group, (sc - floor[:, :, None])[valid])
        merged /= S
    # the groups of a row, as one padded row each (in item order)
    counts = np.bincount(g_row, minlength=B)
    width = max(int(counts.max(initial=0)), 1)
    col = np.arange(len(keys)) - np.repeat(np.cumsum(counts) - counts, counts)
    items = np.full((B, width), -1, dtype=np.int64)
    scores = np.full((B, width), -np.inf, dtype=np.float32)
    items[g_row, col] = g_item
    scores[g_row, col] = merged
    return top_k(scores, k, items)
