"""Export a checkpoint for use without this project: python experiments/export.py ckpt_path=PATH

Writes into its run folder (logs/export/runs/<run>/, or hydra.run.dir=FOLDER):

- ``model.pt2``: the net in eval mode as a ``torch.export`` program, for any batch size;
  ``torch.export.load(path).module()`` runs it with nothing but torch installed;
- ``model_state_dict.pt``: the net's weights, a plain state_dict (``torch.load(weights_only=True)``)
  for the net's class (``lightning_modules/nets/``, or a copy of it);
- ``export.json``: the net's class and arguments, what its input is (shape, normalisation) and
  its outputs (class names).

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
    import torch
    from hydra.utils import instantiate

    from experiments.pipeline import build
    from experiments.runs import checkpoints, console

    console.quiet()
    checkpoint = checkpoints.read(ckpt_path)
    run_cfg = checkpoints.run_config(checkpoint, ckpt_path, trusted_packages)
    model, datamodule = build(run_cfg)
    model.load_state_dict(checkpoint["state_dict"])
    net = model.net.eval()

    datamodule.setup("test")
    inputs = [datamodule.on_after_batch_transfer(batch, 0)[0] for batch in datamodule.test_dataloader()]
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
        "input": {"shape": ["batch", *datamodule.input_shape], "dtype": "float32",
                  **({"normalise": f"(pixel / 255 - {datamodule.mean}) / {datamodule.std}"}
                     if hasattr(datamodule, "mean") else {})},
        "output": output_description(model),
        "class_names": datamodule.class_names,
        "checked": f"bit-identical to the checkpoint's model on {sum(len(x) for x in inputs)} test samples",
    }
    paths["description"].write_text(json.dumps(description, indent=2) + "\n")
    log.info("Exported %s (%s) to %s", type(net).__name__, description["checked"], out_dir)
    for path in paths.values():
        log.info("  %s", path)
    return {name: str(path) for name, path in paths.items()}


def output_description(model) -> str:
    if getattr(model, "binary", False):
        return "one logit per sample: sigmoid(logit) is the probability of class 1"
    if getattr(model, "num_outputs", None):
        return f"{model.num_outputs} logits per sample: softmax gives the class probabilities"
    return "the regression outputs"


if __name__ == "__main__":
    sys.argv = before_hydra("export", sys.argv)
    main()
