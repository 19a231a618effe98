"""Item feature vectors and behaviour embeddings.

``ItemFeatures.fit(train)`` builds ``F`` (``n_items × d``, rows L2-normalised) from:

- a collaborative part: truncated SVD of the item × user purchase matrix (users weighted by
  ``1/sqrt(#items)`` so heavy buyers do not dominate), seeded;
- content parts from whatever the catalog has: title text (TF-IDF + SVD), category (hashed
  tokens), price (log, standardised).

Each part is L2-normalised on its own and scaled by its weight before the rows are normalised,
so the weights say how much of a vector's direction each part may claim. An item that was
never bought has a zero collaborative part and still gets a vector from its content.

``behaviour(histories, times, now)`` pools the features of a purchase history with weights
``0.5 ** (age / half_life)``: recent purchases say more about what comes next.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer

from recogan.data import Dataset

log = logging.getLogger(__name__)

DAY = 86400.0


@dataclass
class ItemFeaturesConfig:
    #: Dimensions of the collaborative (SVD) part; 0 disables it.
    dim_cf: int = 64
    #: Dimensions of the title-text part (TF-IDF → SVD); 0 disables it.
    dim_text: int = 32
    #: Hash buckets of the category part; 0 disables it.
    dim_category: int = 16
    #: Weights of the parts (collaborative, text, category, price).
    w_cf: float = 1.0
    w_text: float = 0.5
    w_category: float = 0.5
    w_price: float = 0.25
    #: Half-life (days) of the behaviour embedding's time decay; None: all events weigh the same.
    half_life_days: float | None = 30.0
    #: Seed of the randomised SVDs.
    seed: int = 0


class ItemFeatures:
    """Fits and holds ``F_`` (float32 ``(n_items, d)``, unit rows or zero rows)."""

    def __init__(self, config: ItemFeaturesConfig | None = None, **kwargs) -> None:
        config = config or ItemFeaturesConfig()
        for k, v in kwargs.items():
            if not hasattr(config, k):
                raise TypeError(f"ItemFeatures got unknown parameter {k!r}")
            setattr(config, k, v)
        self.config = config

    # ------------------------------------------------------------------ fitting
    def fit(self, train: Dataset) -> ItemFeatures:
        c = self.config
        parts: list[np.ndarray] = []
        self.parts_: dict[str, tuple[int, int]] = {}

        def add(name: str, block: np.ndarray | None, weight: float) -> None:
            if block is None or block.shape[1] == 0 or weight == 0:
                return
            start = sum(p.shape[1] for p in parts)
            parts.append(weight * _unit_rows(block.astype(np.float32)))
            self.parts_[name] = (start, start + block.shape[1])

        add("cf", self._collaborative(train), c.w_cf)
        cat = train.catalog
        if cat is not None:
            if "title" in cat:
                add("text", self._text(cat["title"]), c.w_text)
            if "category" in cat and c.dim_category > 0:
                add("category", self._category(cat["category"]), c.w_category)
            if "price" in cat:
                add("price", _price(cat["price"].to_numpy(np.float64)), c.w_price)
        if not parts:
            raise ValueError(
                f"{train.name}: no item features could be built (dim_cf=0 and no catalog parts)"
            )
        self.set_matrix(np.hstack(parts))
        log.info("item features: %s, parts %s", self.F_.shape, self.parts_)
        return self

    def set_matrix(self, F: np.ndarray) -> ItemFeatures:
        """Use a given feature matrix (rows are L2-normalised); NaN/inf are refused."""
        F = np.asarray(F, dtype=np.float32)
        if F.ndim != 2:
            raise ValueError(f"item features must be a 2-D (n_items, d) array, got {F.shape}")
        bad = ~np.isfinite(F)
        if bad.any():
            row, col = (int(x[0]) for x in np.nonzero(bad))
            raise ValueError(
                f"item features contain {int(bad.sum())} NaN/inf value(s), "
                f"first at item {row}, column {col}"
            )
        self.F_ = _unit_rows(F)
        return self

    @property
    def dim(self) -> int:
        return int(self.F_.shape[1])

    def _collaborative(self, train: Dataset) -> np.ndarray | None:
        k = self.config.dim_cf
        X = train.csr(binary=True).T.tocsr()  # (items, users)
        k = min(k, min(X.shape) - 1)
        if k <= 0:
            return None
        deg = np.asarray(X.sum(axis=0)).ravel()
        X = X @ sp.diags(1.0 / np.sqrt(np.maximum(deg, 1.0))).astype(np.float32)
        svd = TruncatedSVD(k, algorithm="randomized", n_iter=5, random_state=self.config.seed)
        return svd.fit_transform(X)

    def _text(self, titles) -> np.ndarray | None:
        k = self.config.dim_text
        if k <= 0:
            return None
        docs = [t if isinstance(t, str) else "" for t in titles.to_numpy(object)]
        if not any(docs):
            return None
        try:
            X = TfidfVectorizer(sublinear_tf=True, min_df=1, max_features=50_000).fit_transform(
                docs
            )
        except ValueError:  # only stop words / empty vocabulary
            return None
        k = min(k, min(X.shape) - 1)
        if k <= 0:
            return X.toarray()
        svd = TruncatedSVD(k, algorithm="randomized", n_iter=5, random_state=self.config.seed)
        return svd.fit_transform(X)

    def _category(self, categories) -> np.ndarray:
        docs = [str(c) if isinstance(c, str) else "" for c in categories.to_numpy(object)]
        hv = HashingVectorizer(
            n_features=self.config.dim_category,
            token_pattern=r"[^\s|,;/]+",
            lowercase=True,
            alternate_sign=False,
            norm=None,
        )
        return hv.transform(docs).toarray()

    # ------------------------------------------------------------------ behaviour
    def behaviour(
        self,
        histories: Sequence[Sequence[int]],
        times: Sequence[Sequence[float]] | None = None,
        now: float | None = None,
    ) -> np.ndarray:
        """Behaviour embeddings ``(B, d)`` of purchase histories (lists of item indices).

        ``times`` (epoch seconds per event) and ``now`` give each event the weight
        ``0.5 ** ((now - t) / half_life)``; without times all events weigh the same. Rows are
        L2-normalised; an empty history gives a zero row.
        """
        self._check()
        B, d = len(histories), self.dim
        out = np.zeros((B, d), dtype=np.float32)
        hl = self.config.half_life_days
        for b, h in enumerate(histories):
            h = np.asarray(h, dtype=np.int64).ravel()
            if h.size == 0:
                continue
            if h.min() < 0 or h.max() >= self.F_.shape[0]:
                raise IndexError(f"history {b} has item indices outside 0..{self.F_.shape[0] - 1}")
            w = np.ones(h.size)
            if times is not None and hl:
                t = np.asarray(times[b], dtype=np.float64).ravel()
                if t.shape != h.shape:
                    raise ValueError(f"history {b}: {h.size} items but {t.size} times")
                ref = float(now) if now is not None else float(t.max())
                w = decay_weights((ref - t) / DAY, hl)
            out[b] = (w[:, None] * self.F_[h]).sum(0) / max(w.sum(), 1e-12)
        return _unit_rows(out)

    def _check(self) -> None:
        if not hasattr(self, "F_"):
            raise RuntimeError("ItemFeatures is not fitted: call fit() or set_matrix()")


def decay_weights(age_days: np.ndarray, half_life_days: float | None) -> np.ndarray:
    """``0.5 ** (age / half_life)`` (ages clipped at 0); ones when no half-life is set."""
    age = np.maximum(np.asarray(age_days, dtype=np.float64), 0.0)
    if not half_life_days:
        return np.ones_like(age)
    return np.power(0.5, age / float(half_life_days))


def _unit_rows(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return (X / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _price(price: np.ndarray) -> np.ndarray:
    """log price, standardised; unknown prices sit at the mean (0)."""
    p = np.where(np.isfinite(price) & (price > 0), price, np.nan)
    logp = np.log(p)
    ok = np.isfinite(logp)
    if not ok.any():
        return np.zeros((len(price), 0), dtype=np.float32)
    mu, sd = logp[ok].mean(), logp[ok].std() or 1.0
    # one column: its sign after normalisation, so a second constant column keeps magnitude
    z = np.where(ok, (logp - mu) / sd, 0.0)
    return np.stack([z, np.ones_like(z)], axis=1).astype(np.float32)
