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
# What `sam build` ships, named once in the deploy configuration: the template's Architecture (parameter_overrides)
# and the model directory (model_dir). ARCH=... and MODEL_DIR=... on the command line or in the environment win.
SAMCONFIG ?= samconfig.toml
DEPLOY_CONFIG := $(shell $(PYTHON) scripts/deploy_config.py --config "$(SAMCONFIG)")
ifeq ($(words $(DEPLOY_CONFIG)),2)
ARCH ?= $(word 1,$(DEPLOY_CONFIG))
MODEL_DIR ?= $(word 2,$(DEPLOY_CONFIG))
else
$(error could not read the architecture and model_dir from $(SAMCONFIG) (scripts/deploy_config.py))
endif

.PHONY: help venv model convert eval idf bench-budget test-reference test test-unit test-image-base test-all bench bench-image bench-ingest bench-cost bench-reference bench-quick bench-baseline bench-apikey bench-client opensearch-step lint format clean build build-host image invoke \
	build-ApiFunction build-IngestFunction build-PreflightFunction artifact sam-venv checkov-venv soak sam-images sam-prepare sam-build sam-invoke sam-api \
	sam-lambda sam-build-arch docker-up docker-down asl-validator

help:  ## this list (every target; VAR=value pairs are optional)
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-zA-Z][a-zA-Z_ -]*:[^=]*## / {printf "make %-24s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(VENV)/.installed  ## the dev venv in .venv (requirements-dev.txt, this project editable)
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-dev.txt
	$(PIP) install --quiet --no-deps --editable .  # splade_expander, splade_client, splade_tools, splade_convert, handler; splade-expand
	echo "$(CURDIR)" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/splade-checkout.pth"  # devkit and scripts (never installed) importable from scripts and tests
	touch $@

# --- model: pinned wheel -> verified safetensors -> fused ONNX graphs -----------------------------
$(SOURCE)/provenance.json: scripts/fetch_weights.py | $(VENV)/.installed
	$(PY) scripts/fetch_weights.py --dest $(SOURCE)

MODEL_SCRIPTS := scripts/build_model.py $(sort $(shell find splade_convert -name "*.py" -not -path "*/__pycache__/*"))
$(MODEL): $(SOURCE)/provenance.json $(MODEL_SCRIPTS) requirements-dev.txt | $(VENV)/.installed
	$(PY) scripts/build_model.py --source $(SOURCE) --out model_assets --precision int8 --manifest --provenance $(SOURCE)/provenance.json

$(FP32_DIR)/model.onnx: $(SOURCE)/provenance.json $(MODEL_SCRIPTS) requirements-dev.txt | $(VENV)/.installed
	$(PY) scripts/build_model.py --source $(SOURCE) --out $(FP32_DIR) --precision fp32 --manifest --provenance $(SOURCE)/provenance.json

$(LOGITS_DIR)/model.onnx: $(SOURCE)/provenance.json $(MODEL_SCRIPTS) scripts/logits_graph.py requirements-dev.txt | $(VENV)/.installed
	$(PY) scripts/logits_graph.py --source $(SOURCE) --out $(LOGITS_DIR) --manifest --provenance $(SOURCE)/provenance.json

model: $(MODEL) $(FP32_DIR)/model.onnx $(LOGITS_DIR)/model.onnx  ## fetch the pinned weights and build model_assets/ (int8) and the fp32 / logits graphs (no-op when up to date)

# Bring your own model: a local Hugging Face masked-LM directory (a pretrained model): BERT, DistilBERT, RoBERTa,
# XLM-R or GTE v1.5 (config.json, model.safetensors, tokenizer.json or vocab.txt) -> OUT (model.onnx,
# tokenizer.json, manifest.json). The Makefile's SOURCE is the bundled model's download, hence PRETRAINED.
# MODEL_DIR=OUT serves it. LAYERS: the precision of the transformer layers. CHECKPOINT= and ENCODER= are the
# names before 0.2, still accepted for one release ("checkpoint" is ingest's resume point, "encoder" a query mode).
CHECKPOINT ?=
PRETRAINED ?= $(CHECKPOINT)
OUT ?=
PRECISION ?= int8
ENCODER ?= auto
LAYERS ?= $(ENCODER)
ACTIVATION ?= log1p_relu
convert: | $(VENV)/.installed  ## convert PRETRAINED=<hf dir> (BERT, DistilBERT, RoBERTa, XLM-R, GTE v1.5 masked-LM) into OUT=<dir> [PRECISION=int8|fp32] [LAYERS=auto|int8|fp32] [ACTIVATION=log1p_relu|log1p_log1p_relu]
	@test -n "$(PRETRAINED)" -a -n "$(OUT)" || { echo "usage: make convert PRETRAINED=<hf model dir> OUT=<model dir>"; exit 2; }
	$(PY) scripts/build_model.py --source "$(PRETRAINED)" --out "$(OUT)" --precision $(PRECISION) \
		--layers $(LAYERS) --activation $(ACTIVATION) --manifest

