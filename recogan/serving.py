"""One path for a request: the serving pipeline of the service API, batch scoring and evaluation.

Every interface that turns a model into lists (:class:`recogan.recommender.Recommender`,
``recogan batch-score``, the report's diversity curves, :func:`recommend`) asks this module,
which does what a request needs exactly once:

1. **check** (:meth:`Pipeline.request`): ``n`` (a positive int; above the catalogue size it is
   capped there: lists hold *up to* ``n`` items, as they do when exclusions, filters or
   withdrawn products leave fewer), ``diversity`` in [0, 1], and the ``mode`` (with
   ``exclude_seen``, which a mode decides; see :data:`MODES`);
2. **plan** (:meth:`Pipeline.plan`): how deep to fetch, once, from ``n``, the re-rank depth
   (MMR chooses from the model's top ``max(50, 5n)``; none at ``diversity=0`` or for a model
   that diversifies itself), the withdrawn products (their number is added, which always
   suffices) and the model's own search depth (:meth:`recogan.base.Model.search_depth`);
3. **stages**, in this order:

   - *mode*: ``buy_again`` turns each row's purchase history into its allow-list (met with the
     caller's filter), so the model ranks only the items the customer bought before;
   - *model*: the model's top-``m`` lists (:meth:`Model.recommend` or ``recommend_history``);
     for a model with its own diversity mechanism, on the copy
     :meth:`Model.with_diversity` returns;
   - *filters and withdrawn*: an allow-list becomes the model's candidates; a predicate is
     applied to over-fetched lists, fetching deeper for rows that come up short; withdrawn
     products (:mod:`recogan.catalog`) are left out of both;
   - *re-rank*: maximal marginal relevance over item similarity (:func:`recogan.diversity.mmr`).

``diversity=0`` is one fetch of ``n`` and nothing else, so it is the model's ranking exactly.
:meth:`Pipeline.repeats` says which items of the lists the customer bought before (every
interface reports it as the ``repeat`` flag of a list item).

>>> pipe = Pipeline(model)
>>> items, scores = pipe.users(users, pipe.request(10, diversity=0.3))
>>> items, scores = recommend(model, users, n=10, diversity=0.3)   # the same, in one call
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from recogan._similarity import ItemSimilarity
from recogan.catalog import drop_withdrawn, overfetch, withdrawn_mask
from recogan.diversity import candidate_depth, check_diversity, mmr

__all__ = [
    "MODES",
    "Diversified",
    "Filter",
    "Pipeline",
    "Plan",
    "Request",
    "check_flag",
    "check_mode",
    "check_n",
    "recommend",
]

#: ``call(model, m, candidates) -> (items, scores)``: the model stage, top-``m`` lists ``(B, m)``.
Call = Callable[[object, int, "np.ndarray | None"], tuple[np.ndarray, np.ndarray]]


#: The list modes of every interface: ``discover`` (items the customer never bought: the
#: seen items are excluded), ``buy_again`` (only items the customer bought before, ranked by
#: the model's scores of them) and ``mixed`` (one list ranked by the model, seen items allowed).
MODES = ("discover", "buy_again", "mixed")


# ---------------------------------------------------------------------- checks
def check_mode(mode, exclude_seen=None) -> tuple[str, bool]:
    """``(mode, exclude_seen)`` of a request. ``mode`` None follows ``exclude_seen`` (True or
    None: ``discover``; False: ``mixed``); a mode decides ``exclude_seen`` (``discover``
    excludes the seen items, the others keep them), and an ``exclude_seen`` given that
    contradicts it is an error, as is a mode not in :data:`MODES`."""
    if exclude_seen is not None:
        exclude_seen = check_flag(exclude_seen, "exclude_seen")
    if mode is None:
        return ("mixed", False) if exclude_seen is False else ("discover", True)
    if not isinstance(mode, str) or mode.replace("-", "_") not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    mode = mode.replace("-", "_")
    excl = mode == "discover"
    if exclude_seen is not None and exclude_seen != excl:
        raise ValueError(
            f"exclude_seen={exclude_seen} contradicts mode={mode!r} (which "
            f"{'excludes' if excl else 'keeps'} the items bought before); pass one of them"
        )
    return mode, excl


def check_n(n, n_items: int) -> int:
    """``n`` as an int, capped at the catalogue size ``n_items`` (the one rule for ``n`` of
    every interface: lists hold up to ``n`` items)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, (bool, np.bool_)):
        raise TypeError(f"n must be a positive int, got {n!r}")
    if n <= 0:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return int(min(n, n_items))


