"""Catalogue changes between trainings (recogan.catalog): products added from their catalog rows
appear where they fit, withdrawn products appear nowhere, both survive save and load, batch
scoring and the CLI honour them, concurrent readers see whole states, and baselines that cannot
place a new product say so."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from recogan.artifacts import BundleError, files_dir, load_model, read_manifest, save_model
from recogan.catalog import CannotPlaceItemsError, ReadWriteLock, add_items
from recogan.features import ItemFeatures
from recogan.gan.model import GANRecommender
from recogan.recommender import Recommender

TINY = dict(epochs=2, g_hidden=32, d_hidden=16, batch_size=128, threads=1, device="cpu", seed=0)
WORDS = ["garden", "kitchen", "party", "vintage"]  # synthetic_clusters' title word per group


def new_products(groups=(0, 1, 2, 3), prefix="n") -> pd.DataFrame:
    """One new product per group, described like that group's products."""
    return pd.DataFrame(
        {
            "item_id": [f"{prefix}{g}" for g in groups],
            "title": [f"{WORDS[g]} item new" for g in groups],
            "category": [f"group{g}" for g in groups],
            "price": [1.5 + 2.0 * g for g in groups],
        }
    )


def group(ext_id) -> int:
    return int(ext_id[1:]) % 4


@pytest.fixture(scope="module")
def bundle(clustered, tmp_path_factory):
    path = tmp_path_factory.mktemp("catalog") / "gan"
    save_model(GANRecommender(**TINY).fit(clustered), path)
    return path


@pytest.fixture
def rec(bundle, tmp_path):
    """A fresh service on a private copy of the bundle (tests publish changes into it)."""
    import shutil

    shutil.copytree(bundle, tmp_path / "gan")
    return Recommender.load(tmp_path / "gan", device="cpu")


# ---------------------------------------------------------------------- item features
@pytest.mark.parametrize("dim_cf", [0, 64])
def test_transform_reproduces_the_fitted_rows(clustered, dim_cf):
    f = ItemFeatures(dim_cf=dim_cf).fit(clustered)
    F = f.transform(clustered.catalog)
    expect = f.F_.copy()
    if dim_cf:  # a product nobody bought: the fitted row without its collaborative part
        a, b = f.parts_["cf"]
        expect[:, a:b] = 0
        expect /= np.linalg.norm(expect, axis=1, keepdims=True)
    np.testing.assert_allclose(F, expect, atol=1e-5)
    meta, arrays = f.content_state()
    json.dumps(meta)  # JSON-friendly, no pickle
    again = ItemFeatures.from_content_state(meta, arrays)
    np.testing.assert_allclose(again.transform(clustered.catalog), F, atol=1e-6)
    # unknown attributes count as unknown, not as an error
    part = again.transform(clustered.catalog[["title"]])
    assert part.shape == F.shape and np.isfinite(part).all()


def test_imputed_collaborative_part_comes_from_content_neighbours(clustered):
    f = ItemFeatures().fit(clustered)
    rows = new_products()
    F = f.transform(rows, neighbours=f.F_, k=10)
    a, b = f.parts_["cf"]
    assert (np.linalg.norm(F[:, a:b], axis=1) > 0.1).all()
    # each new product's vector is closest to its own group's products
    sims = F @ f.F_.T
    for g in range(4):
        top = np.argsort(-sims[g])[:10]
        assert sum(j % 4 == g for j in top) >= 9


