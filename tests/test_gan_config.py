"""GANRecommenderConfig exposes its parts' settings flat; its defaults must be the parts' own."""

import dataclasses

import pytest

from recogan.features import ItemFeaturesConfig
from recogan.gan import GANConfig
from recogan.model import GANRecommenderConfig
from recogan.train import TrainConfig


@pytest.mark.parametrize("part", [ItemFeaturesConfig, GANConfig, TrainConfig])
def test_flat_defaults_match_each_part(part):
    flat = {f.name: f.default for f in dataclasses.fields(GANRecommenderConfig)}
    for f in dataclasses.fields(part):
        assert f.name in flat, f"{part.__name__}.{f.name} is not exposed by the GAN config"
        assert flat[f.name] == f.default, f"{part.__name__}.{f.name} default differs"
