"""What the user asked for, and whether it can work: the command line's overrides, the config's
schemas and checks, the resolvers of values, and the one place that turns an error into the
paragraph the user reads. Nothing here imports torch or writes a file."""

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