# ---------------------------------------------------------------------- added products
def test_added_product_is_recommended_where_it_fits(rec):
    update = rec.add_items(new_products())
    assert update.items == ("n0", "n1", "n2", "n3") and update.n_unknown == 0
    assert len(rec.item_ids) == 84 and list(rec.item_ids[-4:]) == ["n0", "n1", "n2", "n3"]
    own, other = [], []
    for u in range(0, 200, 3):
        items = rec.recommend(f"u{u}", n=10).items
        for g in range(4):
            (own if u % 4 == g else other).append(f"n{g}" in items)
    assert np.mean(own) >= 0.6 and np.mean(other) <= 0.05
    df = rec.recommend_many([f"u{u}" for u in range(0, 200, 4)], n=10)  # group 0
    assert (df["item_id"] == "n0").mean() * 10 >= 0.6
    basket = rec.for_history(["i0", "i4", "i8", "i12"], n=10)
    assert "n0" in basket.items and not {"n1", "n2", "n3"} & set(basket.items)
    similar = rec.similar_items("i4", n=10)
    assert "n0" in similar.items
    assert sum(group(i) == 0 for i in rec.similar_items("n0", n=10).items) >= 9
    # a basket naming the new product works too
    assert sum(group(i) == 0 for i in rec.for_history(["n0"], n=10).items) >= 8
    assert rec.titles(["n2", "i1"]) == ["party item new", "kitchen item 1"]


def test_added_products_get_audience_thresholds(rec):
    model = rec.model
    before = model.audience_thresholds().copy()
    rec.add_items(new_products())
    model = rec.model
    after = model.audience_thresholds()
    assert len(after) == len(before) + 4
    np.testing.assert_array_equal(after[: len(before)], before)  # kept, not recomputed
    fresh = type(model).__new__(type(model))
    fresh.__dict__.update(model.__dict__, _audience_cache={"lock": threading.Lock()})
    np.testing.assert_allclose(fresh.audience_thresholds(), after, rtol=1e-5, atol=1e-6)


def test_prior_of_a_new_product(rec):
    model = rec.model
    median, slow = model.new_item_prior("median"), model.new_item_prior("slow")
    assert np.isfinite([median, slow]).all() and median != slow
    with pytest.raises(ValueError, match="prior rule"):
        model.new_item_prior("hot")
    model.NEW_ITEM_PRIOR = "median"
    rec.add_items(new_products((0,)))
    np.testing.assert_allclose(model.item_index_[-1, -1], median, rtol=1e-6)
    rec.add_items(new_products((1,), prefix="boosted"), prior=5.0)
    assert model.item_index_[-1, -1] == pytest.approx(5.0)
    assert model.logpop_.shape[1] == model.n_items_ and not model.logpop_[:, -2:].any()
    # "neighbours": the content-weighted mean of the neighbours' whole priors
    model.NEW_ITEM_PRIOR = "neighbours"
    rows = new_products((2, 3), prefix="nb")
    _, idx, w = model.features_.content_neighbours(rows, model.F_[:80], 20)
    expect = (w * model.item_index_[idx, -1]).sum(1) / w.sum(1)
    rec.add_items(rows)
    np.testing.assert_allclose(model.item_index_[-2:, -1], expect, rtol=1e-5)
    assert (idx < 80).all() and (w >= 0).all()


def test_added_products_survive_save_load_and_batch(rec, tmp_path):
    from recogan.batch import batch_score, read_recommendations

    rec.add_items(new_products())
    users = [f"u{u}" for u in range(0, 200, 7)] + ["nobody"]
    expect = rec.recommend_many(users, n=10)
    path = rec.save_catalog_changes()
    manifest = read_manifest(path)
    assert manifest["format_version"] == 3 and manifest["catalog"]["added"] == 4
    again = Recommender.load(path, device="cpu")
    pd.testing.assert_frame_equal(again.recommend_many(users, n=10), expect)
    assert again.catalog_changes["added"] == ["n0", "n1", "n2", "n3"]
    assert again.similar_items("n1", n=5).items == rec.similar_items("n1", n=5).items
    # the nightly job scores the same catalogue
    batch_score(path, tmp_path / "out", n=10, workers=1, show_progress=False)
    out = read_recommendations(tmp_path / "out")
    service = again.recommend_many(list(again.user_ids), n=10)
    assert out["item_id"].tolist() == service["item_id"].tolist()
    new = out[out["item_id"].str.startswith("n")]
    assert len(new) and (new["item_id"].map(group) == new["user_id"].map(group)).mean() > 0.9