def check_flag(value, what: str) -> bool:
    """``value`` as a bool, or a ``TypeError`` naming ``what``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return bool(value)


# ---------------------------------------------------------------------- the request
@dataclass(frozen=True)
class Filter:
    """Which items a list may hold, beyond the model's exclusions.

    ``allowed``: item indices (1-D for every user, or 2-D ``(B, C)`` per user with ``-1``
    padding), or None for the whole catalogue; ``keep``: a predicate on one item index, or
    None; ``n_unknown``: ids of the caller's filter that named no item (reported, not used).
    """

    allowed: np.ndarray | None = None
    keep: Callable[[int], bool] | None = None
    n_unknown: int = 0


NO_FILTER = Filter()


@dataclass(frozen=True)
class Request:
    """A checked request (:meth:`Pipeline.request`)."""

    n: int
    diversity: float = 0.0
    exclude_seen: bool = True
    filter: Filter = NO_FILTER
    #: One of :data:`MODES`.
    mode: str = "discover"


@dataclass(frozen=True)
class Plan:
    """How a request is served (:meth:`Pipeline.plan`)."""

    #: Items per list.
    n: int
    #: The model diversifies itself (:meth:`Model.with_diversity`) instead of MMR re-ranking.
    own_diversity: bool
    #: MMR re-ranks the filtered lists (``diversity > 0`` and the model has no mechanism).
    mmr: bool
    #: Items the filtered lists hold before the re-rank stage (``n`` when nothing re-ranks).
    rerank: int
    #: Items asked of the model: ``rerank`` plus the withdrawn products, at most the catalogue.
    fetch: int
    #: How deep the model itself searches to answer ``fetch`` (:meth:`Model.search_depth`).
    search: int


class Pipeline:
    """The serving pipeline of one fitted model (see the module docstring).

    ``similarity``: the item similarity MMR re-ranks with: an
    :class:`~recogan._similarity.ItemSimilarity`, a function returning one (called when MMR
    runs; it decides what it caches) or None (the model's, :meth:`ItemSimilarity.of` on the
    CPU, built once on first use). The withdrawn products are read when the pipeline is made:
    make a new one after a catalogue change.
    """

    def __init__(self, model, similarity=None) -> None:
        model.check_fitted()
        self.model = model
        self.n_items = int(model.n_items_)
        self.withdrawn = withdrawn_mask(model)
        self._similarity = similarity
        self._built: ItemSimilarity | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ check and plan
    def request(
        self,
        n,
        diversity=0.0,
        exclude_seen=None,
        filter: Filter | None = None,
        mode: str | None = None,
    ) -> Request:
        """The request checked once: ``n`` (capped at the catalogue), ``diversity``, the
        mode and ``exclude_seen`` (:func:`check_mode`) and the filter's item indices."""
        n = check_n(n, self.n_items)
        d = check_diversity(diversity)
        mode, exclude_seen = check_mode(mode, exclude_seen)
        filter = NO_FILTER if filter is None else filter
        if filter.allowed is not None:
            allowed = np.asarray(filter.allowed)
            lowest = 0 if allowed.ndim == 1 else -1  # -1 pads 2-D candidate rows
            if allowed.size and (allowed.max() >= self.n_items or allowed.min() < lowest):
                raise IndexError(f"candidate item indices must be in 0..{self.n_items - 1}")
        return Request(n, d, exclude_seen, filter, mode)

    def plan(self, request: Request) -> Plan:
        """The fetch depth, planned once (see the module docstring)."""
        n, d = request.n, request.diversity
        own = d > 0 and self.model.diversity_param() is not None
        reranks = d > 0 and not own
        rerank = candidate_depth(n, self.n_items) if reranks else n
        fetch = self.fetch_depth(rerank)
        search = max(fetch, min(self.n_items, int(self.model.search_depth(fetch))))
        return Plan(n, own, reranks, rerank, fetch, search)

    # ------------------------------------------------------------------ entry points
    def users(self, users, request: Request) -> tuple[np.ndarray, np.ndarray]:
        """``(items, scores)`` ``(B, n)`` for known users (model indices)."""
        users = self.model.check_users(users)

        def call(model, m, candidates):
            return model.recommend(users, m, request.exclude_seen, candidates)

        if request.mode == "buy_again":
            request = self._buy_again(request, self.seen_rows(users))
        return self.run(call, request, len(users))

    def histories(
        self,
        histories: Sequence[Sequence[int]],
        request: Request,
        times: Sequence[Sequence[float]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(items, scores)`` ``(B, n)`` for purchase histories (lists of item indices)."""

        def call(model, m, candidates):
            return model.recommend_history(
                histories, m, exclude_seen=request.exclude_seen, candidates=candidates, times=times
            )

        if request.mode == "buy_again":
            request = self._buy_again(request, _padded(histories))
        return self.run(call, request, len(histories))

    # ------------------------------------------------------------------ repeats
    def seen_rows(self, users) -> np.ndarray:
        """``(B, C)`` the items each user bought in training (the model's ``seen_``, which
        every bundle stores), ``-1`` padded."""
        seen = self.model.seen_
        users = np.asarray(users, dtype=np.int64)
        return _padded([seen.indices[seen.indptr[u] : seen.indptr[u + 1]] for u in users])

    def repeats(self, items: np.ndarray, *, users=None, histories=None) -> np.ndarray:
        """``(B, n)`` bool: whether each listed item is one the row's customer bought before
        (``users``: the model's ``seen_`` rows; ``histories``: the given purchase histories);
        ``-1`` padding is False."""
        items = np.asarray(items, dtype=np.int64)
        if histories is None:  # one look-up in the seen matrix
            rows = np.repeat(np.asarray(users, dtype=np.int64), items.shape[1])
            hit = self.model.seen_[rows, np.maximum(items, 0).ravel()]
            return (np.asarray(hit).reshape(items.shape) > 0) & (items >= 0)
        bought = _padded(histories)
        out = np.zeros(items.shape, dtype=bool)
        for r in range(items.shape[0]):
            row = bought[r][bought[r] >= 0]
            out[r] = np.isin(items[r], row) & (items[r] >= 0)
        return out

    def _buy_again(self, request: Request, bought: np.ndarray) -> Request:
        """``buy_again``: the rows' purchase histories become the allow-list, met with the
        caller's allow-list or predicate."""
        f = request.filter
        rows = bought
        if f.allowed is not None:
            allowed = np.asarray(f.allowed)
            if allowed.ndim == 1:
                ok = np.isin(rows, allowed)
            else:
                ok = np.array([np.isin(r, a[a >= 0]) for r, a in zip(rows, allowed)]).reshape(
                    rows.shape
                )
            rows = np.where(ok, rows, -1)
        if f.keep is not None:
            verdict = {j: bool(f.keep(j)) for j in np.unique(rows[rows >= 0]).tolist()}
            ok = np.vectorize(lambda j: j >= 0 and verdict[j], otypes=[bool])(rows)
            rows = np.where(ok, rows, -1) if rows.size else rows
        return replace(request, filter=Filter(rows, None, f.n_unknown))

    def run(self, call: Call, request: Request, B: int) -> tuple[np.ndarray, np.ndarray]:
        """The stages: model → filters and withdrawn → re-rank. ``call(model, m,
        candidates)`` is the model stage for ``B`` rows."""
        plan = self.plan(request)
        model = self.model.with_diversity(request.diversity) if plan.own_diversity else self.model
        items, scores = self.filtered(
            lambda m, cand: call(model, m, cand), plan.rerank, request.filter, B, plan.fetch
        )
        if not plan.mmr:
            return items, scores
        return mmr(items, scores, plan.n, request.diversity, self.similarity())

    # ------------------------------------------------------------------ stages
    def fetch_depth(self, n: int) -> int:
        """Items to fetch so that ``n`` remain once the withdrawn products are dropped."""
        return overfetch(n, self.withdrawn, self.n_items)

    def filtered(
        self, call, n: int, filter: Filter, B: int, fetch: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``call(m, candidates) -> (items, scores)``'s top ``n`` per row with the filter and
        the withdrawn products applied: an allow-list becomes the candidates; a predicate is
        applied to over-fetched lists, fetching four times deeper for rows that come up short;
        withdrawn products are fetched past (``fetch``, the plan's depth: by default
        :meth:`fetch_depth`) and dropped."""
        allowed, keep, gone = filter.allowed, filter.keep, self.withdrawn
        if allowed is not None:
            allowed = _live(np.asarray(allowed), gone)
            if not allowed.size:
                return np.full((B, n), -1, np.int64), np.full((B, n), -np.inf, np.float32)
            if allowed.ndim == 2 and allowed.shape[1] < n:  # per-row lists (buy again) shorter
                items, scores = call(allowed.shape[1], allowed)  # than n: no model asked deeper
                return _pad(items, scores, n)
            return call(n, allowed)
        if keep is None and gone is None:
            return call(n, None)
        if keep is None:  # only withdrawn products to leave out: one fetch always suffices
            items, scores = call(self.fetch_depth(n) if fetch is None else fetch, None)
            return drop_withdrawn(np.asarray(items), np.asarray(scores), gone, n)
        return self._kept(call, n, keep, gone)

    def _kept(self, call, n: int, keep, gone) -> tuple[np.ndarray, np.ndarray]:
        n_items = self.n_items
        m = min(n_items, overfetch(max(2 * n, n + 20), gone, n_items))
        verdict: dict[int, bool] = {}
        while True:
            items, scores = call(m, None)
            for j in np.unique(items[items >= 0]).tolist():
                if j not in verdict:
                    verdict[j] = bool(keep(j))
            ok = np.zeros(items.shape, dtype=bool)
            has = items >= 0
            ok[has] = [verdict[j] for j in items[has].tolist()]
            if gone is not None:
                ok &= ~gone[np.maximum(items, 0)]
            enough = ok.sum(1) >= n
            exhausted = (~has).any(1)  # the model ran out of eligible items
            if m >= n_items or (enough | exhausted).all():
                break
            m = min(n_items, m * 4)
        order = np.argsort(~ok, axis=1, kind="stable")[:, :n]
        items = np.where(np.take_along_axis(ok, order, 1), np.take_along_axis(items, order, 1), -1)
        scores = np.where(items >= 0, np.take_along_axis(scores, order, 1), -np.inf)
        return items.astype(np.int64), scores.astype(np.float32)

    def similarity(self) -> ItemSimilarity:
        """The item similarity MMR re-ranks with (the model's is built once, on first use;
        a function given is asked each time, so its owner decides what it caches)."""
        sim = self._similarity
        if isinstance(sim, ItemSimilarity):
            return sim
        if sim is not None:
            return sim()
        with self._lock:
            if self._built is None:
                self._built = ItemSimilarity.of(self.model, device="cpu")
            return self._built


def _pad(items, scores, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(B, m)`` lists padded to ``n`` columns with ``-1`` / ``-inf``."""
    items, scores = np.asarray(items, np.int64), np.asarray(scores, np.float32)
    extra = n - items.shape[1]
    if extra <= 0:
        return items, scores
    B = items.shape[0]
    return (
        np.hstack([items, np.full((B, extra), -1, np.int64)]),
        np.hstack([scores, np.full((B, extra), -np.inf, np.float32)]),
    )


def _padded(rows) -> np.ndarray:
    """Ragged item-index rows as one ``(B, C)`` int64 array padded with ``-1`` (C >= 1)."""
    rows = [np.unique(np.asarray(r, dtype=np.int64)) for r in rows]
    width = max([1, *(r.size for r in rows)])
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : r.size] = r
    return out


def _live(allowed: np.ndarray, gone: np.ndarray | None) -> np.ndarray:
    """An allow-list without the withdrawn products (2-D rows: they become ``-1``)."""
    if gone is None:
        return allowed
    if allowed.ndim == 1:
        return allowed[~gone[allowed]]
    return np.where((allowed >= 0) & gone[np.maximum(allowed, 0)], -1, allowed)


# ---------------------------------------------------------------------- array API
def recommend(
    model,
    user_idx,
    n: int = 10,
    diversity: float = 0.0,
    exclude_seen: bool | None = None,
    candidates: np.ndarray | None = None,
    similarity=None,
    mode: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``model.recommend`` through the pipeline: the diversity knob, withdrawn products left
    out, the list mode (``diversity=0`` in ``discover`` or ``mixed`` mode on a model without
    catalogue changes: exactly ``model.recommend``)."""
    pipe = Pipeline(model, similarity)
    request = pipe.request(n, diversity, exclude_seen, Filter(candidates), mode)
    return pipe.users(user_idx, request)


class Diversified:
    """A read-only view of a fitted model whose ``recommend`` and ``recommend_history`` go
    through the pipeline at one ``diversity``; every other attribute is the model's (e.g.
    ``seen_``), so whatever scores a model (:func:`recogan.metrics.score`) scores the view.
    The item similarity is built once, on first use."""

    def __init__(self, model, diversity: float, similarity=None) -> None:
        self.model = model
        self.diversity = check_diversity(diversity)
        self.pipeline = Pipeline(model, similarity)

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __repr__(self) -> str:
        return f"Diversified({self.model!r}, diversity={self.diversity})"

    def recommend(self, user_idx, n=10, exclude_seen=True, candidates=None):
        pipe = self.pipeline
        request = pipe.request(n, self.diversity, exclude_seen, Filter(candidates))
        return pipe.users(user_idx, request)

    def recommend_history(self, histories, n=10, exclude_seen=True, candidates=None, times=None):
        pipe = self.pipeline
        request = pipe.request(n, self.diversity, exclude_seen, Filter(candidates))
        return pipe.histories(histories, request, times)