# Quality and inference-free queries. DATA: a BEIR-format directory (corpus.jsonl, queries.jsonl, qrels/test.tsv);
# the bundled one is eval/pydoc (scripts/make_pydoc_set.py). make idf writes OUT/idf.json (OUT: model_assets).
DATA ?= eval/pydoc
eval: model  ## nDCG@10, MRR@10, Recall@100 of the model, idf queries, BM25 and hybrids on DATA=<BEIR dir> [MODEL_DIR=<dir>]
	$(PY) scripts/eval.py --data "$(DATA)" --model-dir "$(MODEL_DIR)"

idf: model  ## write OUT/idf.json from DATA=<corpus.jsonl|BEIR dir>, or from DF=<dir|s3://bucket/prefix> of .df.json files [OUT=model_assets]
	$(PY) scripts/idf.py $(if $(DF),--merge "$(DF)",--data "$(DATA)") --out "$(or $(OUT),model_assets)"

bench-budget: model  ## measure MODEL_DIR's seconds per window and record its HTTP work budget (max_request_windows) in its manifest
	$(PY) scripts/bench_base.py --budget-only "$(MODEL_DIR)"

# --- Lambda artifact --------------------------------------------------------------------------------
LAMBDA_PYTHON ?= 3.13
SAM_CLI_VERSION := 1.170.0
HOST_ARTIFACT := build/artifact-host
HOST_RUNTIME := build/runtime-host
HOST_ARCH := $(shell uname -m)
RIE := build/rie/aws-lambda-rie-$(if $(filter aarch64 arm64,$(HOST_ARCH)),arm64,x86_64)
# .pyc for the Lambda runtime need a Python of its version at build time (any 3.13.x: one bytecode format). Without
# one the zip ships sources only and Lambda compiles every module at each cold start (read-only /var/task).
# PYC_PYTHON=<path> names one; else the first python3.13 on PATH or under ~/.pyenv that runs, if any.
ifeq ($(origin PYC_PYTHON), undefined)
PYC_PYTHON := $(shell for p in $$(command -v python$(LAMBDA_PYTHON)) $$HOME/.pyenv/versions/$(LAMBDA_PYTHON).*/bin/python$(LAMBDA_PYTHON); \
	do "$$p" -c "" 2> /dev/null && { echo "$$p"; break; }; done)
endif
COMPILE_FLAG = $(if $(PYC_PYTHON),--compile-with $(PYC_PYTHON))
# What the zip ships of ours, by folder: the library and the function.
FUNCTION_SOURCES := $(sort $(shell find splade_expander handler -name "*.py" -not -path "*/__pycache__/*"))
ARTIFACT_INPUTS := $(FUNCTION_SOURCES) requirements.txt scripts/build_artifact.py $(MODEL) model_assets/manifest.json \
	$(wildcard model_assets/idf.json)
# SAM builds every function on its own and never de-duplicates `BuildMethod: makefile` builds. Both functions
# ship the same artifact, so it is built once per architecture and inputs, and each function's build is a copy.
# The hash covers the code, the requirements and every file of MODEL_DIR (graph, weights, tokenizer, idf, query/).
MODEL_DIR_FILES = $(shell find "$(MODEL_DIR)/" -type f 2> /dev/null | LC_ALL=C sort)
ARTIFACT_HASH = $(shell cat $(FUNCTION_SOURCES) requirements.txt scripts/build_artifact.py $(MODEL_DIR_FILES) \
	| sha256sum | cut -c1-16)
ARTIFACT_CACHE = build/artifact-cache/$(ARCH)-py$(LAMBDA_PYTHON)$(if $(PYC_PYTHON),-pyc)-$(ARTIFACT_HASH)
SHIPS_BUNDLED_MODEL = $(filter model_assets model_assets/ ./model_assets,$(MODEL_DIR))

