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

.PHONY: setup run test lint unit integration bench bench-reindex bench-serving bench-queue test-cluster clean system-deps es-start es-stop lab \
	strip-notebooks bento bento-requirements

# Bootstrap: a plain venv gets the locked uv through its own pip; `uv sync` then makes the venv exactly
# the lock (uv stays: the lock holds it, at the version read above).
$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The stamp file makes setup a no-op until the lock file changes.
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --extra dev
	touch $@

setup: $(VENV)/.installed  ## create .venv with the locked dependencies

# Elasticsearch 8 needs a JDK 17-23 and is fetched with Maven; the browser test needs Chromium; the job
# queue's local broker is Debian's redis-server. Install them from Debian when missing.
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

es-start: setup system-deps  ## start the local Elasticsearch node (fetched once with mvn)
	$(VENV)/bin/ragship es start

es-stop:
	$(VENV)/bin/ragship es stop

run: setup  ## index the project's docs (incrementally) and serve the API and page at http://localhost:3000
	$(VENV)/bin/ragship sync docs README.md --served --store $(STORE)
	RAGSHIP_STORE=$(STORE) exec $(VENV)/bin/bentoml serve bentos.query:RAG --port $(PORT)

bento: setup  ## build the query and the indexing bentos (offline)
	$(VENV)/bin/bentoml build .
	$(VENV)/bin/bentoml build -f bentos/indexing/bentofile.yaml .

bento-requirements: setup  ## refresh bentos/requirements.txt from uv.lock (after changing dependencies)
	$(UV) export --frozen --no-dev --no-hashes --no-emit-project --no-header --no-annotate -o bentos/requirements.txt

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks bentos
	$(VENV)/bin/ruff format --check src tests benchmarks bentos
	$(VENV)/bin/mypy

test: setup system-deps lint  ## install everything and run the whole suite (starts its own Elasticsearch)
	$(UV) pip check --python $(VENV)/bin/python
	@# pytest exits 5 when it collected nothing: for this project that is a failure, not a pass.
	$(VENV)/bin/pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Not part of `make test`: builds kube-apiserver, kube-controller-manager and KEDA once (cached under
# /var/cache/ragship/k8s), then starts a control plane without a kubelet (docs/kubernetes-test-cluster.md).
test-cluster: setup system-deps  ## the Helm chart on a real control plane: KEDA scales workers 0 -> N -> 0 (root)
	$(VENV)/bin/python deploy/cluster/build.py >/dev/null
	$(VENV)/bin/pytest tests/cluster -m cluster -s --timeout=1800

unit: setup  ## the fast tests: no services, no network
	$(VENV)/bin/pytest tests/unit

integration: setup system-deps  ## the tests against real services (Elasticsearch, MLflow, BentoML, papermill)
	$(VENV)/bin/pytest tests/integration

bench: setup  ## retrieval latency of the embedded store at 1k/10k/50k chunks
	$(VENV)/bin/python benchmarks/store_latency.py --sizes 1000 10000 50000

bench-serving: setup  ## p50/p99 of /retrieve and /ask at 1 and 16 clients; embedder throughput with/without batching
	$(VENV)/bin/python benchmarks/serving.py

bench-reindex: setup  ## incremental (1% changed) vs full reindex of NFCorpus, one file per document
	$(VENV)/bin/python benchmarks/reindex_incremental.py

bench-queue: setup system-deps  ## indexing throughput via the job queue with 1, 2 and 4 workers vs direct indexing
	$(VENV)/bin/python benchmarks/queue_throughput.py --limit 400 --workers 1 2 4 --per-job 10

lab: setup  ## JupyterLab on the notebooks
	cd notebooks && ../$(VENV)/bin/jupyter lab

strip-notebooks: setup  ## clear notebook outputs before committing
	$(VENV)/bin/jupyter nbconvert --clear-output --inplace notebooks/*.ipynb

clean:
	rm -rf $(VENV) .tools .ragship .scratch .pytest_cache .mypy_cache .ruff_cache
