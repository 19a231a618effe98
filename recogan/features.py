"""Item feature vectors and behaviour embeddings.

``ItemFeatures.fit(train)`` builds ``F`` (``n_items × d``, rows L2-normalised) from:

- a collaborative part: truncated SVD of the item × user purchase matrix, seeded, with users
  weighted by ``1/sqrt(#items)`` so heavy buyers do not dominate and (``cf_item_norm``, the
  default) items by ``1/sqrt(#buyers)``, the symmetrically normalised purchase graph, so
  that the components describe which items are bought together rather than which sell
  most;
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
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

from recogan.data import Dataset

log = logging.getLogger(__name__)

DAY = 86400.0


@dataclass
class ItemFeaturesConfig:
    #: Dimensions of the collaborative (SVD) part; 0 disables it.
    dim_cf: int = 64
    #: Weight items by ``1/sqrt(#buyers)`` before the collaborative SVD (the normalised
    #: purchase graph ``D_i^-1/2 X D_u^-1/2``). Without it the leading components are spent
    #: on the best sellers: on grocery baskets (16k products) a history's pooled features
    #: then rank unseen products at a third of item-kNN's NDCG@10; normalised, at twice that
    #: (benchmarks/RESULTS.md, "The GAN's item features on grocery baskets").
    cf_item_norm: bool = True
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
                price = cat["price"].to_numpy(np.float64)
                add("price", _price(price), c.w_price)
                self.price_stats_ = _price_stats(price)
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
        if self.config.cf_item_norm:
            buyers = np.diff(X.indptr).astype(np.float64)  # binary rows: #buyers per item
            X = sp.diags(1.0 / np.sqrt(np.maximum(buyers, 1.0))).astype(np.float32) @ X
        svd = TruncatedSVD(k, algorithm="randomized", n_iter=5, random_state=self.config.seed)
        return svd.fit_transform(X)

    def _text(self, titles) -> np.ndarray | None:
        k = self.config.dim_text
        if k <= 0:
            return None
        docs = [t if isinstance(t, str) else "" for t in titles.to_numpy(object)]
        if not any(docs):
            return None
        vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=1, max_features=50_000)
        try:
            X = vectorizer.fit_transform(docs)
        except ValueError:  # only stop words / empty vocabulary
            return None
        # kept so that a new product's title can be embedded later (see ``transform``)
        vocab = vectorizer.vocabulary_
        self.text_terms_ = sorted(vocab, key=vocab.__getitem__)
        self.text_idf_ = vectorizer.idf_.astype(np.float64)
        self.text_components_ = None
        k = min(k, min(X.shape) - 1)
        if k <= 0:
            return X.toarray()
        svd = TruncatedSVD(k, algorithm="randomized", n_iter=5, random_state=self.config.seed)
        out = svd.fit_transform(X)
        self.text_components_ = svd.components_.astype(np.float32)
        return out

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

    # ------------------------------------------------------------------ new products
    def transform(
        self, catalog, *, neighbours: np.ndarray | None = None, k: int = 20
    ) -> np.ndarray:
        """Feature rows ``(m, d)`` of products the fit never saw, from their catalog rows.

        ``catalog`` is a DataFrame with any of ``title``, ``category``, ``price`` (missing
        columns count as unknown). Each content part is built with the fitted vocabulary,
        idf, text SVD and price scaling, and weighted as in :meth:`fit`.

        The collaborative part: without ``neighbours`` it is zero (nobody bought the product),
        which is exactly the row :meth:`fit` gives a catalog product without sales. With
        ``neighbours`` (fitted rows ``F``; those without a collaborative part are skipped) it
        is imputed from the ``k`` most similar in content (:meth:`content_neighbours`): the
        mean of their unit collaborative parts weighted by content cosine. The mean of unit
        vectors is shorter when the neighbours disagree, so an uncertain guess weighs less.
        A row with no usable content is a zero row.
        """
        if neighbours is None or "cf" not in self.parts_ or k <= 0:
            return _unit_rows(self._content_rows(catalog))
        return self.content_neighbours(catalog, neighbours, k)[0]

    def content_neighbours(self, catalog, F: np.ndarray, k: int = 20):
        """``(rows, idx, w)``: the rows of :meth:`transform` with the collaborative part
        imputed, and for each new product the indices ``(m, k)`` of its ``k`` content-nearest
        rows of ``F`` that have a collaborative part, with their weights ``(m, k)`` (content
        cosine, negative ones 0; rows of zeros when there is no neighbour)."""
        Q = self._content_rows(catalog)  # (m, d) before normalisation, cf part zero
        a, b = self.parts_["cf"]
        content = np.ones(Q.shape[1], dtype=bool)
        content[a:b] = False
        cf = np.asarray(F[:, a:b], dtype=np.float32)
        pool = np.flatnonzero(np.linalg.norm(cf, axis=1) > 0)
        C = _unit_rows(np.asarray(F[pool][:, content], dtype=np.float32))
        U = _unit_rows(cf[pool])
        q = _unit_rows(Q[:, content])
        k = min(k, len(pool))
        idx = np.zeros((len(Q), k), dtype=np.int64)
        w = np.zeros((len(Q), k), dtype=np.float32)
        step = max(1, (1 << 24) // max(len(pool), 1))  # bounded (step, n) similarity block
        for s in range(0, len(q) if k else 0, step):
            sim = q[s : s + step] @ C.T  # (B, n)
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            ws = np.maximum(np.take_along_axis(sim, top, 1), 0.0)  # (B, k)
            total = ws.sum(1, keepdims=True)
            est = np.einsum("bk,bkd->bd", ws, U[top])
            est = np.divide(est, total, out=np.zeros_like(est), where=total > 0)
            Q[s : s + step, a:b] = self.config.w_cf * est
            idx[s : s + step], w[s : s + step] = pool[top], ws
        return _unit_rows(Q), idx, w

    def _content_rows(self, catalog) -> np.ndarray:
        if not hasattr(self, "parts_"):
            raise RuntimeError("ItemFeatures.transform needs a fitted pipeline (fit or load)")
        c = self.config
        m = len(catalog)
        weights = {"cf": c.w_cf, "text": c.w_text, "category": c.w_category, "price": c.w_price}
        out = np.zeros((m, max(e for _, e in self.parts_.values())), dtype=np.float32)
        for name, (start, end) in self.parts_.items():
            column = {"text": "title"}.get(name, name)
            if name == "cf" or column not in catalog:
                block = None
            elif name == "text":
                block = self._text_rows(catalog["title"])
            elif name == "category":
                block = self._category(catalog["category"])
            else:
                block = _price_block(catalog["price"].to_numpy(np.float64), *self.price_stats_)
            if block is not None:
                out[:, start:end] = weights[name] * _unit_rows(block.astype(np.float32))
        return out

    def _text_rows(self, titles) -> np.ndarray:
        """Title TF-IDF (fitted vocabulary and idf, sublinear tf, l2 rows) → fitted SVD."""
        docs = [t if isinstance(t, str) else "" for t in titles.to_numpy(object)]
        X = CountVectorizer(vocabulary=self.text_terms_).transform(docs).astype(np.float64)
        X.data = np.log(X.data) + 1.0  # sublinear tf, as TfidfVectorizer(sublinear_tf=True)
        X = normalize(X @ sp.diags(self.text_idf_), norm="l2")
        if self.text_components_ is None:
            return X.toarray()
        return np.asarray(X @ self.text_components_.T.astype(np.float64))

    def content_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """What :meth:`transform` needs, as JSON-friendly settings and numeric arrays (no
        pickle): the part layout, the title vocabulary (in column order), idf and SVD
        components, and the price scaling."""
        if not hasattr(self, "parts_"):
            raise RuntimeError("ItemFeatures is not fitted: nothing to save")
        meta = {
            "format_version": 1,
            "config": asdict(self.config),
            "parts": {k: [int(a), int(b)] for k, (a, b) in self.parts_.items()},
            "price_stats": list(getattr(self, "price_stats_", None) or []) or None,
            "text_terms": list(getattr(self, "text_terms_", [])) if "text" in self.parts_ else [],
        }
        arrays = {}
        if "text" in self.parts_:
            arrays["text_idf"] = self.text_idf_
            if self.text_components_ is not None:
                arrays["text_components"] = self.text_components_
        return meta, arrays

    @classmethod
    def from_content_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> ItemFeatures:
        """Rebuild a pipeline that can :meth:`transform` from :meth:`content_state`'s output
        (its ``F_`` is not part of that state)."""
        if meta.get("format_version") != 1:
            raise ValueError(f"unsupported item-feature state {meta.get('format_version')!r}")
        self = cls(ItemFeaturesConfig(**meta["config"]))
        self.parts_ = {k: (int(a), int(b)) for k, (a, b) in meta["parts"].items()}
        if "price" in self.parts_:
            if not meta.get("price_stats"):
                raise ValueError("item-feature state has a price part but no price scaling")
            self.price_stats_ = tuple(float(x) for x in meta["price_stats"])
        if "text" in self.parts_:
            self.text_terms_ = [str(t) for t in meta["text_terms"]]
            self.text_idf_ = np.asarray(arrays["text_idf"], dtype=np.float64)
            comp = arrays.get("text_components")
            self.text_components_ = None if comp is None else np.asarray(comp, np.float32)
            width = self.parts_["text"][1] - self.parts_["text"][0]
            n_terms = len(self.text_terms_)
            if self.text_idf_.shape != (n_terms,) or (
                comp is not None and comp.shape != (width, n_terms)
            ):
                raise ValueError("item-feature state: text arrays disagree with the vocabulary")
        return self


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
    stats = _price_stats(price)
    if stats is None:
        return np.zeros((len(price), 0), dtype=np.float32)
    return _price_block(price, *stats)


def _price_stats(price: np.ndarray) -> tuple[float, float] | None:
    """Mean and sd of the known log prices (None when no price is known)."""
    logp = _log_price(price)
    ok = np.isfinite(logp)
    if not ok.any():
        return None
    return float(logp[ok].mean()), float(logp[ok].std() or 1.0)


def _log_price(price: np.ndarray) -> np.ndarray:
    price = np.asarray(price, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(np.where(np.isfinite(price) & (price > 0), price, np.nan))


def _price_block(price: np.ndarray, mu: float, sd: float) -> np.ndarray:
    logp = _log_price(price)
    ok = np.isfinite(logp)
    # one column: its sign after normalisation, so a second constant column keeps magnitude
    z = np.where(ok, (logp - mu) / sd, 0.0)
    return np.stack([z, np.ones_like(z)], axis=1).astype(np.float32)
