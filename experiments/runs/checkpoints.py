"""Reading a checkpoint: the one place that opens one, always with ``weights_only=True``.

Every checkpoint a run writes holds, besides Lightning's keys, the run's resolved config under
``RUN_CONFIG`` (lightning_modules/checkpoint_keys.py), so evaluate, predict and export rebuild the
model without the command line that trained it. A file that is empty, truncated, not a
checkpoint, or a checkpoint of something else is one paragraph (a ``ConfigError``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from experiments.config.errors import ConfigError
from experiments.config.trusted import check_targets
from lightning_modules.checkpoint_keys import RUN_CONFIG

LAST = "last.ckpt"  # a run's newest checkpoint, which a resume continues from
OPEN_FILES = Path("/proc/self/fd")  # a path for each file this process has open (Linux)


def read(path: str | Path, setting: str = "ckpt_path") -> dict[str, Any]:
    """The checkpoint's contents (tensors memory-mapped, nothing unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{setting}={path}: no such file.")
    checkpoint, error = _load_one_version(path)
    if error is not None:
        text = str(error)
        why = ("it is empty" if path.stat().st_size == 0
               else "it holds pickled objects, which are never loaded: they could run code" if "Weights only load failed" in text
               else "it is truncated, or not a file of torch.save" if any(w in text for w in ("zip", "mmap", "magic", "EOF"))
               else f"{type(error).__name__}: {text.splitlines()[0][:200] if text else ''}")
        raise ConfigError(f"{setting}={path} is not a checkpoint that loads with torch.load(weights_only=True) ({why}). "
                          "Give a .ckpt file that experiments/run.py wrote (a run's checkpoints/*.ckpt).")
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"{setting}={path} holds no model weights (no state_dict), so it is not a checkpoint of "
                          "experiments/run.py; give one of a run's checkpoints/*.ckpt files.")
    return checkpoint


def run_config(checkpoint: dict[str, Any], path: str | Path, trusted: list[str] | None = None) -> DictConfig:
    """The run config saved in ``checkpoint`` (read from ``path``), once every ``_target_`` in it
    is one that may be built from a file (experiments/config/trusted.py)."""

    if not isinstance(checkpoint.get(RUN_CONFIG), dict):
        raise ConfigError(f"ckpt_path={path} holds no run config: it was not written by experiments/run.py, so "
                          "there is nothing to rebuild the model from. Give one of a run's checkpoints/*.ckpt files.")
    check_targets(checkpoint[RUN_CONFIG], f"The run config inside ckpt_path={path}", trusted)
    return OmegaConf.create(checkpoint[RUN_CONFIG])


def fixed_schedule(checkpoint: dict[str, Any]) -> tuple[str, int, int] | None:
    """``(name, total steps, epochs)`` of a learning-rate schedule in the checkpoint (as ``read``
    gives it) that was sized for its run's epochs (the run config's ``trainer.max_epochs``) and
    cannot step past them (OneCycleLR's ``total_steps``), else None."""
    epochs = ((checkpoint.get(RUN_CONFIG) or {}).get("trainer") or {}).get("max_epochs")
    for state in checkpoint.get("lr_schedulers") or []:
        if isinstance(state, dict) and isinstance(state.get("total_steps"), int) and isinstance(epochs, int):
            return "OneCycleLR", state["total_steps"], epochs
    return None


def global_step(path: str | Path) -> int:
    return int(read(path).get("global_step", 0))


def epochs_done(checkpoint: dict[str, Any]) -> int:
    """Epochs trained, counted from the run's start (the epoch the checkpoint, as ``read`` gives
    it, was saved in, from 0, plus one)."""
    return int(checkpoint.get("epoch", 0)) + 1


def _version(path: Path) -> tuple[int, ...] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _load_one_version(path: Path, tries: int = 5) -> tuple[Any, Exception | None]:
    """A memory-mapped load opens the path twice (torch's zip index, then the mapping), so a
    checkpoint that a running run replaces in between (last.ckpt, renamed into place each epoch)
    would be read as half of each file: a size error, or the old index over the new bytes. Both
    opens go through this process's open file (/proc/self/fd), which stays the one version;
    without /proc, a read that the file changed under is read again."""
    import torch

    def load(name: str | Path) -> tuple[Any, Exception | None]:
        try:
            return torch.load(name, map_location="cpu", weights_only=True, mmap=True), None
        except Exception as failure:  # noqa: BLE001 - empty, truncated, another format, pickled objects
            return None, failure

    if OPEN_FILES.is_dir():
        with open(path, "rb") as opened:
            return load(OPEN_FILES / str(opened.fileno()))
    for _ in range(tries):
        before = _version(path)
        checkpoint, error = load(path)
        if _version(path) == before:
            break
    return checkpoint, error