# ---------------------------------------------------------------------- withdrawn products
def _everything(r, gone: set, user="u0"):
    """Every method's output item ids (a withdrawn one must be in none of them)."""
    u = r.model.users_.index_of(user)
    bought = list(r.item_ids[r.model.seen_[u].indices])
    results = [
        r.recommend(user, n=20).items,
        r.recommend(user, n=20, exclude_seen=False).items,
        r.recommend(user, n=20, filter=lambda i: True).items,
        r.recommend(user, n=20, filter=[*gone, "i1", "i5"]).items,
        r.recommend("nobody", n=20).items,
        r.rank(user, [*gone, "i1", "i5", "i9"]).items,
        r.rank("nobody", [*gone, "i1"]).items,
        r.for_history([*gone, "i4"], n=20).items,
        r.similar_items("i4", n=20).items,
        r.similar_items(next(iter(gone)), n=20).items,  # alternatives to a withdrawn product
        r.explain(user, "i9", n=20).items,
        tuple(r.recommend_many([user, "u5", "nobody"], n=20)["item_id"]),
    ]
    return results, bought


def test_withdrawn_products_appear_nowhere(rec):
    rec.add_items(new_products())
    u = rec.model.users_.index_of("u0")
    bought_by_u0 = rec.item_ids[rec.model.seen_[u].indices]
    popular = rec.recommend("nobody", n=1).items[0]
    gone = {popular, "n0", str(bought_by_u0[0])}
    update = rec.remove_items([*gone, "no-such-product"])
    assert set(update.items) == gone and update.n_unknown == 1
    assert rec.remove_items(list(gone)).items == ()  # already withdrawn: nothing to do
    results, _ = _everything(rec, gone)
    for items in results:
        assert not gone & set(items), items
    assert all(len(r) for r in results)
    assert len(rec.recommend("u0", n=20)) == 20  # still full lists
    # the GAN's own retrieval index no longer holds them
    idx = rec.model.items_.lookup(list(gone))
    assert not any(int(i) in rec.model.index_ for i in idx)
    assert rec.recommend("u0", n=5, filter=list(gone)).items == ()
    # and they are back after restore_items
    assert set(rec.restore_items(list(gone)).items) == gone
    assert popular in rec.recommend("nobody", n=3).items
    assert set(rec.catalog_changes["withdrawn"]) == set()


def test_withdrawn_products_survive_save_load_and_batch(rec, tmp_path):
    from recogan.batch import batch_score, read_recommendations

    rec.add_items(new_products())
    popular = list(rec.recommend("nobody", n=3).items)
    gone = {*popular, "n1"}
    rec.remove_items(list(gone))
    path = rec.save_catalog_changes()
    again = Recommender.load(path, device="cpu")
    assert set(again.catalog_changes["withdrawn"]) == gone
    results, _ = _everything(again, gone, user="u1")
    assert not any(gone & set(items) for items in results)
    batch_score(path, tmp_path / "out", n=30, workers=1, show_progress=False)
    out = read_recommendations(tmp_path / "out")
    assert not out["item_id"].isin(gone).any()
    assert out.groupby("user_id").size().eq(30).all()
    assert out["item_id"].isin(["n0", "n2", "n3"]).any()
    # an allow-list naming withdrawn products leaves them out too
    allow = tmp_path / "allow.txt"
    allow.write_text("\n".join([*gone, "i5", "i6"]))
    batch_score(path, tmp_path / "out2", n=5, item_filter=allow, workers=1, show_progress=False)
    assert set(read_recommendations(tmp_path / "out2")["item_id"]) <= {"i5", "i6"}


