"""Public API entry points check their arguments: a clear error naming the argument, never a
bare string read as one-character ids or a pandas error from deep inside."""

from __future__ import annotations

import numpy as np
import pytest

from recogan.baselines import EASE, IALS, ItemKNN, Popularity
from recogan.recommender import Recommender, UnknownItemError, UnknownUserError


@pytest.fixture(scope="module")
def rec(clustered):
    return Recommender(ItemKNN(k=10).fit(clustered))


@pytest.fixture(scope="module")
def strict(rec):
    return Recommender(rec.model, strict=True)


# ---------------------------------------------------------------------- one id vs a list
def test_recommend_given_a_list_points_to_recommend_many(rec):
    with pytest.raises(TypeError, match="user_id must be one id.*got list; use recommend_many"):
        rec.recommend(["u1", "u2"])


@pytest.mark.parametrize(
    "bad", [None, True, float("nan"), 1.5, {"u1": 1}, ("u1",), np.array(["u1"])], ids=repr
)
def test_recommend_refuses_what_is_not_one_id(rec, bad):
    with pytest.raises(TypeError, match="user_id must be"):
        rec.recommend(bad)


@pytest.mark.parametrize("bad", ["", "   "], ids=["empty", "blank"])
def test_an_empty_string_is_not_an_id(rec, bad):
    with pytest.raises(ValueError, match="user_id is an empty string"):
        rec.recommend(bad)


def test_rank_refuses_a_bare_string_of_candidates(rec):
    with pytest.raises(TypeError, match=r"item_ids must be a list of ids, not a single string"):
        rec.rank("u1", "i10")


def test_for_history_refuses_a_bare_string(rec):
    with pytest.raises(TypeError, match=r"wrap it in a list: \['i10'\]"):
        rec.for_history("i10")


def test_recommend_many_refuses_a_bare_string(rec):
    with pytest.raises(TypeError, match="user_ids must be a list of ids, not a single string"):
        rec.recommend_many("u1")


@pytest.mark.parametrize("bad", [None, 5, 2.0], ids=repr)
def test_lists_of_ids_refuse_scalars(rec, bad):
    with pytest.raises(TypeError, match="item_ids must be a list of ids"):
        rec.for_history(bad)


def test_a_list_of_ids_refuses_odd_entries(rec):
    with pytest.raises(TypeError, match="item_ids entry must be an id"):
        rec.rank("u1", ["i1", None])


def test_titles_refuse_a_bare_string(rec):
    with pytest.raises(TypeError, match="item_ids must be a list"):
        rec.titles("i1")


def test_similar_items_given_a_list(rec):
    with pytest.raises(TypeError, match="item_id must be one id"):
        rec.similar_items(["i1"])


def test_similar_items_unknown_item(rec):
    with pytest.raises(UnknownItemError, match="unknown item id 'zz'"):
        rec.similar_items("zz")


def test_explain_given_a_list(rec):
    with pytest.raises(TypeError, match="item_id must be one id"):
        rec.explain("u1", ["i1"])


# ---------------------------------------------------------------------- unknowns and strictness
def test_rank_strict_unknown_user_without_candidates(strict):
    with pytest.raises(UnknownUserError, match="unknown user id 'nobody'"):
        strict.rank("nobody", [])


def test_rank_strict_unknown_user_with_unknown_candidates(strict):
    with pytest.raises(UnknownUserError):
        strict.rank("nobody", ["zz"])


def test_rank_counts_unknown_candidates(rec):
    r = rec.rank("u1", ["i1", "zz", "i2"])
    assert r.n_unknown == 1 and set(r.items) == {"i1", "i2"}


def test_allow_list_of_only_unknown_items_is_refused(rec):
    with pytest.raises(ValueError, match=r"filter names none of the catalog's items \(2 unknown"):
        rec.recommend("u1", filter=["zz", "yy"])


def test_empty_allow_list_is_refused(rec):
    with pytest.raises(ValueError, match="filter is empty"):
        rec.recommend_many(["u1"], filter=[])


