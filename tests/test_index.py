# ruff: noqa: E741  (D, I: faiss's names for scores and ids)
"""ItemIndex: recall of approximate kinds against exact search, exclusion, subsets,
add/remove, persistence, the torch path, and (where present) the GPU."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recogan.index import ItemIndex
from recogan.index._torch import TorchExact, cuda_available


def _clustered(n, d, seed, n_clusters=40, noise=0.4):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(7).standard_normal((n_clusters, d))
    x = centres[rng.integers(0, n_clusters, n)] + noise * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    return _clustered(6000, 32, 0), _clustered(200, 32, 1)


@pytest.fixture(scope="module")
def built(data):
    xb, _ = data
    return {kind: ItemIndex(kind=kind, threads=1).build(xb) for kind in ("exact", "ivf", "hnsw")}


def brute(xb, xq, k, exclude=None, allowed=None, ids=None):
    """Oracle: full scoring with masks."""
    ids = np.arange(len(xb)) if ids is None else ids
    s = xq @ xb.T
    if allowed is not None:
        s[:, ~np.isin(ids, allowed)] = -np.inf
    if exclude is not None:
        for r, e in enumerate(exclude):
            s[r, np.isin(ids, e)] = -np.inf
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    D = np.take_along_axis(s, order, 1)
    return D, np.where(np.isfinite(D), ids[order], -1)


def recall(I, It):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(I, It)])


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_recall_of_approximate_kinds(built, data, kind):
    xb, xq = data
    _, It = built["exact"].search(xq, 10)
    _, I = built[kind].search(xq, 10)
    assert recall(I, It) >= 0.95


def test_exact_matches_brute_force(built, data):
    xb, xq = data
    D, I = built["exact"].search(xq, 10)
    Db, Ib = brute(xb, xq, 10)
    np.testing.assert_array_equal(I, Ib)
    np.testing.assert_allclose(D, Db, rtol=1e-5)
    assert D.dtype == np.float32 and I.dtype == np.int64


def test_auto_kind_by_size(data):
    xb, _ = data
    assert ItemIndex(device="cpu").build(xb).kind_ == "exact"
    assert ItemIndex(device="cpu", exact_below=1000).build(xb).kind_ == "ivf"


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
@pytest.mark.parametrize("as_sparse", [True, False])
def test_exclusion_of_the_best_items(built, data, kind, as_sparse):
    """Excluding each query's true top-30 still gives exactly k results, none excluded."""
    xb, xq = data
    _, top = brute(xb, xq, 30)
    excl = [row for row in top]
    arg = (
        sp.csr_matrix(
            (np.ones(top.size), top.ravel(), np.arange(0, top.size + 1, 30)),
            shape=(len(xq), len(xb)),
        )
        if as_sparse
        else excl
    )
    D, I = built[kind].search(xq, 10, exclude=arg)
    assert (I >= 0).all() and np.isfinite(D).all()
    assert not any(np.isin(i, e).any() for i, e in zip(I, excl))
    _, Ib = brute(xb, xq, 10, exclude=excl)
    if kind == "exact":
        np.testing.assert_array_equal(I, Ib)
    else:
        assert recall(I, Ib) >= 0.9


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
@pytest.mark.parametrize("overfetch", [2048, 64])
def test_long_exclusions_and_chunked_exact_scoring(data, kind, overfetch, monkeypatch):
    """Rows with hundreds of exclusions (long purchase histories) take the masked-matmul path
    (exact) or the exact fallback (approximate); scoring runs in bounded chunks."""
    from recogan.index import _index

    monkeypatch.setattr(_index, "EXACT_CHUNK", 6000 * 7)  # 7 query rows per chunk
    xb, xq = data
    index = ItemIndex(kind=kind, max_overfetch=overfetch).build(xb)
    _, top = brute(xb, xq, 400)
    excl = [row if r % 2 else row[:5] for r, row in enumerate(top)]
    D, I = index.search(xq, 10, exclude=excl)
    Db, Ib = brute(xb, xq, 10, exclude=excl)
    assert not any(np.isin(i, e).any() for i, e in zip(I, excl)) and (I >= 0).all()
    long_rows = np.arange(1, len(xq), 2)
    np.testing.assert_array_equal(I[long_rows], Ib[long_rows])  # scored exactly
    assert recall(I, Ib) >= (1.0 if kind == "exact" else 0.95)


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
@pytest.mark.parametrize("small_subset", [10_000, 10])
def test_allowed_subset(data, kind, small_subset):
    """Small subsets are scored exactly; large ones go through the index and filtering."""
    xb, xq = data
    index = ItemIndex(kind=kind, small_subset=small_subset).build(xb)
    allowed = np.random.default_rng(3).choice(len(xb), 1500, replace=False)
    excl = [allowed[:5]] * len(xq)
    D, I = index.search(xq, 10, exclude=excl, allowed=allowed)
    assert np.isin(I, allowed).all()
    assert not np.isin(I, allowed[:5]).any()
    _, Ib = brute(xb, xq, 10, exclude=excl, allowed=allowed)
    assert recall(I, Ib) >= (1.0 if kind == "exact" else 0.9)


