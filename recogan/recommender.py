"""The service API: load a model bundle once, answer by external user and item ids.

>>> rec = Recommender.load("models/retail")
>>> rec.recommend(17850, n=5)                 # Recommendations: (item_id, score) pairs
>>> rec.recommend(17850, n=5, diversity=0.3)  # a more varied list (recogan.diversity)
>>> rec.recommend_many([17850, 13047])        # DataFrame user_id, rank, item_id, score, fallback
>>> rec.for_history(["85123A", "71053"])      # anonymous basket
>>> rec.similar_items("85123A"); rec.explain(17850, "22423"); rec.rank(17850, ["22423", "85099B"])

``mode`` chooses the list: ``discover`` (the default: items the customer never bought),
``buy_again`` (only items they bought before, ranked by the model) or ``mixed`` (one list ranked
by the model, seen items allowed); every list item says whether it is a ``repeat``
(``Recommendations.repeats``, the ``repeat`` column of ``recommend_many``). ``exclude_seen``
is the older spelling of the choice (True: ``discover``, False: ``mixed``).

Unknown users get the model's recent-popularity prior (``Model.popularity_``: distinct buyers in
the last 30 days of training, ties by all-time popularity), marked ``fallback=True``; with
``strict=True`` they raise :class:`UnknownUserError` instead.

``recommend``, ``recommend_many`` and ``for_history`` take ``diversity`` in [0, 1]: 0 (the
default) returns the model's ranking exactly; above 0 the list trades a little of the model's
score for wider catalogue exposure, through the model's own mechanism where it has one, else by
maximal marginal relevance over item similarity (see :mod:`recogan.diversity`). Filters,
exclusions and withdrawn products are applied before the re-ranking; the popularity fallback of
unknown users is not re-ranked.

Every method is safe to call from many threads at once: the model is only read (the contract's
``recommend``/``recommend_history`` are pure functions of the fitted state), lazily built
structures are built once under a lock, and the item index serialises what is not thread-safe.
Catalogue changes (``add_items``, ``remove_items``, ``restore_items``; see :mod:`recogan.catalog`)
are the one writer: a read-write lock lets them wait for running calls and makes new calls wait
for them, so no call sees half of one.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from recogan import catalog
from recogan._fs import as_path
from recogan._similarity import ItemSimilarity, VectorSimilarity
from recogan.artifacts import load_model, save_model
from recogan.base import Model
from recogan.catalog import ReadWriteLock
from recogan.data import check_id, check_ids, parse_times
from recogan.serving import Filter as _Allow
from recogan.serving import Pipeline, Request, check_flag, check_mode, check_n

log = logging.getLogger(__name__)

FALLBACK_REASON = "unknown user: recent popularity"


class UnknownUserError(KeyError):
    """A user id the model was not fitted on (raised only with ``strict=True``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownItemError(KeyError):
    """An item id the model does not know."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Recommendations:
    """Ranked ``(item_id, score)`` pairs, best first; iterate it or index it like a list.

    ``fallback`` is True when the model could not personalise (unknown user, empty history) and
    ``reason`` says why; ``n_unknown`` counts input item ids that were ignored as unknown.
    """

    items: tuple
    scores: tuple
    fallback: bool = False
    reason: str = "model"
    n_unknown: int = 0
    #: Per item: whether the customer bought it before (empty when not known).
    repeats: tuple = ()

    def __iter__(self):
        return iter(zip(self.items, self.scores))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i], self.scores[i]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "rank": np.arange(1, len(self) + 1),
                "item_id": list(self.items),
                "score": np.asarray(self.scores, dtype=np.float32),
                "repeat": np.asarray(self.repeats or [False] * len(self), dtype=bool),
            }
        )


Filter = Iterable | Callable[[object], bool] | None


def _reads(method):
    """Run a public method under the catalogue lock's read side: a catalogue change waits
    for running calls, and a call never sees half of one."""

    @functools.wraps(method)
    def reading(self, *args, **kwargs):
        with self._catalog_lock.read():
            return method(self, *args, **kwargs)

    return reading


class Recommender:
    """Serve a fitted :class:`~recogan.base.Model` by external ids.

    Args:
        model: any fitted model following the contract in :mod:`recogan.base`.
        strict: raise :class:`UnknownUserError` for unknown users instead of falling back.
        device: ``auto``/``cpu``/``cuda`` for the item-similarity index.
        index: :class:`~recogan.index.IndexConfig` fields for that index (kind, nprobe, ...).
        batch_size: users per ``model.recommend`` call in :meth:`recommend_many`.
    """

    def __init__(
        self,
        model,
        *,
        strict: bool = False,
        device: str = "auto",
        index: dict | None = None,
        batch_size: int = 1024,
    ) -> None:
        if not isinstance(model, Model):
            raise TypeError(f"Recommender wraps a recogan model, not {type(model).__name__}")
        model.check_fitted()
        self.model = model
        self.strict = strict
        self.device = device
        self.index_options = dict(index or {})
        self.batch_size = int(batch_size)
        self._users = model.users_
        self._items = model.items_
        self._item_ids = np.asarray(model.items_.ids)
        self._item_ids.setflags(write=False)
        self._user_ids = np.asarray(model.users_.ids)
        self._user_ids.setflags(write=False)
        pop = np.asarray(model.popularity_, dtype=np.float64)
        self._pop = pop
        self._pop_order = np.lexsort((np.arange(len(pop)), -pop))  # desc, ties by index
        self._lock = threading.Lock()
        self._sim = None  # built on first similar_items/explain
        self._catalog_lock = ReadWriteLock()  # add_items/remove_items against every call
        self._save_lock = threading.Lock()
        self._bundle = self._bundle_version = None  # where load() read the model from
        self._catalog_refresh()

    @classmethod
    def load(cls, path, device: str = "auto", strict: bool = False, **kwargs) -> Recommender:
        """Load a bundle (checksums verified, no pickle) and wrap it. ``device``: where a
        model that runs torch runs (``auto``: CUDA when present) and where the item-similarity
        index searches."""
        path = as_path(path, "bundle path")
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', not {device!r}")
        if device == "cuda":
            import torch  # torch stays behind the lazy boundary: asked for only with cuda

            if not torch.cuda.is_available():
                raise RuntimeError("device='cuda' but torch sees no CUDA GPU")
        model = load_model(path, device=device)
        rec = cls(model, strict=strict, device=device, **kwargs)
        rec._bundle, rec._bundle_version = path, model.manifest_.get("version")
        return rec

    def __repr__(self) -> str:
        return (
            f"Recommender({type(self.model).__name__}, users={len(self._user_ids)}, "
            f"items={len(self._item_ids)}, strict={self.strict})"
        )

    # ------------------------------------------------------------------ ids
    @property
    def user_ids(self) -> np.ndarray:
        """External ids of the users the model knows (read-only; index i = user i)."""
        return self._user_ids

    @property
    def item_ids(self) -> np.ndarray:
        """External ids of the catalog items (read-only; index i = item i)."""
        return self._item_ids

    def _user(self, user_id) -> int:
        check_id(user_id, "user_id", "use recommend_many for several users")
        try:
            u = self._users.index_of(user_id)  # one hash look-up, no array built
        except KeyError:
            u = -1
        if u < 0 and self.strict:
            raise UnknownUserError(f"unknown user id {user_id!r}")
        return u

    def _item(self, item_id) -> int:
        check_id(item_id, "item_id")
        try:
            i = self._items.index_of(item_id)
        except KeyError:
            i = -1
        if i < 0:
            raise UnknownItemError(f"unknown item id {item_id!r}")
        return i

    @_reads
    def titles(self, item_ids) -> list | None:
        """Catalog titles of ``item_ids`` (None when the catalog has none)."""
        item_ids = check_ids(item_ids, "item_ids")
        cat = self.model.catalog_
        if cat is None or "title" not in cat:
            return None
        idx = self._items.lookup(item_ids, missing="ignore")
        t = cat["title"].to_numpy()
        return [t[i] if i >= 0 else None for i in idx]

    # ------------------------------------------------------------------ recommend
    @_reads
    def recommend(
        self,
        user_id,
        n: int = 10,
        exclude_seen: bool | None = None,
        filter: Filter = None,
        diversity: float = 0.0,
        mode: str | None = None,
    ):
        """Top-``n`` items for one user. ``filter``: allowed item ids, or a callable taking one
        item id and returning whether it may be shown (e.g. in stock). ``diversity`` in
        [0, 1]: 0 is the model's ranking, more gives a more varied list. ``mode``:
        ``discover``, ``buy_again`` or ``mixed`` (see the module docstring)."""
        req = self._request(n, diversity, exclude_seen, filter, mode)
        u = self._user(user_id)
        if u < 0:
            return self._fallback(req.n, req.filter, req.mode)
        items, scores = self._pipeline.users(np.array([u]), req)
        rep = self._pipeline.repeats(items, users=np.array([u]))
        return self._result(items[0], scores[0], n_unknown=req.filter.n_unknown, repeats=rep[0])

    @_reads
    def recommend_many(
        self,
        user_ids,
        n: int = 10,
        exclude_seen: bool | None = None,
        filter: Filter = None,
        diversity: float = 0.0,
        mode: str | None = None,
    ) -> pd.DataFrame:
        """Top-``n`` for many users: DataFrame ``user_id, rank, item_id, score, fallback,
        repeat`` (rank from 1; users in input order; rows only for items found).
        ``diversity`` and ``mode`` as in :meth:`recommend`."""
        req = self._request(n, diversity, exclude_seen, filter, mode)
        n = req.n
        raw = check_ids(user_ids, "user_ids")
        ids = pd.Series(raw, dtype=object if not len(raw) else None)
        idx = self._users.lookup(ids.to_numpy(), missing="ignore")
        unknown = idx < 0
        if self.strict and unknown.any():
            bad = ids[unknown].unique()[:5].tolist()
            raise UnknownUserError(f"{int(unknown.sum())} unknown user id(s), e.g. {bad}")
        B = len(ids)
        items = np.full((B, n), -1, dtype=np.int64)
        scores = np.full((B, n), -np.inf, dtype=np.float32)
        repeat = np.zeros((B, n), dtype=bool)
        known = np.flatnonzero(~unknown)
        for s in range(0, len(known), self.batch_size):
            rows = known[s : s + self.batch_size]
            items[rows], scores[rows] = self._pipeline.users(idx[rows], req)
            repeat[rows] = self._pipeline.repeats(items[rows], users=idx[rows])
        if unknown.any():
            fb = self._fallback(n, req.filter, req.mode)
            k = len(fb)
            items[unknown, :k] = self._items.lookup(list(fb.items)) if k else -1
            scores[unknown, :k] = fb.scores
        found = items >= 0
        r, c = np.nonzero(found)
        return pd.DataFrame(
            {
                "user_id": ids.to_numpy()[r],
                "rank": (c + 1).astype(np.int32),
                "item_id": self._item_ids[items[r, c]],
                "score": scores[r, c],
                "fallback": unknown[r],
                "repeat": repeat[r, c],
            }
        )

    @_reads
    def rank(self, user_id, item_ids, exclude_seen: bool = False) -> Recommendations:
        """The given candidate items ordered by the model's score for this user (unknown item
        ids are dropped and counted; duplicates kept once)."""
        check_flag(exclude_seen, "exclude_seen")
        item_ids = check_ids(item_ids, "item_ids")
        u = self._user(user_id)  # an unknown user raises first with strict=True
        idx = self._items.lookup(item_ids, missing="ignore")
        n_unknown = int((idx < 0).sum())
        idx = pd.unique(idx[idx >= 0])
        if self._withdrawn is not None:
            idx = idx[~self._withdrawn[idx]]
        if not len(idx):
            return Recommendations((), (), u < 0, FALLBACK_REASON if u < 0 else "model", n_unknown)
        if u < 0:
            order = np.lexsort((idx, -self._pop[idx]))
            top = idx[order]
            return Recommendations(
                tuple(self._item_ids[top].tolist()),
                tuple(self._pop[top].tolist()),
                True,
                FALLBACK_REASON,
                n_unknown,
            )
        items, scores = self.model.recommend(np.array([u]), len(idx), exclude_seen, idx[None, :])
        return self._result(items[0], scores[0], n_unknown=n_unknown)

    @_reads
    def for_history(
        self,
        item_ids,
        n: int = 10,
        exclude_seen: bool | None = None,
        filter: Filter = None,
        diversity: float = 0.0,
        mode: str | None = None,
        times=None,
    ) -> Recommendations:
        """Recommendations for an anonymous or new customer from a basket/history of item ids
        (oldest first); unknown ids are ignored and counted in ``n_unknown``. An empty (or
        all-unknown) history gets the popularity fallback. ``diversity`` and ``mode`` as in
        :meth:`recommend` (``buy_again`` ranks the history's items; ``repeat`` marks them).
        ``times``: when each item was bought (epoch seconds, or anything ``pandas.to_datetime``
        reads), one per id: the model weighs recent purchases more and, in ``buy_again`` and
        ``mixed`` lists, reads how long ago an item was bought (the GAN's repeat head)."""
        req = self._request(n, diversity, exclude_seen, filter, mode)
        item_ids = check_ids(item_ids, "item_ids")
        t = None
        if times is not None:
            if np.ndim(times) != 1 or len(times) != len(item_ids):
                raise ValueError(
                    f"times has {np.size(times)} values but the history has {len(item_ids)} items"
                )
            t = parse_times(pd.Series(list(times)), "times", "for_history").astype(np.float64)
        idx = self._items.lookup(item_ids, missing="ignore")
        n_unknown = int((idx < 0).sum()) + req.filter.n_unknown
        hist = idx[idx >= 0]
        if not len(hist):
            fb = self._fallback(req.n, req.filter, req.mode)
            reason = "empty history: " + fb.reason.split(": ", 1)[1]
            return Recommendations(fb.items, fb.scores, True, reason, n_unknown, fb.repeats)
        t = None if t is None else [t[idx >= 0]]
        items, scores = self._pipeline.histories([hist], req, t)
        rep = self._pipeline.repeats(items, histories=[hist])
        return self._result(items[0], scores[0], n_unknown=n_unknown, repeats=rep[0])

    # ------------------------------------------------------------------ item similarity
    @_reads
    def similar_items(self, item_id, n: int = 10, filter: Filter = None) -> Recommendations:
        """Items most similar to ``item_id`` (item vectors when the model has them, else
        co-purchase cosine), itself excluded."""
        n = min(check_n(n, len(self._item_ids)), len(self._item_ids) - 1)
        i = self._item(item_id)
        if n <= 0:  # a catalog of one item: nothing else to show
            return Recommendations((), (), reason="the catalog has no other item")
        sim = self._similarity()
        call = lambda m, cand: sim.top(i, m, cand)  # noqa: E731
        items, scores = self._pipeline.filtered(call, n, self._allow(filter), 1)
        return self._result(items[0], scores[0], reason=sim.reason)

    @_reads
    def explain(self, user_id, item_id, n: int = 5) -> Recommendations:
        """The user's past purchases that most support ``item_id`` ("because you bought"),
        by item similarity, best first; only positively similar ones. Empty for an unknown
        user (``fallback=True``) or a user without history."""
        i = self._item(item_id)
        u = self._user(user_id)
        if u < 0:
            return Recommendations((), (), True, FALLBACK_REASON)
        seen = self.model.seen_
        hist = seen.indices[seen.indptr[u] : seen.indptr[u + 1]].astype(np.int64)
        hist = hist[hist != i]
        if self._withdrawn is not None:
            hist = hist[~self._withdrawn[hist]]
        sim = self._similarity()
        s = sim.between(i, hist)
        keep = s > 0
        hist, s = hist[keep], s[keep]
        order = np.lexsort((hist, -s))[:n]
        return Recommendations(
            tuple(self._item_ids[hist[order]].tolist()),
            tuple(np.asarray(s[order], dtype=np.float64).tolist()),
            reason=sim.reason,
        )

    def _similarity(self):
        with self._lock:
            if self._sim is None:
                self._sim = ItemSimilarity.of(self.model, self.device, self.index_options)
            return self._sim

    # ------------------------------------------------------------------ helpers
    def _request(self, n, diversity, exclude_seen, filter: Filter, mode=None) -> Request:
        """The request checked once (:meth:`recogan.serving.Pipeline.request`)."""
        check_mode(mode, exclude_seen)  # a bad mode is named before the filter is resolved
        return self._pipeline.request(n, diversity, exclude_seen, self._allow(filter), mode)

    def _allow(self, filter: Filter) -> _Allow:
        """The filter as item indices: allowed ones, or a predicate on an item index (the
        caller's predicate sees the item id), and the number of unknown ids."""
        if isinstance(filter, _Allow):
            return filter
        if filter is None:
            return _Allow()
        if callable(filter):
            ids = self._item_ids
            return _Allow(None, lambda j: filter(ids[j]), 0)
        if isinstance(filter, (str, bytes, np.str_)):
            raise TypeError(
                "filter must be a collection of item ids or a callable, not a string "
                f"({filter!r}); wrap one id in a list: [{filter!r}]"
            )
        ids = check_ids(filter, "filter")
        idx = self._items.lookup(ids, missing="ignore")
        allowed = np.unique(idx[idx >= 0])
        if not len(allowed):
            what = "is empty" if not len(ids) else f"names none of the catalog's items ({len(ids)}"
            what += "" if not len(ids) else f" unknown id(s), e.g. {list(ids[:3])})"
            raise ValueError(
                f"filter {what}: nothing could be recommended; pass filter=None for the whole "
                "catalog"
            )
        return _Allow(allowed, None, int((idx < 0).sum()))

    def _result(self, items, scores, *, n_unknown: int = 0, reason: str = "model", repeats=None):
        keep = items >= 0
        return Recommendations(
            tuple(self._item_ids[items[keep]].tolist()),
            tuple(np.asarray(scores[keep], dtype=np.float64).tolist()),
            False,
            reason,
            n_unknown,
            () if repeats is None else tuple(np.asarray(repeats)[keep].tolist()),
        )

    def _fallback(self, n: int, allow: _Allow, mode: str = "discover") -> Recommendations:
        """The recent-popularity list of a customer without history (none of it is a
        repeat); ``buy_again`` has nothing to list for them."""
        if mode == "buy_again":
            return Recommendations(
                (), (), True, "unknown user: no purchase history", allow.n_unknown
            )
        allowed, keep, n_unknown = allow.allowed, allow.keep, allow.n_unknown
        order = self._pop_order
        if allowed is not None:
            order = order[np.isin(order, allowed)]
        if keep is not None:
            picked = []
            for j in order.tolist():
                if keep(j):
                    picked.append(j)
                    if len(picked) == n:
                        break
            order = np.array(picked, dtype=np.int64)
        top = order[:n]
        return Recommendations(
            tuple(self._item_ids[top].tolist()),
            tuple(self._pop[top].tolist()),
            True,
            FALLBACK_REASON,
            n_unknown,
            (False,) * len(top),
        )

    # ------------------------------------------------------------------ catalogue changes
    def add_items(self, catalog_rows, *, id_col: str | None = None, prior=None) -> CatalogUpdate:
        """Make products launched since training recommendable, from their catalog rows.

        ``catalog_rows``: a DataFrame with the product id (``item_id`` or ``id``, or
        ``id_col``) and any of ``title``, ``category``, ``price``. The GAN computes each
        product's vector from its content with the fitted feature pipeline, takes its
        collaborative part from the trained products most similar in content and gives it
        the prior of recent launches (``prior`` sets the prior instead); Popularity ranks it
        after every sold product; EASE, ItemKNN and iALS raise
        :class:`~recogan.catalog.CannotPlaceItemsError`. Ids already in the catalogue are
        refused. Waits for running calls; calls made meanwhile
        wait for it, so none sees half an addition. Persist with
        :meth:`save_catalog_changes`.
        """
        with self._catalog_lock.write():
            idx = catalog.add_items(self.model, catalog_rows, id_col=id_col, prior=prior)
            self._catalog_refresh()
            if isinstance(self._sim, VectorSimilarity):
                self._sim.add(self.model.item_vectors()[idx])
            else:
                self._sim = None  # co-purchase similarity is rebuilt on next use
            return CatalogUpdate(tuple(self._item_ids[idx].tolist()), 0)

    def remove_items(self, item_ids) -> CatalogUpdate:
        """Withdraw products: from now on no method returns them (recommend, recommend_many,
        rank, for_history, similar_items, explain, the popularity fallback), for every
        model. They still count as history (a basket naming one, a customer who bought one),
        and may be asked about (``similar_items`` of a withdrawn product lists live ones).
        Unknown ids are ignored and counted in ``n_unknown``; :meth:`restore_items` undoes it."""
        with self._catalog_lock.write():
            idx, n_unknown = catalog.remove_items(self.model, item_ids)
            self._catalog_refresh()
            return CatalogUpdate(tuple(self._item_ids[idx].tolist()), n_unknown)

    def restore_items(self, item_ids) -> CatalogUpdate:
        """Bring withdrawn products back (e.g. back in stock) as they were."""
        with self._catalog_lock.write():
            idx, n_unknown = catalog.restore_items(self.model, item_ids)
            self._catalog_refresh()
            return CatalogUpdate(tuple(self._item_ids[idx].tolist()), n_unknown)

    @property
    def catalog_changes(self) -> dict:
        """Products added and withdrawn since training: ``n_trained``, ``added`` and
        ``withdrawn`` ids, and a ``log`` of the changes."""
        with self._catalog_lock.read():
            return catalog.changes_of(self.model).summary(self.model.items_)

    def save_catalog_changes(self, path=None, *, force: bool = False):
        """Publish the model with its catalogue changes as a new bundle version (atomic,
        verified on load, read by ``batch-score`` like any bundle), so the nightly job sees
        the catalogue this service sees. ``path`` defaults to the bundle this Recommender was
        loaded from; there the save is refused (``BundleError``) if the bundle was
        re-published since it was loaded (e.g. a retrained model): reload and re-apply.
        Returns the path."""
        with self._save_lock, self._catalog_lock.read():
            if path is None and self._bundle is None:
                raise ValueError(
                    "save_catalog_changes needs a path: this Recommender was not loaded from a "
                    "bundle"
                )
            target = self._bundle if path is None else as_path(path, "bundle path")
            ours = self._bundle is not None and target.resolve() == self._bundle.resolve()
            expect = self._bundle_version if ours else None
            save_model(self.model, target, force=force, expect_version=expect)
            if ours:
                self._bundle_version = self.model.manifest_.get("version")
            return target

    def _catalog_refresh(self) -> None:
        """Re-derive the id arrays, popularity order and withdrawn mask from the model
        (after a catalogue change; under the write lock)."""
        model = self.model
        self._items = model.items_
        item_ids = np.asarray(model.items_.ids)
        item_ids.setflags(write=False)
        self._item_ids = item_ids
        self._pop = np.asarray(model.popularity_, dtype=np.float64)
        order = np.lexsort((np.arange(len(self._pop)), -self._pop))  # desc, ties by index
        self._pipeline = Pipeline(model, self._similarity)
        self._withdrawn = self._pipeline.withdrawn
        if self._withdrawn is not None:
            order = order[~self._withdrawn[order]]
        self._pop_order = order


class CatalogUpdate(NamedTuple):
    """What a catalogue change did: the item ids it added, withdrew or restored, and how many
    given ids were unknown (ignored)."""

    items: tuple
    n_unknown: int