def test_save_is_atomic_verified_and_refuses_a_republished_bundle(rec, bundle):
    path = rec._bundle
    rec.remove_items(["i3"])
    rec.save_catalog_changes()
    rec.remove_items(["i7"])
    rec.save_catalog_changes()  # the service's own previous save is no conflict
    assert read_manifest(path)["catalog"]["withdrawn"] == 2
    # someone re-publishes a model meanwhile (a nightly retrain): the service must not
    # overwrite it with its stale model
    save_model(load_model(bundle), path)
    rec.remove_items(["i11"])
    with pytest.raises(BundleError, match="re-published meanwhile"):
        rec.save_catalog_changes()
    assert "catalog" not in read_manifest(path)
    # an altered changes file is refused when loading
    fresh = Recommender.load(path, device="cpu")
    fresh.remove_items(["i3"])
    fresh.save_catalog_changes()
    f = files_dir(path) / "catalog" / "changes.json"
    f.write_text(f.read_text().replace('"i3"', '"i2"'))
    with pytest.raises(BundleError, match="changes.json"):
        load_model(path)


def test_unchanged_bundle_keeps_format_2(rec):
    assert read_manifest(rec._bundle)["format_version"] == 2
    path = rec.save_catalog_changes()
    assert read_manifest(path)["format_version"] == 2  # no changes: nothing new to read


# ---------------------------------------------------------------------- input errors
def test_bad_new_product_rows_change_nothing(rec):
    before = rec.recommend_many(["u0", "u1"], n=10)
    cases = [
        (pd.DataFrame({"title": ["x"]}), ValueError, "no id column"),
        (pd.DataFrame({"item_id": []}), ValueError, "empty"),
        (new_products((0, 0)), ValueError, "duplicate"),
        (pd.DataFrame({"item_id": ["i3"], "title": ["x"]}), ValueError, "already in the"),
        (pd.DataFrame({"item_id": ["z"], "price": ["cheap"]}), ValueError, "non-numeric price"),
        (pd.DataFrame({"item_id": [None], "title": ["x"]}), ValueError, "without an id"),
        ("not a frame", TypeError, "DataFrame"),
    ]
    for rows, exc, match in cases:
        with pytest.raises(exc, match=match):
            rec.add_items(rows)
    with pytest.raises(ValueError, match="no content the model uses"):
        GANRecommender.place_items(rec.model, pd.DataFrame({"category": [None]}))
    rec.remove_items(["i3"])
    with pytest.raises(ValueError, match="restore_items"):
        rec.add_items(pd.DataFrame({"id": ["i3"], "title": ["back again"]}))
    rec.restore_items(["i3"])
    with pytest.raises(ValueError, match="every product"):
        rec.remove_items(list(rec.item_ids))
    with pytest.raises(TypeError, match="single string"):
        rec.remove_items("i3")
    assert len(rec.item_ids) == 80 and rec.catalog_changes["withdrawn"] == []
    pd.testing.assert_frame_equal(rec.recommend_many(["u0", "u1"], n=10), before)


def test_integer_item_ids_accept_text_ids(tmp_path):
    from recogan.baselines import Popularity
    from recogan.datasets import synthetic_clusters

    d = synthetic_clusters(n_users=40, n_items=12)
    frame = pd.DataFrame(
        {"user_id": d.users.to_ids(d.user_idx), "item_id": d.item_idx + 100, "timestamp": d.times}
    )
    from recogan.data import Dataset

    model = Popularity().fit(Dataset.from_frames(frame))
    add_items(model, pd.DataFrame({"item_id": ["500", " 501"]}))
    assert model.items_.ids[-2:].tolist() == [500, 501]
    with pytest.raises(ValueError, match="not an integer"):
        add_items(model, pd.DataFrame({"item_id": ["A7"]}))


