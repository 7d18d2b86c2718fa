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

.PHONY: help venv model test test-unit bench bench-reference lint format clean build build-host invoke \
	build-SpladeFunction sam-venv checkov-venv soak

help:
	@echo "make invoke   run the sample event through the built function (Lambda runtime emulator)"
	@echo "make test     set everything up and run the tests (lint included)"
	@echo "make model    fetch the pinned weights and build model_assets/ (no-op when up to date)"
	@echo "make bench    benchmark (make bench-reference first for the torch comparison)"
	@echo "make soak     1,000 mixed invocations through one emulator: latency, RSS growth"
	@echo "make build    the arm64 zip and its sizes (ARCH=x86_64 for x86)"
	@echo "make lint     ruff, mypy, sam validate --lint, cfn-lint, checkov"

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

# --- Lambda artifact --------------------------------------------------------------------------------
ARCH ?= arm64
LAMBDA_PYTHON ?= 3.12
SAM_CLI_VERSION := 1.170.0
HOST_ARTIFACT := build/artifact-host
HOST_RUNTIME := build/runtime-host
RIE := build/rie/aws-lambda-rie-x86_64
ARTIFACT_INPUTS := $(wildcard handler/*.py) requirements.txt scripts/build_artifact.py $(MODEL)

# `sam build` (BuildMethod: makefile) calls this with ARTIFACTS_DIR; ARCH=x86_64 for x86_64 deployments.
build-SpladeFunction: $(MODEL) $(VENV)/.installed
	$(PY) scripts/build_artifact.py --dest "$(ARTIFACTS_DIR)" --arch $(ARCH) --python-version $(LAMBDA_PYTHON)

# The deployable zip for ARCH, with its sizes (targets for arm64: <= 40 MB zipped, <= 130 MB unzipped).
build: $(MODEL) $(VENV)/.installed
	$(PY) scripts/build_artifact.py --dest build/artifact-$(ARCH) --arch $(ARCH) --python-version $(LAMBDA_PYTHON) \
		--zip build/splade-$(ARCH).zip

# The same recipe for this machine, plus what the Lambda runtime provides (awslambdaric, boto3 in /var/runtime).
build-host: $(HOST_ARTIFACT)/.built $(HOST_RUNTIME)/.installed $(RIE)
$(HOST_ARTIFACT)/.built: $(ARTIFACT_INPUTS) | $(VENV)/.installed
	$(PY) scripts/build_artifact.py --dest $(HOST_ARTIFACT) --host
	touch $@
$(HOST_RUNTIME)/.installed: | $(VENV)/.installed
	$(PIP) install --quiet --only-binary=:all: --target $(HOST_RUNTIME) awslambdaric==4.2.2 boto3==1.44.5
	touch $@
# The Lambda Runtime Interface Emulator ships inside the aws-sam-cli wheel; only that file is extracted.
$(RIE): | $(VENV)/.installed
	rm -rf build/rie-wheel && $(PIP) download --quiet --no-deps -d build/rie-wheel aws-sam-cli==$(SAM_CLI_VERSION)
	mkdir -p $(dir $(RIE))
	$(PY) -c "import zipfile,glob,sys; z=zipfile.ZipFile(glob.glob('build/rie-wheel/*.whl')[0]); \
		open(sys.argv[1],'wb').write(z.read('samcli/local/rapid/aws-lambda-rie-x86_64'))" $(RIE)
	chmod +x $(RIE) && rm -rf build/rie-wheel

EVENT ?= events/http-api-v2-expand.json
invoke: build-host
	$(PY) scripts/local_invoke.py --event $(EVENT)

# --- tests ------------------------------------------------------------------------------------------
test: venv model build-host lint
	$(PY) -m pytest

test-unit: venv model
	$(PY) -m pytest -m "not integration"

SAM_VENV := build/venv-sam
CHECKOV_VENV := build/venv-checkov
sam-venv: $(SAM_VENV)/.installed
$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION) cfn-lint==1.58.0
	touch $@
# checkov in its own venv: next to aws-sam-cli it downgrades boto3 and breaks it.
checkov-venv: $(CHECKOV_VENV)/.installed
$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check checkov==3.3.30
	touch $@

lint: venv sam-venv checkov-venv
	$(PY) -m ruff format --check handler scripts tests
	$(PY) -m ruff check handler scripts tests
	$(PY) -m mypy handler
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --template template.yaml
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml

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

bench: venv model build-host
	$(PY) scripts/bench.py --reference-python $(REF_VENV)/bin/python

# 1,000 mixed valid/invalid invocations through one emulator (make test runs a 100-invocation version).
soak: venv model build-host
	$(PY) scripts/soak.py --count 1000

clean:
	rm -rf build model_assets/*.onnx model_assets/*.json .pytest_cache .mypy_cache .ruff_cache
