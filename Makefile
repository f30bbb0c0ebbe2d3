# BOS: one entry point for set-up, tests, the demo, benchmarks and packaging.
# Every target installs what it needs, so a fresh clone on a fresh machine works.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The server side needs Python 3.11+; take the newest interpreter on PATH that qualifies.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { command -v $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
PKGS := shared server reporter simulator cli
STAMP := $(VENV)/.installed
NODES ?= 1000
FAIL ?=
QUICK ?=
KEEP ?=
PYTEST_ARGS ?=
RPM_OUT ?= dist/rpm

.PHONY: help venv os-deps test demo bench rpm image clean mutation lint constraints soak
.PHONY: browser-deps

help:
	@echo "make demo   boot $(NODES) simulated nodes end to end (NODES=N; FAIL='--fail-cfs-rate 0.02 ...';"
	@echo "            KEEP=1 keeps the stack and its dashboard up until Ctrl-C)"
	@echo "make test   run the test suite (installs what it needs)"
	@echo "make bench  run the benchmarks into docs/benchmarks.md (QUICK=1 smoke sizes, SIZES=1000,10000)"
	@echo "make lint   ruff and mypy"
	@echo "make mutation  switch each guarded mechanism off and show its tests go red"
	@echo "make soak   operator replicas at scale: SOAK_NODES nodes, SOAK_ROUNDS rounds, kill/pause, handover time"
	@echo "make rpm    build the bos-reporter RPM into dist/rpm/"
	@echo "make image  build the service container image (podman or buildah; IMAGE=bos:VERSION)"
	@echo "make venv   create .venv with every package installed editable"

venv: $(STAMP)

$(STAMP): $(foreach p,$(PKGS),$(p)/pyproject.toml) requirements-dev.txt constraints.txt
	@test -n "$(PYTHON)" || { echo "error: Python 3.11 or newer is required" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing Python packages into $(VENV) (log: $(VENV)/install.log)"
	@{ $(PY) -m pip install --upgrade pip && \
	   $(PY) -m pip install -c constraints.txt -r requirements-dev.txt $(foreach p,$(PKGS),-e ./$(p)); } > $(VENV)/install.log 2>&1 \
	   || { tail -30 $(VENV)/install.log; exit 1; }
	@touch $@

# Debian packages the tests and the demo use; installed only when missing.
os-deps:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v rpmbuild >/dev/null 2>&1 || missing="$$missing rpm"; \
	if [ -n "$$missing" ]; then \
		echo "installing OS packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The dashboard's browser tests use headless Chromium; when it cannot be installed they skip and say so.
browser-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
		echo "installing OS packages:$$missing"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } \
		|| echo "could not install$$missing: the dashboard browser tests will be skipped"; \
	fi

# The suite mostly waits (simulated nodes booting, servers starting), so it runs on several
# pytest-xdist workers even on two cores: one module per worker at a time, longest first
# (tests/support/schedule.py). TEST_WORKERS=0 runs it in this process, serially.
TEST_WORKERS ?= 4
test: os-deps browser-deps venv lint
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder) $(PYTEST_ARGS)

demo: os-deps venv
	$(PY) -m bos_sim.demo --nodes $(NODES) $(FAIL) $(if $(KEEP),--keep-running,)

# Benchmarks (bench/run.py --help): QUICK=1 smoke sizes; SIZES=1000,10000 node/component counts
# of both parts; BENCH_ARGS for anything else (e.g. --only e2e --latencies zero --realistic-max 10000).
# wrk and curl (Debian) are the C clients of the reporter load and the full listing; without them a
# Python client measures instead and the results say so.
BENCH_STAMP := $(VENV)/.bench-installed
bench: os-deps venv $(BENCH_STAMP)
	@missing=""; for tool in wrk curl; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then echo "installing OS packages:$$missing"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } \
		|| echo "could not install$$missing: the Python client measures instead (the results say so)"; fi
	$(PY) bench/run.py $(if $(QUICK),--quick,) $(if $(SIZES),--api-sizes $(SIZES) --e2e-sizes $(SIZES),) $(BENCH_ARGS)
	$(PY) -m bench.v1 $(if $(QUICK),--nodes 200 --status-nodes 2000 --runs 5,) --out bench/results/$(if $(QUICK),quick/,)v1.json
	$(PY) -m bench.auth_overhead $(if $(QUICK),--runs 1 --seconds 3 --warmup 3,) --out bench/results/$(if $(QUICK),quick/,)auth.json
	$(PY) -m bench.ab_observe $(if $(QUICK),--components 1000 --rounds 1 --seconds 2 --warmup 1,) --out bench/results/$(if $(QUICK),quick/,)observe.json

