# Quick start: `make demo` (the service on the embedded default, toured over HTTP) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := runs/demo

.PHONY: demo demo-cli test test-fast lint bench reproduce reproduce-tiny clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# One stamp per install flavour: the library alone, the service, the dev tools (all of it).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-service: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[service]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-dev: pyproject.toml clients/python/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(BIN)/pip install --quiet --disable-pip-version-check -e './clients/python[cli]'
	touch $@ $(VENV)/.installed $(VENV)/.installed-service

# DEMO_ARGS=--exit stops the service after the tour instead of serving until Ctrl-C.
demo: $(VENV)/.installed-service
	$(BIN)/python scripts/service_demo.py $(DEMO_ARGS)

demo-cli: $(VENV)/.installed
	$(BIN)/batchcam train --dataset shapes --model simple_cnn --mode batchcam --metric l1 --epochs 2 --out $(DEMO)
	$(BIN)/batchcam samples --dataset shapes --out $(DEMO)/samples
	$(BIN)/batchcam explain --run $(DEMO) $(DEMO)/samples/*.png
	@echo
	@echo "Done. Look at $(DEMO)/cam_prototypes.png, $(DEMO)/cam_examples.png, $(DEMO)/misclassified.png,"
	@echo "$(DEMO)/training_curves.png and the heatmaps in $(DEMO)/explanations/; numbers in $(DEMO)/report.json."

CODE := batchcam persistence worker api migrations scripts tests benchmarks clients

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy batchcam persistence worker api
	$(BIN)/mypy clients/python/batchcam_client
	$(BIN)/lint-imports  # the import rules of docs/ARCHITECTURE.md §9 ([tool.importlinter])

test: lint
	bash scripts/test_services.sh  # Postgres and Redis must answer (started here if installed but down)
	bash scripts/install_chromium.sh  # Debian's Chromium for tests/browser (apt-get as root)
	$(BIN)/pytest

test-fast: $(VENV)/.installed-dev
	bash scripts/install_chromium.sh
	$(BIN)/pytest -m "not slow"

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/cam_speed.py
	$(BIN)/python benchmarks/train_overhead.py
	$(BIN)/python benchmarks/api_latency.py
	$(BIN)/python benchmarks/api_footprint.py
	$(BIN)/python benchmarks/explain_latency.py
	$(BIN)/python benchmarks/faithfulness_cost.py
	$(BIN)/python benchmarks/faithfulness_job_overhead.py

# MNIST/Fashion-MNIST come from $$BATCHCAM_DATA_DIR or are downloaded; finished cells are skipped.
reproduce: $(VENV)/.installed
	$(BIN)/python benchmarks/reproduce.py run --grid paper-cpu --grid decoy-cpu --out docs/results

reproduce-tiny: $(VENV)/.installed
	$(BIN)/python benchmarks/reproduce.py run --grid tiny --out runs/reproduce-tiny

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
