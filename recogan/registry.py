"""Model names → model classes: the one table every layer that picks a model by name reads.

Entries are ``"module:Class"`` strings, imported when first asked for, so naming a baseline
never imports torch and ``import recogan`` stays cheap. :func:`register` adds a model of your
own (a class, or a ``"module:Class"`` string); bundles naming it then load, and
``recogan evaluate --models`` and ``recogan train --model`` accept it.
"""

from __future__ import annotations

import importlib

#: Model names (CLI ``--models``) → ``"module:Class"``.
MODEL_REGISTRY: dict[str, str] = {
    "pop": "recogan.baselines:Popularity",
    "itemknn": "recogan.baselines:ItemKNN",
    "ease": "recogan.baselines:EASE",
    "ials": "recogan.baselines:IALS",
    "sasrec": "recogan.baselines:SASRec",
    "itemknn_td": "recogan.baselines:ItemKNNTD",
    "ease_td": "recogan.baselines:EASETD",
    "tifuknn": "recogan.baselines:TIFUKNN",
    "ppop": "recogan.baselines:PPop",
    "gan": "recogan.gan.model:GANRecommender",
    # the GAN's ablation: its retrieval part, without the adversarial loss or the re-rank
    "retrieval": "recogan.gan.retrieval:RetrievalRecommender",
}


def register(name: str, model: str | type) -> None:
    """Register ``model`` (a class, or ``"module:Class"``) under ``name``."""
    if isinstance(model, type):
        model = f"{model.__module__}:{model.__qualname__}"
    if not isinstance(model, str) or ":" not in model:
        raise ValueError(f"register a model class or a 'module:Class' string, not {model!r}")
    MODEL_REGISTRY[name.lower()] = model


def model_class(name: str) -> type:
    """The model class registered under ``name`` (``gan``, ``ease``, ...) or its class name."""
    key = name.lower()
    if key not in MODEL_REGISTRY:
        by_class = {v.split(":")[1].lower(): k for k, v in MODEL_REGISTRY.items()}
        if key not in by_class:
            raise ValueError(f"unknown model {name!r} (known: {', '.join(MODEL_REGISTRY)})")
        key = by_class[key]
    module, cls = MODEL_REGISTRY[key].split(":")
    return getattr(importlib.import_module(module), cls)


def resolve_model(name: str) -> type:
    """The model class for ``name``; a model whose module cannot be imported is an error
    (never silently skipped: a report missing a model would mislead)."""
    key = name.strip().lower()
    try:
        return model_class(key)
    except (ImportError, AttributeError) as e:
        raise ValueError(
            f"model {name!r} ({MODEL_REGISTRY.get(key, '?')}) cannot be imported: {e}. "
            f"Leave it out of --models or install the part that provides it."
        ) from e
