# ruff: noqa: E741  (D, I: faiss's names for scores and ids)
"""The torch exact backend of ItemIndex (the index's exact search on CUDA), run on the CPU:
exclusion and allow-lists applied on the device, chunking, the tie rule, ids after add/remove,
padding, empty inputs; and, where a GPU is present, the same on CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recogan.index import IndexConfig, ItemIndex
from recogan.index._torch import TorchExact, cuda_available, topk_by_column


@pytest.fixture(autouse=True)
def _one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def _unit(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def oracle(xb, ids, xq, k, exclude=None, allowed=None):
    """Full scoring with masks; order: score descending, then id ascending (the tie rule)."""
    s = (xq.astype(np.float64) @ xb.T.astype(np.float64)).astype(np.float32)
    if allowed is not None:
        s[:, ~np.isin(ids, allowed)] = -np.inf
    if exclude is not None:
        for r, e in enumerate(exclude):
            s[r, np.isin(ids, e)] = -np.inf
    order = np.lexsort((np.broadcast_to(ids, s.shape), -s), axis=1)[:, :k]
    D = np.take_along_axis(s, order, 1)
    I = np.where(np.isfinite(D), ids[order], -1)
    if k > len(ids):
        pad = k - len(ids)
        D = np.pad(D, ((0, 0), (0, pad)), constant_values=-np.inf)
        I = np.pad(I, ((0, 0), (0, pad)), constant_values=-1)
    return D, I


def _pair(xb, ids=None, chunk_bytes=1 << 28):
    """The same items in the torch index (on the CPU) and the numpy index."""
    t = ItemIndex(kind="exact", device="cpu", exact_backend="torch", torch_chunk_bytes=chunk_bytes)
    c = ItemIndex(kind="exact", device="cpu", threads=1)
    return t.build(xb, ids), c.build(xb, ids)


@pytest.fixture(scope="module")
def data():
    return _unit(3000, 16, 0), _unit(64, 16, 1)


def test_backend_choice_and_bad_settings(data):
    xb, _ = data
    t, c = _pair(xb)
    assert (t.backend_, t.torch_device_, c.backend_) == ("torch", "cpu", "cpu")
    assert "backend=torch" in repr(t)
    # approximate kinds never go to the torch backend
    ivf = ItemIndex(kind="ivf", device="cpu", exact_backend="torch", threads=1).build(xb)
    assert ivf.backend_ == "cpu"
    with pytest.raises(ValueError, match="exact_backend must be one of"):
        ItemIndex(exact_backend="cupy")
    with pytest.raises(ValueError, match="torch_chunk_bytes must be a positive int"):
        IndexConfig(torch_chunk_bytes=0)
    with pytest.raises(ValueError, match="chunk_bytes must be positive"):
        TorchExact(xb, np.arange(len(xb)), "cpu", chunk_bytes=-1)


@pytest.mark.parametrize("as_sparse", [True, False])
@pytest.mark.parametrize("chunk_rows", [1, 7, 10_000])
def test_exclusion_on_the_device_matches_the_numpy_path(data, as_sparse, chunk_rows):
    xb, xq = data
    t, c = _pair(xb, chunk_bytes=4 * len(xb) * chunk_rows)
    assert t._torch.chunk_rows(len(xb)) == min(chunk_rows, 10_000)
    _, I0 = c.search(xq, 30)
    rng = np.random.default_rng(3)
    # each row excludes a different number of its own best items (0..29) plus random ones
    excl = [np.concatenate([I0[r, : r % 30], rng.integers(0, len(xb), 5)]) for r in range(len(xq))]
    if as_sparse:
        rows = np.repeat(np.arange(len(xq)), [len(e) for e in excl])
        m = sp.csr_matrix(
            (np.ones(len(rows)), (rows, np.concatenate(excl))), shape=(len(xq), len(xb))
        )
        excl = m
    D, I = t.search(xq, 10, exclude=excl)
    Dc, Ic = c.search(xq, 10, exclude=excl)
    np.testing.assert_array_equal(I, Ic)
    np.testing.assert_allclose(D, Dc, rtol=1e-5, atol=1e-6)
    for r in range(len(xq)):
        assert not np.isin(I[r], I0[r, : r % 30]).any()


@pytest.mark.parametrize("n_allowed", [50, 2000])
def test_allow_list_restricts_columns(data, n_allowed):
    xb, xq = data
    ids = np.arange(len(xb)) * 3 + 11  # ids are not positions
    t, c = _pair(xb, ids, chunk_bytes=4 * 2000 * 5)
    rng = np.random.default_rng(4)
    allowed = rng.choice(ids, n_allowed, replace=False)
    allowed_with_unknown = np.concatenate([allowed, [0, 1, 10**6]])  # unknown ids: ignored
    excl = [allowed[r : r + 3] for r in range(len(xq))]
    D, I = t.search(xq, 10, exclude=excl, allowed=allowed_with_unknown)
    Dc, Ic = c.search(xq, 10, exclude=excl, allowed=allowed)
    np.testing.assert_array_equal(I, Ic)
    np.testing.assert_allclose(D, Dc, rtol=1e-5, atol=1e-6)
    assert np.isin(I, allowed).all()
    Do, Io = oracle(xb, ids, xq, 10, excl, allowed)
    np.testing.assert_array_equal(I, Io)


def test_ids_after_add_and_remove(data):
    xb, xq = data
    ids = np.random.default_rng(5).permutation(10_000)[: len(xb)]
    t, c = _pair(xb[:2500], ids[:2500])
    for index in (t, c):
        index.remove(ids[:300])
        index.add(xb[2500:], ids[2500:])
        index.remove(ids[2900:2950])
    assert t.ntotal == c.ntotal == 3000 - 350
    live = np.r_[300:2900, 2950:3000]
    excl = [ids[live[r : r + 10]] for r in range(len(xq))]
    D, I = t.search(xq, 20, exclude=excl)
    Dc, Ic = c.search(xq, 20, exclude=excl)
    np.testing.assert_array_equal(I, Ic)
    _, Io = oracle(xb[live], ids[live], xq, 20, excl)
    np.testing.assert_array_equal(I, Io)
    assert not np.isin(I, ids[:300]).any() and not np.isin(I, ids[2900:2950]).any()


@pytest.mark.parametrize("seed", range(6))
def test_ties_are_ordered_by_id_also_at_the_kth_place(seed):
    """Small-integer vectors: dot products are exact, so ties are real ties in every path."""
    rng = np.random.default_rng(seed)
    n, d, B, k = 200, 5, 40, int(rng.integers(1, 25))
    xb = rng.integers(-2, 3, (n, d)).astype(np.float32)
    xq = rng.integers(-2, 3, (B, d)).astype(np.float32)
    ids = rng.permutation(1000)[:n]
    t, c = _pair(xb, ids, chunk_bytes=4 * n * 6)
    excl = [rng.choice(ids, int(rng.integers(0, 30)), replace=False) for _ in range(B)]
    allowed = rng.choice(ids, 150, replace=False) if seed % 2 else None
    D, I = t.search(xq, k, exclude=excl, allowed=allowed)
    Do, Io = oracle(xb, ids, xq, k, excl, allowed)
    np.testing.assert_array_equal(I, Io)
    np.testing.assert_array_equal(D, Do)
    # the numpy path agrees on the scores (which of the items tied at the k-th place it
    # returns is argpartition's choice), and on the items wherever no tie crosses the k-th place
    Dc, Ic = c.search(xq, k, exclude=excl, allowed=allowed)
    np.testing.assert_array_equal(Dc, Do)
    full = oracle(xb, ids, xq, k + 1, excl, allowed)[0]
    clean = (full[:, k] < full[:, k - 1]) | ~np.isfinite(full[:, k - 1])
    assert clean.any() and not clean.all()  # both cases occur
    np.testing.assert_array_equal(Ic[clean], Io[clean])


def test_topk_by_column_rule():
    inf = float("inf")
    s = torch.tensor(
        [
            [1.0, 2, 2, 2, 0, 2],  # four tied for two places: the leftmost two
            [3, 3, 3, 3, 3, 3],
            [-inf, 1, -inf, -inf, -inf, -inf],  # fewer finite scores than k
            [0, 5, 1, 5, 2, 3],  # no tie at the boundary, a tie inside
        ]
    )
    v, c = topk_by_column(s, 3)
    assert c[0].tolist() == [1, 2, 3] and v[0].tolist() == [2, 2, 2]
    assert c[1].tolist() == [0, 1, 2]
    assert c[2, 0].item() == 1 and v[2, 1:].isinf().all()
    assert c[3].tolist() == [1, 3, 5] and v[3].tolist() == [5, 5, 3]
    v, c = topk_by_column(s, 6)  # k == C
    assert c[0].tolist() == [1, 2, 3, 5, 0, 4]


def test_padding_and_empty_inputs(data):
    xb, xq = data
    t, _ = _pair(xb[:8], np.arange(8) + 100)
    D, I = t.search(xq[:3], 12, exclude=[[100, 101], [], [107, 999]])
    assert (I[0, :6] >= 0).all() and (I[0, 6:] == -1).all() and np.isinf(D[0, 6:]).all()
    assert (I[1, :8] >= 0).all() and (I[1, 8:] == -1).all()
    assert set(I[2, :7].tolist()) == set(range(100, 107))
    D, I = t.search(xq[:0], 5)
    assert D.shape == I.shape == (0, 5) and D.dtype == np.float32 and I.dtype == np.int64
    D, I = t.search(xq[:2], 5, allowed=[])
    assert (I == -1).all() and np.isinf(D).all()
    D, I = t.search(xq[:2], 5, allowed=[5, 6])  # no allowed id is in the index
    assert (I == -1).all()
    D, I = t.search(xq[:2], 5, exclude=sp.csr_matrix((2, 200)))
    np.testing.assert_array_equal(I, t.search(xq[:2], 5)[1])
    with pytest.raises(ValueError, match="exclude has 1 entries for 2 queries"):
        t.search(xq[:2], 3, exclude=[[1]])
    empty = TorchExact(np.zeros((0, 16), np.float32), np.zeros(0, np.int64), "cpu")
    D, I = empty.search(xq[:2], 3, exclude=[[1], [-5, 10**9]], allowed=[1, 2])
    assert (I == -1).all() and np.isinf(D).all()
    assert t._torch.columns([-1, 100, 107, 108, 10**12]).tolist() == [-1, 0, 7, -1, -1]
    with pytest.raises(ValueError, match="exclude has 3 rows for 2 queries"):
        t.search(xq[:2], 3, exclude=sp.csr_matrix((3, 8)))


def test_save_load_keeps_the_backend(tmp_path, data):
    xb, xq = data
    t, _ = _pair(xb, chunk_bytes=1 << 20)
    t.save(tmp_path)
    loaded = ItemIndex.load(tmp_path)
    assert loaded.backend_ == "torch" and loaded.config.torch_chunk_bytes == 1 << 20
    np.testing.assert_array_equal(loaded.search(xq, 5)[1], t.search(xq, 5)[1])
    assert ItemIndex.load(tmp_path, exact_backend="faiss").backend_ == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU (torch.cuda)")
def test_cuda_exact_search_is_the_torch_path_and_matches_the_cpu(data):
    xb, xq = data
    ids = np.arange(len(xb)) * 2 + 1
    gpu = ItemIndex(kind="auto", device="cuda").build(xb, ids)
    assert (gpu.kind_, gpu.backend_, gpu.torch_device_) == ("exact", "torch", "cuda")
    _, c = _pair(xb, ids)
    excl = [ids[r : r + 40] for r in range(len(xq))]
    allowed = ids[::3]
    for kw in ({}, {"exclude": excl}, {"allowed": allowed}, {"exclude": excl, "allowed": allowed}):
        D, I = gpu.search(xq, 10, **kw)
        Dc, Ic = c.search(xq, 10, **kw)
        np.testing.assert_array_equal(I, Ic)
        np.testing.assert_allclose(D, Dc, rtol=1e-4, atol=1e-5)
    gpu.remove(ids[:100])
    c.remove(ids[:100])
    np.testing.assert_array_equal(
        gpu.search(xq, 10, exclude=excl)[1], c.search(xq, 10, exclude=excl)[1]
    )
