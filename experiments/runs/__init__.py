"""One run's folder and what it holds: its unique name, its owner (the lock, what may be removed),
its record (job.json), its checkpoints, resume, what it prints and its TensorBoard hparams."""
