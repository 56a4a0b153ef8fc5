"""A user's own package, written by a test and put on the path of the scripts it runs."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

# A net for 2-D points (XOR data) instead of model=xor's own: its arguments are the user's, so the
# config's must go (``~model.net.num_inputs`` ...).
FOR_XOR = ["~model.net.num_inputs", "~model.net.num_hidden", "~model.net.num_outputs"]


def user_package(root: Path, name: str, source: str) -> dict[str, str]:
    """Write package ``name`` (its ``__init__.py`` is ``source``) under root/src; the environment
    that puts it first on the scripts' path (before what the tests themselves run with)."""
    package = root / "src" / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(source))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), os.environ.get("PYTHONPATH", "")])}