# ---------------------------------------------------------------------- baselines
@pytest.mark.parametrize("name", ["ease", "itemknn", "ials"])
def test_baselines_that_cannot_place_new_products_say_so(clustered, name):
    from recogan.registry import model_class

    rec = Recommender(model_class(name)().fit(clustered), device="cpu")
    with pytest.raises(CannotPlaceItemsError, match="cannot place products it was not trained"):
        rec.add_items(new_products())
    assert len(rec.item_ids) == 80 and rec.model.n_items_ == 80  # unchanged
    # withdrawing works for every model
    top = rec.recommend("u2", n=3).items
    rec.remove_items(list(top))
    assert not set(top) & set(rec.recommend("u2", n=10).items)
    assert not set(top) & set(rec.similar_items("i6", n=10).items)


def test_popularity_ranks_new_products_after_sold_ones(clustered, tmp_path):
    from recogan.baselines import Popularity

    rec = Recommender(Popularity().fit(clustered), device="cpu")
    rec.add_items(new_products())
    full = rec.recommend("u0", n=84, exclude_seen=False).items
    assert list(full[-4:]) == ["n0", "n1", "n2", "n3"]
    assert rec.recommend("u0", n=3, filter=["n2", "n1"]).items == ("n1", "n2")
    rec.save_catalog_changes(tmp_path / "pop")
    assert Recommender.load(tmp_path / "pop").recommend("u0", n=84).items[-4:] == full[-4:]


# ---------------------------------------------------------------------- concurrency
def _calls():
    return [
        ("recommend", ("u1",), {"n": 20}),
        ("recommend", ("u3",), {"n": 20, "filter": lambda i: i != "i7"}),
        ("similar_items", ("i5",), {"n": 20}),
        ("for_history", (["i2", "i6", "n2", "m3"],), {"n": 20}),
        ("rank", ("u3", ["i0", "i1", "n3", "i5", "i7", "m1", "m3"]), {}),
        ("recommend_many", (["u0", "u5", "nobody"],), {"n": 20}),
        ("explain", ("u8", "i4"), {}),
    ]


def _run(r, call):
    name, args, kwargs = call
    out = getattr(r, name)(*args, **kwargs)
    return out.to_dict("list") if isinstance(out, pd.DataFrame) else out


def _changes():
    """The catalogue changes, in order, applied while readers run."""
    return [
        lambda r: r.add_items(new_products()),
        lambda r: r.remove_items(["i4", "i5", "n2"]),
        lambda r: r.add_items(new_products((1, 3), prefix="m")),
        lambda r: r.restore_items(["i5"]),
    ]


def test_concurrent_readers_see_whole_states(bundle):
    calls = _calls()
    # expected output of every call in every state, computed sequentially
    seq = Recommender.load(bundle, device="cpu")
    states = [[_run(seq, c) for c in calls]]
    for change in _changes():
        change(seq)
        states.append([_run(seq, c) for c in calls])
    r = Recommender.load(bundle, device="cpu")
    stop = threading.Event()

    def reader(offset: int):
        floor, seen, k = 0, set(), offset
        while not stop.is_set():
            c = k % len(calls)
            got = _run(r, calls[c])
            matches = [s for s, expect in enumerate(states) if expect[c] == got]
            assert matches, f"{calls[c][0]} returned a result of no whole state: {got}"
            # states only move forward: nothing older than what this thread already saw
            assert max(matches) >= floor, f"{calls[c][0]} went back to state {matches}"
            floor = max(floor, min(matches))
            seen.update(matches if len(matches) == 1 else ())
            k += 1
        return seen

    with ThreadPoolExecutor(8) as pool:
        readers = [pool.submit(reader, i) for i in range(8)]
        for change in _changes():
            threading.Event().wait(0.05)
            change(r)
        threading.Event().wait(0.2)
        stop.set()
        seen = set().union(*(f.result() for f in readers))  # re-raises a reader's failure
    assert {0, len(states) - 1} <= seen
    assert [_run(r, c) for c in calls] == states[-1]


