"""Export a checkpoint for use without this project: python experiments/export.py ckpt_path=PATH

Writes into its run folder (logs/export/runs/<run>/, or hydra.run.dir=FOLDER):

- ``model.pt2``: the net in eval mode as a ``torch.export`` program, for any batch size;
  ``torch.export.load(path).module()`` runs it with nothing but torch installed;
- ``model_state_dict.pt``: the net's weights, a plain state_dict (``torch.load(weights_only=True)``)
  for the net's class (``lightning_modules/nets/``, or a copy of it);
- ``export.json``: the net's class and arguments, what its input is (shape, normalisation: the
  data contract's, e.g. a CSV's standardisation fitted on the training rows) and its outputs
  (class names).

Both files are reloaded and run on the test split of the checkpoint's data; unless their
outputs equal the checkpoint's model's bit for bit the export fails. Bad input (no ckpt_path, a
file that is not a checkpoint of experiments/run.py): one paragraph, exit code 1, no folder left.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from experiments.config.errors import one_paragraph_errors
from experiments.runs.ownership import removed_on_error
from experiments.runs.start import before_hydra

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def main(cfg: DictConfig) -> dict[str, str]:
    with one_paragraph_errors(), removed_on_error(cfg.paths.output_dir):
        return export(cfg.ckpt_path, Path(cfg.paths.output_dir), list(cfg.get("trusted_packages") or []))


def export(ckpt_path: str, out_dir: Path, trusted_packages: list[str] | None = None) -> dict[str, str]:
    """Write model.pt2, model_state_dict.pt and export.json for ``ckpt_path`` into ``out_dir``,
    after checking both files' outputs against the checkpoint's model on the test split."""
    import lightning as L
    import torch
    from hydra.utils import instantiate

    from datamodules.contract import declared
    from experiments.pipeline import build, predict_split
    from experiments.runs import checkpoints, console

    class BatchInputs(L.Callback):
        """Each predicted batch's inputs, as the model receives them (after the data module's hooks)."""

        def __init__(self):
            self.inputs: list[torch.Tensor] = []

        def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            with torch.inference_mode(False):  # plain tensors: torch.export traces with them
                self.inputs.append(batch[0].detach().cpu().clone())

    console.quiet()
    run_cfg = checkpoints.run_config(checkpoints.read(ckpt_path), ckpt_path, trusted_packages)
    model, datamodule = build(run_cfg)
    batches = BatchInputs()
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, callbacks=[batches], enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=out_dir)
    predict_split(trainer, model, datamodule, "test", ckpt_path)  # the checkpoint's weights and data state
    data = declared(datamodule)  # now with the training run's normalisation
    inputs = batches.inputs
    net = model.net.cpu().eval()
    with torch.no_grad():
        expected = [net(x) for x in inputs]

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"program": out_dir / "model.pt2", "state_dict": out_dir / "model_state_dict.pt",
             "description": out_dir / "export.json"}
    torch.save(net.state_dict(), paths["state_dict"])
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(net, (inputs[0],), dynamic_shapes=({0: batch},))
    torch.export.save(program, paths["program"])

    # What a user gets back from each file, run on every test batch.
    from_state_dict = instantiate(run_cfg.model.net)
    from_state_dict.load_state_dict(torch.load(paths["state_dict"], weights_only=True))
    reloaded = {"model_state_dict.pt": from_state_dict.eval(), "model.pt2": torch.export.load(paths["program"]).module()}
    with torch.no_grad():
        for name, module in reloaded.items():
            for x, want in zip(inputs, expected):
                got = module(x)
                if not torch.equal(got, want):
                    raise RuntimeError(f"{name} reloaded gives other outputs than the checkpoint's model "
                                       f"(largest difference {(got - want).abs().max().item():.3g})")

    description = {
        "checkpoint": str(Path(ckpt_path).resolve()),
        "net": OmegaConf.to_container(run_cfg.model.net, resolve=True),
        "input": {"shape": ["batch", *data.input_shape], "dtype": "float32", **input_normalization(data.normalization)},
        "output": output_description(data),
        "class_names": list(data.class_names) if data.class_names else None,
        "checked": f"bit-identical to the checkpoint's model on {sum(len(x) for x in inputs)} test samples",
    }
    paths["description"].write_text(json.dumps(description, indent=2) + "\n")
    log.info("Exported %s (%s) to %s", type(net).__name__, description["checked"], out_dir)
    for path in paths.values():
        log.info("  %s", path)
    return {name: str(path) for name, path in paths.items()}


def input_normalization(normalization) -> dict:
    """How a raw input becomes the net's input (the data contract's normalisation), as numbers and in words."""
    if not normalization:
        return {}
    scale, mean, std = normalization.get("scale", 1.0), list(normalization["mean"]), list(normalization["std"])
    raw = "pixel / 255" if abs(scale - 1 / 255) < 1e-12 else "x" if scale == 1 else f"x * {scale:g}"
    if len(mean) == 1:
        words = f"({raw} - {mean[0]:.4g}) / {std[0]:.4g}"
    else:
        words = f"({raw} - mean[i]) / std[i] for each {'channel' if raw.startswith('pixel') else 'feature'} i"
    return {"normalise": words, "normalization": {"scale": scale, "mean": mean, "std": std}}


def output_description(data) -> str:
    if data.target_kind == "binary":
        return "one logit per sample: sigmoid(logit) is the probability of class 1"
    if data.classification:
        return f"{data.num_classes} logits per sample: softmax gives the class probabilities"
    return f"{data.target_dim} regression output{'s' if data.target_dim != 1 else ''} per sample"


if __name__ == "__main__":
    sys.argv = before_hydra("export", sys.argv)
    main()