artifact: $(VENV)/.installed $(if $(SHIPS_BUNDLED_MODEL),$(MODEL))  ## the Lambda artifact for ARCH and MODEL_DIR (samconfig.toml), cached by a hash of its inputs (used by sam build)
	@test -f "$(MODEL_DIR)/model.onnx" -a -f "$(MODEL_DIR)/manifest.json" || { echo "MODEL_DIR=$(MODEL_DIR)" \
		"(samconfig.toml model_dir, or MODEL_DIR=) has no model.onnx and manifest.json: convert a pretrained model into it" \
		"with make convert PRETRAINED=<dir> OUT=$(MODEL_DIR), or name another directory" >&2; exit 2; }
	@echo "artifact: $(ARCH), model $(MODEL_DIR) ($$($(PYTHON) -c 'import json,sys; m=json.load(open(sys.argv[1])); \
		print(m.get("model_sha256") or m.get("sha256"))' "$(MODEL_DIR)/manifest.json"))"
	@if [ ! -f $(ARTIFACT_CACHE)/.built ]; then \
		rm -rf build/artifact-cache/$(ARCH)-py$(LAMBDA_PYTHON)* && \
		$(PY) scripts/build_artifact.py --dest $(ARTIFACT_CACHE) --arch $(ARCH) --python-version $(LAMBDA_PYTHON) \
			--model-dir "$(MODEL_DIR)" $(COMPILE_FLAG) && \
		touch $(ARTIFACT_CACHE)/.built; \
	fi

# `sam build` (BuildMethod: makefile) calls these with ARTIFACTS_DIR only: ARCH and MODEL_DIR come from samconfig.toml.
build-ApiFunction build-IngestFunction build-PreflightFunction: artifact  ## what `sam build` calls (BuildMethod: makefile) with ARTIFACTS_DIR
	mkdir -p "$(ARTIFACTS_DIR)" && cp -a $(ARTIFACT_CACHE)/. "$(ARTIFACTS_DIR)/" && rm -f "$(ARTIFACTS_DIR)/.built"

# The deployable zip for ARCH, with its sizes (targets for arm64: <= 40 MB zipped, <= 130 MB unzipped).
build: $(MODEL) $(VENV)/.installed  ## the deployable zip for ARCH=arm64|x86_64 and its sizes [MODEL_DIR=<converted model>]; refuses > 250 MB unzipped
	$(PY) scripts/build_artifact.py --dest build/artifact-$(ARCH) --arch $(ARCH) --python-version $(LAMBDA_PYTHON) \
		--zip build/splade-$(ARCH).zip --model-dir "$(MODEL_DIR)" $(COMPILE_FLAG)

# A container image for models past the zip (10 GB instead of 250 MB unzipped): the same /var/task as the zip, on
# the project's offline Debian base image by default, or BASE_IMAGE=public.ecr.aws/lambda/python:3.13 (a registry).
# Deploy it with template-image.yaml (docs/deploy.md: push to ECR, sam deploy --template build/template-image.yaml).
IMAGE ?= splade-expander:$(ARCH)
image: $(VENV)/.installed $(if $(SHIPS_BUNDLED_MODEL),$(MODEL))  ## a Lambda container image of MODEL_DIR for ARCH, tagged IMAGE=splade-expander:<arch> [BASE_IMAGE=public.ecr.aws/lambda/python:3.13]
	@STRICT=1 scripts/docker_host.sh up
	$(if $(BASE_IMAGE),,scripts/lambda_image.sh $(ARCH))
	COMPILE_WITH=$(PYC_PYTHON) scripts/function_image.sh $(ARCH) "$(MODEL_DIR)" $(IMAGE) $(BASE_IMAGE)
	$(PY) scripts/template_image.py > build/template-image.yaml
	@echo "template build/template-image.yaml: sam local invoke ApiFunction --template build/template-image.yaml \
		--parameter-overrides 'ImageUri=$(IMAGE) Architecture=$(ARCH)' --skip-pull-image --event <event>"

