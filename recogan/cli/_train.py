"""``recogan train``: fit a model on a whole dataset and write a verified bundle."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

from recogan._config import parse_params as typed_params
from recogan._fs import check_output_dir
from recogan.artifacts import is_bundle, is_leftover, save_model
from recogan.cli._common import add_data_args, load_data
from recogan.evaluate import validation_check
from recogan.fitting import FoldFits, fit_for_serving, holdout
from recogan.registry import model_class

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("train", help="fit a model on a whole dataset and write a model bundle")
    add_data_args(p)
    p.add_argument(
        "--model",
        default="gan",
        metavar="NAME",
        help="model to fit: gan, ease, itemknn, ials or pop (default: gan)",
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
        default=0.1,
        metavar="F",
        help="models that early-stop (gan) first train on all but the latest F of the "
        "interactions, validated on that F, then refit on everything for the epoch count "
        "chosen there (default: 0.1; 0 trains once, for the configured epochs)",
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


def run(args) -> int:
    if not 0 <= args.valid_frac < 1:
        raise ValueError(f"--valid-frac must be in [0, 1), got {args.valid_frac}")
    cls, params = model_spec(args.model, args.param, args.seed)
    if not args.no_progress and "show_progress" in {f.name for f in dataclasses.fields(cls.Config)}:
        params = {"show_progress": True, **params}  # training can take minutes: show it
    check_out(args)
    data = load_data(args)
    t0 = time.perf_counter()
    # without a held-out period a model that early-stops would train blind: learn what early
    # stopping chooses on the latest interactions first, then refit on all of them
    early = cls.early_stopping_params and args.valid_frac > 0
    folds = holdout(data, args.valid_frac) if early else []

    def report(fits: FoldFits) -> None:
        learned = {k: fits.refit[k] for k in cls.early_stopping_params if k in fits.refit}
        print(
            f"early stopping on the latest {args.valid_frac:.0%} of interactions: "
            f"{json.dumps(learned)}"
        )
        # never hand over a model that loses to the obvious references without a word
        train, valid = folds[0]
        for line in validation_check(fits.models[0], args.model, train, valid).lines():
            print(line)

    model, _ = fit_for_serving(cls, params, data, folds, on_folds=report)
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
