"""The item index: top-k inner-product search over unit item vectors (FAISS exact / IVF /
HNSW on CPU or GPU, exact torch on CUDA), with per-query exclusion, allowed subsets,
add/remove and save/load. See :class:`ItemIndex`."""

from recogan.index._index import IndexConfig, ItemIndex

__all__ = ["IndexConfig", "ItemIndex"]
