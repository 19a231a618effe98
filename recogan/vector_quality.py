"""How good generated vectors are: pure numpy functions on sets of vectors.

A generator that draws several query vectors per customer should draw them where real
purchases are (fidelity), spread them over everywhere real purchases are (diversity), and
make each customer's draws land on different catalogue items that customer goes on to buy.

- :func:`frechet_distance`: ‖μ_r − μ_g‖² + tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2}), the Fréchet
  (2-Wasserstein) distance between Gaussians fitted to the two sets (as in FID, Heusel et al.
  2017); 0 for equal moments.
- :func:`precision_recall`: the k-nearest-neighbour manifold estimate of Kynkäänniemi et al.
  (2019): each set's manifold is the union of balls around its points with radius the
  distance to their k-th nearest neighbour in the set; precision is the share of generated
  points inside the real manifold, recall the share of real points inside the generated one.
  Mode collapse shows as high precision with low recall.
- :func:`draw_spread`: per customer, the mean pairwise Euclidean distance between their draws.
- :func:`draw_coverage`: per customer, the share of the items they really bought next that are
  the nearest catalogue item of at least one of their draws.
- :func:`generation_quality`: all of these for draws ``(U, S, d)`` against the items each
  customer bought next; its :meth:`GenerationQuality.summary` is the dict a model keeps as
  ``generation_quality_`` and the evaluation report shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = [
    "GenerationQuality",
    "draw_coverage",
    "draw_spread",
    "frechet_distance",
    "frechet_from_moments",
    "generation_quality",
    "knn_radii",
    "nearest_items",
    "precision_recall",
]

#: Rows of a distance block computed at once (bounds memory: block × other set's size).
_BLOCK = 1024


def _points(x, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (points, dims), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} holds NaN or infinite values")
    return x


def _two_sets(a, b, what_a: str, what_b: str, least: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = _points(a, what_a), _points(b, what_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{what_a} has {a.shape[1]} dims but {what_b} has {b.shape[1]}")
    for x, what in ((a, what_a), (b, what_b)):
        if len(x) < least:
            raise ValueError(f"{what} needs at least {least} points, got {len(x)}")
    return a, b


# ---------------------------------------------------------------------- Fréchet distance
def frechet_from_moments(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``tr (Σ1 Σ2)^{1/2}`` is computed as the sum of square roots of the eigenvalues of the
    symmetric ``A Σ2 A`` with ``A = Σ1^{1/2}`` (both from symmetric eigendecompositions with
    negative round-off clipped to 0): the same eigenvalues as ``Σ1 Σ2``, without the complex
    parts or failures a general matrix square root meets on singular covariances.
    """
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    s1, s2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"moments do not match: means {mu1.shape} and {mu2.shape}, covariances "
            f"{s1.shape} and {s2.shape}"
        )
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    w, V = np.linalg.eigh(s1)
    A = (V * np.sqrt(np.clip(w, 0, None))) @ V.T  # Σ1^{1/2}
    lam = np.linalg.eigvalsh(A @ s2 @ A)
    tr_sqrt = np.sqrt(np.clip(lam, 0, None)).sum()
    diff = mu1 - mu2
    fd = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt
    return float(max(fd, 0.0))


def frechet_distance(real, generated) -> float:
    """Fréchet distance between Gaussians fitted to two sets of vectors ``(n, d)`` (means and
    sample covariances, ``ddof=1``)."""
    a, b = _two_sets(real, generated, "real", "generated", 2)
    return frechet_from_moments(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )


# ---------------------------------------------------------------------- k-NN precision/recall
def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def knn_radii(x, k: int = 3) -> np.ndarray:
    """Distance of each point of ``x`` ``(n, d)`` to its ``k``-th nearest other point."""
    x = _points(x, "points")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if len(x) <= k:
        raise ValueError(f"k={k} needs more than k points, got {len(x)}")
    out = np.empty(len(x))
    for s in range(0, len(x), _BLOCK):
        D = _sq_dists(x[s : s + _BLOCK], x)
        D[np.arange(len(D)), np.arange(s, s + len(D))] = np.inf  # not its own neighbour
        out[s : s + _BLOCK] = np.partition(D, k - 1, axis=1)[:, k - 1]
    return np.sqrt(out)


