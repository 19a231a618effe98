"""One knob for wider lists, for every model: ``diversity`` in [0, 1].

- ``diversity=0``: the model's lists exactly as it ranks them (nothing else runs).
- ``diversity>0`` on a model that names its own mechanism (:meth:`Model.diversity_param`,
  e.g. a generator's noise draws): the value is set on that recommend-time setting of a
  shallow copy of the model (the model itself is never changed, so concurrent callers are
  safe), and the copy ranks.
- ``diversity>0`` on any other model: maximal marginal relevance (MMR; Carbonell & Goldstein,
  1998). The model's top ``max(50, 5n)`` items are fetched, then the list is built one
  position at a time, each pick maximising

      (1 - diversity) · relevance(i)  -  diversity · max_{j already picked} sim(i, j)

  ``relevance``: the model's score min-max normalised per list over the fetched items (best
  1, last 0); ``sim``: cosine of the model's ``item_vectors()`` when it has them, else
  co-purchase cosine of its training matrix (:mod:`recogan._similarity`, the similarity the
  report's intra-list diversity uses). The first pick is always the model's best item;
  ``diversity=1`` ignores relevance after it (ties go to the better-ranked item).

Lists keep the contract's shapes (int64 items, float32 scores, ``(B, n)``, ``-1``/``-inf``
padding at the end). Scores are the model's own scores of the picked items, so with
``diversity>0`` they need not decrease along the list. Exclusions and candidates are those of
the fetch (every item MMR may pick came from the model's restricted list). The re-ranking is
deterministic and vectorised over users: one step per list position.

>>> items, scores = recommend(model, users, n=10, diversity=0.3)
>>> view = Diversified(model, 0.3)     # a model-like view whose recommend re-ranks
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np

from recogan._similarity import ItemSimilarity

__all__ = [
    "DEPTH_FACTOR",
    "DEPTH_MIN",
    "Diversified",
    "candidate_depth",
    "check_diversity",
    "diversify",
    "mmr",
    "recommend",
    "with_diversity",
]

#: MMR re-ranks the model's top ``max(DEPTH_MIN, DEPTH_FACTOR * n)`` items.
DEPTH_MIN = 50
DEPTH_FACTOR = 5

#: ``fetch(model, m) -> (items, scores)``: the model's top-``m`` lists, ``(B, m)``.
Fetch = Callable[[object, int], tuple[np.ndarray, np.ndarray]]


def check_diversity(value) -> float:
    """``value`` as a float in [0, 1], or a ``ValueError`` that says what is wrong."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"diversity must be a number in [0, 1], got {value!r}")
    d = float(value)
    if not math.isfinite(d) or not 0.0 <= d <= 1.0:
        raise ValueError(
            f"diversity must be in [0, 1] (0: the model's own ranking, 1: the most varied "
            f"list), got {value!r}"
        )
    return d


def candidate_depth(n: int, n_items: int) -> int:
    """How many of the model's items MMR chooses ``n`` from: ``max(50, 5n)``, at most the
    catalog."""
    return int(min(n_items, max(DEPTH_MIN, DEPTH_FACTOR * n)))


