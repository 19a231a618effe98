"""The service API by external ids: recommend, recommend_many, rank, for_history,
similar_items, explain, fallback, filters, thread-safety and determinism."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from recogan.artifacts import save_model
from recogan.baselines import Popularity
from recogan.recommender import Recommender, UnknownItemError, UnknownUserError
from tests.vector_model import VectorModel, vector_model_registered  # noqa: F401


@pytest.fixture(scope="module")
def bundle(clustered, tmp_path_factory):
    path = tmp_path_factory.mktemp("bundles") / "vec"
    save_model(VectorModel(dim=6).fit(clustered), path)
    return path


@pytest.fixture
def rec(bundle):
    return Recommender.load(bundle, device="cpu")


@pytest.fixture(scope="module")
def pop_rec(clustered):
    return Recommender(Popularity().fit(clustered))


def group(ext_id):
    return int(ext_id[1:]) % 4


def test_recommend_known_user(rec):
    r = rec.recommend("u1", n=5)
    assert len(r) == 5 and not r.fallback and r.reason == "model"
    items = [i for i, _ in r]
    u = rec.model.users_.index_of("u1")
    seen = set(rec.item_ids[rec.model.seen_[u].indices])
    assert not set(items) & seen
    assert list(r.scores) == sorted(r.scores, reverse=True)
    expect, _ = rec.model.recommend(np.array([u]), 5)
    assert list(r.items) == list(rec.item_ids[expect[0]])
    assert sum(group(i) == 1 for i in items) >= 4  # the planted group
    assert set(rec.recommend("u1", n=5, exclude_seen=False).items) & seen


def test_unknown_user_fallback_and_strict(rec, bundle):
    r = rec.recommend("nobody", n=4)
    assert r.fallback and "popularity" in r.reason
    top = np.argsort(-rec.model.popularity_, kind="stable")[:4]
    assert list(r.items) == list(rec.item_ids[top])
    strict = Recommender.load(bundle, device="cpu", strict=True)
    with pytest.raises(UnknownUserError, match="nobody"):
        strict.recommend("nobody")
    with pytest.raises(UnknownUserError):
        strict.recommend_many(["u1", "nobody"])


def test_filters_allow_list_and_callable_agree(rec):
    allowed = [f"i{j}" for j in range(0, 80, 3)]
    a = rec.recommend("u2", n=6, filter=allowed)
    b = rec.recommend("u2", n=6, filter=lambda item: item in set(allowed))
    assert len(a) == 6 and set(a.items) <= set(allowed)
    assert a.items == b.items
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)
    # a predicate rejecting everything but two items: those two, no padding entries
    c = rec.recommend("u2", n=6, filter=lambda item: item in {"i5", "i77"}, exclude_seen=False)
    assert set(c.items) == {"i5", "i77"}
    # an allow-list naming no known item is refused (as batch-score refuses it)
    with pytest.raises(ValueError, match="names none of the catalog's items"):
        rec.recommend("u2", n=3, filter=["not-an-item"])
    assert rec.recommend("u2", n=3, filter=["i5", "not-an-item"]).n_unknown == 1
    fb = rec.recommend("nobody", n=3, filter=lambda item: int(item[1:]) % 2 == 1)
    assert fb.fallback and len(fb) == 3 and all(int(i[1:]) % 2 for i in fb.items)
    with pytest.raises(TypeError, match="filter"):
        rec.recommend("u2", filter="i5")


def test_recommend_many_matches_single_calls(rec):
    users = ["u3", "nobody", "u7", "u3", "u150"]
    small = Recommender(rec.model, batch_size=2)
    df = small.recommend_many(users, n=4)
    assert list(df.columns) == ["user_id", "rank", "item_id", "score", "fallback", "repeat"]
    assert df["user_id"].tolist() == [u for u in users for _ in range(4)]
    assert df["rank"].tolist() == [1, 2, 3, 4] * len(users)
    for k, u in enumerate(users):
        part = df.iloc[4 * k : 4 * k + 4]
        single = rec.recommend(u, n=4)
        assert part["item_id"].tolist() == list(single.items)
        assert part["fallback"].all() == single.fallback
    pd.testing.assert_frame_equal(df, rec.recommend_many(users, n=4))
    filt = rec.recommend_many(users, n=3, filter=lambda i: group(i) == 0)
    assert filt["item_id"].map(group).eq(0).all() and len(filt) == 15


def test_rank_orders_given_candidates(rec):
    cands = ["i0", "i1", "i2", "i3", "zzz", "i1"]
    r = rec.rank("u1", cands)
    assert sorted(r.items) == ["i0", "i1", "i2", "i3"] and r.n_unknown == 1
    assert r.items[0] == "i1"  # u1 is in group 1
    u = rec.model.users_.index_of("u1")
    s = rec.model.score_users(np.array([u]))[0]
    idx = rec.model.items_.lookup(list(r.items))
    assert (np.diff(s[idx]) <= 1e-6).all()
    fb = rec.rank("nobody", ["i0", "i1"])
    assert fb.fallback and sorted(fb.items) == ["i0", "i1"]


def test_for_history(rec):
    r = rec.for_history(["i2", "i6", "unknown-a", "i10", "unknown-b"], n=5)
    assert r.n_unknown == 2 and not r.fallback and len(r) == 5
    assert not {"i2", "i6", "i10"} & set(r.items)
    assert sum(group(i) == 2 for i in r.items) >= 4
    idx = rec.model.items_.lookup(["i2", "i6", "i10"])
    expect, _ = rec.model.recommend_history([idx], 5)
    assert list(r.items) == list(rec.item_ids[expect[0]])
    empty = rec.for_history(["unknown"], n=3)
    assert empty.fallback and empty.n_unknown == 1 and len(empty) == 3


def test_similar_items_vectors_and_copurchase(rec, pop_rec):
    r = rec.similar_items("i4", n=5)
    assert r.reason == "item-vector similarity" and "i4" not in r.items and len(r) == 5
    assert sum(group(i) == 0 for i in r.items) >= 4
    c = pop_rec.similar_items("i4", n=5)
    assert c.reason == "co-purchase cosine" and "i4" not in c.items and len(c) == 5
    # oracle: dense cosine of the binary purchase matrix
    X = pop_rec.model.seen_.toarray()
    i = pop_rec.model.items_.index_of("i4")
    co = X.T @ X[:, i]
    cos = co / np.sqrt(X.sum(0) * X[:, i].sum())
    cos[i] = -1
    got = pop_rec.model.items_.lookup(list(c.items))
    np.testing.assert_allclose(c.scores, cos[got], rtol=1e-6)
    assert min(c.scores) >= np.sort(cos)[-5] - 1e-9
    only = pop_rec.similar_items("i4", n=3, filter=["i8", "i12", "i4"])
    assert set(only.items) <= {"i8", "i12"}
    with pytest.raises(UnknownItemError, match="nope"):
        rec.similar_items("nope")


@pytest.mark.parametrize("which", ["vectors", "copurchase"])
def test_explain(rec, pop_rec, which):
    r = rec if which == "vectors" else pop_rec
    u = r.model.users_.index_of("u5")
    history = set(r.item_ids[r.model.seen_[u].indices])
    e = r.explain("u5", "i9", n=3)
    assert 1 <= len(e) <= 3 and set(e.items) <= history - {"i9"}
    assert list(e.scores) == sorted(e.scores, reverse=True) and min(e.scores) > 0
    assert sum(group(i) == 1 for i in e.items) >= len(e) - 1  # "because you bought" its group
    assert r.explain("nobody", "i9").fallback


def test_ids_are_read_only_sequences(rec):
    assert len(rec.user_ids) == 200 and len(rec.item_ids) == 80
    assert "u0" in set(rec.user_ids) and "i0" in set(rec.item_ids)
    with pytest.raises(ValueError):
        rec.item_ids[0] = "x"


def test_bad_n(rec):
    with pytest.raises(ValueError, match="positive"):
        rec.recommend("u1", n=0)
    assert len(rec.recommend("u1", n=10_000, exclude_seen=False)) == 80  # clamped to catalog


def _calls(r):
    users = [f"u{i}" for i in range(0, 200, 11)] + ["nobody"]
    calls = []
    for k, u in enumerate(users):
        calls.append(("recommend", (u,), {"n": 5}))
        calls.append(("rank", (u, ["i1", "i2", "i3", "i9"]), {}))
        calls.append(("explain", (u, f"i{k % 80}"), {}))
        calls.append(("similar_items", (f"i{k % 80}",), {"n": 4}))
        calls.append(("for_history", ([f"i{k % 80}", f"i{(k * 3) % 80}"],), {"n": 4}))
        calls.append(
            ("recommend", (u,), {"n": 3, "filter": lambda i, k=k: int(i[1:]) % 3 != k % 3})
        )
    calls.append(("recommend_many", (users,), {"n": 4}))
    return calls


def _run(r, call):
    name, args, kwargs = call
    out = getattr(r, name)(*args, **kwargs)
    return out.to_dict("list") if isinstance(out, pd.DataFrame) else out


@pytest.mark.parametrize("which", ["vectors", "copurchase"])
def test_sixteen_threads_equal_sequential(bundle, clustered, which):
    def fresh():  # lazily built parts are built under concurrency too
        if which == "vectors":
            return Recommender.load(bundle, device="cpu")
        return Recommender(Popularity().fit(clustered))

    calls = _calls(fresh()) * 2
    sequential = [_run(fresh(), c) for c in calls]
    r = fresh()
    with ThreadPoolExecutor(16) as pool:
        concurrent = list(pool.map(lambda c: _run(r, c), calls))
    assert concurrent == sequential


def test_same_seed_same_results(clustered, tmp_path):
    a = Recommender(VectorModel(dim=5, seed=3).fit(clustered))
    b = Recommender(VectorModel(dim=5, seed=3).fit(clustered))
    users = list(a.user_ids[:50])
    pd.testing.assert_frame_equal(a.recommend_many(users), b.recommend_many(users))


def test_lazy_import():
    import subprocess
    import sys

    code = (
        "import sys, recogan; r = recogan.Recommender; "
        "assert 'faiss' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bundle_carries_the_index_and_refuses_tampering(clustered, tmp_path):
    from recogan.artifacts import BundleError, files_dir

    model = VectorModel(dim=6, kind="hnsw").fit(clustered)
    save_model(model, tmp_path / "b")
    assert (files_dir(tmp_path / "b") / "index.faiss").is_file()
    rec = Recommender.load(tmp_path / "b", device="cpu")
    assert rec.model.index_.kind_ == "hnsw"
    users = list(rec.user_ids[:40])
    expect = Recommender(model).recommend_many(users)
    pd.testing.assert_frame_equal(rec.recommend_many(users), expect)
    f = files_dir(tmp_path / "b") / "index.faiss"
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="index.faiss"):
        Recommender.load(tmp_path / "b")