def test_read_write_lock_prefers_a_waiting_writer():
    lock = ReadWriteLock()
    order = []
    reading = threading.Event()

    def long_reader():
        with lock.read():
            reading.set()
            with lock.read():  # re-entrant while a writer waits
                threading.Event().wait(0.2)
            order.append("reader 1")

    def writer():
        reading.wait()
        with lock.write():
            order.append("writer")

    def late_reader():
        reading.wait()
        threading.Event().wait(0.05)  # arrives after the writer started waiting
        with lock.read():
            order.append("reader 2")

    threads = [threading.Thread(target=f) for f in (long_reader, writer, late_reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert order == ["reader 1", "writer", "reader 2"]
    with lock.read(), pytest.raises(RuntimeError, match="inside a read"):
        with lock.write():
            pass


# ---------------------------------------------------------------------- other index kinds
@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_add_remove_restore_on_approximate_indexes(bundle, kind):
    import dataclasses

    model = load_model(bundle)
    model.config = dataclasses.replace(model.config, index_kind=kind)
    model._build_index()
    rec = Recommender(model, device="cpu")
    rec.add_items(new_products())
    rec.remove_items(["n1", "i5"])
    for u in ("u1", "u5"):
        assert not {"n1", "i5"} & set(rec.recommend(u, n=20).items)
    assert "n1" in rec.restore_items(["n1"]).items
    hits = sum("n1" in rec.recommend(f"u{u}", n=10).items for u in range(1, 200, 4))
    assert hits >= 25  # of 50 group-1 customers


# ---------------------------------------------------------------------- command line
def test_cli_catalog_add_remove_show(rec, tmp_path, capsys):
    from recogan.batch import batch_score, read_recommendations
    from recogan.cli import main

    model = str(rec._bundle)
    new_products().rename(columns={"title": "name"}).to_csv(tmp_path / "new.csv", index=False)
    args = ["catalog", "add", "--model", model, "--catalog", str(tmp_path / "new.csv")]
    assert main([*args, "--title-col", "name"]) == 0
    text = capsys.readouterr().out
    assert "added 4 product(s)" in text and "published a new bundle version" in text
    (tmp_path / "gone.txt").write_text("n1\ni9\nnot-a-product\n")
    assert main(["catalog", "remove", "--model", model, "--items", str(tmp_path / "gone.txt")]) == 0
    assert "withdrew 2 product(s) (1 unknown id(s) ignored)" in capsys.readouterr().out
    assert main(["catalog", "show", "--model", model, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["added"] == ["n0", "n1", "n2", "n3"] and shown["withdrawn"] == ["i9", "n1"]
    assert main(["recommend", "--model", model, "--history", "i0,i4,i8,i12", "--json"]) == 0
    items = [r["item_id"] for r in json.loads(capsys.readouterr().out)["items"]]
    assert "n0" in items and not {"n1", "i9"} & set(items)
    batch_score(model, tmp_path / "out", n=10, workers=1, show_progress=False)
    out = read_recommendations(tmp_path / "out")
    assert not out["item_id"].isin(["n1", "i9"]).any() and out["item_id"].isin(["n0"]).any()
    # adding the same products again is refused with a one-line error
    assert main([*args, "--title-col", "name"]) == 1
    assert "already in the catalogue" in capsys.readouterr().err


def test_cli_catalog_add_to_a_model_that_cannot_place(clustered, tmp_path, capsys):
    from recogan.baselines import EASE
    from recogan.cli import main

    save_model(EASE().fit(clustered), tmp_path / "ease")
    new_products().to_csv(tmp_path / "new.csv", index=False)
    model, catalog = str(tmp_path / "ease"), str(tmp_path / "new.csv")
    assert main(["catalog", "add", "--model", model, "--catalog", catalog]) == 1
    err = capsys.readouterr().err
    assert "EASE cannot place products it was not trained on" in err and "Traceback" not in err
    assert "catalog" not in read_manifest(tmp_path / "ease")


# ---------------------------------------------------------------------- the launch prior
def launch_data():
    """``synthetic_clusters`` plus 24 products launched in the last 40 days of the year, six
    per group ("<group word> lantern j"), each group's customers buying two of theirs: recent
    launches that sell much better than the year-old products they resemble."""
    from recogan.data import Dataset
    from recogan.datasets import synthetic_clusters

    d = synthetic_clusters()
    rng = np.random.default_rng(1)
    end = int(d.times.max())
    ev = pd.DataFrame(
        {"user_id": d.users.to_ids(d.user_idx), "item_id": d.items.to_ids(d.item_idx)}
    ).assign(timestamp=d.times)
    launches, rows = [], []
    for u in range(200):
        g = u % 4
        for j in rng.choice(6, 2, replace=False):
            t = end - int(rng.integers(1, 40 * 86400))
            launches.append((f"u{u}", f"L{g}_{j}", t))
    for g in range(4):
        for j in range(6):
            rows.append((f"L{g}_{j}", f"{WORDS[g]} lantern {j}", f"group{g}", 1.5 + 2.0 * g))
    ev = pd.concat([ev, pd.DataFrame(launches, columns=ev.columns)], ignore_index=True)
    cat = pd.concat(
        [
            d.catalog.assign(item_id=d.items.ids),
            pd.DataFrame(rows, columns=["item_id", "title", "category", "price"]),
        ],
        ignore_index=True,
    )
    return Dataset.from_frames(ev, cat, name="launches")


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """The launch data and a bundle of a GAN fitted on it."""
    data = launch_data()
    path = tmp_path_factory.mktemp("launches") / "gan"
    save_model(GANRecommender(**{**TINY, "epochs": 3}).fit(data), path)
    return data, path


def test_launches_are_read_from_the_popularity_features(launched):
    data, path = launched
    model = load_model(path)
    idx, days = model.launches()
    assert days == 60
    ids = set(model.items_.to_ids(idx))
    assert {f"L{g}_{j}" for g in range(4) for j in range(6)} <= ids
    first = pd.Series(data.times).groupby(data.item_idx).min()
    assert (first[idx] >= data.times.max() - 61 * 86400).all()  # none sold before the window
    # too few launches (here: no windowed popularity feature): the "neighbours" rule instead
    plain = GANRecommender(**{**TINY, "epochs": 1, "pop_windows": (0,)}).fit(data)
    assert len(plain.launches()[0]) == 0 and plain._prior_rule("launch") == "neighbours"


def test_a_new_product_like_recent_launches_gets_their_prior(launched):
    """By default a new product gets a prior typical of the recent launches it resembles
    (within their quartiles) and reaches the lists of the customers it fits; the earlier
    default (the content neighbours' priors, old products included) put it below them."""
    data, path = launched
    rows = pd.DataFrame(
        {"item_id": ["N0"], "title": ["garden lantern new"], "category": ["group0"], "price": [1.5]}
    )
    model = load_model(path)
    P = model.item_index_[:, -1]
    launches = P[model.items_.lookup([f"L{g}_{j}" for g in range(4) for j in range(6)])]
    old = P[model.items_.lookup([f"i{j}" for j in range(0, 80, 4)])]  # the old garden items
    assert launches.min() > np.median(old)  # the launches sell better than the old products
    q1, q3 = np.quantile(launches, [0.25, 0.75])
    add_items(model, rows)  # the default rule
    assert q1 <= model.item_index_[-1, -1] <= q3
    users = model.users_.lookup([f"u{u}" for u in range(200)])
    shown = (model.recommend(users, n=10)[0] == model.n_items_ - 1).any(1)
    fits = np.arange(200) % 4 == 0  # group 0's customers
    assert shown[fits].mean() >= 0.8 and shown[~fits].mean() <= 0.05
    for rule in ("launch", "launch_neighbours"):
        other = load_model(path)
        other.NEW_ITEM_PRIOR = rule
        add_items(other, rows)
        assert q1 <= other.item_index_[-1, -1] <= q3
    other = load_model(path)
    other.NEW_ITEM_PRIOR = "neighbours"
    add_items(other, rows)
    assert other.item_index_[-1, -1] < q1
