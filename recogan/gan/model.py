"""``GANRecommender``: the GAN-augmented model behind the shared contract (recogan.base).

Fit: item features ``F`` → training pairs → G, D and the item tower trained together (see
:mod:`recogan.gan.train`), early-stopped on the validation score (``fit(..., scorer=)``;
default NDCG@10), then the recommend-time knobs chosen on validation
(:mod:`recogan.gan.knobs`).

The model's jobs live in the modules of :mod:`recogan.gan`, each a part of the class:
recommending (:mod:`~recogan.gan.ranking`), the audience tail for diversity
(:mod:`~recogan.gan.tail`), new products (:mod:`~recogan.gan.placing`), measuring generated
vectors (:mod:`~recogan.gan.measuring`) and bundles (:mod:`~recogan.gan.persistence`).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd
import torch

from recogan._threads import set_torch_threads
from recogan.base import Model
from recogan.data import Dataset
from recogan.features import ItemFeatures, ItemFeaturesConfig
from recogan.gan.config import MERGE_RULES, GANConfig, GANRecommenderConfig, TrainConfig
from recogan.gan.knobs import ValidationChoices
from recogan.gan.measuring import Measuring
from recogan.gan.networks import Discriminator, Generator, ItemTower
from recogan.gan.pairs import TrainingPairs, WindowPopularity, history_window
from recogan.gan.persistence import Persistence
from recogan.gan.placing import Placing
from recogan.gan.ranking import Ranking
from recogan.gan.repeats import Repeats, check_repeat_config
from recogan.gan.tail import AudienceTail
from recogan.gan.train import Networks, resolve_device, train_gan
from recogan.index import ItemIndex

log = logging.getLogger(__name__)

__all__ = ["MERGE_RULES", "GANRecommender", "GANRecommenderConfig"]


class GANRecommender(
    Ranking, AudienceTail, Placing, ValidationChoices, Repeats, Measuring, Persistence, Model
):
    """The GAN-augmented recommender (see the module's docstring); its settings are
    :class:`~recogan.gan.config.GANRecommenderConfig`'s, each part's own jobs are in the
    class it inherits from that part's module."""

    name = "gan"
    Config = GANRecommenderConfig
    early_stopping_params = ("epochs",)

    def __init__(self, config=None, **kwargs) -> None:
        super().__init__(config, **kwargs)
        c = self.config
        if c.merge not in MERGE_RULES:
            raise ValueError(f"merge must be one of {MERGE_RULES}, not {c.merge!r}")
        if c.n_draws < 1 or any(int(S) != S or S < 1 for S in c.draw_choices):
            raise ValueError(
                f"n_draws and draw_choices must be >= 1, got {c.n_draws} and {c.draw_choices}"
            )
        if not set(c.merge_choices) <= set(MERGE_RULES):
            raise ValueError(
                f"merge_choices must be among {MERGE_RULES}, not {tuple(c.merge_choices)!r}"
            )
        if c.max_history < 1:
            raise ValueError(f"max_history must be >= 1, got {c.max_history}")
        if not c.history_lag_days >= 0:
            raise ValueError(f"history_lag_days must be >= 0, got {c.history_lag_days}")
        if not 0.0 <= c.diversity <= 1.0:
            raise ValueError(f"diversity must be in [0, 1], got {c.diversity}")
        if c.copurchase_weight < 0 or any(not w >= 0 for w in c.copurchase_weights):
            raise ValueError(
                "copurchase_weight and copurchase_weights must be >= 0, got "
                f"{c.copurchase_weight} and {tuple(c.copurchase_weights)}"
            )
        if c.adv_weight < 0 or any(not w >= 0 for w in c.adv_weights):
            raise ValueError(
                f"adv_weight and adv_weights must be >= 0, got {c.adv_weight} and "
                f"{tuple(c.adv_weights)}"
            )
        check_repeat_config(c)
        if c.copurchase_candidates < 0:
            raise ValueError(f"copurchase_candidates must be >= 0, got {c.copurchase_candidates}")
        if c.copurchase_k < 1 or not c.copurchase_shrinkage >= 0:
            raise ValueError(
                f"copurchase_k must be >= 1 and copurchase_shrinkage >= 0, got "
                f"{c.copurchase_k} and {c.copurchase_shrinkage}"
            )

    @classmethod
    def search_space(cls) -> dict[str, list]:
        """Training hyperparameters searched on validation (recommend-time knobs such as
        ``n_draws`` and ``d_weight`` are cheap to tune on a fitted model afterwards)."""
        return {
            # how much recent popularity to trust: the rolling-origin folds decide
            "pop_windows": [(0, 7, 60), (0,), ()],
            "basket_context": [False, True],
            "half_life_days": [30.0, 120.0],
            "history_dropout": [0.0, 0.3],
            # how far ahead a history predicts: next purchase only, or the coming weeks
            "history_lag_days": [14.0, 0.0, 60.0],
            "lr": [1e-3, 3e-3],
        }

    def refit_params(self) -> dict:
        """Parameters for refitting on train + valid without a validation split: the epoch
        count that early stopping chose."""
        return {**self.params(), "epochs": int(max(1, self.best_epoch_))}

    @classmethod
    def recommend_params(cls) -> tuple[str, ...]:
        """The inference settings: they change ``recommend`` without a refit."""
        return (
            "n_draws",
            "inference_noise",
            "merge",
            "d_weight",
            "prior_weight",
            "rerank_depth",
            "copurchase_weight",
            "copurchase_candidates",
            "repeat_weight",
            "repeat_offset",
            "diversity",
        )

    @classmethod
    def judged_params(cls, targets: str) -> dict:
        """Judged on new items only, the lists never keep bought items, which are all the
        repeat head changes: its weight and offset are not chosen (each choice scores the
        validation window a dozen times)."""
        return {"repeat_weights": (), "repeat_offsets": ()} if targets == "new" else {}

    @classmethod
    def diversity_param(cls) -> str:
        """The GAN's own diversity mechanism: a tail of items from their audiences (see
        ``diversity``)."""
        return "diversity"

    @classmethod
    def noise_draws_param(cls) -> str:
        return "n_draws"

    @classmethod
    def tradeoff_param(cls) -> tuple[str, list]:
        """The knob of the coverage-vs-accuracy curve: the number of noise draws."""
        return "n_draws", [1, 2, 4, 8, 16]

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        if c.adversarial and len(c.adv_weights) and self._validates(valid):
            self._choose_strength(train, valid)
            return
        set_torch_threads(c.threads)
        torch.manual_seed(c.seed)
        self.device_ = resolve_device(c.device)
        self.index_ = None  # searched exactly until the item vectors are final
        pairs, pop = self._prepare(train)
        self._build(c.part(GANConfig))
        self._generation_rows: list[dict] = []
        log.info("gan: %d training pairs, %d items, d=%d", len(pairs), *self.F_.shape)
        self.history_ = (
            train_gan(
                self.nets_,
                pairs,
                pop,
                # strength 0: the retrieval part alone, no discriminator step at all
                dataclasses.replace(
                    c.part(TrainConfig), adversarial=c.adversarial and c.adv_weight > 0
                ),
                half_life_days=c.half_life_days,
                seed=c.seed,
                device=self.device_,
                evaluate=self._stopping_score(valid),
                show_progress=c.show_progress,
            )
            if c.epochs > 0
            else []
        )
        scored = [r for r in self.history_ if "valid_ndcg" in r]
        self.best_epoch_ = (
            max(scored, key=lambda r: r["valid_ndcg"])["epoch"] if scored else len(self.history_)
        )
        self._refresh()
        self._build_index()
        self.prior_weight_scores_ = self._choose_knob(valid, "prior_weight", c.prior_weights)
        self.draw_scores_ = self._choose_knob(
            valid,
            ("n_draws", "merge"),
            [(int(S), str(m)) for S in c.draw_choices for m in c.merge_choices],
        )
        self.d_weight_scores_ = self._choose_knob(valid, "d_weight", c.d_weights, grow=True)
        uses_graph = c.copurchase_weight or len(c.copurchase_weights)
        self.copurchase_ = self.copurchase_graph() if uses_graph else None
        if uses_graph:
            self.choose_copurchase(valid)
        self.choose_repeat(valid)
        rows = self._generation_rows
        self.generation_quality_ = (
            pd.DataFrame(rows).assign(epoch=np.arange(1, len(rows) + 1)).set_index("epoch")
            if rows
            else None
        )

    def _prepare(self, train: Dataset) -> tuple[TrainingPairs, WindowPopularity | None]:
        """Item features, training pairs, popularity features and each user's last
        ``max_history`` purchases (for recommending)."""
        c = self.config
        feats = ItemFeatures(c.part(ItemFeaturesConfig))
        feats.config.seed = c.seed
        self.F_ = feats.fit(train).F_
        self.features_ = feats  # embeds new products' catalog rows (place_items)
        pairs = TrainingPairs(
            train,
            max_history=c.max_history,
            skip_repeats=c.skip_repeats,
            basket_context=c.basket_context,
        )
        pop = WindowPopularity(train, c.pop_windows) if len(c.pop_windows) else None
        self.logpop_ = (
            pop.after(self.train_end_)
            if pop is not None
            else np.zeros((1, self.n_items_), np.float32)
        )
        indptr, items, times = train.histories()
        self.user_hist_, self.user_hist_t_ = history_window(
            items, times, indptr[:-1], indptr[1:], c.max_history
        )
        self._fit_repeats(train)
        return pairs, pop

    def _build_index(self) -> None:
        """The retrieval index over ``[e_i, bias_i]`` (validation during training searches
        exactly; the index is built once the item vectors are final)."""
        device = "cpu" if self.device_ == "cpu" else "auto"
        self.index_ = ItemIndex(kind=self.config.index_kind, device=device, seed=self.config.seed)
        self.index_.build(self.item_index_)

    def _build(self, gan_config) -> None:
        d = self.F_.shape[1]
        torch.manual_seed(self.config.seed)
        n_pop = max(1, len(self.config.pop_windows))
        tower = ItemTower(torch.as_tensor(self.F_), self.config.logit_scale, n_pop)
        G, D = Generator(d, gan_config), Discriminator(d, gan_config)
        self.nets_ = Networks(tower.to(self.device_), G.to(self.device_), D.to(self.device_))

    def _refresh(self) -> None:
        """Cache the inference-time item index ``[e_i, bias_i]`` from the networks."""
        t = self.nets_.tower
        with torch.no_grad():
            E = t.vectors().cpu().numpy()
            bias = t.prior(torch.as_tensor(self.logpop_, device=t.bias.device))
            self.item_index_ = np.hstack([E, bias.cpu().numpy()[:, None]]).astype(np.float32)
            self.scale_ = float(t.log_scale.exp())
        self._forget_audiences()

    def item_vectors(self) -> np.ndarray:
        """Unit item vectors ``(n_items, d)`` of the retrieval space (for similar items)."""
        self.check_fitted()
        return self.item_index_[:, :-1].copy()
