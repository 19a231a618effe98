"""The GAN's config: its parts' settings flat, each default stated once (in its part), and
the flat form bundles hold, round-tripped through JSON."""

import dataclasses
import inspect
import json

import pytest

from recogan.features import ItemFeaturesConfig
from recogan.gan.config import (
    EmbeddingConfig,
    GANConfig,
    GANRecommenderConfig,
    InferenceConfig,
    TrainConfig,
)
from recogan.gan.model import GANRecommender
from recogan.registry import model_class

PARTS = [ItemFeaturesConfig, EmbeddingConfig, GANConfig, TrainConfig, InferenceConfig]

#: The settings a GAN bundle's manifest holds (``model.config``), as bundles written before
#: the GAN became a package hold them: they must keep loading.
BUNDLE_FIELDS = """
adv_share adv_weight adversarial amp anchor basket_context batch_size d_attention d_depth
d_hidden d_lr d_weight d_weights device dim_category dim_cf dim_text diversity
draw_choices dropout epochs full_softmax_items g_depth g_hidden half_life_days
history_dropout history_lag_days index_kind inference_noise item_lr logit_scale lr
max_history merge merge_choices n_draws n_negatives n_sampled noise_dim noise_std
pair_half_life_days pairs_per_epoch patience pop_windows prior_weight prior_weights
rerank_depth retrieval seed show_progress skip_repeats spectral_norm stop_prior_weights
threads train_draws w_category w_cf w_price w_text weight_decay
""".split()
#: Settings added since (a bundle without them loads with their defaults; its item features
#: are stored, so its lists do not change).
ADDED_FIELDS = [
    "cf_item_norm",
    "copurchase_weight",
    "copurchase_weights",
    "copurchase_candidates",
    "copurchase_k",
    "copurchase_shrinkage",
    "adv_weights",
    "repeat_weight",
    "repeat_weights",
    "repeat_offset",
    "repeat_offsets",
    "repeat_horizon_days",
    "repeat_cuts",
    "repeat_max_rows",
]


def test_each_setting_is_declared_once():
    owners: dict[str, list[str]] = {}
    for cls in [*PARTS, GANRecommenderConfig]:
        for name in inspect.get_annotations(cls):
            owners.setdefault(name, []).append(cls.__name__)
    twice = {k: v for k, v in owners.items() if len(v) > 1}
    assert not twice, f"settings declared more than once: {twice}"
    flat = {f.name for f in dataclasses.fields(GANRecommenderConfig)}
    assert flat == set(owners)


@pytest.mark.parametrize("part", PARTS)
def test_a_part_takes_the_model_s_values(part):
    config = GANRecommenderConfig(lr=5e-3, noise_dim=8, dim_text=4, n_draws=3, max_history=7)
    sub = config.part(part)
    assert type(sub) is part
    for f in dataclasses.fields(part):
        assert getattr(sub, f.name) == getattr(config, f.name)
    assert sub == part(**{f.name: getattr(config, f.name) for f in dataclasses.fields(part)})


def test_the_flat_settings_of_earlier_bundles_load_and_round_trip_through_json():
    assert sorted(GANRecommender().params()) == sorted(BUNDLE_FIELDS + ADDED_FIELDS)
    model = GANRecommender(n_draws=4, pop_windows=(0, 30), lr=1e-3, diversity=0.25)
    saved = json.loads(json.dumps(model.params()))  # as a manifest holds it
    earlier = {k: v for k, v in saved.items() if k not in ADDED_FIELDS}
    assert model_class(GANRecommender.__name__)(earlier).params() == model.params()
    again = model_class(GANRecommender.__name__)(saved)  # as a bundle's loader builds it
    assert type(again) is GANRecommender and model_class("gan") is GANRecommender
    assert again.params() == model.params()
    assert again.config.pop_windows == [0, 30] and again.config.n_draws == 4
