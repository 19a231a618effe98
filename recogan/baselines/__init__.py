"""Baselines behind the same model contract as the GAN (see :mod:`recogan.base`)."""

from recogan.baselines._popularity import Popularity, PopularityConfig

__all__ = ["Popularity", "PopularityConfig"]
