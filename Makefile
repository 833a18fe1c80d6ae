# The README's two commands: `make run` and `make test`. Both create .venv and install into it when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint container-venv bench bench-serve bench-tui clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/housing-tui

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Python 3.9 with the SageMaker scikit-learn image's packages (core/sklearn_image.py), for the container tests.
# Cached: a second run takes well under a second; a first one about a minute.
container-venv:
	@bash tools/container_venv.sh

test: lint container-venv
	$(BIN)/python -m pytest -q -n auto --dist loadfile

# Each benchmark prints its figures; --write puts them into bench/RESULTS.md.
bench: $(STAMP) container-venv
	$(BIN)/python bench/pipeline.py --write
	$(BIN)/python bench/tui.py --repeat 5 --versions 1000 --write
	$(BIN)/python bench/parity.py --write
	$(BIN)/python bench/sagemaker_calls.py --write

bench-tui: $(STAMP)
	$(BIN)/python bench/tui.py --repeat 5 --versions 1000 --write

# About 7 minutes; the first run also builds MLflow's environment (.venv-bench-mlflow) to compare with.
bench-serve: $(STAMP)
	@command -v wrk >/dev/null || { echo "bench-serve needs wrk: apt-get update && apt-get install -y wrk"; exit 2; }
	$(BIN)/python bench/serve.py --floor --repeat 3 --write

clean:
	rm -rf $(VENV) .venv-container build *.egg-info
