"""New and withdrawn products between trainings (:class:`Placing`, part of
:class:`~recogan.gan.model.GANRecommender`): a new product's vector from its catalogue row,
its prior by a rule, and the item index kept in step.

Vector: the row :meth:`ItemFeatures.transform` gives: the content parts with the
fitted vocabulary, text SVD and price scaling, and the collaborative part imputed from
the ``NEW_ITEM_NEIGHBOURS`` trained products most similar in content (queries are
trained against whole item vectors, most of whose length is collaborative, so a
content-only vector would hardly ever be retrieved). With ``item_lr=0`` (the default)
the retrieval vectors are the item features themselves, so it is directly
comparable; with ``item_lr > 0`` the trained vectors have drifted from the features
and this is the best available estimate.

Prior: ``prior`` when given (a retailer's explicit push, the same for every new
product); else by the rule ``NEW_ITEM_PRIOR`` (one of ``NEW_ITEM_PRIOR_RULES``).
The model's prior of a trained product (learned bias plus popularity part) says how
much it sells now; a new product has no sales yet, and the GAN, which learned its
prior from recent sales, would read that as a product nobody buys. The launch rules
instead treat it like the products recently launched (:meth:`Placing.launches`: first sold
in the last weeks of training), whose priors say how well products sell in their
first weeks, each launch weighted by its buyers (``NEW_ITEM_LAUNCH_WEIGHTS``):

- ``"launch"`` (default): the buyer-weighted mean whole prior of the recent
  launches, the same for every new product: where the purchases of recent launches
  sit, so a new product is shown about as much as recent launches were bought, and
  its content vector decides to whom.
- ``"launch_neighbours"``: the same mean over the ``NEW_ITEM_NEIGHBOURS`` recent
  launches most similar in content (weights: cosine × buyers): a product like the
  launches that sold well gets their prior. On Online Retail it hits more new
  products' buyers but pushes some new products into most lists and costs overall
  accuracy (RESULTS.md, issue 14).
- ``"neighbours"``: the content-weighted mean whole prior of its content neighbours
  among all trained products (the default before the launch rules).
- ``"median"`` / ``"slow"``: the bias of a typical or of a slow-selling product with
  popularity features of zero (:meth:`Placing.new_item_prior`).

The launch rules fall back to ``"neighbours"`` when the model knows fewer than
``NEW_ITEM_MIN_LAUNCHES`` recent launches (e.g. it has no all-time and windowed
popularity features, or a training period no longer than its longest window). With
``"neighbours"`` or ``"median"``/``"slow"`` new products almost never reach a top-10
list on Online Retail. The prior is kept as the product's bias with zero popularity
features, so a reload gives the same.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from recogan.catalog import CannotPlaceItemsError, changes_of
from recogan.features import DAY

log = logging.getLogger(__name__)


class Placing:
    """``place_items``, ``withdraw_items`` and ``restore_items`` of the GAN."""

    #: The fitted item-feature pipeline (None in bundles of earlier recogan versions, which
    #: cannot place new products).
    features_ = None
    #: Content neighbours (trained products) a new product's collaborative part is imputed
    #: from (0: left at zero, the row ``fit`` gives a product without sales); the
    #: content-based prior rules average over as many.
    NEW_ITEM_NEIGHBOURS = 20
    #: The prior rules a new product can get (see :meth:`place_items`).
    NEW_ITEM_PRIOR_RULES = ("launch", "launch_neighbours", "neighbours", "median", "slow")
    #: The default rule, chosen on a validation window of benchmarks/new_items.py
    #: (RESULTS.md, issue 14).
    NEW_ITEM_PRIOR = "launch"
    #: Share of the least-bought sold products whose bias the "slow" rule takes.
    NEW_ITEM_QUANTILE = 0.1
    #: How the launch rules weigh the recent launches: "buyers" (each by its buyers in
    #: training: where the purchases of recent launches sit, so the few launches that sell
    #: count for more than the many that hardly do) or "equal" (the median launch).
    NEW_ITEM_LAUNCH_WEIGHTS = "buyers"
    #: Fewest recent launches (:meth:`launches`) the launch rules need; with fewer they fall
    #: back to the "neighbours" rule.
    NEW_ITEM_MIN_LAUNCHES = 20

    def place_items(self, catalog, prior: float | None = None):
        """Place new products from their catalog rows (see :meth:`Model.place_items`): the
        vector from their content, the prior ``prior`` when given (a retailer's explicit
        push, the same for every new product), else by the rule ``NEW_ITEM_PRIOR`` (one of
        ``NEW_ITEM_PRIOR_RULES``; how each works: :mod:`recogan.gan.placing`)."""
        self._check_fitted()
        feats = self.features_
        if feats is None or set(feats.parts_) <= {"cf"}:
            why = (
                "it was saved without its feature pipeline (a bundle of an earlier recogan): "
                "refit it"
                if feats is None
                else "it was trained without catalog content (title, category, price)"
            )
            raise CannotPlaceItemsError(f"this GAN cannot place new products: {why}")
        n_trained = changes_of(self).n_trained
        k = int(self.NEW_ITEM_NEIGHBOURS)
        rule = self._prior_rule(self.NEW_ITEM_PRIOR)
        if rule in ("neighbours", "launch_neighbours") and not k:
            raise ValueError(f"the {rule!r} prior needs NEW_ITEM_NEIGHBOURS > 0")
        if k and "cf" in feats.parts_:
            F_new, nb, w = feats.content_neighbours(catalog, self.F_[:n_trained], k)
        else:
            F_new, nb, w = feats.transform(catalog), None, None
        empty = ~F_new.any(axis=1)
        if empty.any():
            uses = ", ".join(p for p in feats.parts_ if p != "cf")
            raise ValueError(
                f"{int(empty.sum())} new product(s) (rows {np.flatnonzero(empty)[:5].tolist()}) "
                f"have no content the model uses ({uses})"
            )
        b = self._new_priors(catalog, len(F_new), nb, w, prior, rule, k)
        return self._adding(F_new, b)

    def _new_priors(self, catalog, m: int, nb, w, prior, rule: str, k: int) -> np.ndarray:
        """The priors ``(m,)`` of ``m`` new products: ``prior``, or by ``rule`` from their
        content neighbours ``nb`` (weights ``w``; None without the collaborative part)."""
        P = self.item_index_[:, -1]  # the priors the index holds (bias + popularity part)
        if prior is not None:
            if not np.isfinite(prior):
                raise ValueError(f"prior must be a finite number, got {prior!r}")
            return np.full(m, float(prior), np.float32)
        if rule == "launch_neighbours" and nb is not None:
            launched, sales = self._launch_weights()
            _, nb_l, w_l = self.features_.content_neighbours(catalog, self.F_[launched], k)
            w_l = w_l * sales[nb_l]
            return self._weighted_mean(P[launched][nb_l], w_l, self.new_item_prior("launch"))
        if rule == "neighbours" and nb is not None:
            return self._weighted_mean(P[nb], w, self.new_item_prior("median"))
        return np.full(m, self.new_item_prior(rule), np.float32)

    def _adding(self, F_new: np.ndarray, b: np.ndarray):
        """The change that adds products with vectors ``F_new`` and priors ``b`` to the
        networks, the arrays and the index (run by the caller once every check passed)."""
        m, N = len(F_new), self.n_items_
        rows = np.hstack([F_new, b[:, None]]).astype(np.float32)
        W = self.logpop_.shape[0]

        def commit() -> None:
            t = self.nets_.tower
            dev = t.emb.device
            with torch.no_grad():
                emb = torch.cat([t.emb.detach(), torch.as_tensor(F_new, device=dev)])
                bias = torch.cat([t.bias.detach(), torch.as_tensor(b, device=dev)])
            t.emb, t.bias = torch.nn.Parameter(emb), torch.nn.Parameter(bias)
            self.F_ = np.vstack([self.F_, F_new])
            self.logpop_ = np.hstack([self.logpop_, np.zeros((W, m), np.float32)])
            self.item_index_ = np.vstack([self.item_index_, rows])
            self.index_.add(rows, np.arange(N, N + m))

        return commit

    def launches(self) -> tuple[np.ndarray, int]:
        """The trained products launched recently: ``(indices, days)``, the products first
        sold within the last ``days`` of training, ``days`` the longest popularity window
        (``pop_windows``; 60 by default, about the first two months of a product's sales).
        Read from the popularity features at the end of training: a product whose all-time
        count equals its count in that window had no sale before it. Empty (``days`` 0) when
        the model keeps no all-time and no windowed feature, or when the customers' histories
        it keeps do not reach back further than the window (then every product would look
        new)."""
        self._check_fitted()
        none = np.zeros(0, np.int64), 0
        windows = [int(w) for w in self.config.pop_windows]
        if 0 not in windows or max(windows, default=0) <= 0:
            return none
        days = max(windows)
        t = self.user_hist_t_[self.user_hist_ >= 0]
        if not t.size or self.train_end_ - int(t.min()) <= days * DAY:
            return none
        L = self.logpop_[:, : changes_of(self).n_trained]
        every, recent = L[windows.index(0)], L[windows.index(days)]
        return np.flatnonzero((every > 0) & (recent == every)).astype(np.int64), days

    def _launch_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The recent launches and the weight of each in the launch rules: its buyers in
        training (``NEW_ITEM_LAUNCH_WEIGHTS = "buyers"``) or 1 (``"equal"``)."""
        launched = self.launches()[0]
        if self.NEW_ITEM_LAUNCH_WEIGHTS == "equal":
            return launched, np.ones(len(launched), np.float32)
        if self.NEW_ITEM_LAUNCH_WEIGHTS != "buyers":
            raise ValueError(
                "NEW_ITEM_LAUNCH_WEIGHTS must be 'buyers' or 'equal', not "
                f"{self.NEW_ITEM_LAUNCH_WEIGHTS!r}"
            )
        buyers = np.diff(self.seen_.tocsc().indptr)[launched]
        return launched, buyers.astype(np.float32)

    def _prior_rule(self, rule: str | None) -> str:
        """``rule`` (default ``NEW_ITEM_PRIOR``), checked, with a launch rule replaced by
        ``"neighbours"`` when the model knows too few recent launches."""
        rule = rule or self.NEW_ITEM_PRIOR
        if rule not in self.NEW_ITEM_PRIOR_RULES:
            raise ValueError(
                f"new-item prior rule must be one of {self.NEW_ITEM_PRIOR_RULES}, not {rule!r}"
            )
        if rule.startswith("launch"):
            launched, days = self.launches()
            n = len(launched)
            if n < self.NEW_ITEM_MIN_LAUNCHES:
                log.info(
                    "new-item prior: %d recent launch(es) (window %d days), fewer than %d: "
                    "the 'neighbours' rule instead of %r",
                    n,
                    days,
                    self.NEW_ITEM_MIN_LAUNCHES,
                    rule,
                )
                return "neighbours"
        return rule

    def new_item_prior(self, rule: str | None = None) -> float:
        """The prior of a new product by a rule that does not look at its content (``rule``,
        default ``NEW_ITEM_PRIOR``): ``"launch"`` the mean whole prior (bias plus popularity
        part) of the recent launches (:meth:`launches`) weighted by their buyers (with
        ``NEW_ITEM_LAUNCH_WEIGHTS = "equal"``: their median); ``"median"`` the median bias of
        the products sold in training with popularity features of zero (no sales): a typical
        product's own appeal, beyond its sales; ``"slow"`` the median bias of the
        ``NEW_ITEM_QUANTILE`` least-bought of them (at least 20): a product presumed to sell
        like the slow sellers. The per-product rules of :meth:`place_items` fall back here to
        their content-free counterpart: ``"launch_neighbours"`` to ``"launch"``,
        ``"neighbours"`` to ``"median"`` (as do the launch rules with too few launches)."""
        rule = self._prior_rule(rule)
        if rule.startswith("launch"):
            launched, sales = self._launch_weights()
            P = self.item_index_[launched, -1]
            if self.NEW_ITEM_LAUNCH_WEIGHTS == "equal":
                return float(np.median(P))
            return float((sales * P).sum() / sales.sum())
        buyers = np.diff(self.seen_.tocsc().indptr)
        bias = self.nets_.tower.bias.detach().cpu().numpy()[: len(buyers)]
        sold = np.flatnonzero(buyers > 0)
        if not len(sold):
            return float(np.median(bias))
        if rule in ("median", "neighbours"):
            return float(np.median(bias[sold]))
        k = max(min(20, len(sold)), int(np.ceil(self.NEW_ITEM_QUANTILE * len(sold))))
        least = sold[np.argsort(buyers[sold], kind="stable")[:k]]
        return float(np.median(bias[least]))

    @staticmethod
    def _weighted_mean(values: np.ndarray, w: np.ndarray, fallback: float) -> np.ndarray:
        """Row-wise mean of ``values`` ``(m, k)`` weighted by ``w`` ``(m, k)``; ``fallback``
        for rows without weight (float32 ``(m,)``)."""
        total = w.sum(1)
        est = np.divide((w * values).sum(1), total, out=np.zeros(len(w)), where=total > 0)
        est[total <= 0] = fallback
        return est.astype(np.float32)

    def withdraw_items(self, items) -> None:
        """Leave withdrawn products out of the retrieval index."""
        self.index_.remove(np.asarray(items, dtype=np.int64))

    def restore_items(self, items) -> None:
        items = np.asarray(items, dtype=np.int64)
        self.index_.add(self.item_index_[items], items)
