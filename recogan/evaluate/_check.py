"""A fitted model's validation score next to simple references on the same split, so that a
user training a model is told when it does worse than recent popularity or EASE."""

from __future__ import annotations

from dataclasses import dataclass, field

from recogan.base import RECENT_DAYS
from recogan.baselines import EASE, Popularity
from recogan.data import Dataset
from recogan.metrics import validation_ndcg

#: EASE inverts an items × items matrix: above this catalog size the reference is skipped.
EASE_MAX_ITEMS = 20_000


@dataclass
class ValidationCheck:
    """Validation NDCG@10 of a model and of the references fitted on the same training data."""

    model: str
    scores: dict[str, float]
    #: References that were not fitted, with the reason.
    skipped: dict[str, str] = field(default_factory=dict)

    def below(self) -> list[str]:
        """The references that score above the model."""
        own = self.scores[self.model]
        return [k for k, v in self.scores.items() if k != self.model and v > own]

    def lines(self) -> list[str]:
        cells = " | ".join(f"{k} {v:.4f}" for k, v in self.scores.items())
        out = [f"validation NDCG@10: {cells}"]
        out += [f"  ({k} not fitted: {why})" for k, why in self.skipped.items()]
        own = self.scores[self.model]
        for ref in self.below():
            out.append(
                f"warning: {self.model} scores below {ref} on validation "
                f"({own:.4f} < {self.scores[ref]:.4f}); consider serving {ref.split()[0]} "
                f"(recogan train --model {ref.split()[0]}) or tuning with recogan evaluate"
            )
        return out


def validation_check(model, name: str, train: Dataset, valid: Dataset) -> ValidationCheck:
    """Score ``model`` (fitted on ``train``) on ``valid`` next to recent popularity (the last
    ``RECENT_DAYS`` days) and EASE (default settings), both fitted on ``train``."""

    def ndcg(m) -> float:
        return float(validation_ndcg(m, valid))

    scores = {name: ndcg(model)}
    skipped = {}
    refs = {f"pop (last {RECENT_DAYS:g} days)": lambda: Popularity(window_days=RECENT_DAYS)}
    if train.n_items <= EASE_MAX_ITEMS:
        refs["ease"] = EASE
    else:
        skipped["ease"] = f"{train.n_items:,} items > {EASE_MAX_ITEMS:,}"
    for ref, make in refs.items():
        if ref.split()[0] == name:
            continue
        scores[ref] = ndcg(make().fit(train))
    return ValidationCheck(name, scores, skipped)
