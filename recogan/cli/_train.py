"""``recogan train``: fit a model on a whole dataset and write a verified bundle."""

from __future__ import annotations

import dataclasses
import json
import logging
import time

from recogan.cli._common import add_data_args, load_data

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
        help="a model hyperparameter (repeatable); VALUE is read as JSON when it parses",
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
    p.add_argument("--out", required=True, metavar="DIR", help="bundle directory to write")
    p.set_defaults(func=run)


def parse_params(pairs: list[str]) -> dict:
    """``["k=v", ...]`` → dict; values are JSON where they parse (``3``, ``0.1``, ``true``,
    ``null``), Python spellings ``True``/``False``/``None`` too, else strings."""
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


def build_model(name: str, params: dict, seed: int):
    from recogan.base import model_class

    cls = model_class(name)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    if "seed" in fields:
        params = {"seed": seed, **params}
    try:
        return cls(**params)
    except TypeError as e:  # unknown hyperparameter: a user error, not a crash
        raise ValueError(str(e)) from e


def run(args) -> int:
    model = build_model(args.model, parse_params(args.param), args.seed)
    data = load_data(args)
    t0 = time.perf_counter()
    if hasattr(model, "refit_params") and args.valid_frac > 0:
        # without a held-out period an early-stopping model would train blind: learn the
        # epoch count on the latest interactions first, then refit on all of them
        from recogan.data import temporal_split

        from recogan.evaluate._check import validation_check

        split = temporal_split(data, test_frac=args.valid_frac, valid_frac=0.0)
        params = model.fit(split.train, split.test).refit_params()
        print(
            f"early stopping on the latest {args.valid_frac:.0%} of interactions: "
            f"{json.dumps({k: params[k] for k in ('epochs',) if k in params})}"
        )
        # never hand over a model that loses to the obvious references without a word
        for line in validation_check(model, args.model, split.train, split.test).lines():
            print(line)
        model = type(model)(**params)
    model.fit(data)
    fit_s = time.perf_counter() - t0
    model.save(args.out)
    defaults = type(model)().params()
    changed = {k: v for k, v in model.params().items() if defaults.get(k) != v}
    print(
        f"trained {type(model).__name__}({changed or 'defaults'}) on {data.name} "
        f"({data.n_users:,} users, {data.n_items:,} items, "
        f"{data.n_interactions:,} interactions) in {fit_s:.1f}s -> {args.out}"
    )
    return 0
