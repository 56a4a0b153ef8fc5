"""Which ``_target_``s may be built from a config that was read from a file.

A checkpoint (evaluate.py, predict.py, export.py) or a run folder's ``.hydra/overrides.yaml``
(resume=) may come from someone else. ``torch.load(weights_only=True)`` keeps pickled objects
out, but instantiating the config inside would still call whatever its ``_target_``s name. So a
config read from a file is data: every ``_target_`` in it must be a class of this project's
models and data, torch, torchvision, torchmetrics or Lightning (or a torchvision model
builder), outside the parts of those libraries that load code or pickles, run commands or write
files; no ``weights_only: false`` anywhere. The packages a user names in ``trusted_packages``
are allowed whole. Anything else is refused before any object is built.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from experiments.config.errors import ConfigError

ALLOWED_PACKAGES = ("lightning_modules", "datamodules", "torch", "torchvision", "torchmetrics", "lightning")
# Parts of the allowed packages that load pickles or code, compile, run, serve or write files.
REFUSED = ("torch.hub", "torch.load", "torch.save", "torch.jit", "torch.package", "torch.serialization",
           "torch.utils.cpp_extension", "torch.utils.benchmark", "torch.utils.data.datapipes", "torch.ops",
           "torch.classes", "torch.library", "torch.distributed", "torch.multiprocessing", "torch.fx",
           "torch.testing", "torch.compiler", "torch.export", "torch.onnx", "torchvision.io", "torchvision.utils",
           "torchvision.datasets.utils", "lightning.pytorch.cli", "lightning.fabric.cli",
           "lightning.pytorch.core.saving", "lightning.fabric.utilities.cloud_io")
BUILDERS = ("torchvision.models",)  # functions (not classes) that may be called: they build a net
_DOTTED = re.compile(r"[A-Za-z]\w*(\.[A-Za-z]\w*)*")  # no private names (_load, __class__)


def _within(target: str, prefixes: tuple[str, ...] | list[str]) -> bool:
    return any(target == p or target.startswith(p + ".") for p in prefixes)


def why_refused(target: Any, trusted: list[str], imports: bool = True) -> str | None:
    """Why ``target`` may not be built from a file's config; None when it may. ``imports=False``
    checks the name alone (nothing is imported)."""
    if not isinstance(target, str) or not _DOTTED.fullmatch(target):
        return "it is not a public dotted name"
    if _within(target, trusted):
        return None
    if not _within(target, ALLOWED_PACKAGES):
        return "its package is not on the allow-list"
    if _within(target, REFUSED):
        return "that part of its package loads code or pickles, runs commands or writes files"
    if not imports:
        return None
    from hydra.utils import get_object  # the package is allowed: importing from it is safe

    try:
        obj = get_object(target)
    except Exception:  # noqa: BLE001 - a target that does not import: building it fails and says so
        return None
    if inspect.isclass(obj) or (callable(obj) and _within(getattr(obj, "__module__", "") or "", BUILDERS)):
        return None
    return "it is not a class (only classes, and torchvision's model builders, are built from a file)"


def check_targets(config: Any, source: str, trusted: list[str] | None = None) -> None:
    """Raise ConfigError, naming the first refused ``_target_``, the file and the way to trust
    it, unless every ``_target_`` in ``config`` (a container) may be built. Names are checked
    before anything is imported to look at what they are."""
    trusted = [str(p) for p in trusted or []]
    nodes = list(_nodes(config, ""))
    for imports in (False, True):
        for path, node in nodes:
            if "_target_" in node:
                why = why_refused(node["_target_"], trusted, imports)
                if why:
                    target = str(node["_target_"])
                    trust = target if _within(target, ALLOWED_PACKAGES) else target.split(".")[0]
                    raise ConfigError(
                        f"{source} names {path + '.' if path else ''}_target_={target}, which this project does not "
                        f"build from a file ({why}). Nothing was built. If you trust this file and {trust}, add "
                        f"trusted_packages=[{trust}] to the command line (README: Safety).")
            flag = node.get("weights_only")
            if not imports and (flag is False or str(flag).lower() == "false"):
                raise ConfigError(
                    f"{source} sets {path + '.' if path else ''}weights_only={flag}, which would load pickled objects "
                    "(and run their code). Nothing was built: checkpoints load with weights_only=True (README: Safety).")


def _nodes(value: Any, path: str):
    if isinstance(value, dict):
        yield path, value
        for k, v in value.items():
            yield from _nodes(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _nodes(v, f"{path}[{i}]")
