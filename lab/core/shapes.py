"""Whether plain data (an observation, JSON) has the shape its type says: a TypedDict's keys,
lists, dicts, unions and literals, checked at run time."""

from __future__ import annotations

import functools
import types
import typing
from typing import (
    Any,
    Literal,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    is_typeddict,
)

SCALARS = (str, int, float, bool, type(None))


def mismatches(value: Any, shape: Any, where: str = "") -> list[str]:
    """Every place where value does not have the given shape, as 'path: what'; [] when it has."""
    where = where or "observation"
    if shape is Any or shape is object:
        return []
    if is_typeddict(shape):
        return _typed_dict(value, shape, where)
    origin, args = get_origin(shape), get_args(shape)
    if origin in (Union, types.UnionType):
        tried = [mismatches(value, option, where) for option in args]
        return [] if any(not problems for problems in tried) else min(tried, key=len)
    if origin is Literal:
        return [] if value in args else [f"{where}: {value!r} is not one of {list(args)}"]
    if origin in (list, tuple, dict):
        return _container(value, origin, args, where)
    if shape in SCALARS:
        return [] if _is(value, shape) else [f"{where}: {_name(value)}, not {shape.__name__}"]
    raise TypeError(f"{where}: no run-time reading of {shape!r}")


def _typed_dict(value: Any, shape: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: {_name(value)}, not a mapping ({shape.__name__})"]
    hints, required = _keys(shape)
    problems = [f"{where}: no {key!r}" for key in sorted(required - value.keys())]
    unknown = sorted(value.keys() - hints, key=str)
    problems += [f"{where}: {key!r} is not a key of {shape.__name__}" for key in unknown]
    for key in sorted(hints.keys() & value.keys()):
        problems += mismatches(value[key], hints[key], f"{where}.{key}")
    return problems


@functools.cache
def _keys(shape: Any) -> tuple[dict[str, Any], frozenset[str]]:
    """A TypedDict's keys with their types, and which are required (read from the annotations
    themselves: with postponed annotations, Python 3.11's __required_keys__ misses NotRequired)."""
    hints = typing.get_type_hints(shape, include_extras=True)
    required = set(shape.__required_keys__)  # each class's `total`, through inheritance
    for key, hint in hints.items():
        if get_origin(hint) is NotRequired:
            required.discard(key)
        elif get_origin(hint) is Required:
            required.add(key)
        if get_origin(hint) in (NotRequired, Required):
            hints[key] = get_args(hint)[0]
    return hints, frozenset(required)


def _container(value: Any, origin: type, args: tuple, where: str) -> list[str]:
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {_name(value)}, not a mapping"]
        key_shape, item_shape = args or (Any, Any)
        problems = []
        for key, item in value.items():
            problems += mismatches(key, key_shape, f"{where} key {key!r}")
            problems += mismatches(item, item_shape, f"{where}[{key!r}]")
        return problems
    if not isinstance(value, (list, tuple)):  # JSON has lists where Python had tuples
        return [f"{where}: {_name(value)}, not a list"]
    if origin is tuple and args and args[-1] is not Ellipsis:
        if len(value) != len(args):
            return [f"{where}: {len(value)} items, not {len(args)}"]
        pairs = zip(value, args, strict=True)
    else:
        pairs = ((item, args[0] if args else Any) for item in value)
    problems = []
    for index, (item, item_shape) in enumerate(pairs):
        problems += mismatches(item, item_shape, f"{where}[{index}]")
    return problems


def _is(value: Any, scalar: type) -> bool:
    if scalar is float:  # JSON writes 2.0 as 2
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if scalar is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, scalar)


def _name(value: Any) -> str:
    return "None" if value is None else f"a {type(value).__name__} ({value!r:.40})"
