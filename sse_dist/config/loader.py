"""Typed configuration: dataclasses <-> YAML/CLI, strict checking, field docs for --help.

Every section is a dataclass whose fields carry an attribute docstring. Loading is strict: an unknown key, a value
of the wrong type or a value its section's ``validate`` refuses raises :class:`ConfigError` naming the dotted
field, so a bad experiment file fails at start instead of deep inside a stage.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message starts with the dotted field name."""


def require(cond: bool, name: str, message: str) -> None:
    """Refuse field ``name`` of the section being validated unless ``cond`` holds."""
    if not cond:
        raise ConfigError(f"{name}: {message}")


def require_set(section: Any, path: str, *names: str) -> None:
    """A stage's run refuses to start without the fields it needs: the defaults leave inputs and outputs empty,
    since one experiment file configures every stage and only the stage that runs needs its own."""
    for name in names:
        if not getattr(section, name):
            raise ConfigError(f"{path}.{name}: must be set")


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass (the string literal that follows each field)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted where floats are expected."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping for section {tp.__name__}, got {value!r}")
        return from_dict(tp, value, path)
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{path}: must be one of {_type_name(tp)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError("; ".join(errors))
    if origin is list:
        (item,) = get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return [_coerce(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp in (bool, str):
        if not isinstance(value, tp):
            raise ConfigError(f"{path}: expected {tp.__name__}, got {value!r}")
        return value
    raise TypeError(f"{path}: unsupported annotation {tp!r}")


def from_dict(cls: type[T], data: dict[str, Any], path: str = "") -> T:
    """Build ``cls`` from a mapping, refusing unknown keys and wrong types (no range checks here)."""
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"{where}{unknown[0]}: unknown field of {cls.__name__}; known fields: {', '.join(sorted(names))}"
        )
    kwargs = {k: _coerce(v, hints[k], f"{path}.{k}" if path else k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def validate(obj: Any, path: str = "") -> None:
    """Run every section's ``validate()`` (if any), depth first, prefixing errors with the dotted path."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            validate(value, f"{path}{f.name}.")
    check = getattr(obj, "validate", None)
    if check is not None:
        try:
            check()
        except ConfigError as e:
            raise ConfigError(f"{path}{e}") from None


def parse_value(text: str, tp: Any) -> Any:
    """A command-line value for a field annotated ``tp`` (YAML scalars; comma lists for list[str])."""
    if tp is str or (get_origin(tp) is Literal and all(isinstance(a, str) for a in get_args(tp))):
        return text
    if get_origin(tp) is list and get_args(tp)[0] is str and not text.startswith("["):
        return [t for t in text.split(",") if t]
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"cannot parse {text!r}: {e}") from None


def field_type(cls: type, dotted: str) -> Any:
    """The annotation of a dotted field (``train.optim.lr``) below dataclass ``cls``."""
    tp: Any = cls
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(tp):
            raise ConfigError(f"{dotted}: {part!r} is below a field that is not a section")
        hints = _hints(tp)
        if part not in hints:
            known = ", ".join(sorted(hints))
            raise ConfigError(f"{dotted}: unknown field {part!r} of {tp.__name__}; known fields: {known}")
        tp = hints[part]
    return tp


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: {p} is not a section")
    node[leaf] = value


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load(cls: type[T], files: Iterable[str] = (), overrides: Iterable[str] = ()) -> T:
    """Defaults, then each YAML file in order, then ``key.path=value`` overrides; checked and validated."""
    data: dict[str, Any] = {}
    for fname in files:
        try:
            with open(fname, encoding="utf-8") as fh:
                loaded = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{fname}: cannot read config: {e}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{fname}: a config file must be a mapping of sections")
        data = merge(data, loaded)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise ConfigError(f"{item}: an override must look like section.field=value")
        set_dotted(data, key.strip(), parse_value(text, field_type(cls, key.strip())))
    cfg = from_dict(cls, data)
    validate(cfg)
    return cfg


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False)
