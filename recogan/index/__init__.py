"""The item index: top-k inner-product search over unit item vectors (FAISS exact / IVF /
HNSW on CPU or GPU, exact torch on CUDA), with per-query exclusion, allowed subsets,
add/remove and save/load. See :class:`ItemIndex`; :func:`retrieve` answers a model's
``recommend`` from a search."""

from recogan.index._index import IndexConfig, ItemIndex
from recogan.index._retrieve import retrieve

__all__ = ["IndexConfig", "ItemIndex", "retrieve"]
