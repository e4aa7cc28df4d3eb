# Quick start: `make demo` (train on the built-in data, explain a few images) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := runs/demo

.PHONY: demo test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# One stamp per install flavour: `make demo` needs the library only, `make test` the dev tools too.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/batchcam train --dataset shapes --model simple_cnn --mode batchcam --metric l1 --epochs 2 --out $(DEMO)
	$(BIN)/batchcam samples --dataset shapes --out $(DEMO)/samples
	$(BIN)/batchcam explain --run $(DEMO) $(DEMO)/samples/*.png
	@echo
	@echo "Done. Look at $(DEMO)/cam_prototypes.png, $(DEMO)/cam_examples.png, $(DEMO)/misclassified.png,"
	@echo "$(DEMO)/training_curves.png and the heatmaps in $(DEMO)/explanations/; numbers in $(DEMO)/report.json."

CODE := batchcam persistence worker api migrations scripts tests benchmarks

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy batchcam persistence worker api

test: lint
	$(BIN)/pytest

test-fast: $(VENV)/.installed-dev
	$(BIN)/pytest -m "not slow"

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/cam_speed.py
	$(BIN)/python benchmarks/train_overhead.py

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
