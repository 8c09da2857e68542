# Everything a fresh machine with Python 3.11 and pip needs: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test bench-quick clean

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
# (full runs write docs/results/).
bench-quick: install
	out=$$(mktemp -d) && for script in benchmarks/*.py; do \
		echo "== $$script --quick"; $(BIN)/python $$script --quick --out $$out || exit 1; done

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