def test_unknown_ids_in_an_allow_list_are_counted(rec):
    r = rec.for_history(["i1"], filter=["i2", "i3", "zz"])
    assert r.n_unknown == 1 and set(r.items) <= {"i2", "i3"}


def test_strict_recommend_many_names_unknown_users(strict):
    with pytest.raises(UnknownUserError, match=r"1 unknown user id\(s\), e.g. \['ghost'\]"):
        strict.recommend_many(["u1", "ghost"])


# ---------------------------------------------------------------------- other arguments
@pytest.mark.parametrize("n", [0, -1], ids=repr)
def test_bad_n(rec, n):
    with pytest.raises(ValueError, match="n must be a positive int"):
        rec.recommend("u1", n=n)


@pytest.mark.parametrize("n", ["5", True, 2.5], ids=repr)
def test_n_of_the_wrong_type(rec, n):
    with pytest.raises(TypeError, match="n must be a positive int"):
        rec.recommend("u1", n=n)


def test_exclude_seen_must_be_a_bool(rec):
    with pytest.raises(TypeError, match="exclude_seen must be True or False"):
        rec.recommend("u1", exclude_seen="no")


@pytest.mark.parametrize("mode", ["again", "", 1, "DISCOVER"], ids=repr)
@pytest.mark.parametrize("call", ["recommend", "recommend_many", "for_history"])
def test_bad_mode(rec, call, mode):
    arg = {"recommend": "u1", "recommend_many": ["u1"], "for_history": [rec.item_ids[0]]}[call]
    with pytest.raises(
        ValueError, match=rf"mode must be one of discover, buy_again, mixed; got {mode!r}"
    ):
        getattr(rec, call)(arg, mode=mode)


def test_mode_and_exclude_seen_must_agree(rec):
    with pytest.raises(ValueError, match="exclude_seen=True contradicts mode='mixed'"):
        rec.recommend("u1", exclude_seen=True, mode="mixed")


def test_load_refuses_an_unknown_device(tmp_path):
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu' or 'cuda'"):
        Recommender.load(tmp_path, device="gpu")


def test_recommender_wraps_only_a_model():
    with pytest.raises(TypeError, match="wraps a recogan model"):
        Recommender(object())


def test_model_recommend_refuses_external_ids(rec):
    with pytest.raises(ValueError, match="user_idx must be integer indices"):
        rec.model.recommend(np.array(["u1"]))


def test_model_recommend_refuses_out_of_range_indices(rec):
    with pytest.raises(IndexError, match="out of range"):
        rec.model.recommend([10**6])


@pytest.mark.parametrize("bad", ["abc", [["i1"]], [[0, 1], "x"]], ids=repr)
def test_model_recommend_history_checks_histories(rec, bad):
    with pytest.raises(TypeError, match="histor"):
        rec.model.recommend_history(bad)


