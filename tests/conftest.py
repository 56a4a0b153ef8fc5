import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
os.environ.setdefault("PROJECT_ROOT", str(ROOT))

# The checkout's own logs/: tests write only to their temporary folders (checked at the end).
CHECKOUT_LOGS = ROOT / "logs"


def _logs_listing() -> set[str]:
    return {str(p.relative_to(ROOT)) for p in CHECKOUT_LOGS.rglob("*")} if CHECKOUT_LOGS.exists() else set()


def pytest_sessionstart(session):
    session.config.stash[_LOGS_BEFORE] = _logs_listing()


def pytest_sessionfinish(session, exitstatus):
    added = sorted(_logs_listing() - session.config.stash.get(_LOGS_BEFORE, set()))
    if added:
        print(f"\nTests wrote into the checkout's logs/ ({len(added)} new entries, e.g. {added[:3]}): "
              "every test must write only to its temporary folders.")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_LOGS_BEFORE = pytest.StashKey[set]()

# Settings that keep test runs quiet and on the CPU.
QUIET = ["trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def compose_run(overrides: list[str], output_dir: Path, config_name: str = "run"):
    """The config `experiments/<config_name>.py OVERRIDES` would run with, writing to output_dir."""
    GlobalHydra.instance().clear()
    logs = f"paths.log_dir={output_dir / 'logs'}"  # a sweep folder that composing creates lands in the test's folder
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose(config_name, overrides=[*QUIET, logs, *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # so model=/data= choices show in error messages
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg["hydra"]
    return cfg


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an IDX file (the MNIST format), gzipped like the Debian package's."""
    magic = 0x0803 if array.ndim == 3 else 0x0801
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="session")
def fake_fashion_dir(tmp_path_factory) -> Path:
    """A folder shaped like Debian's dataset-fashion-mnist, with 600 train / 200 test images
    whose class is readable from the image (so that models can learn it)."""
    d = tmp_path_factory.mktemp("fake_debian_fashion")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 600), ("t10k", 200)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, y in enumerate(labels):  # a bright bar whose row encodes the class
            images[i, 2 + 2 * y : 4 + 2 * y, 4:24] = 255
        write_idx(d / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return d


@pytest.fixture
def fake_fashion(fake_fashion_dir, tmp_path) -> list[str]:
    """Overrides that point data=fashion at the small generated files."""
    return [f"data.debian_dir={fake_fashion_dir}", f"data.data_dir={tmp_path / 'data'}",
            "data.val_size=100", "data.download=false"]


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A two-node SLURM cluster on loopback (tests/helpers/slurm_cluster.py), started once per session;
    its `env` is what a subprocess that submits to it needs. Skips where it cannot run."""
    from tests.helpers.slurm_cluster import SlurmCluster, installed

    reason = installed()
    if reason:
        pytest.skip(reason)
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


class OwnData:
    """Data of a user's own, written once per session (tests/helpers/own_data.py): a folder of 300
    grey 16x16 PNGs in 3 classes (no val/ or test/: the data module splits it), a CSV table for
    classification (species, words) and one for regression (price), five features each."""

    def __init__(self, root: Path):
        from tests.helpers.own_data import write_image_folder, write_table

        self.images = write_image_folder(root / "images")
        self.species = write_table(root / "species.csv", target="species")
        self.prices = write_table(root / "prices.csv", target="price")

    def overrides(self, data: str) -> list[str]:
        """What data=image_folder or data=csv needs on the command line, for these files."""
        return {"image_folder": [f"data.root={self.images}"],
                "csv": [f"data.path={self.species}", "data.target=species"]}.get(data, [])


@pytest.fixture(scope="session")
def own_data(tmp_path_factory) -> OwnData:
    return OwnData(tmp_path_factory.mktemp("own_data"))
