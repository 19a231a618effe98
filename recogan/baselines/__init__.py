"""Baselines behind the same model contract as the GAN (see :mod:`recogan.base`).

Time-blind: Popularity, ItemKNN, EASE, iALS. Sequential: SASRec. Time-aware: ItemKNNTD and
EASETD (time-decayed histories blended with recent popularity), TIFU-KNN (baskets) and P-Pop
(personal frequency, for lists that may repeat purchases).
"""

from recogan.baselines._ease import EASE, EASEConfig
from recogan.baselines._ials import IALS, IALSConfig
from recogan.baselines._itemknn import ItemKNN, ItemKNNConfig
from recogan.baselines._popularity import Popularity, PopularityConfig
from recogan.baselines._sasrec import SASRec, SASRecConfig
from recogan.baselines._tifuknn import TIFUKNN, TIFUKNNConfig
from recogan.baselines._timeaware import (
    EASETD,
    EASETDConfig,
    ItemKNNTD,
    ItemKNNTDConfig,
    PPop,
    PPopConfig,
)

__all__ = [
    "EASE",
    "EASETD",
    "IALS",
    "TIFUKNN",
    "EASEConfig",
    "EASETDConfig",
    "IALSConfig",
    "ItemKNN",
    "ItemKNNConfig",
    "ItemKNNTD",
    "ItemKNNTDConfig",
    "PPop",
    "PPopConfig",
    "Popularity",
    "PopularityConfig",
    "SASRec",
    "SASRecConfig",
    "TIFUKNNConfig",
]