# The same recipe for this machine, plus what the Lambda runtime provides (awslambdaric, boto3 in /var/runtime).
build-host: $(HOST_ARTIFACT)/.built $(HOST_RUNTIME)/.installed $(RIE)  ## the artifact for this machine, awslambdaric and the runtime interface emulator
$(HOST_ARTIFACT)/.built: $(ARTIFACT_INPUTS) | $(VENV)/.installed
	$(PY) scripts/build_artifact.py --dest $(HOST_ARTIFACT) --host --compile-with $(PY)
	touch $@
$(HOST_RUNTIME)/.installed: | $(VENV)/.installed
	$(PIP) install --quiet --only-binary=:all: --target $(HOST_RUNTIME) awslambdaric==4.2.2 boto3==1.44.5
	touch $@
# The Lambda Runtime Interface Emulator ships inside the aws-sam-cli wheel; only that file is extracted.
$(RIE): | $(VENV)/.installed
	rm -rf build/rie-wheel && $(PIP) download --quiet --no-deps -d build/rie-wheel aws-sam-cli==$(SAM_CLI_VERSION)
	mkdir -p $(dir $(RIE))
	$(PY) -c "import zipfile,glob,sys; z=zipfile.ZipFile(glob.glob('build/rie-wheel/*.whl')[0]); \
		open(sys.argv[1],'wb').write(z.read('samcli/local/rapid/' + sys.argv[1].rsplit('/', 1)[1]))" $(RIE)
	chmod +x $(RIE) && rm -rf build/rie-wheel

EVENT ?= events/http-api-v2-expand.json
# ENV='MAX_TEXTS=1 ORT_THREADS=1' sets function variables; LOGS=1 prints the function's log lines. MODEL_DIR=<dir> on
# the command line (or in the environment) serves that converted model; without it, the bundled splade-tiny, even
# when samconfig.toml's model_dir names another (that one is what sam build ships).
INVOKE_MODEL = $(if $(filter command line environment,$(origin MODEL_DIR)),$(abspath $(MODEL_DIR)))
invoke: build-host  ## run EVENT=events/x.json through the built function under the Lambda runtime emulator [ENV='K=V ...'] [LOGS=1] [MODEL_DIR=<converted model>]
	$(PY) scripts/local_invoke.py --event $(EVENT) --env-list "$(ENV)" $(if $(LOGS),--show-logs) \
		$(if $(INVOKE_MODEL),--env MODEL_DIR=$(INVOKE_MODEL))

# --- tests ------------------------------------------------------------------------------------------
# As root on Linux, scripts/docker_host.sh starts Docker (and arm64 emulation) for the `sam local` tests and
# stops what it started afterwards; elsewhere those tests skip unless Docker already answers.
test: venv model build-host lint sam-venv asl-validator  ## set everything up, lint, and run every test (starts Docker for the sam local tests as root)
	scripts/docker_host.sh run $(MAKE) --no-print-directory test-all

test-all:  ## the tests only (sam images and builds when Docker answers); make test calls it
	if docker info > /dev/null 2>&1; then $(MAKE) --no-print-directory sam-images sam-build MODEL_DIR=model_assets; fi
	$(PY) -m pytest

test-reference: venv model bench-reference  ## fidelity against transformers + torch (small and base size: BERT, DistilBERT, RoBERTa, XLM-R) and GTE's reference checks
	$(PY) -m pytest -m reference
	$(PY) -m pytest tests/integration/test_gte.py  # GTE has no transformers class: its float64 reference, cross-checked

test-image-base: venv model build-host sam-venv  ## a full base-size XLM-R (250,002 ids) as a container image under sam local invoke (slow; not in make test)
	scripts/docker_host.sh run sh -c '$(MAKE) --no-print-directory sam-images > /dev/null && $(PY) -m pytest -m base_size'

test-unit: venv model  ## the in-process unit tests only (~22 s here, budget 30 s; conversions and SAM translation run in make test)
	$(PY) -m pytest -m "not integration and not slow"

# asl-validator (npm, pinned): the backfill state machine as Step Functions receives it (tests/unit/test_services.py).
ASL_VALIDATOR := build/node/node_modules/.bin/asl-validator
asl-validator: $(ASL_VALIDATOR)  ## asl-validator 4.0.0 from npm in build/node (Node is on these machines)
$(ASL_VALIDATOR):
	npm install --silent --no-audit --no-fund --prefix build/node asl-validator@4.0.0

SAM_VENV := build/venv-sam
CHECKOV_VENV := build/venv-checkov
sam-venv: $(SAM_VENV)/.installed  ## aws-sam-cli and cfn-lint in build/venv-sam
$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION) cfn-lint==1.58.0
	touch $@
