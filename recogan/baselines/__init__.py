"""Baselines behind the same model contract as the GAN (see :mod:`recogan.base`)."""

from recogan.baselines._ease import EASE, EASEConfig
from recogan.baselines._ials import IALS, IALSConfig
from recogan.baselines._itemknn import ItemKNN, ItemKNNConfig
from recogan.baselines._popularity import Popularity, PopularityConfig

__all__ = [
    "EASE",
    "IALS",
    "EASEConfig",
    "IALSConfig",
    "ItemKNN",
    "ItemKNNConfig",
    "Popularity",
    "PopularityConfig",
]
