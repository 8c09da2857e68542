# Everything a fresh machine with Python 3.11 and pip needs: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast lint bench-quick rivals-env clean

# uv installs the ~110 distributions in seconds where pip takes minutes; it comes from PyPI too.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

# What intnet is for: the 16-neuron network the paper trains (batch MIPs on 2 Ray actors), then
# the architecture --hidden auto chooses on validation, its size beside it, and its C header.
demo: install
	$(BIN)/intnet train --dataset heart --train-size 200 --batch-size 40 --P 3 --hidden 16 \
		--epochs 2 --workers 2 --time-limit 30 --seed 1 --out out/heart16.parquet
	$(BIN)/intnet train --dataset heart --train-size 200 --P 3 --hidden auto --time-limit 10 \
		--seed 1 --out out/heart.parquet
	$(BIN)/intnet info out/heart.parquet
	@echo "== the 16-neuron network: $$($(BIN)/intnet info out/heart16.parquet --json | $(BIN)/python -c \
		'import json,sys; d=json.load(sys.stdin); print(d["architecture"], d["nonzero_parameters"], "non-zero parameters,", d["size_bits"], "bits, test", round(100*d["test_accuracy"],1), "%")')"
	@echo "== --hidden auto's network: $$($(BIN)/intnet info out/heart.parquet --json | $(BIN)/python -c \
		'import json,sys; d=json.load(sys.stdin); print(d["architecture"], d["nonzero_parameters"], "non-zero parameters,", d["size_bits"], "bits, test", round(100*d["test_accuracy"],1), "%")')"
	$(BIN)/intnet export out/heart.parquet --format c --out out/heart.h

# Everything: the linter, then every test (Ray, Prefect, compilers and subprocesses included).
test: install lint
	$(BIN)/python -m pytest

# The tests that start no Ray, no Prefect server and no other process (tests/conftest.py keeps
# the marks honest), on one pytest worker per core: on 2 cores 133 s against 238 s in one.
test-fast: install lint
	$(BIN)/python -m pytest -n auto -m "not ray and not prefect and not subprocess"

lint: install
	$(BIN)/ruff check .

# Every benchmark's --quick mode, so that the scripts stay alive; results go to a scratch folder
# (full runs write docs/results/). sparse_rivals.py runs FasterRisk in its own environment.
bench-quick: install rivals-env
	out=$$(mktemp -d) && for script in benchmarks/*.py; do \
		echo "== $$script --quick"; $(BIN)/python $$script --quick --out $$out || exit 1; done

# FasterRisk, the sparse integer scoring system benchmarks/sparse_rivals.py compares the sparse start
# with, in an environment of its own: fasterrisk 0.1.10 pins pandas 1.5.2 and scikit-learn 1.2.0 and
# calls ndarray.tostring, which numpy 2.3 removed, so it cannot share .venv (numpy 2.4).
RIVALS_VENV := .venv-rivals
RIVALS_STAMP := $(RIVALS_VENV)/.installed-stamp

$(RIVALS_STAMP):
	python3.11 -m venv $(RIVALS_VENV)
	$(RIVALS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv
	$(RIVALS_VENV)/bin/uv pip install --quiet --python $(RIVALS_VENV)/bin/python \
		'numpy==1.26.4' 'pandas==1.5.2' 'scikit-learn==1.2.0' 'fasterrisk==0.1.10'
	touch $(RIVALS_STAMP)

rivals-env: $(RIVALS_STAMP)

clean:
	rm -rf $(VENV) $(RIVALS_VENV) out .pytest_cache .hypothesis
