"""What a run prints: the known harmless warnings and info lines filtered out, and the config tree
(also saved in the run folder, config_tree.log)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import rich
import rich.console
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf

# Harmless messages that every run would otherwise print.
_QUIET_WARNINGS = (
    r".*does not have many workers.*",
    r".*The number of training batches \(\d+\) is smaller than the logging interval.*",
    r".*LeafSpec.*is deprecated.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*You called `self.log\(.*` but have no logger configured.*",
    r".*The `srun` command is available on your system but is not used.*",
    r".*litlogger.*",
    r".*Precision bf16-mixed is not supported by the model summary.*",
    r".*callbacks used to create the checkpoint need to be provided.*",  # testing a checkpoint needs none
)
_QUIET_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",  # "GPU available: ...", "💡 Tip: ..." lines
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.accelerators.cuda",
    "lightning.fabric.utilities.seed",
)


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("Tip:" in message or "litmodels" in message or "litlogger" in message)


def quiet() -> None:
    """Keep the console to what matters: filter known harmless warnings and info lines."""
    for pattern in _QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    # Lightning gives its loggers a console handler of their own when imported before Hydra sets up
    # logging: its lines then appeared twice ("INFO: ..." and Hydra's format), and not in the run's log.
    if logging.getLogger().handlers:
        for name in ("lightning", "lightning.fabric", "lightning.pytorch"):
            own = logging.getLogger(name)
            for handler in [h for h in own.handlers if type(h) is logging.StreamHandler]:
                own.removeHandler(handler)
            own.propagate = True
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        logger.addFilter(_DropTips())


def drop_file_logging() -> None:
    """Stop this process writing to the run's log file (Hydra sets it up in every process)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
        handler.close()


GROUP_ORDER = ("data", "model", "callbacks", "logger", "trainer", "paths", "monitor", "seed", "task_name", "tags")


def print_config_tree(cfg: DictConfig, save_to: str | Path | None = None) -> None:
    """Print the resolved config as a rich tree (and save it as plain text). No line is cut: a
    terminal wraps long ones; a file or a pipe gets a console as wide as the widest line."""
    keys = [k for k in GROUP_ORDER if k in cfg] + [k for k in cfg if k not in GROUP_ORDER]
    texts = {k: OmegaConf.to_yaml(cfg[k], resolve=True) if isinstance(cfg[k], DictConfig) else str(cfg[k]) for k in keys}
    widest = max((len(line) for t in texts.values() for line in t.splitlines()), default=0) + 12  # + the tree's guides

    def tree(wrap: bool) -> rich.tree.Tree:
        root = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
        for key, text in texts.items():
            root.add(key, style="bold").add(rich.syntax.Syntax(text, "yaml", word_wrap=wrap))
        return root

    console = rich.get_console()
    if console.is_terminal:
        console.print(tree(wrap=True))
    else:
        rich.console.Console(file=console.file, width=max(widest, 80), soft_wrap=False).print(tree(wrap=False))
    if save_to is not None:
        Path(save_to).parent.mkdir(parents=True, exist_ok=True)
        with open(save_to, "w") as f:
            rich.console.Console(file=f, width=max(widest, 80)).print(tree(wrap=False))
