# Two commands a new user needs: `make train` and `make test`.
# Both create (once) a local virtual environment in .venv and install lucid into it;
# the install re-runs only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: train test bench clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

train: $(STAMP)
	$(PY) scripts/train.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 tests $(ARGS)

bench: $(STAMP)
	$(PY) scripts/bench.py $(ARGS)

clean-venv:
	rm -rf $(VENV)