# checkov in its own venv: next to aws-sam-cli it downgrades boto3 and breaks it.
checkov-venv: $(CHECKOV_VENV)/.installed  ## checkov in its own venv (build/venv-checkov)
$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check checkov==3.3.30
	touch $@

lint: venv sam-venv checkov-venv  ## ruff format and check, mypy, sam validate --lint, cfn-lint, checkov (SnapStart off and on, and the image template)
	$(PY) -m ruff format --check splade_expander splade_client splade_adapters splade_tools splade_convert handler devkit scripts tests
	$(PY) -m ruff check splade_expander splade_client splade_adapters splade_tools splade_convert handler devkit scripts tests
	$(PY) -m mypy  # every package of ours (pyproject.toml)
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --template template.yaml
	$(SAM_VENV)/bin/cfn-lint template.yaml
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml
	@mkdir -p build && $(PY) scripts/template_variant.py EnableSnapStart=true > build/template-snapstart.yaml
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --template build/template-snapstart.yaml
	$(SAM_VENV)/bin/cfn-lint build/template-snapstart.yaml
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		-f build/template-snapstart.yaml
	$(PY) scripts/template_image.py > build/template-image.yaml
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --template build/template-image.yaml
	$(SAM_VENV)/bin/cfn-lint build/template-image.yaml
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation \
		-f build/template-image.yaml

format: venv  ## ruff format and ruff check --fix
	$(PY) -m ruff format splade_expander splade_client splade_adapters splade_tools splade_convert handler devkit scripts tests
	$(PY) -m ruff check --fix splade_expander splade_client splade_adapters splade_tools splade_convert handler devkit scripts tests

# --- sam local under Docker -------------------------------------------------------------------------
# Offline stand-ins for public.ecr.aws/lambda/python:3.13 (Debian trixie + awslambdaric), one per architecture.
# INVOKE_IMAGE=public.ecr.aws/lambda/python:3.13 uses the real image instead (needs the registry; never in CI).
SAM := SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
INVOKE_IMAGE ?= splade-lambda-python:3.13-$(ARCH)
SAM_BUILD_DIR = build/sam-$(ARCH)

sam-images: venv  ## the offline Lambda base images (Debian trixie + awslambdaric), x86_64 and arm64, cached
	scripts/lambda_image.sh x86_64
	scripts/lambda_image.sh arm64

# What sam-invoke, sam-api and sam-lambda need first: Docker answering (started here as root on Linux, as make test
# does; `make docker-down` stops it), and the base image for ARCH (cached by a hash of its inputs; skipped when
# INVOKE_IMAGE names another image, such as AWS's own).
sam-prepare: sam-venv venv  ## what sam-invoke, sam-api and sam-lambda run first: Docker (started as root), base image for ARCH, sam build
	@STRICT=1 scripts/docker_host.sh up  # starts Docker where it can (root, Linux), else one line saying what to do
	$(if $(filter splade-lambda-python:%,$(INVOKE_IMAGE)),scripts/lambda_image.sh $(ARCH))
	$(MAKE) --no-print-directory sam-build-arch ARCH=$(ARCH)

# `sam build` for both architectures (the artifact cache makes the second function of each a copy).
sam-build: sam-venv  ## sam build for both architectures into build/sam-<arch>
	$(MAKE) --no-print-directory sam-build-arch ARCH=x86_64
	$(MAKE) --no-print-directory sam-build-arch ARCH=arm64
sam-build-arch: sam-venv model venv  ## sam build for ARCH only
	ARCH=$(ARCH) $(SAM) build --build-dir $(SAM_BUILD_DIR) --parameter-overrides Architecture=$(ARCH) > /dev/null

# scripts/sam_local.py: ingest events (and start-lambda) get a local S3 with the sample documents for the life of the
# command, reached through the Docker bridge gateway; the containers get dummy credentials and never reach AWS.
SAM_LOCAL_RUN = $(PY) scripts/sam_local.py --arch $(ARCH) --invoke-image $(INVOKE_IMAGE)
sam-invoke: sam-prepare  ## the real sam local invoke of EVENT=events/x.json, ARCH=arm64|x86_64 (Docker; builds its image; ingest events get a local S3)
	$(SAM_LOCAL_RUN) invoke --event $(EVENT)