def mmr(
    items: np.ndarray,
    scores: np.ndarray,
    n: int,
    diversity: float,
    similarity,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank lists by maximal marginal relevance (see the module docstring).

    ``items``/``scores``: ``(B, M)`` lists best first (``-1``/``-inf`` padding), e.g. a
    model's over-fetched top-M. ``similarity``: an
    :class:`~recogan._similarity.ItemSimilarity` (its ``pairs``) or a function
    ``(a (B,), b (B, M)) -> (B, M)``. Returns the ``(B, n)`` re-ranked lists with the
    original scores of the picked items.
    """
    d = check_diversity(diversity)
    items = np.asarray(items, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    if items.ndim != 2 or items.shape != scores.shape:
        raise ValueError(
            f"items and scores must have one 2-D shape, got {items.shape} and {scores.shape}"
        )
    pairs = similarity.pairs if isinstance(similarity, ItemSimilarity) else similarity
    B, M = items.shape
    out_items = np.full((B, n), -1, dtype=np.int64)
    out_scores = np.full((B, n), -np.inf, dtype=np.float32)
    valid = (items >= 0) & np.isfinite(scores)
    s = np.where(valid, scores, 0.0).astype(np.float64)
    lo = np.min(np.where(valid, s, np.inf), axis=1, keepdims=True)
    hi = np.max(np.where(valid, s, -np.inf), axis=1, keepdims=True)
    span = np.where(valid.any(1, keepdims=True), hi - lo, 0.0)
    rel = np.divide(
        s - np.where(np.isfinite(lo), lo, 0.0), span, out=np.ones_like(s), where=span > 0
    )  # (B, M) in [0, 1] on valid entries
    safe = np.maximum(items, 0)
    rows = np.arange(B)
    avail = valid.copy()
    max_sim = np.zeros((B, M))  # max similarity to the picked items (none picked yet)
    for t in range(min(n, M)):
        gain = (1.0 - d) * rel - d * max_sim if t else rel
        gain = np.where(avail, gain, -np.inf)
        j = np.argmax(gain, axis=1)  # first maximum: the better-ranked item wins ties
        ok = avail[rows, j]
        if not ok.any():
            break
        out_items[ok, t] = items[rows, j][ok]
        out_scores[ok, t] = scores[rows, j][ok]
        avail[rows, j] = False
        if t + 1 < n and d > 0:
            sim = np.asarray(pairs(safe[rows, j], safe), dtype=np.float64)  # (B, M)
            max_sim = sim if t == 0 else np.maximum(max_sim, sim)
    return out_items, out_scores


def with_diversity(model, diversity: float):
    """A shallow copy of ``model`` whose own diversity setting (``diversity_param()``) is
    ``diversity``; the model itself is unchanged. Raises for a model without one."""
    knob = model.diversity_param()
    if knob is None:
        raise ValueError(
            f"{type(model).__name__} has no diversity setting of its own: use MMR "
            "(recogan.diversity.diversify)"
        )
    clone = copy.copy(model)
    clone.set_recommend_params(**{knob: check_diversity(diversity)})
    return clone


def diversify(model, diversity, fetch: Fetch, n: int, similarity=None):
    """``(items, scores)`` ``(B, n)``: ``fetch``'s lists made more varied by ``diversity``.

    ``fetch(model, m)`` returns the top-``m`` lists of the users asked for (with any
    exclusions, candidates and filters applied); it is called once: with ``n`` at
    ``diversity=0``, on :func:`with_diversity`'s copy for a model with its own mechanism,
    else with :func:`candidate_depth` items that :func:`mmr` re-ranks. ``similarity``: an
    :class:`~recogan._similarity.ItemSimilarity`, a function returning one (built only when
    MMR runs) or None (the model's, :meth:`ItemSimilarity.of`).
    """
    d = check_diversity(diversity)
    if d == 0.0:
        return fetch(model, n)
    if model.diversity_param() is not None:
        return fetch(with_diversity(model, d), n)
    items, scores = fetch(model, candidate_depth(n, model.n_items_))
    if similarity is None:
        similarity = ItemSimilarity.of(model, device="cpu")
    elif not isinstance(similarity, ItemSimilarity) and callable(similarity):
        similarity = similarity()
    return mmr(items, scores, n, d, similarity)


def recommend(
    model,
    user_idx,
    n: int = 10,
    diversity: float = 0.0,
    exclude_seen: bool = True,
    candidates: np.ndarray | None = None,
    similarity=None,
) -> tuple[np.ndarray, np.ndarray]:
    """``model.recommend`` with the diversity knob (``diversity=0``: exactly it)."""
    d = check_diversity(diversity)
    users = model.check_users(user_idx)
    n = model.check_n(n, candidates)

    def fetch(m, k):
        return m.recommend(users, k, exclude_seen=exclude_seen, candidates=candidates)

    return diversify(model, d, fetch, n, similarity)


class Diversified:
    """A read-only view of a fitted model whose ``recommend`` and ``recommend_history`` apply
    the diversity knob; every other attribute is the model's (e.g. ``seen_``), so whatever
    scores a model (:func:`recogan.metrics.score`) scores the view. The item similarity is
    built once, on first use."""

    def __init__(self, model, diversity: float, similarity=None) -> None:
        self.model = model
        self.diversity = check_diversity(diversity)
        self._similarity = similarity

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __repr__(self) -> str:
        return f"Diversified({self.model!r}, diversity={self.diversity})"

    def similarity(self) -> ItemSimilarity:
        if self._similarity is None:
            self._similarity = ItemSimilarity.of(self.model, device="cpu")
        return self._similarity

    def recommend(self, user_idx, n=10, exclude_seen=True, candidates=None):
        return recommend(
            self.model, user_idx, n, self.diversity, exclude_seen, candidates, self.similarity
        )

    def recommend_history(self, histories, n=10, exclude_seen=True, candidates=None, times=None):
        self.model.check_fitted()
        n = self.model.check_n(n, candidates)

        def fetch(m, k):
            return m.recommend_history(
                histories, k, exclude_seen=exclude_seen, candidates=candidates, times=times
            )

        return diversify(self.model, self.diversity, fetch, n, self.similarity)