$(BENCH_STAMP): bench/requirements.txt $(STAMP)
	$(PY) -m pip install -q -r bench/requirements.txt
	@touch $@

# Pin what the venv has now (after changing a range in a pyproject or requirements file, `make venv` then this).
constraints: venv
	@{ echo "# Exact versions \`make venv\` installs (pip -c): CI and every developer get the set the suite was"; \
	   echo "# last run with. Regenerate with \`make constraints\` after changing a dependency range."; \
	   $(PY) -m pip freeze --exclude-editable | grep -v '^bos-\|^-e\|^#'; } > constraints.txt

# ruff (ruff.toml) and mypy (mypy.ini: strict on shared/, checked bodies elsewhere), on the packages
# under their import names (each folder *is* its package, so mypy reads them through symlinks).
TYPECHECK := build/typecheck
lint: venv
	$(PY) -m ruff check --quiet .
	@mkdir -p $(TYPECHECK) && ln -sfn ../../shared $(TYPECHECK)/bos_shared && ln -sfn ../../server $(TYPECHECK)/bos_server \
		&& ln -sfn ../../reporter $(TYPECHECK)/bos_reporter && ln -sfn ../../simulator $(TYPECHECK)/bos_sim \
		&& ln -sfn ../../cli $(TYPECHECK)/bos_cli && ln -sfn ../../bench $(TYPECHECK)/bench
	cd $(TYPECHECK) && ../../$(PY) -m mypy --config-file ../../mypy.ini --cache-dir ../mypy-cache \
		-p bos_shared -p bos_server -p bos_reporter -p bos_sim -p bos_cli -p bench

# Switch each guarded mechanism off (compare-and-set, 409 rule, ...) and show its tests go red
# (tests/mutation/mutants.py lists them; `make test` runs the same check as a test).
mutation: os-deps venv
	$(PY) -m tests.mutation

# Several bos-operators replicas (docs/ha.md), larger and longer than the short version in
# `make test`: boot/reboot/shutdown rounds with 3 then 2 replicas, kill -9 and SIGSTOP past the
# lease, every action counted per node; then the handover time after a kill (bench/handover.py)
# and the replica mutants (leases, fence, decision records off: their tests must go red).
SOAK_NODES ?= 1000
SOAK_ROUNDS ?= 3
soak: os-deps venv
	BOS_SOAK_NODES=$(SOAK_NODES) BOS_SOAK_ROUNDS=$(SOAK_ROUNDS) $(PY) -m pytest tests/operators/test_replicas.py -q -s $(PYTEST_ARGS)
	$(PY) -m bench.handover --nodes 200 --lease 10 --runs 3
	$(PY) -m tests.mutation no-leases no-fence no-adoption

# A noarch RPM of the node agent (spec in packaging/rpm/), built with rpmbuild into $(RPM_OUT).
rpm: os-deps venv
	$(PY) packaging/rpm/build.py --out $(RPM_OUT)

# The service image (deploy/Containerfile): needs podman or buildah and a reachable base image
# (PYTHON_IMAGE=... for a mirror). `make test` checks the file statically instead (tests/deploy).
IMAGE ?= bos:$(shell sed -n 's/^version = "\(.*\)"/\1/p' server/pyproject.toml)
IMAGE_ARGS ?=
image:
	@tool=$$(command -v podman || command -v buildah) || { echo "error: podman or buildah is required" >&2; exit 1; }; \
	$$tool build -f deploy/Containerfile --ignorefile deploy/container/ignore -t $(IMAGE) $(IMAGE_ARGS) . && \
	if command -v podman >/dev/null; then \
		for cmd in "bos-server --help" "bos-operators --help" "bos-import --help" "bos --help"; do \
			podman run --rm $(IMAGE) $$cmd >/dev/null || exit 1; done; \
		echo "$(IMAGE): built; bos-server, bos-operators, bos-import and bos start"; fi

clean:
	rm -rf $(VENV) dist build */*.egg-info .pytest_cache