# ---------------------------------------------------------------------- model settings
@pytest.mark.parametrize(
    "make,error,match",
    [
        (lambda: Popularity(window_days=-5), ValueError, "window_days must be > 0"),
        (lambda: Popularity(window_days=0), ValueError, "window_days must be > 0"),
        (lambda: EASE(lam="abc"), TypeError, "lam must be a number"),
        (lambda: EASE(lam=float("nan")), ValueError, "lam must be a finite number"),
        (lambda: IALS(factors=1.5), TypeError, "factors must be a number|factors must be int"),
        (lambda: ItemKNN(k=True), TypeError, "k must be"),
        (lambda: ItemKNN(shrinkage=-1), ValueError, "shrinkage must be >= 0"),
        (lambda: IALS(iterations=-1), ValueError, "iterations must be >= 0"),
        (
            lambda: EASE({"lam": 1.0, "lambda": 2}),
            TypeError,
            r"unknown parameter\(s\) \['lambda'\]",
        ),
        (lambda: EASE(config=3), TypeError, "takes a EASEConfig or a dict"),
    ],
    ids=[
        "window_negative",
        "window_zero",
        "lam_text",
        "lam_nan",
        "factors_float",
        "k_bool",
        "shrinkage_negative",
        "iterations_negative",
        "unknown_key",
        "config_type",
    ],
)
def test_model_settings_are_checked(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_gan_settings_are_type_checked():
    from recogan.gan.model import GANRecommender

    with pytest.raises(TypeError, match="GANRecommenderConfig.epochs must be int"):
        GANRecommender(epochs="3")
    with pytest.raises(ValueError, match="lr must be a finite number"):
        GANRecommender(lr=float("inf"))


# ---------------------------------------------------------------------- evaluate / batch
def test_evaluate_refuses_what_is_not_data():
    from recogan.evaluate import evaluate

    with pytest.raises(TypeError, match="evaluate takes a Dataset or a Split"):
        evaluate("online_retail", models=["pop"])


def test_evaluate_reads_a_comma_separated_string_of_models(clustered):
    from recogan.evaluate import evaluate

    with pytest.raises(ValueError, match="unknown model 'nope'"):
        evaluate(clustered, models="pop,nope", show_progress=False)


def test_evaluate_refuses_a_zero_budget(clustered):
    from recogan.evaluate import evaluate

    with pytest.raises(ValueError, match="budget must be a positive int"):
        evaluate(clustered, models=["pop"], budget=0, show_progress=False)


def test_batch_users_as_a_bare_string_is_a_file_name(bundle, tmp_path):
    from recogan.batch import batch_score

    with pytest.raises(FileNotFoundError, match="no such file"):
        batch_score(bundle, tmp_path / "o", users="17850", show_progress=False, workers=1)


def test_batch_users_as_ints_for_string_ids(bundle, pop_a, tmp_path):
    from recogan.batch import batch_score

    with pytest.raises(ValueError, match=r"user id\(s\) not in the model bundle"):
        batch_score(bundle, tmp_path / "o", users=[17850], show_progress=False, workers=1)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"users": 17850}, "users must be a list of ids, got int"),
        ({"users": [None]}, "users entry must be an id"),
        ({"users": [["u1"]]}, "users entry must be one id"),
        ({"item_filter": 5}, "item_filter must be a list of ids"),
        ({"n": "5"}, "n must be a positive int"),
    ],
    ids=["users_scalar", "users_none", "users_nested", "filter_scalar", "n_text"],
)
def test_batch_arguments(bundle, tmp_path, kwargs, match):
    from recogan.batch import batch_score

    with pytest.raises(TypeError, match=match):
        batch_score(bundle, tmp_path / "o", show_progress=False, workers=1, **kwargs)
    assert not (tmp_path / "o").exists()


def test_batch_users_as_a_set(bundle, tmp_path):
    from recogan.batch import batch_score

    res = batch_score(bundle, tmp_path / "o", users={"u1", "u2"}, show_progress=False, workers=1)
    assert res.users == 2


@pytest.mark.parametrize(
    "call,error,match",
    [
        ("load_model", TypeError, "bundle path must be a path"),
        ("read_dataset", TypeError, "interactions must be a path"),
        ("batch_score", TypeError, "model_path must be a path"),
        ("Recommender.load", ValueError, "bundle path is an empty string"),
    ],
    ids=["load_model", "read_dataset", "batch_score", "recommender_load"],
)
def test_paths_that_are_not_paths(call, error, match):
    from recogan.artifacts import load_model
    from recogan.batch import batch_score
    from recogan.data import read_dataset

    calls = {
        "load_model": lambda: load_model(123),
        "read_dataset": lambda: read_dataset(None),
        "batch_score": lambda: batch_score(None, "out"),
        "Recommender.load": lambda: Recommender.load(""),
    }
    with pytest.raises(error, match=match):
        calls[call]()


def test_similar_items_in_a_one_item_catalog(tmp_path):
    import pandas as pd

    from recogan.data import Dataset

    d = Dataset.from_frames(
        pd.DataFrame({"user_id": [1], "item_id": ["a"], "timestamp": [1_700_000_000]})
    )
    r = Recommender(IALS(factors=2).fit(d)).similar_items("a")
    assert len(r) == 0 and r.reason == "the catalog has no other item"
