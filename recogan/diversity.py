"""One knob for wider lists, for every model: ``diversity`` in [0, 1], and its re-ranking.

The serving pipeline (:mod:`recogan.serving`) applies the knob; this module holds its check
and the maximal-marginal-relevance re-ranking. (The GAN's own mechanism, a tail of items from
their audiences, is the GAN's: see its ``diversity`` setting.)

- ``diversity=0``: the model's lists exactly as it ranks them (nothing else runs).
- ``diversity>0`` on a model with its own mechanism (:meth:`Model.with_diversity`, e.g. a
  generator's noise draws): a shallow copy of the model set to the value ranks (the model
  itself is never changed, so concurrent callers are safe).
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

>>> items, scores = mmr(top_items, top_scores, n=10, diversity=0.3, similarity=sim)
>>> recogan.serving.recommend(model, users, n=10, diversity=0.3)   # fetch, filter, re-rank
"""

from __future__ import annotations

import math

import numpy as np

from recogan._similarity import ItemSimilarity

__all__ = [
    "DEPTH_FACTOR",
    "DEPTH_MIN",
    "candidate_depth",
    "check_diversity",
    "mmr",
    "with_diversity",
]

#: MMR re-ranks the model's top ``max(DEPTH_MIN, DEPTH_FACTOR * n)`` items.
DEPTH_MIN = 50
DEPTH_FACTOR = 5


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
    """A shallow copy of ``model`` whose own diversity mechanism is set to ``diversity``
    (:meth:`recogan.base.Model.with_diversity`); the model itself is unchanged. Raises for a
    model without one."""
    return model.with_diversity(check_diversity(diversity))
