"""``recogan train`` and ``recogan recommend``: bundle in, recommendations out, by the ids a
user types (int customer ids included)."""

from __future__ import annotations

import json

import pytest

from recogan.cli import main
from recogan.cli._train import parse_params
from tests.vector_model import vector_model_registered  # noqa: F401


@pytest.fixture(scope="module")
def files(clustered, tmp_path_factory):
    """The clustered data as CSVs with int64 customer ids and a titled catalog."""
    root = tmp_path_factory.mktemp("cli")
    ev = clustered.interactions
    frame = ev.assign(
        customer=12000 + ev["user"].astype("int64"),
        sku=clustered.items.to_ids(ev["item"]),
        ts=ev["time"],
    )[["customer", "sku", "ts"]]
    frame.to_csv(root / "events.csv", index=False)
    cat = clustered.catalog.assign(sku=clustered.items.ids)
    cat.to_csv(root / "catalog.csv", index=False)
    return root


def _data_args(files):
    return [
        "--interactions", str(files / "events.csv"), "--catalog", str(files / "catalog.csv"),
        "--user-col", "customer", "--item-col", "sku", "--time-col", "ts",
    ]  # fmt: skip


def test_train_then_recommend_int_user(files, tmp_path, capsys):
    out = tmp_path / "models" / "pop"
    assert main(["train", *_data_args(files), "--model", "pop", "--out", str(out)]) == 0
    assert "trained Popularity" in capsys.readouterr().out
    assert (out / "manifest.json").is_file()
    assert main(["recommend", "--model", str(out), "--user", "12001", "--n", "3"]) == 0
    text = capsys.readouterr().out
    assert "top 3 for user 12001" in text and "fallback" not in text
    assert (
        len([line for line in text.splitlines() if line.strip().startswith(("1 ", "2 ", "3 "))])
        == 3
    )
    assert " item " in text  # catalog titles are printed
    assert main(["recommend", "--model", str(out), "--user", "99999", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["fallback"] is True and len(res["items"]) == 10 and res["items"][0]["title"]
    assert main(["recommend", "--model", str(out), "--user", "99999", "--strict"]) == 1
    assert "unknown user id 99999" in capsys.readouterr().err
    # the list modes: buy again lists only what the customer bought, each marked a repeat
    args = ["recommend", "--model", str(out), "--user", "12001", "--json", "--mode"]
    assert main([*args, "buy_again"]) == 0
    again = json.loads(capsys.readouterr().out)["items"]
    assert again and all(r["repeat"] for r in again)
    assert main([*args, "discover"]) == 0
    assert not any(r["repeat"] for r in json.loads(capsys.readouterr().out)["items"])
    assert main([*args, "sometimes"]) == 1
    assert "got 'sometimes'" in capsys.readouterr().err


def test_train_vector_model_params_history_and_similar(files, tmp_path, capsys):
    out = tmp_path / "vec"
    args = ["train", *_data_args(files), "--model", "vector", "--param", "dim=4", "--seed", "3"]
    assert main([*args, "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["config"] == {"dim": 4, "kind": "exact", "seed": 3}
    capsys.readouterr()
    assert main(["recommend", "--model", str(out), "--history", "i2,i6,zzz", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_unknown"] == 1 and len(res["items"]) == 10
    assert sum(int(r["item_id"][1:]) % 4 == 2 for r in res["items"][:5]) >= 4
    assert main(["recommend", "--model", str(out), "--similar", "i4", "--n", "4"]) == 0
    assert "items similar to i4 (item-vector similarity)" in capsys.readouterr().out


def test_train_errors(files, tmp_path, capsys):
    base = ["train", *_data_args(files), "--out", str(tmp_path / "x")]
    assert main([*base, "--model", "nope"]) == 1
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert main([*base, "--model", "pop", "--param", "alpha=1"]) == 1
    assert "unknown parameter(s) ['alpha']" in capsys.readouterr().err
    assert main([*base, "--model", "pop", "--param", "window_days"]) == 1
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["recommend", "--model", str(tmp_path / "missing"), "--user", "1"]) == 1
    assert "no model bundle here" in capsys.readouterr().err


def test_parse_params():
    assert parse_params(["a=3", "b=0.5", "c=true", "d=None", "e=hello", "f=[1,2]"]) == {
        "a": 3, "b": 0.5, "c": True, "d": None, "e": "hello", "f": [1, 2],
    }  # fmt: skip


@pytest.mark.slow
@pytest.mark.realdata
def test_online_retail_train_and_recommend(tmp_path, capsys):
    out = tmp_path / "retail"
    assert main(["train", "--data", "online_retail", "--model", "pop", "--out", str(out)]) == 0
    assert main(["recommend", "--model", str(out), "--user", "12347", "--n", "5"]) == 0
    text = capsys.readouterr().out
    assert "top 5 for user 12347" in text and "fallback" not in text


def test_train_gan_early_stops_then_refits_on_everything(tmp_path, capsys):
    import pandas as pd

    from recogan.artifacts import load_model
    from recogan.datasets import synthetic_clusters

    data = synthetic_clusters()
    frame = data.interactions
    csv = tmp_path / "events.csv"
    pd.DataFrame(
        {
            "user_id": data.users.to_ids(frame["user"]),
            "item_id": data.items.to_ids(frame["item"]),
            "timestamp": frame["time"],
        }
    ).to_csv(csv, index=False)
    out = tmp_path / "gan"
    params = ["epochs=6", "patience=1", "batch_size=128", "g_hidden=32", "d_hidden=16"]
    args = ["train", "--interactions", str(csv), "--model", "gan", "--out", str(out)]
    assert main(args + [x for p in params for x in ("--param", p)]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    # a progress bar while training: epoch, pairs/s, the last validation score
    assert "epoch 2/6" in captured.err and "pair/s" in captured.err
    assert "valid_ndcg=0." in captured.err
    assert "early stopping on the latest 10% of interactions" in printed
    model = load_model(out)
    chosen = model.config.epochs
    assert 1 <= chosen <= 6 and f'"epochs": {chosen}' in printed
    # the GAN's validation score is shown next to the references on the same split
    (line,) = [x for x in printed.splitlines() if x.startswith("validation NDCG@10:")]
    assert "gan " in line and "pop (last 30 days) " in line and "ease " in line
    assert model.n_users_ == data.n_users  # the bundle was refitted on all the data
    assert model.seen_.nnz == data.csr().nnz


def test_validation_check_warns_when_below_a_reference(clustered_split):
    from recogan.baselines import Popularity
    from recogan.evaluate._check import validation_check

    weak = Popularity().fit(clustered_split.train)  # all-time popularity: no personal signal
    check = validation_check(weak, "weak", clustered_split.train, clustered_split.valid)
    assert set(check.scores) == {"weak", "pop (last 30 days)", "ease"}
    assert "ease" in check.below()  # EASE finds the planted groups, popularity cannot
    warnings = [x for x in check.lines() if x.startswith("warning:")]
    assert any("weak scores below ease" in w for w in warnings)
    # and no warning for a model that beats both references
    from recogan.baselines import EASE

    ease = EASE().fit(clustered_split.train)
    check = validation_check(ease, "ease", clustered_split.train, clustered_split.valid)
    assert set(check.scores) == {"ease", "pop (last 30 days)"} and check.below() == []