def test_padding_when_too_few_eligible(built, data):
    xb, xq = data
    D, I = built["hnsw"].search(xq[:3], 5, allowed=[4, 8, 15], exclude=[[8], [], [4, 8, 15]])
    assert set(I[0][:2]) == {4, 15} and (I[0][2:] == -1).all() and np.isneginf(D[0][2:]).all()
    assert set(I[1][:3]) == {4, 8, 15}
    assert (I[2] == -1).all()


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
def test_add_and_remove(data, kind):
    xb, xq = data
    ids = np.arange(len(xb)) * 2  # non-contiguous ids
    index = ItemIndex(kind=kind).build(xb, ids)
    _, I = index.search(xq[:5], 3)
    assert np.isin(I, ids).all()
    best = I[:, 0]
    assert index.remove(np.append(best, 10**6)) == len(np.unique(best))  # unknown ignored
    assert best[0] not in index and index.ntotal == len(xb) - len(np.unique(best))
    _, I2 = index.search(xq[:5], 3)
    assert not np.isin(I2, best).any() and (I2 >= 0).all()
    # a new product identical to query 0 is found first
    index.add(xq[:1], [99_999])
    _, I3 = index.search(xq[:1], 1)
    assert I3[0, 0] == 99_999
    # a removed product comes back (HNSW: rebuilt without its tombstone)
    index.add(xb[best[1] // 2][None], [best[1]])
    _, I4 = index.search(xq[1:2], 1)
    assert I4[0, 0] == best[1]
    assert index.ntotal == len(xb) - len(np.unique(best)) + 2
    with pytest.raises(ValueError, match="already in the index"):
        index.add(xb[:1], [ids[5]])


def test_hnsw_tombstones_are_counted_and_compacted(data):
    xb, xq = data
    index = ItemIndex(kind="hnsw").build(xb)
    _, top = brute(xb, xq[:1], 50)
    index.remove(top[0])
    assert index.n_dead_ == 50
    D, I = index.search(xq[:1], 10)
    assert (I >= 0).all() and not np.isin(I, top).any()
    index.compact()
    assert index.n_dead_ == 0 and index.ntotal == len(xb) - 50
    _, I2 = index.search(xq[:1], 10)
    assert not np.isin(I2, top).any()


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
def test_save_load_round_trip(tmp_path, data, kind):
    xb, xq = data
    index = ItemIndex(kind=kind).build(xb[:3000])
    index.remove([1, 2, 3])
    files = index.save(tmp_path, "idx")
    assert all(f.exists() for f in files)
    loaded = ItemIndex.load(tmp_path, "idx", device="cpu")
    assert loaded.kind_ == kind and loaded.ntotal == index.ntotal
    a = index.search(xq, 10, exclude=[[5]] * len(xq))
    b = loaded.search(xq, 10, exclude=[[5]] * len(xq))
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0], rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="no index here"):
        ItemIndex.load(tmp_path, "other")


def test_torch_exact_matches_faiss(built, data):
    """The CUDA torch path's code, run on the CPU."""
    xb, xq = data
    te = TorchExact(xb, np.arange(len(xb)) + 5, device="cpu")
    D, I = te.search(xq, 10)
    Df, If = built["exact"].search(xq, 10)
    np.testing.assert_array_equal(I, If + 5)
    np.testing.assert_allclose(D, Df, rtol=1e-5, atol=1e-6)


def test_concurrent_search_during_mutation(data):
    from concurrent.futures import ThreadPoolExecutor

    xb, xq = data
    index = ItemIndex(kind="exact").build(xb[:2000])
    expected = index.search(xq, 5, exclude=[np.arange(2000, 2100)] * len(xq))

    def search(_):
        # ids 2000.. come and go meanwhile but are always excluded: results are stable
        return index.search(xq, 5, exclude=[np.arange(2000, 2100)] * len(xq))

    def mutate(i):
        index.add(xb[2000 + i][None], [2000 + i])
        index.remove([2000 + i])

    with ThreadPoolExecutor(8) as pool:
        futs = [pool.submit(search, i) for i in range(20)]
        futs += [pool.submit(mutate, i) for i in range(20)]
        results = [f.result() for f in futs[:20]]
    for _, I in results:
        np.testing.assert_array_equal(I, expected[1])


def test_bad_inputs(data):
    xb, xq = data
    with pytest.raises(ValueError, match="kind"):
        ItemIndex(kind="lsh")
    with pytest.raises(ValueError, match="non-empty 2-D"):
        ItemIndex().build(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="duplicates"):
        ItemIndex().build(xb[:3], [1, 1, 2])
    with pytest.raises(ValueError, match="NaN"):
        ItemIndex().build(np.full((2, 3), np.nan))
    index = ItemIndex().build(xb[:100])
    with pytest.raises(ValueError, match=r"queries must be \(B, 32\)"):
        index.search(np.zeros((1, 5)), 3)
    with pytest.raises(ValueError, match="exclude has 1 entries for 2 queries"):
        index.search(xq[:2], 3, exclude=[[1]])
    with pytest.raises(ValueError, match="every item"):
        index.remove(np.arange(100))


HAS_FAISS_GPU = False
try:
    import faiss

    HAS_FAISS_GPU = faiss.get_num_gpus() > 0
except (ImportError, AttributeError):  # pragma: no cover
    pass


def test_cuda_device_without_gpu_is_a_clear_error(data):
    if HAS_FAISS_GPU or cuda_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CUDA"):
        ItemIndex(device="cuda").build(data[0][:10])


@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_FAISS_GPU or cuda_available()), reason="needs a CUDA GPU")
@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_gpu_matches_cpu(built, data, kind):
    xb, xq = data
    gpu = ItemIndex(kind=kind, device="cuda").build(xb)
    assert gpu.backend_ in ("faiss-gpu", "torch") or kind != "exact"
    excl = [np.arange(r, r + 20) for r in range(len(xq))]
    _, I = gpu.search(xq, 10, exclude=excl)
    _, Ic = built["exact"].search(xq, 10, exclude=excl)
    assert recall(I, Ic) >= (0.99 if kind == "exact" else 0.95)
    gpu.remove(I[:, 0])
    _, I2 = gpu.search(xq, 10)
    assert not np.isin(I2, I[:, 0]).any()
