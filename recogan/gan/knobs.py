"""Choosing on validation: the per-epoch score early stopping watches and the recommend-time
knobs chosen after training (:class:`ValidationChoices`, part of
:class:`~recogan.gan.model.GANRecommender`)."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from recogan.data import Dataset

log = logging.getLogger(__name__)


class ValidationChoices:
    """``prior_weights``, ``draw_choices``, ``d_weights`` and ``copurchase_weights`` scored on
    validation, and the early-stopping score."""

    #: Relative validation gain a recommend-time setting (``prior_weights``,
    #: ``draw_choices``, ``d_weights``) needs over the configured one to replace it.
    KNOB_MARGIN = 0.01

    #: Times a weight chosen at the top of its candidates is doubled and tried again (the
    #: grid follows the choice; ``_choose_knob(..., grow=True)``).
    GROW_STEPS = 3

    def _choose_knob(self, valid: Dataset | None, name, values, grow: bool = False) -> dict:
        """Score the recommend-time setting ``name`` (a field, or a tuple of fields whose
        ``values`` are tuples) at its configured value and at each of ``values`` on
        ``valid``; keep the best if it wins by more than ``KNOB_MARGIN``. ``grow`` (a
        numeric field): while the best is the largest value tried, also try twice it, up to
        ``GROW_STEPS`` times. Returns ``{value: score}`` (empty without a validation split or
        values)."""
        c = self.config
        if valid is None or not valid.n_interactions or c.epochs <= 0 or not len(values):
            return {}
        names = (name,) if isinstance(name, str) else tuple(name)
        if isinstance(name, str):
            current, values = float(getattr(c, name)), [float(v) for v in values]
        else:
            current, values = tuple(getattr(c, n) for n in names), [tuple(v) for v in values]

        def setting(v) -> dict:
            return dict(zip(names, (v,) if isinstance(name, str) else v))

        saved = c
        scores: dict = {}

        def try_(v) -> None:
            if v not in scores:
                self.config = dataclasses.replace(saved, **setting(v))
                scores[v] = self.validation_score(valid)

        try:
            for v in (current, *values):
                try_(v)
            for _ in range(self.GROW_STEPS if grow and isinstance(name, str) else 0):
                best = max(scores, key=scores.get)
                if best <= 0 or best < max(scores):
                    break
                try_(2 * best)
        finally:
            self.config = saved
        best = max(scores, key=scores.get)
        if scores[best] > scores[current] * (1 + self.KNOB_MARGIN):
            self.config = dataclasses.replace(saved, **setting(best))
        log.info(
            "%s on validation: %s -> %s", name, scores, [getattr(self.config, n) for n in names]
        )
        return scores

    def _validates(self, valid: Dataset | None) -> bool:
        """Whether the fit has a validation split to choose on."""
        return valid is not None and bool(valid.n_interactions) and self.config.epochs > 0

    def _choose_strength(self, train: Dataset, valid: Dataset) -> None:
        """Fit once per adversarial strength (``adv_weight`` and ``adv_weights``, weakest
        first; 0: no discriminator, in training or in the re-rank), each with its own early
        stopping and recommend-time choices, and become the one that scores best on
        ``valid`` (strictly: a tie goes to the weaker)."""
        c = self.config
        scores: dict[float, float] = {}
        best = None
        for w in sorted(dict.fromkeys([float(c.adv_weight), *map(float, c.adv_weights)])):
            params = {**self.params(), "adv_weight": w, "adv_weights": ()}
            if w == 0:
                params.update(d_weight=0.0, d_weights=())
            model = type(self)(**params).fit(train, valid, scorer=self._scorer)
            scores[w] = model.validation_score(valid)
            log.info("adversarial strength %s: validation %.4f", w, scores[w])
            if best is None or scores[w] > scores[best[0]]:
                best = (w, model)
        self.__dict__.update({k: v for k, v in best[1].__dict__.items() if k != "_scorer"})
        self.adversarial_scores_ = scores

    def validation_notes(self) -> list[str]:
        lines = []
        scores = getattr(self, "adversarial_scores_", None) or {}
        if len(scores) > 1:
            w = self.config.adv_weight
            tried = ", ".join(f"{k:g}: {v:.4f}" for k, v in sorted(scores.items()))
            why = (
                "the retrieval part alone validated at least as well as with the discriminator"
                if w == 0
                else "the adversarial part raised the validation score"
            )
            lines.append(f"adversarial strength {w:g} (validation NDCG@10 {tried}): {why}")
        c = self.config
        for name, tried, chosen in (
            ("co-purchase weight", getattr(self, "copurchase_scores_", None), c.copurchase_weight),
            ("re-rank weight", getattr(self, "d_weight_scores_", None), c.d_weight),
            ("repeat weight", getattr(self, "repeat_scores_", None), c.repeat_weight),
            ("repeat offset", getattr(self, "repeat_offset_scores_", None), c.repeat_offset),
        ):
            if tried:
                each = ", ".join(f"{k:g}: {v:.4f}" for k, v in sorted(tried.items()))
                lines.append(f"{name} {chosen:g} of {each}")
        return lines

    def choose_copurchase(self, valid: Dataset | None) -> None:
        """Choose ``copurchase_weight`` among ``copurchase_weights`` on ``valid`` (after the
        re-rank weight; the model has its ``copurchase_``). The two item-level terms of the
        re-rank overlap, so when the evidence comes in the discriminator's weight is chosen
        again, none (0) included."""
        before = self.config.copurchase_weight
        self.copurchase_scores_ = self._choose_knob(
            valid, "copurchase_weight", self.config.copurchase_weights, grow=True
        )
        if self.config.copurchase_weight != before:
            self.d_weight_scores_ = self._choose_knob(
                valid, "d_weight", (0.0, *self.config.d_weights), grow=True
            )

    def _stopping_score(self, valid: Dataset | None):
        """The per-epoch validation score ``train_gan`` early-stops on (None: no early
        stopping): :meth:`validation_score` at the configured prior weight, or the best of
        ``stop_prior_weights``."""
        c = self.config
        if valid is None or not valid.n_interactions or c.epochs <= 0:
            return None

        def score() -> float:
            self._refresh()
            row = self.measure_generation(valid)
            if row:
                self._generation_rows.append(row)
                log.info("generated vectors: %s", row)
            weights = c.prior_weights if c.stop_prior_weights is None else c.stop_prior_weights
            if not len(weights):
                return self.validation_score(valid)
            # judge each epoch at its best recommend-time prior weight, the knob that is
            # tuned on validation afterwards anyway (else a model whose personal part
            # only pays off at another weight is stopped too early)
            saved, best = self.config, -np.inf
            try:
                for g in dict.fromkeys((c.prior_weight, *weights)):
                    self.config = dataclasses.replace(saved, prior_weight=float(g))
                    best = max(best, self.validation_score(valid))
            finally:
                self.config = saved
            return best

        return score
