"""FAISS backends of :class:`~recogan.index.ItemIndex`: CPU indexes by kind, the GPU copy.

faiss is imported only here and only when an index is built, so ``import recogan`` stays cheap.
Labels inside every faiss index are the caller's item ids (int64), so search results need no
translation: exact and HNSW are wrapped in ``IndexIDMap2``; IVF stores ids natively.
"""

from __future__ import annotations

import logging
import math

import numpy as np

log = logging.getLogger(__name__)

#: Largest k a faiss GPU index answers in one search (GPU k-selection limit).
GPU_MAX_K = 2048


def faiss_module():
    import faiss

    return faiss


def set_threads(n: int | None) -> None:
    """Set faiss's OpenMP thread count (process-wide) when ``n`` is given."""
    if n is not None:
        if n < 1:
            raise ValueError(f"threads must be >= 1, got {n}")
        faiss_module().omp_set_num_threads(int(n))


def gpu_count() -> int:
    """GPUs faiss can use (0 with faiss-cpu, or with faiss-gpu but no visible GPU)."""
    faiss = faiss_module()
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def default_nlist(n: int) -> int:
    """FAISS's guidance for IVF: about 4·sqrt(N) lists (at least 1, at most N/39 so that
    k-means has the ~39 training points per centroid it asks for)."""
    return int(max(1, min(round(4 * math.sqrt(max(n, 1))), n // 39 or 1)))


def default_nprobe(nlist: int) -> int:
    """Lists visited per query: enough for >= 0.95 recall@10 on clustered data in the tests
    and >= 0.95 on Online Retail's SVD vectors (about nlist/8, at least 16)."""
    return int(min(nlist, max(16, math.ceil(nlist / 8))))


def build_cpu(kind: str, d: int, *, nlist: int, M: int, ef_construction: int, seed: int):
    """An empty (untrained for IVF) CPU faiss index with inner-product metric."""
    faiss = faiss_module()
    metric = faiss.METRIC_INNER_PRODUCT
    if kind == "exact":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    if kind == "ivf":
        index = faiss.index_factory(d, f"IVF{nlist},Flat", metric)
        index.cp.seed = int(seed)  # k-means initialisation: same seed, same lists
        return index
    if kind == "hnsw":
        inner = faiss.IndexHNSWFlat(d, int(M), metric)
        inner.hnsw.efConstruction = int(ef_construction)
        return faiss.IndexIDMap2(inner)
    raise ValueError(f"unknown index kind {kind!r}")


def train_ivf(index, xb: np.ndarray, seed: int, max_train: int = 256) -> None:
    """Train IVF centroids on a seeded sample (at most ``max_train`` points per list)."""
    nlist = index.nlist
    cap = nlist * max_train
    if len(xb) > cap:
        sample = np.random.default_rng(seed).choice(len(xb), cap, replace=False)
        xb = xb[np.sort(sample)]
    index.train(np.ascontiguousarray(xb, dtype=np.float32))


def set_search_params(index, kind: str, *, nprobe: int, ef_search: int) -> None:
    faiss = faiss_module()
    if kind == "ivf":
        faiss.extract_index_ivf(index).nprobe = int(nprobe)
    elif kind == "hnsw":
        faiss.downcast_index(index.index).hnsw.efSearch = int(ef_search)


class GpuCopy:
    """A faiss GPU copy of a CPU index: its own ``StandardGpuResources``, searches serialised
    by the caller (faiss GPU indexes are not thread-safe)."""

    def __init__(self, cpu_index, device: int = 0) -> None:
        faiss = faiss_module()
        if gpu_count() <= 0:
            # without a GPU, index_cpu_to_gpu* return indexes that fail with bare assertions
            raise RuntimeError("faiss reports no GPU (faiss-cpu installed, or no visible GPU)")
        self.res = faiss.StandardGpuResources()
        self.device = device
        self.index = faiss.index_cpu_to_gpu(self.res, device, cpu_index)

    def refresh(self, cpu_index) -> None:
        """Re-upload after the CPU master changed (add/remove)."""
        self.index = faiss_module().index_cpu_to_gpu(self.res, self.device, cpu_index)

    def search(self, xq: np.ndarray, k: int):
        return self.index.search(xq, min(k, GPU_MAX_K))


def write(index, path) -> None:
    """faiss's own binary format (not pickle)."""
    faiss_module().write_index(index, str(path))


def read(path):
    return faiss_module().read_index(str(path))
