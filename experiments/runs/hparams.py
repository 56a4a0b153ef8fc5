"""What TensorBoard's HPARAMS view shows: each run's choices beside its metrics, and a sweep's
experiment summary (the swept keys first) at the sweep folder.

A run's hparams are (1) the option chosen in each config group (``model=cnn``, ``data=fashion``,
``experiment=xor``), (2) the values given on the command line or by the experiment (or
hparams_search) config, and (3) a short fixed set of key values (KEY_VALUES). No ``_target_``
paths, no nulls, no lists as text.

TensorBoard shows one experiment summary (the first it finds) and builds one from the runs'
own session records when there is none. So a run writes only its session (start and end), and
a sweep writes the summary at its root: its swept keys marked as differing, which the view
sorts first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from experiments.config import CONF_DIR
from experiments.config import overrides as overrides_text

CHOICE_GROUPS = ("experiment", "model", "data", "trainer", "callbacks", "debug", "hparams_search")
KEY_VALUES = ("model.optimizer.lr", "data.batch_size", "trainer.max_epochs", "seed", "trainer.precision")
# Overrides that say where or how visibly a run writes, not what it is.
NOT_HPARAMS = ("hydra", "paths", "resume", "ckpt_path", "tags", "task_name", "defaults", "logger", "trusted_packages",
               "trial.storage", "trial.study",
               "trainer.enable_progress_bar", "trainer.enable_model_summary", "trainer.default_root_dir")
HPARAMS_FILE = "hparams.yaml"  # Lightning's loggers write the run's hparams there too


def _leaf_keys(node: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in node.items():
        name = f"{prefix}{key}"
        keys.extend(_leaf_keys(value, f"{name}.") if isinstance(value, Mapping) else [name])
    return keys


def _is_hparam(key: str) -> bool:
    return not any(key == n or key.startswith(f"{n}.") or key.startswith(f"{n}/") for n in NOT_HPARAMS)


def _scalar(value: Any) -> Any:
    """A value TensorBoard can show: bool, int, float or str; None for nothing to show."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return None  # a whole sub-config: its leaves are shown where they were given


def hparams_of(cfg: DictConfig, choices: Mapping[str, Any], task_overrides: Iterable[str]) -> dict[str, Any]:
    """A run's hparams from its config, the options chosen in each group, and its overrides."""
    params: dict[str, Any] = {g: str(choices[g]) for g in CHOICE_GROUPS if choices.get(g) is not None}
    given = [overrides_text.key(o) for o in task_overrides if "=" in o and not o.startswith("~")]
    for group in ("experiment", "hparams_search"):  # the values those configs set
        if choices.get(group) is not None and (CONF_DIR / group / f"{choices[group]}.yaml").is_file():
            node = OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{choices[group]}.yaml"))
            given.extend(_leaf_keys(node))
    for key in [*given, *KEY_VALUES]:
        if key in params or key in CHOICE_GROUPS or "/" in key or not _is_hparam(key):
            continue
        value = _scalar(OmegaConf.select(cfg, key, default=None, throw_on_missing=False))
        if value is not None:
            params[key] = value
    return params


def run_hparams(cfg: DictConfig) -> dict[str, Any]:
    """hparams_of the running Hydra app's choices and overrides (none outside Hydra); a test of
    a checkpoint adds the experiment, model and data of the run that wrote it."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else None
    choices = {k: v for k, v in (hydra_cfg.runtime.choices if hydra_cfg else {}).items() if v is not None}
    ckpt = cfg.get("ckpt_path")
    if ckpt and not cfg.get("train"):  # testing a checkpoint (evaluate.py): what its run trained
        from experiments.runs.resume import run_choices

        trained = run_choices(Path(str(ckpt)).resolve().parent.parent)
        choices = {**{g: trained[g] for g in ("experiment", "model", "data") if trained.get(g, "None") != "None"},
                   **choices}
    return hparams_of(cfg, choices, hydra_cfg.overrides.task if hydra_cfg else [])


def log_hparams(loggers: Iterable[Any], params: Mapping[str, Any]) -> None:
    """Each logger's record of the run's hparams (hparams.yaml); for TensorBoard, the session
    the HPARAMS view lists (its metric values are read from the run's own scalars)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            write_session(Path(logger.log_dir), params)
        Path(logger.log_dir, HPARAMS_FILE).unlink(missing_ok=True)  # a resumed run's are rewritten
        logger.log_hyperparams(dict(params))
        logger.save()


def write_session(run_dir: Path, params: Mapping[str, Any]) -> None:
    from torch.utils.tensorboard.summary import hparams
    from torch.utils.tensorboard.writer import FileWriter

    _experiment, start, end = hparams(dict(params), {})  # the experiment is the sweep's (or TensorBoard's)
    writer = FileWriter(str(run_dir), filename_suffix=".hparams")
    for summary in (start, end):
        writer.add_summary(summary)
    writer.close()


# ---------------------------------------------------------------- a sweep's experiment summary

SUMMARY_SUFFIX = ".sweep_hparams"


def write_experiment(root: Path, swept: Mapping[str, Mapping[str, Any]], job_params: list[Mapping[str, Any]],
                     metrics: list[str]) -> Path:
    """The HPARAMS experiment at a sweep's root: every swept key (its values, or its interval),
    then every other hparam of the jobs, and every metric. Replaces an earlier one."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    from torch.utils.tensorboard.writer import FileWriter

    infos = []
    names = [*swept, *sorted({k for p in job_params for k in p} - set(swept))]
    for name in names:
        values = [p[name] for p in job_params if name in p]
        spec = swept.get(name, {})
        values += [v for v in spec.get("values", []) if isinstance(v, (bool, int, float, str))]
        info = api_pb2.HParamInfo(name=name, differs=name in swept or len(set(map(str, values))) > 1)
        if all(isinstance(v, bool) for v in values) and values:
            info.type = api_pb2.DATA_TYPE_BOOL
            info.domain_discrete.extend(sorted(set(values)))
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) and (values or "interval" in spec):
            info.type = api_pb2.DATA_TYPE_FLOAT64
            if "interval" in spec:
                info.domain_interval.min_value, info.domain_interval.max_value = spec["interval"]
            else:
                info.domain_discrete.extend(sorted({float(v) for v in values}))
        else:
            info.type = api_pb2.DATA_TYPE_STRING
            info.domain_discrete.extend(sorted({str(v) for v in values}))
        infos.append(info)
    experiment = api_pb2.Experiment(
        hparam_infos=infos, metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m)) for m in metrics])
    content = plugin_data_pb2.HParamsPluginData(experiment=experiment, version=metadata.PLUGIN_DATA_VERSION)
    summary = Summary(value=[Summary.Value(tag=metadata.EXPERIMENT_TAG, metadata=metadata.create_summary_metadata(content))])
    for old in root.glob(f"events.out.tfevents.*{SUMMARY_SUFFIX}"):  # TensorBoard would keep the first
        old.unlink()
    writer = FileWriter(str(root), filename_suffix=SUMMARY_SUFFIX)
    writer.add_summary(summary)
    writer.close()
    return next(root.glob(f"events.out.tfevents.*{SUMMARY_SUFFIX}"))
