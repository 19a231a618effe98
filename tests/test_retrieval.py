"""The GAN's retrieval part as a model of its own (``retrieval``): the contract, its settings,
that training never touches the discriminator, and the command line."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
import torch

from recogan.artifacts import load_model
from recogan.cli import main
from recogan.cli._train import AUTO_CANDIDATES, auto_candidates, model_spec
from recogan.fitting import DEFAULT_SCORER
from recogan.gan.config import GANConfig
from recogan.gan.model import GANRecommender
from recogan.gan.retrieval import RetrievalConfig, RetrievalRecommender
from recogan.registry import model_class
from recogan.testing import ModelContract
from tests.fast_gan import FAST


class TestRetrievalContract(ModelContract):
    def make_model(self):
        return RetrievalRecommender(**FAST)


def test_registered_by_name_and_by_class():
    assert model_class("retrieval") is RetrievalRecommender
    assert model_class("RetrievalRecommender") is RetrievalRecommender
    assert RetrievalRecommender.name == "retrieval" and GANRecommender.name == "gan"


def test_the_gans_settings_less_the_adversarial_part():
    gan, ret = GANRecommender().params(), RetrievalRecommender().params()
    assert gan.keys() == ret.keys()
    differ = {k for k in gan if gan[k] != ret[k]}
    assert differ == {"adversarial", "d_weights"}  # d_weight is 0 in both
    assert ret["adversarial"] is False and list(ret["d_weights"]) == [] and ret["d_weight"] == 0
    assert RetrievalRecommender.search_space() == GANRecommender.search_space()
    assert RetrievalRecommender.early_stopping_params == GANRecommender.early_stopping_params
    # the GAN's recommend-time choices, less the discriminator's weight (its re-rank has
    # only the co-purchase evidence)
    assert set(GANRecommender.recommend_params()) - set(
        RetrievalRecommender.recommend_params()
    ) == {"d_weight"}


@pytest.mark.parametrize(
    "setting",
    [{"adversarial": True}, {"d_weight": 0.5}, {"d_weights": (1.0, 2.0)}, {"adv_weights": (0.0,)}],
)
def test_refuses_to_turn_the_adversarial_part_on(setting):
    (key,) = setting
    with pytest.raises(ValueError, match=f"without its adversarial part.*{key}.*use model 'gan'"):
        RetrievalRecommender(**setting)
    with pytest.raises(ValueError, match="without its adversarial part"):
        dataclasses.replace(RetrievalConfig(), **setting)


def test_training_never_touches_the_discriminator(clustered_split):
    s = clustered_split
    small = {**FAST, "epochs": 2, "draw_choices": ()}
    ret = RetrievalRecommender(**small).fit(s.train, s.valid, scorer=DEFAULT_SCORER)
    assert ret.history_ and all(r["d"] == 0 and r["g_adv"] == 0 for r in ret.history_)
    # D is exactly as built: never stepped, never run in training mode (spectral norm's
    # power iteration would move its buffers)
    fresh = RetrievalRecommender(**small)
    fresh.F_, fresh.device_ = ret.F_, "cpu"
    fresh._build(fresh.config.part(GANConfig))
    built, trained = fresh.nets_.D.state_dict(), ret.nets_.D.state_dict()
    assert built.keys() == trained.keys()
    assert all(torch.equal(built[k], trained[k]) for k in built)
    # while the GAN's discriminator learns
    gan = GANRecommender(**small, d_weights=()).fit(s.train, s.valid, scorer=DEFAULT_SCORER)
    assert all(r["d"] > 0 for r in gan.history_)
    moved = gan.nets_.D.state_dict()
    assert not all(torch.equal(built[k], moved[k]) for k in built)


def test_cli_train_param_and_auto_candidates(tmp_path, capsys, clustered):
    frame = clustered.interactions
    csv = tmp_path / "events.csv"
    pd.DataFrame(
        {
            "user_id": clustered.users.to_ids(frame["user"]),
            "item_id": clustered.items.to_ids(frame["item"]),
            "timestamp": frame["time"],
        }
    ).to_csv(csv, index=False)
    out = tmp_path / "retrieval"
    params = ["epochs=2", "batch_size=128", "g_hidden=32", "d_hidden=16", "lr=0.003"]
    args = ["train", "--interactions", str(csv), "--model", "retrieval", "--out", str(out)]
    assert main([*args, "--no-progress", *[x for p in params for x in ("--param", p)]]) == 0
    assert "trained RetrievalRecommender(" in capsys.readouterr().out
    model = load_model(out)
    assert type(model) is RetrievalRecommender and model.config.lr == 0.003
    assert model.config.adversarial is False and model.config.d_weight == 0.0
    with pytest.raises(ValueError, match="without its adversarial part"):
        model_spec("retrieval", ["d_weight=1"], 0)
    # --model auto: not a default candidate, but a candidate when named, with its own params
    assert "retrieval" not in AUTO_CANDIDATES
    got = auto_candidates("gan,retrieval", ["retrieval.lr=0.001"], 0)
    assert got["retrieval"] == (RetrievalRecommender, {"seed": 0, "lr": 0.001})
    assert got["gan"] == (GANRecommender, {"seed": 0})


def test_the_tuner_searches_it_as_the_gan():
    from recogan.evaluate import candidate_params
    from recogan.evaluate._halving import parse_space, plan_stages

    assert parse_space(RetrievalRecommender) == parse_space(GANRecommender)
    assert plan_stages(RetrievalRecommender, 3) == plan_stages(GANRecommender, 3)
    trials = candidate_params(RetrievalRecommender, 6, seed=0)
    assert trials == candidate_params(GANRecommender, 6, seed=0)
    for params in trials:  # every point of the grid is a retrieval model
        assert RetrievalRecommender(**params).config.adversarial is False
