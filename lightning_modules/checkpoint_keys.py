"""What this project adds to the checkpoints Lightning writes, by key (plain values and tensors:
every checkpoint still loads with ``torch.load(weights_only=True)``). No torch here: the code that
reads checkpoints before anything heavy is imported (experiments/runs/checkpoints.py) names them too."""

# The run's resolved config (lightning_modules/task.py saves it): evaluate, predict and export
# rebuild the model from it without the command line that trained it.
RUN_CONFIG = "run_config"