def _inside(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Whether each point lies in at least one ball ``(centre, radius)``."""
    r2 = radii**2
    out = np.empty(len(points), dtype=bool)
    for s in range(0, len(points), _BLOCK):
        D = _sq_dists(points[s : s + _BLOCK], centres)
        out[s : s + _BLOCK] = (D <= r2[None, :] * (1 + 1e-9) + 1e-12).any(1)
    return out


def precision_recall(real, generated, k: int = 3) -> tuple[float, float]:
    """``(precision, recall)`` of ``generated`` against ``real`` by the k-NN manifold method
    (Kynkäänniemi et al. 2019; see the module docstring)."""
    r, g = _two_sets(real, generated, "real", "generated", k + 1)
    precision = _inside(g, r, knn_radii(r, k)).mean()
    recall = _inside(r, g, knn_radii(g, k)).mean()
    return float(precision), float(recall)


# ---------------------------------------------------------------------- per-customer draws
def _draws(generated) -> np.ndarray:
    G = np.asarray(generated, dtype=np.float64)
    if G.ndim != 3:
        raise ValueError(f"generated must be (users, draws, dims), got shape {G.shape}")
    if not np.isfinite(G).all():
        raise ValueError("generated holds NaN or infinite values")
    return G


def draw_spread(generated) -> np.ndarray:
    """Per user, the mean pairwise Euclidean distance between their ``S`` draws
    (``generated`` ``(U, S, d)``); NaN with fewer than 2 draws."""
    G = _draws(generated)
    U, S, _ = G.shape
    if S < 2:
        return np.full(U, np.nan)
    iu = np.triu_indices(S, 1)
    out = np.empty(U)
    step = max(1, _BLOCK * 64 // (S * S))
    for s in range(0, U, step):
        g = G[s : s + step]
        sq = (g * g).sum(-1)
        D = sq[:, :, None] + sq[:, None, :] - 2.0 * np.einsum("usd,utd->ust", g, g)
        out[s : s + step] = np.sqrt(np.maximum(D[:, iu[0], iu[1]], 0.0)).mean(1)
    return out


def _target_lists(targets, U: int, n_items: int) -> list[np.ndarray]:
    if sp.issparse(targets):
        T = sp.csr_matrix(targets)
        if T.shape != (U, n_items):
            raise ValueError(f"targets must be ({U}, {n_items}) (users, items), got {T.shape}")
        return [T.indices[T.indptr[u] : T.indptr[u + 1]].astype(np.int64) for u in range(U)]
    if isinstance(targets, (str, bytes)) or not isinstance(targets, Sequence):
        raise TypeError(
            "targets must be a list of item-index arrays (one per user) or a CSR matrix"
        )
    if len(targets) != U:
        raise ValueError(f"targets has {len(targets)} users but generated has {U}")
    out = []
    for u, t in enumerate(targets):
        t = np.asarray(t).ravel()
        if t.size and not np.issubdtype(t.dtype, np.integer):
            raise TypeError(f"targets of user {u} must be item indices, got dtype {t.dtype}")
        t = t.astype(np.int64)
        if t.size and (t.min() < 0 or t.max() >= n_items):
            raise IndexError(f"targets of user {u} hold item indices outside 0..{n_items - 1}")
        out.append(np.unique(t))
    return out


def nearest_items(generated, item_vectors, metric: str = "ip", exclude=None) -> np.ndarray:
    """The catalogue item nearest to each draw: int64 ``(U, S)``. ``metric``: ``ip`` (largest
    inner product, the retrieval of a model that searches by inner product) or ``l2``;
    ``exclude``: an optional ``(U, n_items)`` sparse matrix of items a user's draws may not
    land on (e.g. what they already bought)."""
    G = _draws(generated)
    V = _points(item_vectors, "item_vectors")
    U, S, d = G.shape
    if V.shape[1] != d:
        raise ValueError(f"item_vectors have {V.shape[1]} dims but the draws have {d}")
    if metric not in ("ip", "l2"):
        raise ValueError(f"metric must be 'ip' or 'l2', got {metric!r}")
    X = None if exclude is None else sp.csr_matrix(exclude)
    if X is not None and X.shape != (U, len(V)):
        raise ValueError(f"exclude must be ({U}, {len(V)}), got {X.shape}")
    half_norm = 0.5 * (V * V).sum(1)
    out = np.empty((U, S), dtype=np.int64)
    step = max(1, _BLOCK // S)
    for s in range(0, U, step):
        g = G[s : s + step]  # (b, S, d)
        sc = g @ V.T  # (b, S, N)
        if metric == "l2":  # nearest = largest q·v - |v|²/2
            sc = sc - half_norm
        if X is not None:
            blk = X[s : s + step]
            rows = np.repeat(np.arange(blk.shape[0]), np.diff(blk.indptr))
            sc[rows, :, blk.indices] = -np.inf
        out[s : s + step] = sc.argmax(-1)
    return out


def draw_coverage(generated, targets, item_vectors, metric: str = "ip", exclude=None):
    """Per user, the share of their targets (the items they bought next: a list of item-index
    arrays, or a ``(U, n_items)`` sparse matrix) that are the nearest catalogue item of at
    least one of their draws (:func:`nearest_items`); NaN for users without targets."""
    G = _draws(generated)
    V = _points(item_vectors, "item_vectors")
    T = _target_lists(targets, G.shape[0], len(V))
    nn = nearest_items(G, V, metric, exclude)
    return np.array(
        [np.isin(t, nn[u]).mean() if t.size else np.nan for u, t in enumerate(T)], np.float64
    )


@dataclass(frozen=True)
class GenerationQuality:
    """What :func:`generation_quality` measured: set-level ``frechet``, ``precision`` and
    ``recall`` of all draws against the vectors of the items bought next, and per-user
    ``draw_spread`` and ``draw_coverage`` ``(U,)``."""

    frechet: float
    precision: float
    recall: float
    draw_spread: np.ndarray
    draw_coverage: np.ndarray
    draws: int
    k: int

    def summary(self) -> dict[str, float]:
        """Numbers to log per epoch and keep as a model's ``generation_quality_``: the set
        metrics and the means over users of the per-user ones."""

        def mean(x):
            x = x[np.isfinite(x)]
            return float(x.mean()) if x.size else float("nan")

        return {
            "frechet": self.frechet,
            "precision": self.precision,
            "recall": self.recall,
            "draw_spread": mean(self.draw_spread),
            "draw_coverage": mean(self.draw_coverage),
            "users": len(self.draw_spread),
            "draws": int(self.draws),
        }


def generation_quality(
    generated,
    targets,
    item_vectors,
    *,
    k: int = 3,
    metric: str = "ip",
    exclude=None,
    max_points: int = 5000,
    seed: int = 0,
) -> GenerationQuality:
    """Every measure of this module for draws ``generated`` ``(U, S, d)`` of ``U`` users
    against the items each bought next (``targets``: a list of item-index arrays or a
    ``(U, n_items)`` sparse matrix) in the catalogue ``item_vectors`` ``(n_items, d)``.

    The real set is the vectors of the (user, item bought next) pairs, the generated set all
    draws; each is subsampled (seeded) to ``max_points`` for the Fréchet distance and the
    k-NN precision/recall, whose cost grows with the square of the set sizes.
    """
    G = _draws(generated)
    V = _points(item_vectors, "item_vectors")
    U, S, d = G.shape
    T = _target_lists(targets, U, len(V))
    real = V[np.concatenate(T)] if T else np.zeros((0, d))
    gen = G.reshape(U * S, d)
    rng = np.random.default_rng(seed)
    if len(real) > max_points:
        real = real[np.sort(rng.choice(len(real), max_points, replace=False))]
    if len(gen) > max_points:
        gen = gen[np.sort(rng.choice(len(gen), max_points, replace=False))]
    precision, recall = precision_recall(real, gen, k)
    return GenerationQuality(
        frechet=frechet_distance(real, gen),
        precision=precision,
        recall=recall,
        draw_spread=draw_spread(G),
        draw_coverage=draw_coverage(G, T, V, metric, exclude),
        draws=S,
        k=k,
    )
