# The README's two commands are `make train` and `make test`; both set up first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CONSTRAINTS := requirements/constraints.txt
STAMP := $(VENV)/.installed
DEBIAN_FASHION := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: setup data slurm chromium train test test-fast bench tensorboard screenshots clean

# Re-running is instant when pyproject.toml and the pins did not change.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[dev]"
	# Hydra's Optuna sweeper plugin, which earlier set-ups installed: Hydra would take its configs of
	# the same names (hydra/sweeper/sampler/*) as schemas of ours
	$(PY) -m pip uninstall -q -y hydra-optuna-sweeper
	touch $(STAMP)

# Fashion-MNIST offline source (Debian package), when apt is usable; else torchvision downloads.
data:
	@if [ ! -f $(DEBIAN_FASHION) ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
	      || echo "note: could not install dataset-fashion-mnist; torchvision will try to download"; \
	  else echo "note: no root apt: Fashion-MNIST will be downloaded by torchvision if online"; fi; \
	fi

# Debian's chromium for the headless-browser test of tests/test_tensorboard.py and `make screenshots`.
# After data (order only): two apt-get at once under `make -j` would fight over dpkg's lock.
chromium: | data
	@if ! command -v chromium >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "note: could not install chromium; the browser test will be skipped"; \
	  else echo "note: no root apt: the browser test will be skipped (it needs Debian's chromium)"; fi; \
	fi

# SLURM and munge for the tests marked `slurm` (a throwaway two-node cluster, tests/helpers/slurm_cluster.py).
# After data and chromium (order only), for the same reason.
slurm: | data chromium
	@if [ ! -x /usr/sbin/slurmctld ] || [ ! -x /usr/sbin/slurmd ] || [ ! -x /usr/sbin/munged ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null) \
	      || echo "note: could not install slurm-wlm munge; the tests marked slurm will be skipped"; \
	  else echo "note: no root apt: the tests marked slurm will be skipped (they need slurm-wlm and munge)"; fi; \
	fi

setup: $(STAMP) data

train: setup
	$(PY) experiments/run.py $(ARGS)

test: setup chromium slurm
	$(PY) -m pytest $(ARGS)

bench: setup
	$(PY) benchmarks/run.py $(ARGS)

tensorboard:
	$(VENV)/bin/tensorboard --logdir logs

# The README's TensorBoard pictures: a few tiny runs and a sweep, shot with headless chromium into docs/.
screenshots: setup chromium
	$(PY) experiments/screenshots.py $(ARGS)

clean:
	rm -rf logs .pytest_cache
