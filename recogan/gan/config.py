"""The GAN's settings: one dataclass per part, each default stated once, and the model's
config made of them.

- :class:`~recogan.features.ItemFeaturesConfig`: the item features (and ``seed``, which seeds
  everything the model draws);
- :class:`EmbeddingConfig`: behaviour embeddings and the item tower's scoring;
- :class:`GANConfig`: the generator and discriminator networks;
- :class:`TrainConfig`: the training loop;
- :class:`InferenceConfig`: recommend-time knobs, some chosen on validation after training.

:class:`GANRecommenderConfig` inherits every part, so each setting is a flat field of one
config: the contract names recommend-time knobs by field (``recommend_params``,
``diversity_param``), ``--param KEY=VALUE`` and the tuner's search space use those names, and
bundles store them flat (``model.params()``). :meth:`GANRecommenderConfig.part` gives one
part's settings as that part's dataclass, for the code that takes only those.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from recogan.features import ItemFeaturesConfig

#: How the noise draws' lists merge (``InferenceConfig.merge``).
MERGE_RULES = ("max", "mean", "rrf")


@dataclass
class EmbeddingConfig:
    #: Most recent purchases a behaviour embedding looks at.
    max_history: int = 50
    #: Windows (days) of the popularity features, 0 meaning all time so far (empty: no such
    #: feature). Their weights are learned from the training period's many time points.
    pop_windows: tuple = (0, 7, 60)
    #: Initial scale of the query·item inner product in the retrieval softmax.
    logit_scale: float = 10.0


@dataclass
class GANConfig:
    #: Dimension of the generator's noise input z.
    noise_dim: int = 16
    #: Width and number of hidden layers of the generator MLP.
    g_hidden: int = 256
    g_depth: int = 2
    #: Width and number of hidden layers of the discriminator MLP.
    d_hidden: int = 128
    d_depth: int = 2
    #: Dropout in both MLPs.
    dropout: float = 0.1
    #: Spectral normalisation of the discriminator's linear layers (stabilises the game).
    spectral_norm: bool = True
    #: Let the discriminator attend over the history's items (else it sees only pooled b_u).
    d_attention: bool = True


@dataclass
class TrainConfig:
    #: Maximum epochs; early stopping on validation NDCG@10 may stop sooner.
    epochs: int = 20
    #: Epochs without a validation improvement before stopping.
    patience: int = 2
    batch_size: int = 512
    #: Learning rate of G and the item tower; of D.
    lr: float = 2e-3
    d_lr: float = 1e-3
    #: L2 weight decay of the G/D MLPs.
    weight_decay: float = 1e-5
    #: Learning-rate multiplier of the free item vectors (0: they stay at the item features
    #: and only the generator, the item prior and the score scale learn). Free per-item
    #: vectors can memorise the training baskets within an epoch.
    item_lr: float = 0.0
    #: Pull of the learned item vectors towards their features (keeps content meaning, so new
    #: items stay comparable): ``anchor · mean ||e_i - F_i||²``.
    anchor: float = 0.0
    #: Switches of the two losses.
    retrieval: bool = True
    adversarial: bool = True
    #: Weight of G's adversarial loss next to the retrieval loss.
    adv_weight: float = 0.1
    #: Adversarial strengths tried on the validation split besides ``adv_weight``, each a
    #: training of its own; 0 is the retrieval part alone (the discriminator neither trained
    #: nor in the re-rank). The one that scores best on validation after its recommend-time
    #: choices is kept (a tie goes to the weaker). Empty (the default): train once, at
    #: ``adv_weight``. Off by default: over three seeds on Online Retail one validation
    #: window chose strength 0 for two seeds, and the retrieval part scores 3.8% below the
    #: GAN on the test weeks after it (p < 0.001); on the grocery variant validation kept the
    #: adversarial part on every seed (benchmarks/RESULTS.md, "Grocery: the item-to-item
    #: path"). ``(0.0,)`` turns the choice on.
    adv_weights: tuple = ()
    #: Real-but-not-bought items per pair shown to D as negatives.
    n_negatives: int = 4
    #: Share of each batch's pairs (the first ones; batches are shuffled) that D trains on,
    #: G's adversarial loss sees and hard negatives are drawn for. 0.25 makes a step on
    #: Online Retail about 1.5x faster on the CPU and cost 2.5% validation NDCG@10 over three
    #: seeds (benchmarks/RESULTS.md), so every pair (1) is the default.
    adv_share: float = 1.0
    #: Shared uniform negatives of the sampled softmax, next to the batch's own targets
    #: (with the logQ correction); 0: always the full softmax; None: automatic, the full
    #: softmax up to ``full_softmax_items`` items, ``AUTO_SAMPLED`` negatives above.
    n_sampled: int | None = None
    #: Catalogue size above which the automatic choice samples (the full softmax's
    #: ``(batch, items)`` score block stops paying for itself there).
    full_softmax_items: int = 20000
    #: Pairs drawn per epoch (None: all pairs once, shuffled).
    pairs_per_epoch: int | None = None
    #: Draw recent pairs more often: weight ``0.5 ** (age / half_life)``, age to the end of
    #: training (None: uniform).
    pair_half_life_days: float | None = None
    #: Keep only pairs whose target was not bought before (evaluation ranks unseen items only).
    skip_repeats: bool = True
    #: A pair's history also holds the other items of its own basket (same user, same
    #: timestamp): the within-basket co-purchase signal, and pairs from first baskets.
    basket_context: bool = False
    #: Probability of dropping each history item during training (denoising regulariser).
    history_dropout: float = 0.0
    #: Horizon (days) of the training target: each pair's history is cut a uniform 0 to
    #: ``history_lag_days`` days before its purchase (keeping at least one item), so the
    #: generator learns what a customer buys over the coming period, not only next; as the
    #: model is used, on lists scored once and bought from over days or weeks. 0: the
    #: history ends at the purchase. 14 days scored at least as well as 0 on validation on
    #: every suite dataset it was compared on, and far better on MovieLens-1M
    #: (benchmarks/RESULTS.md, "Generalisation"); the tuner searches 0, 14 and 60.
    history_lag_days: float = 14.0
    #: The repeat head (:mod:`recogan.gan.repeats`): the horizon (days) it predicts a
    #: purchase in, its training cut points (0: no head) and the most pairs it trains on.
    repeat_horizon_days: float = 14.0
    repeat_cuts: int = 4
    repeat_max_rows: int = 300_000
    #: Std of the training noise z.
    noise_std: float = 1.0
    #: Noise draws per training pair (K). With K > 1 the retrieval loss is the mixture
    #: likelihood ``-log (1/K) Σ_k p(target | G(b, z_k))``: a purchase needs only one of the
    #: draws near it, so different z can cover different parts of a customer's interests.
    train_draws: int = 1
    #: "auto" (CUDA when present), "cpu" or "cuda".
    device: str = "auto"
    #: bfloat16 autocast of the forward passes on CUDA (no effect on the CPU).
    amp: bool = True
    #: torch CPU threads. One is the safe default: on a busy shared machine extra threads
    #: spin at every op's barrier and made training ~5x slower.
    threads: int = 1


@dataclass
class InferenceConfig:
    #: Query vectors per customer (S); S=1 is the deterministic mode (z = 0).
    n_draws: int = 1
    #: Std of the noise of draws 1..S-1.
    inference_noise: float = 1.0
    #: How the S draws' candidate lists merge: "max", "mean" or "rrf".
    merge: str = "max"
    #: Weight of the discriminator's logit in the re-rank (0: no re-rank).
    d_weight: float = 0.0
    #: The diversity knob of every interface (0-1; ``diversity_param``): the share of each
    #: list, its last ``diversity × n`` positions, given to the items that suit this
    #: customer more than most. The head keeps the model's order; the tail takes the next
    #: best of the customer's top ``DIVERSITY_DEPTH`` among the items whose audience the
    #: customer is in: it scores them as high as their best ``AUDIENCE_SHARE`` of customers
    #: do (``audience_thresholds``). A fractional ``diversity × n`` gives that share of
    #: customers (a seeded choice) one more tail position: 0.25 × 10 is a 3-item tail for
    #: half of them and a 2-item one for the rest. Items near everyone's query (hubs,
    #: mostly best sellers) top many lists but have audiences like any other item, so the
    #: tail spreads over the catalogue. Lower positions cost NDCG least, so this buys more
    #: coverage per NDCG@10 given up than penalising hubs, weakening the item prior or
    #: re-ranking by MMR (benchmarks/RESULTS.md, "The tail from the items' audiences").
    #: A list's head depends on ``n``: a longer list has a longer head.
    diversity: float = 0.0
    #: Weight of the learned item prior (bias + popularity features) at recommend time: the
    #: query is ``[s·f̂, prior_weight]`` against items ``[e_i, prior_i]`` (1 = as trained). A
    #: recommend-time knob, chosen on validation after training when ``prior_weights`` lists
    #: candidates.
    prior_weight: float = 1.0
    #: Prior weights tried on the validation split after training (with ``prior_weight``):
    #: the best replaces ``prior_weight`` when it beats it by more than ``KNOB_MARGIN``
    #: (relative). Empty (the default): keep ``prior_weight``. Off by default: on Online
    #: Retail the latest validation window (the pre-Christmas weeks) prefers 2, which loses
    #: 14% NDCG@10 on the test weeks after it (benchmarks/RESULTS.md, "Generalisation").
    prior_weights: tuple = ()
    #: Prior weights tried at each early-stopping check; the epoch's validation score is the
    #: best of them (None: ``prior_weights``, the weights chosen from afterwards, so an epoch
    #: is judged at the weight it would be used with; empty: ``prior_weight`` only).
    stop_prior_weights: tuple | None = None
    #: Noise-draw settings tried on the validation split after training and after the prior
    #: weight: each ``n_draws`` of ``draw_choices`` with each rule of ``merge_choices``. The
    #: best pair replaces ``(n_draws, merge)`` when it beats them by more than
    #: ``KNOB_MARGIN`` (relative), so draws are merged only as validation says they help.
    #: Empty ``draw_choices``: keep ``n_draws`` and ``merge``.
    draw_choices: tuple = (4,)
    merge_choices: tuple[str, ...] = ("max", "mean", "rrf")
    #: Candidates per customer that the discriminator re-ranks.
    rerank_depth: int = 50
    #: Re-rank weights tried on the validation split after training and after the prior
    #: weight (with ``d_weight``): the best replaces ``d_weight`` when it beats it by more than
    #: ``KNOB_MARGIN`` (relative), so the discriminator re-ranks only where validation says
    #: it helps. A best at the top of the list is doubled and tried again (up to
    #: ``ValidationChoices.GROW_STEPS`` times): the grid follows the choice. Empty: keep
    #: ``d_weight``.
    d_weights: tuple = (0.5, 1.0, 2.0, 4.0)
    #: Weight of the co-purchase evidence in the re-rank (0: none): each of the top
    #: ``rerank_depth`` candidates gains ``copurchase_weight × c / max c``, where ``c`` is the
    #: candidate's summed similarity to the customer's history in the items' co-purchase graph
    #: (item-kNN's cosine with shrinkage; the history weighted by the same decay the generator
    #: reads) and the max is over the customer's candidates. The item-to-item path: it carries
    #: which products are bought together item by item, which the generator's low-rank item
    #: features cannot hold on a catalogue with no text (benchmarks/RESULTS.md, "Grocery").
    copurchase_weight: float = 0.0
    #: Co-purchase weights tried on the validation split after the re-rank weight (with
    #: ``copurchase_weight``); the best replaces it when it wins by more than ``KNOB_MARGIN``,
    #: a best at the top is doubled and tried again, and the re-rank weight is then chosen
    #: again (0 included). Empty: keep ``copurchase_weight``.
    copurchase_weights: tuple = (0.5, 1.0, 2.0, 4.0, 8.0)
    #: With the co-purchase evidence on, the customer's ``copurchase_candidates`` eligible
    #: items of the most evidence join the re-rank's candidates (scored by the generator's
    #: queries like the rest), so an item the co-purchase graph ranks high but the search
    #: missed can still be listed. 0: only the search's candidates.
    copurchase_candidates: int = 25
    #: Lists that keep the items a customer bought before (``mixed``, ``buy_again``): each
    #: bought item joins the re-rank's candidates and gains ``repeat_weight × p +
    #: repeat_offset``, ``p`` the repeat head's probability that it is bought again within
    #: ``repeat_horizon_days`` (:mod:`recogan.gan.repeats`). No effect on ``discover``
    #: lists. Both are chosen on validation (every purchase a target, bought items kept)
    #: after the other knobs, from ``repeat_weights`` (growing at its top, like
    #: ``copurchase_weights``) and then ``repeat_offsets``, each with the configured value;
    #: empty: keep it.
    repeat_weight: float = 0.0
    repeat_weights: tuple = (0.5, 1.0, 2.0, 4.0, 8.0)
    repeat_offset: float = 0.0
    repeat_offsets: tuple = (-0.5, -2.0, -8.0, -32.0)
    #: Neighbours kept per item in the co-purchase graph, and the shrinkage of its cosine.
    copurchase_k: int = 100
    copurchase_shrinkage: float = 10.0
    #: Item index for retrieval (recogan.index.ItemIndex kind): "auto" (exact below 100k
    #: items, IVF above), "exact", "ivf" or "hnsw". On CUDA it searches on the GPU.
    index_kind: str = "auto"


@dataclass
class GANRecommenderConfig(
    InferenceConfig, TrainConfig, GANConfig, EmbeddingConfig, ItemFeaturesConfig
):
    """Every setting of :class:`~recogan.gan.model.GANRecommender`: the fields of its parts
    (see the module's docstring), flat."""

    show_progress: bool = False

    def part(self, cls):
        """The settings of part ``cls`` (one of the dataclasses above, or
        ``ItemFeaturesConfig``) as an instance of it."""
        return cls(**{f.name: getattr(self, f.name) for f in dataclasses.fields(cls)})
