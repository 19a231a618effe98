"""``RetrievalRecommender`` (registered as ``retrieval``): the GAN's own retrieval part, its
ablation.

The same model as :class:`~recogan.gan.model.GANRecommender`: the same item features,
training pairs, generator and item tower, the same retrieval loss, early stopping and
recommend-time choices on validation (prior weight, noise draws and their merge, the
co-purchase evidence of the re-rank), but no adversarial loss and no discriminator in the
re-rank. Training with ``adversarial=False`` never
steps the discriminator, draws no hard negatives for it and adds no adversarial term to the
generator's loss (:mod:`recogan.gan._loop`); the discriminator is still built (and kept in a
bundle) untrained and unused. ``recogan evaluate`` runs this model beside ``gan`` by default
and the report says what the adversarial part added
(:meth:`recogan.evaluate.Report.adversarial_ablation`).

Its config sets only the three settings below, each off (the GAN's ``d_weight`` is 0 as well;
its ``adversarial`` and ``d_weights`` are on), and keeps them off: a setting that turns the
adversarial part back on is refused (that model is ``gan``).
"""

from __future__ import annotations

from dataclasses import dataclass

from recogan.gan.config import GANRecommenderConfig
from recogan.gan.model import GANRecommender

__all__ = ["RetrievalConfig", "RetrievalRecommender"]


@dataclass
class RetrievalConfig(GANRecommenderConfig):
    """The GAN's settings (:class:`~recogan.gan.config.GANRecommenderConfig`) with the
    adversarial part off."""

    #: No adversarial loss: the discriminator is never trained.
    adversarial: bool = False
    #: No discriminator re-rank.
    d_weight: float = 0.0
    #: No re-rank weight tried on validation.
    d_weights: tuple = ()

    def __post_init__(self) -> None:
        parent = getattr(super(), "__post_init__", None)
        if parent is not None:
            parent()
        on = {}
        if self.adversarial:
            on["adversarial"] = self.adversarial
        if self.d_weight != 0:
            on["d_weight"] = self.d_weight
        if len(self.d_weights):
            on["d_weights"] = tuple(self.d_weights)
        if len(self.adv_weights):
            on["adv_weights"] = tuple(self.adv_weights)
        if on:
            raise ValueError(
                f"model 'retrieval' is the GAN without its adversarial part, so it takes "
                "adversarial=False, d_weight=0, d_weights=() and adv_weights=(), not "
                f"{on}; use model 'gan' for the adversarial loss or the discriminator's re-rank"
            )


class RetrievalRecommender(GANRecommender):
    """The GAN without its adversarial part (see the module's docstring). Its tuner search
    space, early stopping and recommend-time choices are the GAN's; ``d_weight`` is no
    recommend-time setting of it (its re-rank has only the co-purchase evidence)."""

    name = "retrieval"
    Config = RetrievalConfig

    @classmethod
    def recommend_params(cls) -> tuple[str, ...]:
        """The GAN's recommend-time settings less the discriminator's weight."""
        return tuple(p for p in super().recommend_params() if p != "d_weight")
