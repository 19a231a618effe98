"""``GANRecommender``: the GAN-augmented model behind the shared contract (recogan.base).

Fit: item features ``F`` → training pairs → G, D and the item tower trained together (see
:mod:`recogan.train`), early-stopped on the validation score (``fit(..., scorer=)``; default
NDCG@10).

Recommend, per customer: behaviour embedding ``b_u`` of the last ``max_history`` purchases →
``S`` query vectors ``G(b_u, z_s)`` (draw 0 uses ``z = 0``; the others noise seeded by
``(seed, user)``, so a user's list never depends on who else is in the batch) → the nearest
eligible items per query (seen items and candidates applied inside the search of the item
index, :func:`recogan.index.retrieve`) → merge the draws' lists (``max`` score, ``mean`` score
or reciprocal-rank fusion ``rrf``) → optional re-rank of the top ``rerank_depth`` adding
``d_weight × D(b_u, item)`` → top ``n``. With ``diversity`` d > 0 the last ``d n`` positions
go to the best other items of the top ``DIVERSITY_DEPTH`` whose audience the customer is in:
those it scores as high for as the best ``AUDIENCE_SHARE`` of customers
(:meth:`GANRecommender.audience_thresholds`; a fractional ``d n`` gives that share of
customers one more such position).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from recogan._threads import set_torch_threads
from recogan._topk import top_k, topn
from recogan.base import Model
from recogan.catalog import CannotPlaceItemsError, changes_of
from recogan.data import Dataset
from recogan.features import DAY, ItemFeatures, ItemFeaturesConfig, decay_weights
from recogan.gan import Discriminator, GANConfig, Generator, ItemTower, decay_pool
from recogan.index import ItemIndex, retrieve
from recogan.train import (
    Networks,
    TrainConfig,
    TrainingPairs,
    WindowPopularity,
    history_window,
    resolve_device,
    train_gan,
)
from recogan.vector_quality import generation_quality

log = logging.getLogger(__name__)

MERGE_RULES = ("max", "mean", "rrf")


@dataclass
class GANRecommenderConfig:
    # Fields shared with ItemFeaturesConfig and TrainConfig take their defaults from there (one
    # source of truth); a test keeps GANConfig's (recogan.gan) in step.
    # -- item features (see recogan.features.ItemFeaturesConfig)
    dim_cf: int = ItemFeaturesConfig.dim_cf
    dim_text: int = ItemFeaturesConfig.dim_text
    dim_category: int = ItemFeaturesConfig.dim_category
    w_cf: float = ItemFeaturesConfig.w_cf
    w_text: float = ItemFeaturesConfig.w_text
    w_category: float = ItemFeaturesConfig.w_category
    w_price: float = ItemFeaturesConfig.w_price
    #: Half-life (days) of the time decay in behaviour embeddings.
    half_life_days: float | None = ItemFeaturesConfig.half_life_days
    #: Most recent purchases a behaviour embedding looks at.
    max_history: int = 50
    #: Windows (days) of the popularity features, 0 meaning all time so far (empty: no such
    #: feature). Their weights are learned from the training period's many time points.
    pop_windows: tuple = (0, 7, 60)
    # -- networks (see recogan.gan.GANConfig)
    noise_dim: int = 16
    g_hidden: int = 256
    g_depth: int = 2
    d_hidden: int = 128
    d_depth: int = 2
    dropout: float = 0.1
    spectral_norm: bool = True
    d_attention: bool = True
    #: Initial scale of the query·item inner product in the retrieval softmax.
    logit_scale: float = 10.0
    # -- training (see recogan.train.TrainConfig)
    epochs: int = TrainConfig.epochs
    patience: int = TrainConfig.patience
    batch_size: int = TrainConfig.batch_size
    lr: float = TrainConfig.lr
    d_lr: float = TrainConfig.d_lr
    weight_decay: float = TrainConfig.weight_decay
    anchor: float = TrainConfig.anchor
    retrieval: bool = TrainConfig.retrieval
    adversarial: bool = TrainConfig.adversarial
    adv_weight: float = TrainConfig.adv_weight
    n_negatives: int = TrainConfig.n_negatives
    adv_share: float = TrainConfig.adv_share
    n_sampled: int | None = TrainConfig.n_sampled
    full_softmax_items: int = TrainConfig.full_softmax_items
    pairs_per_epoch: int | None = TrainConfig.pairs_per_epoch
    pair_half_life_days: float | None = TrainConfig.pair_half_life_days
    skip_repeats: bool = TrainConfig.skip_repeats
    basket_context: bool = TrainConfig.basket_context
    history_dropout: float = TrainConfig.history_dropout
    history_lag_days: float = TrainConfig.history_lag_days
    item_lr: float = TrainConfig.item_lr
    noise_std: float = TrainConfig.noise_std
    train_draws: int = TrainConfig.train_draws
    device: str = TrainConfig.device
    amp: bool = TrainConfig.amp
    threads: int = TrainConfig.threads
    # -- inference
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
    #: it helps. Empty: keep ``d_weight``.
    d_weights: tuple = (0.5, 1.0, 2.0, 4.0)
    #: Item index for retrieval (recogan.index.ItemIndex kind): "auto" (exact below 100k
    #: items, IVF above), "exact", "ivf" or "hnsw". On CUDA it searches on the GPU.
    index_kind: str = "auto"
    seed: int = 0
    show_progress: bool = False


def _sub(config, cls):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in dataclasses.asdict(config).items() if k in names})


class GANRecommender(Model):
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
            "diversity",
        )

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

    # ------------------------------------------------------------------ fitting
    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        set_torch_threads(c.threads)
        torch.manual_seed(c.seed)
        self.device_ = resolve_device(c.device)
        self.index_ = None  # searched exactly until the item vectors are final
        pairs, pop = self._prepare(train)
        self._build(_sub(c, GANConfig))
        self._generation_rows: list[dict] = []
        log.info("gan: %d training pairs, %d items, d=%d", len(pairs), *self.F_.shape)
        self.history_ = (
            train_gan(
                self.nets_,
                pairs,
                pop,
                _sub(c, TrainConfig),
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
        self.d_weight_scores_ = self._choose_knob(valid, "d_weight", c.d_weights)
        rows = self._generation_rows
        self.generation_quality_ = (
            pd.DataFrame(rows).assign(epoch=np.arange(1, len(rows) + 1)).set_index("epoch")
            if rows
            else None
        )

    #: Relative validation gain a recommend-time setting (``prior_weights``,
    #: ``draw_choices``, ``d_weights``) needs over the configured one to replace it.
    KNOB_MARGIN = 0.01

    def _choose_knob(self, valid: Dataset | None, name, values) -> dict:
        """Score the recommend-time setting ``name`` (a field, or a tuple of fields whose
        ``values`` are tuples) at its configured value and at each of ``values`` on
        ``valid``; keep the best if it wins by more than ``KNOB_MARGIN``. Returns
        ``{value: score}`` (empty without a validation split or values)."""
        c = self.config
        if valid is None or not valid.n_interactions or c.epochs <= 0 or not len(values):
            return {}
        names = (name,) if isinstance(name, str) else tuple(name)
        if isinstance(name, str):
            current, values = float(getattr(c, name)), [float(v) for v in values]
        else:
            current, values = tuple(getattr(c, n) for n in names), [tuple(v) for v in values]

        def setting(v) -> dict:
            return dict(zip(names, (v,) if isinstance(name, str) else v))

        saved = c
        scores: dict = {}
        try:
            for v in (current, *values):
                if v not in scores:
                    self.config = dataclasses.replace(saved, **setting(v))
                    scores[v] = self.validation_score(valid)
        finally:
            self.config = saved
        best = max(scores, key=scores.get)
        if scores[best] > scores[current] * (1 + self.KNOB_MARGIN):
            self.config = dataclasses.replace(saved, **setting(best))
        log.info(
            "%s on validation: %s -> %s", name, scores, [getattr(self.config, n) for n in names]
        )
        return scores

    def _prepare(self, train: Dataset) -> tuple[TrainingPairs, WindowPopularity | None]:
        """Item features, training pairs, popularity features and each user's last
        ``max_history`` purchases (for recommending)."""
        c = self.config
        feats = ItemFeatures(_sub(c, ItemFeaturesConfig))
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
        return pairs, pop

    #: Customers and noise draws of the generated-vector measurement (:meth:`measure_generation`)
    #: run after every training epoch that has a validation split.
    GENERATION_USERS = 500
    GENERATION_DRAWS = 8

    def measure_generation(self, data: Dataset, users: int | None = None, draws: int | None = None):
        """How the generator's draws sit among what customers really bought next (see
        :mod:`recogan.vector_quality`): for up to ``users`` customers of ``data`` (seeded
        choice among those with a purchase there they had not made before), ``draws`` vectors
        ``G(b_u, z)`` with the training noise, against the vectors of those new purchases:
        Fréchet distance, k-NN precision / recall, draw spread and draw coverage (the share of
        a customer's purchases that are the nearest eligible item of at least one draw).
        Returns the summary dict (empty when no customer qualifies)."""
        c = self.config
        users = self.GENERATION_USERS if users is None else int(users)
        S = self.GENERATION_DRAWS if draws is None else int(draws)
        u, i = data.user_idx, data.item_idx
        known = (u < self.n_users_) & (i < self.n_items_)
        X = sp.csr_matrix(
            (np.ones(int(known.sum()), np.float32), (u[known], i[known])),
            shape=(self.n_users_, self.n_items_),
        )
        X = (X > 0).astype(np.float32) - self.seen_.multiply(X > 0)  # new purchases only
        X.eliminate_zeros()
        who = np.flatnonzero(np.diff(X.indptr) > 0)
        if not len(who):
            return {}
        rng = np.random.default_rng([c.seed, 7])
        if len(who) > users:
            who = np.sort(rng.choice(who, users, replace=False))
        hist, w, _ = self._known_histories(who)
        z = c.noise_std * rng.standard_normal((len(who) * S, c.noise_dim)).astype(np.float32)
        nets, dev = self.nets_, self.device_
        with torch.no_grad():
            E = nets.tower.vectors()
            b = decay_pool(
                E,
                torch.as_tensor(hist, device=dev),
                torch.as_tensor(w, dtype=torch.float32, device=dev),
            )
            q = nets.G(b.repeat_interleave(S, 0), torch.as_tensor(z, device=dev))
        generated = q.cpu().numpy().reshape(len(who), S, -1)
        quality = generation_quality(
            generated, X[who], self.item_index_[:, :-1], exclude=self.seen_[who], seed=c.seed
        )
        return quality.summary()

    def _stopping_score(self, valid: Dataset | None):
        """The per-epoch validation score ``train_gan`` early-stops on (None: no early
        stopping): :meth:`validation_score` at the configured prior weight, or the best of
        ``stop_prior_weights``."""
        c = self.config
        if valid is None or not valid.n_interactions or c.epochs <= 0:
            return None

        def score() -> float:
            self._refresh()
            row = self.measure_generation(valid)
            if row:
                self._generation_rows.append(row)
                log.info("generated vectors: %s", row)
            weights = c.prior_weights if c.stop_prior_weights is None else c.stop_prior_weights
            if not len(weights):
                return self.validation_score(valid)
            # judge each epoch at its best recommend-time prior weight, the knob that is
            # tuned on validation afterwards anyway (else a model whose personal part
            # only pays off at another weight is stopped too early)
            saved, best = self.config, -np.inf
            try:
                for g in dict.fromkeys((c.prior_weight, *weights)):
                    self.config = dataclasses.replace(saved, prior_weight=float(g))
                    best = max(best, self.validation_score(valid))
            finally:
                self.config = saved
            return best

        return score

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
        # audience thresholds (diversity) by prior weight; shared with the shallow copies
        # that recogan.diversity makes, so they are computed once per model
        self._audience_cache = {"lock": threading.Lock()}

    # ------------------------------------------------------------------ recommending
    def recommend(self, user_idx, n=10, exclude_seen=True, candidates=None):
        users = self.check_users(user_idx)
        n = self.check_n(n, candidates)
        hist, w, keys = self._known_histories(users)
        exclude = self.seen_[users] if exclude_seen else None
        return self._rank(hist, w, keys, n, exclude, candidates)

    def _known_histories(self, users: np.ndarray):
        """Known customers' kept histories ``(B, L)``, their decay weights at the end of
        training and their noise keys (for :meth:`_rank`)."""
        hist, ht = self.user_hist_[users], self.user_hist_t_[users]
        w = decay_weights((self.train_end_ - ht) / DAY, self.config.half_life_days)
        return hist, w, [(0, int(u)) for u in users]

    def recommend_history(
        self,
        histories: Sequence[Sequence[int]],
        n: int = 10,
        exclude_seen: bool = True,
        candidates: np.ndarray | None = None,
        times: Sequence[Sequence[float]] | None = None,
    ):
        self.check_fitted()
        X = self.history_matrix(histories)  # validates indices
        n = self.check_n(n, candidates)
        L = self.config.max_history
        hist = np.full((len(histories), L), -1, dtype=np.int64)
        w = np.zeros((len(histories), L))
        keys = []
        for b, h in enumerate(histories):
            h = np.asarray(h, dtype=np.int64).ravel()
            t = None if times is None else np.asarray(times[b], dtype=np.float64).ravel()
            if t is not None and t.shape != h.shape:
                raise ValueError(f"history {b}: {h.size} items but {t.size} times")
            if t is not None:  # oldest first, as documented; sort to be safe
                order = np.argsort(t, kind="stable")
                h, t = h[order], t[order]
            h, t = h[-L:], (None if t is None else t[-L:])
            if h.size:
                hist[b, L - h.size :] = h
                now = max(float(self.train_end_), float(t.max())) if t is not None else 0.0
                age = (now - t) / DAY if t is not None else np.zeros(h.size)
                w[b, L - h.size :] = decay_weights(age, self.config.half_life_days)
            keys.append((1, zlib.crc32(h.astype(np.int64).tobytes())))
        return self._rank(hist, w, keys, n, X if exclude_seen else None, candidates)

    def _queries(self, hist: np.ndarray, w: np.ndarray, keys, draws: int | None = None):
        """Behaviour embeddings ``(B, d)`` and query vectors ``(B, S, d)`` (torch); ``S``
        is ``draws`` or else ``n_draws``."""
        c = self.config
        nets = self.nets_
        dev = self.device_
        S = draws or c.n_draws
        z = np.zeros((len(keys), S, c.noise_dim), dtype=np.float32)
        if S > 1 and c.inference_noise > 0:
            for i, (kind, key) in enumerate(keys):
                g = np.random.default_rng([c.seed, kind, key])
                z[i, 1:] = c.inference_noise * g.standard_normal((S - 1, c.noise_dim))
        with torch.no_grad():
            E = nets.tower.vectors()
            hist_t = torch.as_tensor(hist, device=dev)
            b = decay_pool(E, hist_t, torch.as_tensor(w, dtype=torch.float32, device=dev))
            B, d = b.shape
            zt = torch.as_tensor(z, device=dev).reshape(B * S, -1)
            q = nets.G(b.repeat_interleave(S, 0), zt).reshape(B, S, d)  # (B, S, d)
        return b, q, hist_t

    def _rank(self, hist, w, keys, n, exclude, candidates):
        c = self.config
        B = len(keys)
        if B == 0:
            return np.zeros((0, n), np.int64), np.zeros((0, n), np.float32)
        if not np.isfinite(w).all():
            raise ValueError("history weights contain NaN/inf (bad event times?)")
        b, q, hist_t = self._queries(hist, w, keys)
        S = q.shape[1]
        count = self.diversity_slots(n, keys)  # (B,) tail positions
        tail = bool(count.any())
        depth = n
        if c.d_weight:
            depth = max(depth, c.rerank_depth)
        if tail:
            depth = max(depth, self.DIVERSITY_DEPTH)
        depth = min(self.n_items_, depth)
        queries = self._index_queries(q.cpu().numpy().reshape(B * S, -1))
        # every draw of a user searches with the user's exclusions and candidates
        per_draw = np.repeat(np.arange(B), S)
        ids, sc = self._search(
            queries,
            depth,
            exclude=None if exclude is None else sp.csr_matrix(exclude)[per_draw],
            candidates=_rows(candidates, per_draw),
        )
        plain = self._order(b, hist_t, ids, sc, S, n, depth, floor=None)
        if not tail:
            return plain
        # the head in the model's order, then the tail: each draw's list cut to the items
        # whose audience this customer is in (score >= the item's audience threshold)
        # before the merge and D. diversity x n tail positions on average: a fractional
        # part w gives a seeded w share of customers one more. The model's order fills what
        # a short audience list leaves (so padding can only come at the end)
        floor = self.audience_thresholds()
        tail_order = self._order(b, hist_t, ids, sc, S, n, depth, floor)
        return _splice([(*plain, n - count), (*tail_order, count), (*plain, 0)])

    def _order(self, b, hist_t, ids, sc, S, n, depth, floor):
        """The top ``n`` per customer from the draws' ``(B S, depth)`` search results: those
        scoring at least ``floor[item]`` (None: all), the draws merged, then the
        discriminator's re-rank of the top ``rerank_depth``."""
        c = self.config
        B = len(b)
        keep = max(n, c.rerank_depth) if c.d_weight else n  # D re-ranks the top rerank_depth
        # an item among the merged best `keep` by its best draw is among that draw's best
        # `keep`, so one draw or the max rule needs no deeper lists
        deep = depth if S > 1 and c.merge != "max" else min(keep, depth)
        if floor is not None:
            sc = np.where((ids >= 0) & (sc >= floor[np.maximum(ids, 0)]), sc, -np.inf)
            ids, sc = top_k(sc.astype(np.float32), deep, ids)
        ids, sc = ids[:, :deep], sc[:, :deep]
        pool, pool_scores = _merge(ids.reshape(B, S, -1), sc.reshape(B, S, -1), keep, c.merge)
        if not c.d_weight:
            return pool, pool_scores
        with torch.no_grad():
            nets = self.nets_
            E = nets.tower.vectors()
            p = torch.as_tensor(np.maximum(pool, 0), device=self.device_)
            hm = (hist_t >= 0).float()
            logits = nets.D(b, E[p], E[hist_t.clamp(min=0)], hm).cpu().numpy()  # (B, depth)
        final = np.where(pool >= 0, pool_scores + c.d_weight * logits, -np.inf)
        return top_k(final.astype(np.float32), n, pool)

    def diversity_slots(self, n: int, keys) -> np.ndarray:
        """How many of each list's ``n`` positions, the last ones, the diversity knob gives
        to the audience tail, per noise key ``(kind, key)`` (a customer's): ``diversity ×
        n`` on average, ``floor`` of it for most and one more for a seeded share of
        customers equal to its fractional part."""
        x = min(float(n), round(self.config.diversity * n, 9))
        whole = int(np.floor(x))
        if x == whole:  # no fractional share to draw (d = 0 included)
            return np.full(len(keys), whole, np.int64)
        return whole + (_key_uniform(self.config.seed, keys) < x - whole).astype(np.int64)

    def _index_queries(self, q: np.ndarray) -> np.ndarray:
        """Query vectors ``(Q, d)`` as the index searches them: ``[s q, γ]`` against items
        ``[e_i, prior_i]`` (``γ`` the prior's weight)."""
        prior = np.full((len(q), 1), self.config.prior_weight, np.float32)
        return np.hstack([q * self.scale_, prior]).astype(np.float32)

    #: Items per customer that the diversity knob's tail is chosen from (each draw's
    #: nearest, as retrieved for the head).
    DIVERSITY_DEPTH = 2000
    #: Customers (a seeded sample of those with a history) that measure items' audiences.
    AUDIENCE_USERS = 8192
    #: An item's audience: the share of the sampled customers it scores highest for. The
    #: tail takes items whose audience the customer is in (chosen on the validation windows
    #: of Online Retail and MovieLens-1M: benchmarks/RESULTS.md, "The tail from the items'
    #: audiences").
    AUDIENCE_SHARE = 0.003
    #: The fewest customers an audience holds (a quantile of fewer is mostly noise; with
    #: few customers the share is larger).
    AUDIENCE_MIN = 10

    def audience_thresholds(self) -> np.ndarray:
        """Each item's audience threshold ``(items,)``: the score (the retrieval score, prior
        included, seen items left out) that puts a customer in the best ``AUDIENCE_SHARE``
        of ``AUDIENCE_USERS`` sampled customers for that item, the ``ceil(share ×
        sampled)``-th highest of their scores (at least the ``AUDIENCE_MIN``-th). A
        customer scoring at least that is among the item's best customers, one of its
        reverse nearest neighbours; a hub, an item near many customers' queries, tops many
        lists but has no more of these than any other item. Computed when first needed and
        kept (per prior weight); products placed later get theirs when next needed."""
        self.check_fitted()
        cache = self._audience_cache
        key = float(self.config.prior_weight)
        with cache["lock"]:
            have = cache.get(key, np.zeros(0, np.float32))
            N = len(self.item_index_)
            if len(have) < N:
                have = np.concatenate([have, self._audiences(np.arange(len(have), N))])
                cache[key] = have
            return have[:N]

    def _audiences(self, items: np.ndarray) -> np.ndarray:
        c = self.config
        has = np.flatnonzero((self.user_hist_ >= 0).any(1))
        users = has
        if len(has) > self.AUDIENCE_USERS:
            rng = np.random.default_rng([c.seed, 2])
            users = np.sort(rng.choice(has, self.AUDIENCE_USERS, replace=False))
        if not len(users):
            return np.full(len(items), -np.inf, np.float32)
        _, q, _ = self._queries(*self._known_histories(users), draws=1)
        Q = self._index_queries(q[:, 0].cpu().numpy())  # the deterministic draw (z = 0)
        seen = sp.csr_matrix(self.seen_[users])
        k = max(1, int(np.ceil(round(self.AUDIENCE_SHARE * len(users), 9))))
        k = min(len(users), max(k, self.AUDIENCE_MIN))
        out = np.empty(len(items), np.float32)
        step = max(1, 2**22 // len(users))  # a (users, step) block of ~16 MB
        for s in range(0, len(items), step):
            cols = items[s : s + step]
            raw = Q @ self.item_index_[cols].T  # (users, cols)
            block = raw.copy()
            old = cols < seen.shape[1]
            sub = seen[:, cols[old]].tocoo()
            block[sub.row, np.flatnonzero(old)[sub.col]] = -np.inf
            # an item every sampled customer has bought keeps its scores, seen or not
            bought_by_all = ~np.isfinite(block).any(0)
            block[:, bought_by_all] = raw[:, bought_by_all]
            out[s : s + step] = -np.partition(-block, k - 1, axis=0)[k - 1]
        return out

    def _search(self, queries: np.ndarray, k: int, exclude, candidates):
        """Maximum-inner-product search of ``queries`` ``(Q, d+1)`` over the item vectors
        ``[e_i, bias_i]``, eligible items only: ``(items, scores)``, each ``(Q, k)``, best
        first. Through the fitted :class:`~recogan.index.ItemIndex`; exact numpy while
        training (no index yet)."""
        if self.index_ is None:
            scores = queries @ self.item_index_.T  # (Q, N)
            return topn(scores, k, exclude=exclude, candidates=candidates)
        return retrieve(self.index_, queries, k, exclude=exclude, candidates=candidates)

    # ------------------------------------------------------------------ extras
    def item_vectors(self) -> np.ndarray:
        """Unit item vectors ``(n_items, d)`` of the retrieval space (for similar items)."""
        self.check_fitted()
        return self.item_index_[:, :-1].copy()

    # ------------------------------------------------------------------ persistence
    def state_arrays(self) -> dict[str, np.ndarray]:
        return {
            "F": self.F_,
            "logpop": self.logpop_,
            "user_hist": self.user_hist_,
            "user_hist_t": self.user_hist_t_,
            "best_epoch": np.array([self.best_epoch_], dtype=np.int64),
        }

    def set_state_arrays(self, arrays) -> None:
        self.F_ = arrays["F"].astype(np.float32)
        self.logpop_ = arrays["logpop"].astype(np.float32)
        self.user_hist_ = arrays["user_hist"].astype(np.int64)
        self.user_hist_t_ = arrays["user_hist_t"].astype(np.int64)
        self.best_epoch_ = int(arrays["best_epoch"][0])
        self.history_ = []

    # the index travels in the bundle, hashed and verified with the other files
    def write_files(self, directory) -> None:
        self.index_.save(directory, "index")
        _write_features(self.features_, directory)

    def read_files(self, directory) -> None:
        device = "cpu" if self.device_ == "cpu" else "auto"
        self.index_ = ItemIndex.load(directory, "index", device=device)
        self.features_ = _read_features(directory)

    def torch_state(self) -> dict[str, dict]:
        n = self.nets_
        return {
            k: {p: v.detach().cpu() for p, v in m.state_dict().items()}
            for k, m in (("tower", n.tower), ("G", n.G), ("D", n.D))
        }

    def set_torch_state(self, states, device: str = "cpu") -> None:
        self.device_ = resolve_device(device)
        self._build(_sub(self.config, GANConfig))
        for k in ("tower", "G", "D"):
            getattr(self.nets_, k).load_state_dict(states[k])
            getattr(self.nets_, k).eval()
        self._refresh()

    # ------------------------------------------------------------------ catalogue changes
    #: The fitted item-feature pipeline (None in bundles of earlier recogan versions, which
    #: cannot place new products).
    features_ = None
    #: Content neighbours (trained products) a new product's collaborative part is imputed
    #: from (0: left at zero, the row ``fit`` gives a product without sales); the
    #: content-based prior rules average over as many.
    NEW_ITEM_NEIGHBOURS = 20
    #: The prior rules a new product can get (see :meth:`place_items`).
    NEW_ITEM_PRIOR_RULES = ("launch", "launch_neighbours", "neighbours", "median", "slow")
    #: The default rule, chosen on a validation window of benchmarks/new_items.py
    #: (RESULTS.md, issue 14).
    NEW_ITEM_PRIOR = "launch"
    #: Share of the least-bought sold products whose bias the "slow" rule takes.
    NEW_ITEM_QUANTILE = 0.1
    #: How the launch rules weigh the recent launches: "buyers" (each by its buyers in
    #: training: where the purchases of recent launches sit, so the few launches that sell
    #: count for more than the many that hardly do) or "equal" (the median launch).
    NEW_ITEM_LAUNCH_WEIGHTS = "buyers"
    #: Fewest recent launches (:meth:`launches`) the launch rules need; with fewer they fall
    #: back to the "neighbours" rule.
    NEW_ITEM_MIN_LAUNCHES = 20

    def place_items(self, catalog, prior: float | None = None):
        """Place new products from their catalog rows (see :meth:`Model.place_items`).

        Vector: the row :meth:`ItemFeatures.transform` gives: the content parts with the
        fitted vocabulary, text SVD and price scaling, and the collaborative part imputed from
        the ``NEW_ITEM_NEIGHBOURS`` trained products most similar in content (queries are
        trained against whole item vectors, most of whose length is collaborative, so a
        content-only vector would hardly ever be retrieved). With ``item_lr=0`` (the default)
        the retrieval vectors are the item features themselves, so it is directly
        comparable; with ``item_lr > 0`` the trained vectors have drifted from the features
        and this is the best available estimate.

        Prior: ``prior`` when given (a retailer's explicit push, the same for every new
        product); else by the rule ``NEW_ITEM_PRIOR`` (one of ``NEW_ITEM_PRIOR_RULES``).
        The model's prior of a trained product (learned bias plus popularity part) says how
        much it sells now; a new product has no sales yet, and the GAN, which learned its
        prior from recent sales, would read that as a product nobody buys. The launch rules
        instead treat it like the products recently launched (:meth:`launches`: first sold
        in the last weeks of training), whose priors say how well products sell in their
        first weeks, each launch weighted by its buyers (``NEW_ITEM_LAUNCH_WEIGHTS``):

        - ``"launch"`` (default): the buyer-weighted mean whole prior of the recent
          launches, the same for every new product: where the purchases of recent launches
          sit, so a new product is shown about as much as recent launches were bought, and
          its content vector decides to whom.
        - ``"launch_neighbours"``: the same mean over the ``NEW_ITEM_NEIGHBOURS`` recent
          launches most similar in content (weights: cosine × buyers): a product like the
          launches that sold well gets their prior. On Online Retail it hits more new
          products' buyers but pushes some new products into most lists and costs overall
          accuracy (RESULTS.md, issue 14).
        - ``"neighbours"``: the content-weighted mean whole prior of its content neighbours
          among all trained products (the default before the launch rules).
        - ``"median"`` / ``"slow"``: the bias of a typical or of a slow-selling product with
          popularity features of zero (:meth:`new_item_prior`).

        The launch rules fall back to ``"neighbours"`` when the model knows fewer than
        ``NEW_ITEM_MIN_LAUNCHES`` recent launches (e.g. it has no all-time and windowed
        popularity features, or a training period no longer than its longest window). With
        ``"neighbours"`` or ``"median"``/``"slow"`` new products almost never reach a top-10
        list on Online Retail. The prior is kept as the product's bias with zero popularity
        features, so a reload gives the same.
        """
        self._check_fitted()
        feats = self.features_
        if feats is None or set(feats.parts_) <= {"cf"}:
            why = (
                "it was saved without its feature pipeline (a bundle of an earlier recogan): "
                "refit it"
                if feats is None
                else "it was trained without catalog content (title, category, price)"
            )
            raise CannotPlaceItemsError(f"this GAN cannot place new products: {why}")
        n_trained = changes_of(self).n_trained
        k = int(self.NEW_ITEM_NEIGHBOURS)
        rule = self._prior_rule(self.NEW_ITEM_PRIOR)
        if rule in ("neighbours", "launch_neighbours") and not k:
            raise ValueError(f"the {rule!r} prior needs NEW_ITEM_NEIGHBOURS > 0")
        if k and "cf" in feats.parts_:
            F_new, nb, w = feats.content_neighbours(catalog, self.F_[:n_trained], k)
        else:
            F_new, nb, w = feats.transform(catalog), None, None
        empty = ~F_new.any(axis=1)
        if empty.any():
            uses = ", ".join(p for p in feats.parts_ if p != "cf")
            raise ValueError(
                f"{int(empty.sum())} new product(s) (rows {np.flatnonzero(empty)[:5].tolist()}) "
                f"have no content the model uses ({uses})"
            )
        m, N = len(F_new), self.n_items_
        P = self.item_index_[:, -1]  # the priors the index holds (bias + popularity part)
        if prior is not None:
            if not np.isfinite(prior):
                raise ValueError(f"prior must be a finite number, got {prior!r}")
            b = np.full(m, float(prior), np.float32)
        elif rule == "launch_neighbours" and nb is not None:
            launched, sales = self._launch_weights()
            _, nb_l, w_l = feats.content_neighbours(catalog, self.F_[launched], k)
            w_l = w_l * sales[nb_l]
            b = self._weighted_mean(P[launched][nb_l], w_l, self.new_item_prior("launch"))
        elif rule == "neighbours" and nb is not None:
            b = self._weighted_mean(P[nb], w, self.new_item_prior("median"))
        else:
            b = np.full(m, self.new_item_prior(rule), np.float32)
        rows = np.hstack([F_new, b[:, None]]).astype(np.float32)
        W = self.logpop_.shape[0]

        def commit() -> None:
            t = self.nets_.tower
            dev = t.emb.device
            with torch.no_grad():
                emb = torch.cat([t.emb.detach(), torch.as_tensor(F_new, device=dev)])
                bias = torch.cat([t.bias.detach(), torch.as_tensor(b, device=dev)])
            t.emb, t.bias = torch.nn.Parameter(emb), torch.nn.Parameter(bias)
            self.F_ = np.vstack([self.F_, F_new])
            self.logpop_ = np.hstack([self.logpop_, np.zeros((W, m), np.float32)])
            self.item_index_ = np.vstack([self.item_index_, rows])
            self.index_.add(rows, np.arange(N, N + m))

        return commit

    def launches(self) -> tuple[np.ndarray, int]:
        """The trained products launched recently: ``(indices, days)``, the products first
        sold within the last ``days`` of training, ``days`` the longest popularity window
        (``pop_windows``; 60 by default, about the first two months of a product's sales).
        Read from the popularity features at the end of training: a product whose all-time
        count equals its count in that window had no sale before it. Empty (``days`` 0) when
        the model keeps no all-time and no windowed feature, or when the customers' histories
        it keeps do not reach back further than the window (then every product would look
        new)."""
        self._check_fitted()
        none = np.zeros(0, np.int64), 0
        windows = [int(w) for w in self.config.pop_windows]
        if 0 not in windows or max(windows, default=0) <= 0:
            return none
        days = max(windows)
        t = self.user_hist_t_[self.user_hist_ >= 0]
        if not t.size or self.train_end_ - int(t.min()) <= days * DAY:
            return none
        L = self.logpop_[:, : changes_of(self).n_trained]
        every, recent = L[windows.index(0)], L[windows.index(days)]
        return np.flatnonzero((every > 0) & (recent == every)).astype(np.int64), days

    def _launch_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """The recent launches and the weight of each in the launch rules: its buyers in
        training (``NEW_ITEM_LAUNCH_WEIGHTS = "buyers"``) or 1 (``"equal"``)."""
        launched = self.launches()[0]
        if self.NEW_ITEM_LAUNCH_WEIGHTS == "equal":
            return launched, np.ones(len(launched), np.float32)
        if self.NEW_ITEM_LAUNCH_WEIGHTS != "buyers":
            raise ValueError(
                "NEW_ITEM_LAUNCH_WEIGHTS must be 'buyers' or 'equal', not "
                f"{self.NEW_ITEM_LAUNCH_WEIGHTS!r}"
            )
        buyers = np.diff(self.seen_.tocsc().indptr)[launched]
        return launched, buyers.astype(np.float32)

    def _prior_rule(self, rule: str | None) -> str:
        """``rule`` (default ``NEW_ITEM_PRIOR``), checked, with a launch rule replaced by
        ``"neighbours"`` when the model knows too few recent launches."""
        rule = rule or self.NEW_ITEM_PRIOR
        if rule not in self.NEW_ITEM_PRIOR_RULES:
            raise ValueError(
                f"new-item prior rule must be one of {self.NEW_ITEM_PRIOR_RULES}, not {rule!r}"
            )
        if rule.startswith("launch"):
            launched, days = self.launches()
            n = len(launched)
            if n < self.NEW_ITEM_MIN_LAUNCHES:
                log.info(
                    "new-item prior: %d recent launch(es) (window %d days), fewer than %d: "
                    "the 'neighbours' rule instead of %r",
                    n,
                    days,
                    self.NEW_ITEM_MIN_LAUNCHES,
                    rule,
                )
                return "neighbours"
        return rule

    def new_item_prior(self, rule: str | None = None) -> float:
        """The prior of a new product by a rule that does not look at its content (``rule``,
        default ``NEW_ITEM_PRIOR``): ``"launch"`` the mean whole prior (bias plus popularity
        part) of the recent launches (:meth:`launches`) weighted by their buyers (with
        ``NEW_ITEM_LAUNCH_WEIGHTS = "equal"``: their median); ``"median"`` the median bias of
        the products sold in training with popularity features of zero (no sales): a typical
        product's own appeal, beyond its sales; ``"slow"`` the median bias of the
        ``NEW_ITEM_QUANTILE`` least-bought of them (at least 20): a product presumed to sell
        like the slow sellers. The per-product rules of :meth:`place_items` fall back here to
        their content-free counterpart: ``"launch_neighbours"`` to ``"launch"``,
        ``"neighbours"`` to ``"median"`` (as do the launch rules with too few launches)."""
        rule = self._prior_rule(rule)
        if rule.startswith("launch"):
            launched, sales = self._launch_weights()
            P = self.item_index_[launched, -1]
            if self.NEW_ITEM_LAUNCH_WEIGHTS == "equal":
                return float(np.median(P))
            return float((sales * P).sum() / sales.sum())
        buyers = np.diff(self.seen_.tocsc().indptr)
        bias = self.nets_.tower.bias.detach().cpu().numpy()[: len(buyers)]
        sold = np.flatnonzero(buyers > 0)
        if not len(sold):
            return float(np.median(bias))
        if rule in ("median", "neighbours"):
            return float(np.median(bias[sold]))
        k = max(min(20, len(sold)), int(np.ceil(self.NEW_ITEM_QUANTILE * len(sold))))
        least = sold[np.argsort(buyers[sold], kind="stable")[:k]]
        return float(np.median(bias[least]))

    @staticmethod
    def _weighted_mean(values: np.ndarray, w: np.ndarray, fallback: float) -> np.ndarray:
        """Row-wise mean of ``values`` ``(m, k)`` weighted by ``w`` ``(m, k)``; ``fallback``
        for rows without weight (float32 ``(m,)``)."""
        total = w.sum(1)
        est = np.divide((w * values).sum(1), total, out=np.zeros(len(w)), where=total > 0)
        est[total <= 0] = fallback
        return est.astype(np.float32)

    def withdraw_items(self, items) -> None:
        """Leave withdrawn products out of the retrieval index."""
        self.index_.remove(np.asarray(items, dtype=np.int64))

    def restore_items(self, items) -> None:
        items = np.asarray(items, dtype=np.int64)
        self.index_.add(self.item_index_[items], items)


def _rows(candidates, rows: np.ndarray):
    """Candidates for repeated query rows: a 1-D allow-list applies to every row, 2-D
    per-user lists are repeated with their users."""
    if candidates is None or np.ndim(candidates) == 1:
        return candidates
    return np.asarray(candidates)[rows]


def _splice(parts):
    """Lists made of consecutive segments: ``parts`` is ``[(items, scores, count), ...]``,
    each a ``(B, ·)`` ranking (best first, -1/-inf padded) and ``count`` an int or one per
    row; each segment takes its ranking's first ``count`` items not already in the list,
    plus what the segments before it came short of. A segment's scores are capped at the
    list's score before it, so lists stay best first. Padding (-1 / -inf) comes only at the
    end."""
    B = len(parts[0][0])
    ids = np.zeros((B, 0), np.int64)
    sc = np.zeros((B, 0), np.float32)
    short = np.zeros(B, np.int64)  # positions the segments so far could not fill
    for p_ids, p_sc, count in parts:
        fresh = (p_ids >= 0) & ~(p_ids[:, :, None] == ids[:, None, :]).any(-1)
        order = np.argsort(~fresh, axis=1, kind="stable")  # fresh ones first, in order
        ok = np.take_along_axis(fresh, order, 1)
        want = count + short
        take = np.minimum(ok.sum(1), want)
        short = want - take
        width = int(take.max(initial=0))
        new_ids = np.take_along_axis(p_ids, order, 1)[:, :width]
        new_sc = np.take_along_axis(p_sc, order, 1)[:, :width]
        if ids.shape[1]:
            prev = np.where(np.isfinite(sc), sc, np.inf).min(1, keepdims=True)
            new_sc = np.minimum(new_sc, prev)
        used = np.arange(width)[None, :] < take[:, None]
        ids, sc = _packed(ids, sc, np.where(used, new_ids, -1), np.where(used, new_sc, -np.inf))
    total = int(np.max(sum(np.asarray(count) for _, _, count in parts), initial=0))
    pad = total - ids.shape[1]
    if pad > 0:
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        sc = np.pad(sc, ((0, 0), (0, pad)), constant_values=-np.inf)
    return ids, sc.astype(np.float32)


def _packed(ids, sc, new_ids, new_sc):
    """Rows of ``ids`` followed by ``new_ids`` with every row's -1 pads moved to its end."""
    both = np.hstack([ids, new_ids])
    both_sc = np.hstack([sc, new_sc]).astype(np.float32)
    order = np.argsort(both < 0, axis=1, kind="stable")
    both, both_sc = np.take_along_axis(both, order, 1), np.take_along_axis(both_sc, order, 1)
    width = int((both >= 0).sum(1).max(initial=0))
    return both[:, :width], both_sc[:, :width]


def _key_uniform(seed: int, keys) -> np.ndarray:
    """A number in [0, 1) per noise key ``(kind, key)``, fixed by ``seed`` (splitmix64), so
    a customer's share of a fractional tail never depends on who else is in the batch."""
    mask = (1 << 64) - 1
    x = np.array([((kind << 32) + key) & mask for kind, key in keys], np.uint64)
    x ^= np.uint64((int(seed) * 0x9E3779B97F4A7C15) & mask)
    x += np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _merge(ids: np.ndarray, sc: np.ndarray, k: int, rule: str):
    """Merge ``S`` retrieved lists per row (``ids``, ``sc``: ``(B, S, m)``, ``-1`` pads) into
    the best ``k`` items of each row: ``(items, scores)``, ``(B, k)``, ties by item id.

    ``max``: an item's best score over the draws; ``rrf``: Σ 1 / (60 + its rank in each draw
    that retrieved it); ``mean``: its mean score over the draws, a draw that missed it
    counting with its lowest retrieved score."""
    B, S, m = ids.shape
    valid = ids >= 0
    row = np.broadcast_to(np.arange(B)[:, None, None], ids.shape)[valid]
    item = ids[valid]
    # one group per (row, item): keys sorted by row, then item
    keys, first, group = np.unique(
        row * (int(item.max(initial=0)) + 1) + item, return_index=True, return_inverse=True
    )
    g_row, g_item = row[first], item[first]
    if rule == "max" or S == 1:
        merged = np.full(len(keys), -np.inf)
        np.maximum.at(merged, group, sc[valid])
    elif rule == "rrf":
        rank = np.broadcast_to(np.arange(m)[None, None, :], ids.shape)[valid]
        merged = np.zeros(len(keys))
        np.add.at(merged, group, 1.0 / (60.0 + rank))
    else:  # mean
        floor = np.where(valid, sc, np.inf).min(axis=2)  # (B, S)
        merged = floor.sum(1)[g_row].astype(np.float64)
        np.add.at(merged, group, (sc - floor[:, :, None])[valid])
        merged /= S
    # the groups of a row, as one padded row each (in item order)
    counts = np.bincount(g_row, minlength=B)
    width = max(int(counts.max(initial=0)), 1)
    col = np.arange(len(keys)) - np.repeat(np.cumsum(counts) - counts, counts)
    items = np.full((B, width), -1, dtype=np.int64)
    scores = np.full((B, width), -np.inf, dtype=np.float32)
    items[g_row, col] = g_item
    scores[g_row, col] = merged
    return top_k(scores, k, items)


# ---------------------------------------------------------------------- feature pipeline files
_FEATURES = "features"


def _write_features(features, directory) -> None:
    """The fitted feature pipeline as ``features.json`` and ``features.<array>.npy`` (numbers
    and strings only, never pickle)."""
    if features is None:
        return
    meta, arrays = features.content_state()
    directory = Path(directory)
    meta["arrays"] = sorted(arrays)
    (directory / f"{_FEATURES}.json").write_text(json.dumps(meta, sort_keys=True))
    for name, arr in arrays.items():
        np.save(directory / f"{_FEATURES}.{name}.npy", np.asarray(arr), allow_pickle=False)


def _read_features(directory):
    directory = Path(directory)
    path = directory / f"{_FEATURES}.json"
    if not path.is_file():  # a bundle of an earlier recogan: it cannot place new products
        return None
    meta = json.loads(path.read_text())
    arrays = {
        name: np.load(directory / f"{_FEATURES}.{name}.npy", allow_pickle=False)
        for name in meta.pop("arrays")
    }
    return ItemFeatures.from_content_state(meta, arrays)
