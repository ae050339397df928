# The fleet's entry points:
#   make up     start the whole fleet locally (gateway on http://127.0.0.1:8080); Ctrl-C stops it
#   make test   run every test suite (common-libs, the four services, the gateway, e2e); the
#               consumers' pacts are copied to the providers before the providers verify them
#   make down   stop a fleet left running
# Each installs what it needs: uv into .tools/, one venv per folder, and Debian's
# nginx-light / postgresql when they are missing.

SHELL := /bin/bash
ROOT := $(CURDIR)
TOOLS := $(ROOT)/.tools
TOOLS_PY := $(TOOLS)/bin/python
UV := $(TOOLS)/bin/uv
WHEELS := $(ROOT)/.wheels
COMMON_LIBS_VERSION := 4.0.0
COMMON_LIBS_WHEEL := $(WHEELS)/common_libs-$(COMMON_LIBS_VERSION)-py3-none-any.whl
SERVICES := user-service product-catalog-service order-processing-service chat-llm-service
MAKE_ARGS := UV=$(UV) COMMON_LIBS_WHEELS=$(WHEELS) FLEET_PYTHON=$(TOOLS_PY)
export UV_PYTHON_PREFERENCE := only-system

.PHONY: help up down test test-repeat bench venvs tools wheel system-packages docker-context slo-rules contract-excerpts clean

help:
	@echo "make up      start the fleet locally (gateway on http://127.0.0.1:$${GATEWAY_PORT:-8080})"
	@echo "make test    run every test suite, in a random order (SEED=N replays one)"
	@echo "make test-repeat SUITE=<suite> N=10   one suite N times beside a CPU hog (flaky tests)"
	@echo "make down    stop a fleet left running"
	@echo "make bench   measure the fleet (ratios in one run) into bench-results/"
	@echo "make docker-context   put the common-libs wheel where the Dockerfiles expect it"
	@echo "make slo-rules  regenerate observability/rules/ from observability/slo.yml"
	@echo "make contract-excerpts  rewrite each service's CONTRACT.md from docs/API.md"
	@echo "make clean   remove venvs, wheels and tools (keeps .fleet/ data)"

$(TOOLS)/.installed: scripts/requirements-tools.txt
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes \
		-r scripts/requirements-tools.txt
	touch $@

tools: $(TOOLS)/.installed

$(COMMON_LIBS_WHEEL): $(TOOLS)/.installed common-libs/pyproject.toml \
		$(shell find common-libs/src -type f \( -name '*.py' -o -name '*.yml' -o -name py.typed \))
	rm -f $(WHEELS)/common_libs-*.whl
	$(MAKE) -C common-libs wheel UV=$(UV) WHEEL_DIR=$(WHEELS)

wheel: $(COMMON_LIBS_WHEEL)

# After the system packages: e2e's and the gateway's npm packages need npm.
venvs: system-packages $(COMMON_LIBS_WHEEL)
	$(MAKE) -C common-libs venv $(MAKE_ARGS)
	@for service in $(SERVICES); do $(MAKE) -C $$service/src venv venv-run $(MAKE_ARGS) || exit 1; done
	$(MAKE) -C api-gateway-service venv $(MAKE_ARGS)
	$(MAKE) -C e2e venv $(MAKE_ARGS)

system-packages:
	@scripts/ensure-system-packages.sh

test: venvs system-packages
	$(TOOLS_PY) scripts/run_suites.py $(MAKE_ARGS)

# The flaky-test hunt (README, "Flaky tests"), not part of make test: SUITE's make test N times
# beside HOG processes that keep a core busy each, every run in a random order of its own.
N ?= 10
HOG ?= 1
test-repeat: venvs system-packages
	SUITE=$(SUITE) N=$(N) HOG=$(HOG) $(TOOLS_PY) scripts/test_repeat.py $(MAKE_ARGS)

up: venvs system-packages
	$(TOOLS_PY) scripts/fleet.py up

# Benchmarks of the whole fleet (ratios measured in one run): bench-results/bench.md and bench.json.
bench: venvs system-packages
	$(MAKE) -C e2e bench $(MAKE_ARGS)

down: tools
	$(TOOLS_PY) scripts/fleet.py down

# Prometheus's SLO rules, generated from the objectives (scripts/slo_rules.py, with e2e's venv,
# which has PyYAML); make test fails while the committed rules differ from what this writes.
slo-rules: $(COMMON_LIBS_WHEEL)
	$(MAKE) -C e2e venv $(MAKE_ARGS)
	e2e/.venv/bin/python scripts/slo_rules.py

# Each service's part of docs/API.md as <service>/CONTRACT.md, the contract its repository carries
# (scripts/contract_excerpts.py, standard library only); make test fails while one differs.
contract-excerpts: tools
	$(TOOLS_PY) scripts/contract_excerpts.py

# The common-libs wheel inside each service's build context (src/wheels/, git-ignored), for
# `docker build` and `docker compose up --build`.
docker-context: $(COMMON_LIBS_WHEEL)
	@for service in $(SERVICES); do mkdir -p $$service/src/wheels && cp $(COMMON_LIBS_WHEEL) $$service/src/wheels/; done
	@echo "the common-libs wheel is in each service's src/wheels/"

clean:
	rm -rf $(TOOLS) $(WHEELS) common-libs/.venv api-gateway-service/.venv e2e/.venv
	@for service in $(SERVICES); do rm -rf $$service/src/.venv; done
