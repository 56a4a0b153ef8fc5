"""The arguments a config node's ``_target_`` takes, with their types, to check the node before
anything is built: this project's classes from their hand-written schemas (experiments/config/
schema.py: nothing imported, the fast path), any other class or function (yours, torchvision's,
torchmetrics') from its signature, imported to read it. So a misspelt or mistyped argument of
your own net is one paragraph with a "did you mean", as the project's are, with no schema to write.

Lightning's classes and the project's other classes (callbacks, loggers) are left to their
constructors: reading their signatures would import Lightning for every command line."""

from __future__ import annotations

import collections.abc
import functools
import inspect
import types
import typing
from dataclasses import MISSING, dataclass, fields
from typing import Annotated, Any, Literal, Union

from experiments.config.schema import CODE_GIVES, SCHEMAS

# Targets whose signatures are not read (no schema: not checked, as before).
UNREAD = ("lightning_modules", "datamodules", "experiments", "lightning", "pytorch_lightning", "hydra")


@dataclass(frozen=True)
class Arguments:
    """What ``target`` takes: each argument's type (``Any`` where it cannot be checked), those
    without a default, and whether it passes other keywords on (``**kwargs``)."""

    target: str
    types: dict[str, Any]
    required: tuple[str, ...]
    more: bool = False


def arguments_of(target: str) -> Arguments | None:
    """The arguments of ``target``; None where it is not checked (or cannot be imported: building it says so)."""
    schema = SCHEMAS.get(target)
    if schema is not None:
        hints = typing.get_type_hints(schema, include_extras=True)
        required = tuple(f.name for f in fields(schema) if f.default is MISSING and f.default_factory is MISSING)
        return Arguments(target, hints, required)
    if not target or any(target == p or target.startswith(p + ".") for p in UNREAD):
        return None
    return _derived(target)


@functools.lru_cache(maxsize=64)
def _derived(target: str) -> Arguments | None:
    from hydra.utils import get_object

    try:
        obj = get_object(target)
        found = _read(obj)
    except Exception:  # noqa: BLE001 - not importable, or no signature to read: building it tells
        return None
    if found is None:
        return None
    given = set(CODE_GIVES.get(target, ()))
    return Arguments(target, {k: v for k, v in found.types.items() if k not in given},
                     tuple(r for r in found.required if r not in given), found.more)


def _read(obj: Any) -> Arguments | None:
    signature = inspect.signature(obj)
    hints: dict[str, Any] = {}
    for source in ((obj.__new__, obj.__init__) if inspect.isclass(obj) else (obj,)):
        try:
            hints.update(typing.get_type_hints(source))
        except Exception:  # noqa: BLE001 - annotations that do not resolve (or none): no type checks
            pass
    kinds, required, more = {}, [], False
    for p in signature.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            more = True
        elif p.kind is not p.VAR_POSITIONAL:
            kinds[p.name] = checkable(hints.get(p.name, Any))
            if p.default is p.empty:
                required.append(p.name)
    returned = hints.get("return") if not inspect.isclass(obj) else None
    if more and inspect.isclass(returned):  # a builder (torchvision's resnet18) passes **kwargs to the class it returns
        built = _read(returned)
        if built is not None:
            kinds.update({k: v for k, v in built.types.items() if k not in kinds and k not in built.required})
            more = built.more
    return Arguments(getattr(obj, "__qualname__", str(obj)), kinds, tuple(required), more)


def checkable(kind: Any) -> Any:
    """``kind`` as the schemas' types (experiments/config/schema.py: conforms); ``Any`` for what a
    config value cannot be checked against (a module, a callable, an enum ...)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind in (Any, int, float, str, bool, type(None), dict):
        return kind
    if kind is inspect.Parameter.empty:
        return Any
    if origin is Annotated:
        return checkable(args[0])
    if origin in (Union, types.UnionType):
        members = [checkable(a) for a in args]
        return Any if Any in members else Union[tuple(members)]  # noqa: UP007 - built from a tuple
    if origin is Literal:
        return kind if all(isinstance(a, (bool, int, float, str, type(None))) for a in args) else Any
    if kind in (list, tuple) or origin in (list, tuple, collections.abc.Sequence):
        inner = [a for a in args if a is not Ellipsis]
        return list[checkable(inner[0]) if len(set(inner)) == 1 else Any]
    if origin in (dict, collections.abc.Mapping):
        return dict
    return Any

