"""Typed settings: check config dataclasses against their field types, parse ``KEY=VALUE``.

Every model's config is a dataclass whose annotations say what each field holds (``int``,
``float``, ``bool``, ``str``, ``X | None``, ``tuple``...). :func:`check_config` refuses values
of the wrong type and non-finite numbers, naming the field; :func:`parse_params` reads
command-line strings into those types. Range rules live with each config (``__post_init__``
with :func:`require`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any

import numpy as np

_NONE_WORDS = ("none", "null")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def field_types(cls) -> dict[str, Any]:
    """Resolved annotations of a config dataclass (unresolvable ones are ``Any``)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that does not evaluate: check what can be checked
        hints = {}
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def _args(tp) -> tuple:
    return typing.get_args(tp)


def _is_union(tp) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def describe(tp) -> str:
    """``int``, ``float or None``, ``tuple of int``... for messages."""
    if _is_union(tp):
        return " or ".join(describe(a) for a in _args(tp))
    if tp is type(None):
        return "None"
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        inner = [a for a in _args(tp) if a is not Ellipsis]
        return f"{origin.__name__} of {describe(inner[0])}" if inner else origin.__name__
    return getattr(tp, "__name__", str(tp))


def matches(value, tp) -> bool:
    """Whether ``value`` is of type ``tp`` (ints count as floats; bools are not numbers)."""
    if tp is Any:
        return True
    if _is_union(tp):
        return any(matches(value, a) for a in _args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, (bool, np.bool_))
    if tp is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if tp is float:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, (bool, np.bool_)
        )
    origin = typing.get_origin(tp) or tp
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            return False
        inner = [a for a in _args(tp) if a is not Ellipsis]
        return len(inner) != 1 or all(matches(v, inner[0]) for v in value)
    if isinstance(origin, type):
        return isinstance(value, origin)
    return True


def _finite(value) -> bool:
    if isinstance(value, (float, np.floating)):
        return math.isfinite(value)
    if isinstance(value, (tuple, list)):
        return all(_finite(v) for v in value)
    return True


def check_config(config) -> None:
    """Refuse fields of the wrong type (``TypeError``) or non-finite numbers (``ValueError``),
    naming the config class and field."""
    if not dataclasses.is_dataclass(config):
        return
    cls = type(config).__name__
    for name, tp in field_types(type(config)).items():
        value = getattr(config, name)
        if not matches(value, tp):
            raise TypeError(
                f"{cls}.{name} must be {describe(tp)}, got {value!r} ({type(value).__name__})"
            )
        if not _finite(value):
            raise ValueError(f"{cls}.{name} must be a finite number, got {value!r}")


def require(config, name: str, *, gt=None, ge=None, lt=None, le=None, optional=False) -> None:
    """Range rule for one numeric field: ``ValueError`` naming it when the value is outside."""
    value = getattr(config, name)
    if value is None and optional:
        return
    cls = type(config).__name__
    if not matches(value, float):
        raise TypeError(f"{cls}.{name} must be a number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(value):
        raise ValueError(f"{cls}.{name} must be a finite number, got {value!r}")
    for bound, ok, word in (
        (gt, lambda v, b: v > b, ">"),
        (ge, lambda v, b: v >= b, ">="),
        (lt, lambda v, b: v < b, "<"),
        (le, lambda v, b: v <= b, "<="),
    ):
        if bound is not None and not ok(value, bound):
            raise ValueError(f"{cls}.{name} must be {word} {bound}, got {value!r}")


# ---------------------------------------------------------------------- parsing
def parse_value(text: str, tp, name: str):
    """A command-line string as a value of type ``tp`` (``ValueError`` naming ``name``)."""
    raw = text.strip()
    if tp is Any:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    if _is_union(tp):
        options = _args(tp)
        if type(None) in options and raw.lower() in _NONE_WORDS:
            return None
        for a in (a for a in options if a is not type(None)):
            try:
                return parse_value(raw, a, name)
            except ValueError:
                continue
        raise ValueError(f"{name}: expected {describe(tp)}, got {text!r}")
    if tp is bool:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ValueError(f"{name}: expected true or false, got {text!r}")
    if tp is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{name}: expected an integer, got {text!r}") from None
    if tp is float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{name}: expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"{name}: expected a finite number, got {text!r}")
        return value
    if tp is str:
        return raw
    origin = typing.get_origin(tp) or tp
    if origin in (tuple, list):
        inner = [a for a in _args(tp) if a is not Ellipsis]
        # a bare ``tuple``: every tuple setting of recogan holds numbers
        elem = inner[0] if len(inner) == 1 else int | float
        if raw in ("", "()", "[]"):
            items = []
        elif raw.startswith(("[", "(")):
            try:
                items = json.loads("[" + raw[1:-1] + "]")
            except json.JSONDecodeError:
                raise ValueError(
                    f"{name}: expected a list like 7,60 or [7, 60], got {text!r}"
                ) from None
            items = [str(v) for v in items]
        else:
            items = raw.split(",")
        values = [parse_value(t, elem, name) for t in items]
        return tuple(values) if origin is tuple else values
    raise ValueError(f"{name}: cannot read a {describe(tp)} from the command line")


def _negative(value) -> bool:
    if isinstance(value, (tuple, list)):
        return any(_negative(v) for v in value)
    return matches(value, float) and value < 0


def parse_params(cls, pairs: list[str], *, option: str = "--param") -> dict:
    """``["key=value", ...]`` → values typed by the config dataclass ``cls``. Unknown keys,
    unreadable values and negative numbers (no recogan setting is negative) are refused with
    a ``ValueError`` naming the option."""
    types_ = field_types(cls)
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{option} expects KEY=VALUE, got {pair!r}")
        if key not in types_:
            raise ValueError(
                f"{option} {key}: unknown parameter(s) [{key!r}] of {cls.__name__} "
                f"(known: {', '.join(sorted(types_))})"
            )
        parsed = parse_value(value, types_[key], f"{option} {key}")
        if _negative(parsed):
            raise ValueError(f"{option} {key}={value.strip()}: must not be negative")
        out[key] = parsed
    return out
