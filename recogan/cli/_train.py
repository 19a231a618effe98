"""``recogan train``: fit a model on a whole dataset and write a verified bundle."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

from recogan._config import parse_params as typed_params
from recogan._fs import check_output_dir
from recogan.artifacts import is_bundle, is_leftover, save_model
from recogan.cli._common import add_data_args, load_data
from recogan.data import day_split
from recogan.evaluate import (
    SPREAD_MIN_TRAIN,
    choose_model,
    spread_split,
    validation_check,
    window_scores,
    window_shift,
)
from recogan.fitting import FoldFits, fit_for_serving, holdout
from recogan.metrics import validation_scorer
from recogan.registry import model_class

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("train", help="fit a model on a whole dataset and write a model bundle")
    add_data_args(p)
    p.add_argument(
        "--model",
        default="gan",
        metavar="NAME",
        help="model to fit: gan, retrieval (the GAN without its adversarial part), ease, "
        "itemknn, ials or pop (default: gan); auto: each of "
        "--candidates is fitted and scored on validation windows spread over the history, "
        "the one that holds up best across them is trained (see --windows)",
    )
    p.add_argument(
        "--candidates",
        default=",".join(AUTO_CANDIDATES),
        metavar="NAMES",
        help=f"--model auto: the models to choose among, at their defaults with --param "
        f"NAME.KEY=VALUE applied (default: {','.join(AUTO_CANDIDATES)}; pop7 is popularity "
        "over the last 7 days)",
    )
    p.add_argument(
        "--windows",
        type=int,
        default=4,
        metavar="K",
        help="--model auto: validation windows, spread evenly from 30%% of the history to its "
        "end (or side by side at its end: --no-spread), each --window-frac of the "
        "interactions (or --valid-days days) and trained on everything before it (default 4)",
    )
    p.add_argument(
        "--window-frac",
        type=float,
        default=0.05,
        metavar="F",
        help="--model auto: share of the interactions in each validation window (default 0.05)",
    )
    p.add_argument(
        "--spread",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="--model auto: spread the validation windows evenly over the history (default); "
        "--no-spread: side by side, the latest ending with the data",
    )
    p.add_argument(
        "--valid-days",
        type=int,
        default=None,
        metavar="N",
        help="validation in whole days instead of shares: models that early-stop (gan) "
        "validate on the last N days of the data (replacing --valid-frac), and each --model "
        "auto window is N days (replacing --window-frac)",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model hyperparameter (repeatable); VALUE is read as the setting's type "
        "(int, float, true/false, none, a list like 7,60) and checked",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for models that draw randomness")
    p.add_argument(
        "--valid-frac",
        type=float,
        default=None,
        metavar="F",
        help="models that early-stop (gan) first train on all but the latest F of the "
        "interactions, validated on that F, then refit on everything for the epoch count "
        "chosen there (default: 0.1; 0 trains once, for the configured epochs; see "
        "--valid-days)",
    )
    p.add_argument(
        "--targets",
        choices=["new", "all", "repeat"],
        default="new",
        help="what early stopping counts as a hit, as `evaluate --targets`: new (default: "
        "items the customer had not bought before), all purchases, or repeat purchases only",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="bundle directory to write: absent, empty or an earlier bundle (replaced)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace --out even when it holds something other than a model bundle",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no training progress bar (models with one show epoch, pairs/s and the last "
        "validation score)",
    )
    p.set_defaults(func=run)


#: What ``--model auto`` chooses among by default: label -> (registered model, settings).
#: ``retrieval`` (the GAN without its adversarial part) is not among them: it costs a second
#: GAN fit per window, and ``recogan evaluate`` shows the two side by side (its line "what
#: the adversarial part added"); name it in ``--candidates`` to choose between them here.
AUTO_MODELS = {
    "gan": ("gan", {}),
    "pop": ("pop", {}),
    "pop7": ("pop", {"window_days": 7.0}),
    "itemknn": ("itemknn", {}),
    "ease": ("ease", {}),
    "ials": ("ials", {}),
}
AUTO_CANDIDATES = tuple(AUTO_MODELS)
#: ``--model auto``'s candidates from the simplest (cheapest to fit and to explain) on: one
#: of them within ``SIMPLER_MARGIN`` of the best is chosen over a more complex one.
SIMPLER = ("pop", "pop7", "itemknn", "ease", "ials", "retrieval", "gan")
SIMPLER_MARGIN = 0.01


def parse_params(pairs: list[str], config_cls=None) -> dict:
    """``["k=v", ...]`` → dict. With ``config_cls`` (a model's config dataclass) values are
    read as the field's type and checked (:func:`recogan._config.parse_params`); without it
    they are JSON where they parse, Python spellings ``True``/``False``/``None`` too, else
    strings."""
    if config_cls is not None:
        return typed_params(config_cls, pairs)
    out = {}
    words = {"True": True, "False": False, "None": None}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param expects KEY=VALUE, got {pair!r}")
        value = value.strip()
        if value in words:
            out[key.strip()] = words[value]
            continue
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def model_spec(name: str, params: dict | list[str], seed: int) -> tuple[type, dict]:
    """The class of model ``name`` and its settings: ``params`` (a dict, or ``KEY=VALUE``
    strings read by type) with ``seed``, checked by building the model once."""
    cls = model_class(name)
    if not isinstance(params, dict):
        params = parse_params(list(params), cls.Config)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    if "seed" in fields:
        if seed < 0:
            raise ValueError(f"--seed must be >= 0, got {seed}")
        params = {"seed": seed, **params}
    try:
        cls(**params)
    except TypeError as e:  # unknown or mistyped hyperparameter: a user error, not a crash
        raise ValueError(str(e)) from e
    return cls, params


def build_model(name: str, params: dict | list[str], seed: int):
    """The model ``name`` with ``params`` (a dict, or ``KEY=VALUE`` strings read by type)."""
    cls, params = model_spec(name, params, seed)
    return cls(**params)


def check_out(args) -> None:
    """Refuse, before any training, an --out that is not ours to replace or that holds the
    data being read."""
    out = Path(args.out).resolve()
    for given in (args.interactions, args.catalog, args.data):
        if given and Path(given).exists():
            src = Path(given).resolve()
            if src == out or out in src.parents:
                raise ValueError(
                    f"--out {args.out} holds the input data {given}; writing the bundle there "
                    "would delete it (choose another --out)"
                )
    check_output_dir(
        args.out,
        recognise=is_bundle,
        what="a recogan model bundle",
        force=args.force,
        allow=is_leftover,
    )


def auto_candidates(names: str, pairs: list[str], seed: int) -> dict[str, tuple[type, dict]]:
    """``--candidates`` with their settings: the label's own (``pop7``: a 7-day window) and
    every ``--param LABEL.KEY=VALUE`` (or ``MODEL.KEY=VALUE``, for all candidates of that
    model), read by the model's types and checked."""
    labels = [n.strip().lower() for n in names.split(",") if n.strip()]
    if not labels:
        raise ValueError("--candidates names no model")
    out = {}
    for label in labels:
        model, base = AUTO_MODELS.get(label, (label, {}))
        mine = []
        for pair in pairs:
            prefix, dot, rest = pair.partition(".")
            if not dot or "=" in prefix:
                raise ValueError(
                    f"--model auto takes --param NAME.KEY=VALUE (NAME a candidate), got {pair!r}"
                )
            if prefix.lower() in (label, model):
                mine.append(rest)
        cls, params = model_spec(model, [], seed)
        params = {**params, **base, **parse_params(mine, cls.Config)}
        out[label] = model_spec(model, params, seed)
    unknown = {
        p.partition(".")[0].lower()
        for p in pairs
        if p.partition(".")[0].lower() not in set(out) | {AUTO_MODELS.get(x, (x,))[0] for x in out}
    }
    if unknown:
        raise ValueError(f"--param names {sorted(unknown)}, not among --candidates {labels}")
    return out


def auto_windows(data, windows: int, window_frac: float, valid_days, spread: bool):
    """``--model auto``'s validation windows (no test period: the latest ends with the
    data): ``windows`` of ``valid_days`` days (:func:`recogan.data.day_split`) or of
    ``window_frac`` of the events, spread over the history from 30% of the events or side
    by side (:func:`recogan.evaluate.spread_split`)."""
    if valid_days is not None:
        return day_split(
            data, 0, valid_days, windows, spread=spread, min_train_frac=SPREAD_MIN_TRAIN
        )
    if spread:
        return spread_split(data, windows, valid_frac=window_frac, test_frac=0.0)
    if windows * window_frac >= 1:
        raise ValueError(
            f"--windows {windows} x --window-frac {window_frac} side by side leave no "
            "training data before the earliest window"
        )
    # starts one window apart: the windows tile the end of the data
    return spread_split(
        data,
        windows,
        valid_frac=window_frac,
        test_frac=0.0,
        min_train_frac=1 - windows * window_frac,
    )


def early_stopping_folds(data, valid_frac: float, valid_days) -> tuple[list, str]:
    """The fold early stopping learns on (the latest ``valid_days`` days, or the latest
    ``valid_frac`` of the interactions; none when 0) and how to say which."""
    if valid_days is not None:
        split = day_split(data, 0, valid_days, 1)
        dates = split.summary()["valid_folds"][0]["dates"]
        return list(split.folds), f"the last {valid_days} days ({dates})"
    if valid_frac == 0:
        return [], ""
    return holdout(data, valid_frac), f"the latest {valid_frac:.0%} of interactions"


def choose_auto(args, data):
    """``--model auto``: every candidate scored on validation windows spread over the history;
    prints the table and what was chosen; returns ``(label, class, params)``."""
    if args.windows < 1:
        raise ValueError(f"--windows must be at least 1, got {args.windows}")
    if not 0 < args.window_frac < 0.5:
        raise ValueError(f"--window-frac must be in (0, 0.5), got {args.window_frac}")
    candidates = auto_candidates(args.candidates, args.param, args.seed)
    split = auto_windows(data, args.windows, args.window_frac, args.valid_days, args.spread)
    where = "spread over the history" if args.spread else "side by side before the end"
    size = f"{args.valid_days} days" if args.valid_days else f"{args.window_frac:.0%} of the data"
    print(
        f"choosing among {', '.join(candidates)} on {len(split.folds)} validation windows "
        f"({size} each) {where}",
        flush=True,
    )
    print(
        "windows (latest first): " + ", ".join(s["dates"] for s in split.summary()["valid_folds"])
    )
    scores = window_scores(candidates, split.folds, show=not args.no_progress)
    choice = choose_model(scores, window_shift(split.folds), simpler=SIMPLER, margin=SIMPLER_MARGIN)
    for line in choice.lines():
        print(line)
    cls, params = candidates[choice.best]
    return choice.best, cls, params


def run(args) -> int:
    if args.valid_days is not None and args.valid_frac is not None:
        raise ValueError("--valid-days replaces --valid-frac: give one of them")
    if args.valid_days is not None and args.valid_days < 1:
        raise ValueError(f"--valid-days must be at least 1 day, got {args.valid_days}")
    if args.valid_frac is None:
        args.valid_frac = 0.1
    if not 0 <= args.valid_frac < 1:
        raise ValueError(f"--valid-frac must be in [0, 1), got {args.valid_frac}")
    auto = args.model.strip().lower() == "auto"
    if auto:
        auto_candidates(args.candidates, args.param, args.seed)  # fail before any fitting
        check_out(args)
        data = load_data(args)
        args.model, cls, params = choose_auto(args, data)
    else:
        cls, params = model_spec(args.model, args.param, args.seed)
    if not args.no_progress and "show_progress" in {f.name for f in dataclasses.fields(cls.Config)}:
        params = {"show_progress": True, **params}  # training can take minutes: show it
    if not auto:
        check_out(args)
        data = load_data(args)
    t0 = time.perf_counter()
    # without a held-out period a model that early-stops would train blind: learn what early
    # stopping chooses on the latest interactions first, then refit on all of them
    folds, held = (
        early_stopping_folds(data, args.valid_frac, args.valid_days)
        if cls.early_stopping_params
        else ([], "")
    )

    def report(fits: FoldFits) -> None:
        learned = {k: fits.refit[k] for k in cls.early_stopping_params if k in fits.refit}
        print(f"early stopping on {held}: {json.dumps(learned)}")
        for line in fits.models[0].validation_notes():
            print(f"chosen on {held}: {line}")
        # never hand over a model that loses to the obvious references without a word
        train, valid = folds[0]
        for line in validation_check(fits.models[0], args.model, train, valid).lines():
            print(line)

    scorer = validation_scorer(args.targets)
    model, _ = fit_for_serving(cls, params, data, folds, on_folds=report, scorer=scorer)
    fit_s = time.perf_counter() - t0
    save_model(model, args.out, force=args.force)
    defaults = cls().params()
    changed = {
        k: v for k, v in model.params().items() if defaults.get(k) != v and k != "show_progress"
    }
    print(
        f"trained {cls.__name__}({changed or 'defaults'}) on {data.name} "
        f"({data.n_users:,} users, {data.n_items:,} items, "
        f"{data.n_interactions:,} interactions) in {fit_s:.1f}s -> {args.out}"
    )
    return 0