sam-api: sam-prepare  ## sam local start-api on 127.0.0.1:3000, ARCH=... (Docker; builds its image)
	$(SAM_LOCAL_RUN) api --port 3000
sam-lambda: sam-prepare  ## sam local start-lambda on 127.0.0.1:3001, ARCH=... (Docker; builds its image; a local S3 for ingest events)
	$(SAM_LOCAL_RUN) lambda --port 3001

# Start Docker (and arm64 emulation) yourself on a Linux root machine; `make test` does this on its own.
docker-up:  ## start dockerd and arm64 emulation (root, Linux)
	scripts/docker_host.sh up
docker-down:  ## stop what docker-up started
	scripts/docker_host.sh down

# --- benchmark --------------------------------------------------------------------------------------
REF_VENV := build/venv-reference
bench-reference: $(REF_VENV)/.installed  ## torch 2.13.0 CPU + transformers 5.24.0 in build/venv-reference, for make bench and make test-reference
$(REF_VENV)/.installed:
	$(PYTHON) -m venv $(REF_VENV)
	$(REF_VENV)/bin/pip install --quiet --disable-pip-version-check torch==2.13.0 transformers==5.24.0 safetensors numpy
	touch $@

# BASELINE: the last landed main; the ingest rows compare this checkout's throughput with it in the same run.
BASELINE ?= e8445e3
bench: venv model build-host  ## the benchmark: throughput, latency, cold start, memory, ingest vs BASELINE=<ref>
	$(PY) scripts/bench.py --reference-python $(REF_VENV)/bin/python --baseline $(BASELINE)
	$(MAKE) --no-print-directory bench-image

# Every stage of make bench once, tiny sizes, no base-size models or image (make test runs it through
# tests/integration/test_bench.py): proves the bench runs; its figures are not measurements.
bench-quick: venv model build-host  ## every stage of make bench once at tiny sizes (what make test runs; figures are not measurements)
	$(PY) scripts/bench.py --quick --reference-python $(REF_VENV)/bin/python --baseline HEAD

bench-image: venv model build-host  ## a base-size model as a zip and as a container image: emulator-measured init and sizes (Docker, started as root)
	scripts/docker_host.sh run sh -c '$(MAKE) --no-print-directory sam-images > /dev/null && \
		$(PY) scripts/bench_image.py --compile-with "$(PYC_PYTHON)"'

bench-ingest: venv model  ## ingest docs/s and peak RSS vs the last landed main (BASELINE=<ref>)
	$(PY) scripts/bench.py --only-ingest --baseline $(BASELINE)

bench-baseline: venv model  ## docs/s (batch 1 and 16) and the init time vs the last landed main (BASELINE=<ref>), alternated
	$(PY) scripts/bench.py --only-baseline --baseline $(BASELINE)

opensearch-step: venv model  ## input_docs_processed_step_size for an ml-commons connector [MODEL_DIR=<dir>] [MAX_TEXTS=64 MAX_WINDOWS=64]
	$(PY) -m splade_tools.opensearch --model-dir "$(MODEL_DIR)" --max-texts $(or $(MAX_TEXTS),64) --max-windows $(or $(MAX_WINDOWS),64)

bench-apikey: venv model build-host  ## ApiAuth=apikey: the first keyed request of an environment and a warm one, under the runtime emulator
	$(PY) scripts/bench_apikey.py

bench-client: venv model build-host  ## the client's cost per call over a raw urllib3 POST, with SigV4, and its calls for 1,000 texts (runtime emulator behind the API shim)
	$(PY) scripts/bench_client.py

bench-cost: venv model build-host  ## dollars per million documents and queries at 512-3,008 MB, arm64 and x86_64 (LAMBDA_PRICE_*=... to override prices)
	$(PY) scripts/bench.py --only-cost

# 1,000 mixed valid/invalid invocations through one emulator (make test runs a 100-invocation version).
soak: venv model build-host  ## 1,000 mixed invocations through one emulator, then a 50 MB JSONL over many continuations
	$(PY) scripts/soak.py --count 1000
	$(PY) scripts/soak_ingest.py --mb 50 --timeout 60

clean:  ## remove build/, the built model files and tool caches (make model rebuilds them); models/ (your converted models) stays
	rm -rf build model_assets/*.onnx model_assets/*.onnx.data model_assets/*.json .pytest_cache .mypy_cache .ruff_cache .hypothesis
