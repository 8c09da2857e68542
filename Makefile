# Everything a fresh machine with Python 3.11 and pip needs: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test bench-quick rivals-env clean

# uv installs the ~110 distributions in seconds where pip takes minutes; it comes from PyPI too.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/intnet train --dataset heart --train-size 200 --batch-size 40 --P 3 --hidden 16 \
		--epochs 2 --workers 2 --time-limit 30 --seed 1 --out out/heart.parquet
	$(BIN)/intnet info out/heart.parquet

test: install
	$(BIN)/python -m pytest

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
