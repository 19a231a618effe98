"""recogan: GAN-augmented product recommendation.

Importing is cheap: heavy parts (torch, faiss, ray) load when first used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Lazily exported names → module that defines them.
_LAZY = {
    "Dataset": "recogan.data",
    "IdMap": "recogan.data",
    "temporal_split": "recogan.data",
    "leave_last_out": "recogan.data",
    "read_dataset": "recogan.data",
    "Model": "recogan.base",
    "load_model": "recogan.artifacts",
    "GANRecommender": "recogan.gan.model",
    "Recommender": "recogan.recommender",
    "ItemIndex": "recogan.index",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'recogan' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
