# ktrdr — the two commands a new machine needs are `make run` and `make test`.
# Every target creates or updates the virtual environment itself.

PYTHON_BOOT ?= python3.11
VENV        := .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
NODE_STAMP  := tests/interop/node_modules/.installed
RUN_DIR     ?= $(CURDIR)/.run

.PHONY: install run test bench protos lint clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON_BOOT) >/dev/null || { echo "need $(PYTHON_BOOT)"; exit 2; }
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel on disk; any other spec downloads a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# compat mode: a plain .pth path entry; the default finder hook costs ~15 ms at every start
	$(PY) -m pip install -q -e '.[dev,bench]' --config-settings editable_mode=compat
	touch $@

install: $(STAMP)

$(NODE_STAMP): tests/interop/package.json tests/interop/package-lock.json
	cd tests/interop && npm ci --no-audit --no-fund --silent
	touch $@

# Starts ktrdrd with its embedded defaults in .run/, then trains neuro_mean_reversion end to end.
run: $(STAMP)
	$(PY) -m ktrdr.demo --run-dir $(RUN_DIR)

# Tests wait on real processes more than they compute: one pytest worker per core, each test file
# kept on one worker so its module-scoped rigs (daemons, hosts, trained models) are built once.
test: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest -q -n auto --dist loadfile tests

bench: $(STAMP)
	# Benchmarks measure installed code with bytecode, as users run it.
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m compileall -q ktrdr ktrdrd ktrdrctl bench
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m bench

protos: $(STAMP)
	$(PY) -m ktrdr.tools.genprotos

lint: $(STAMP) $(NODE_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m ktrdr.tools.genprotos --check
	cd protos && ../tests/interop/node_modules/.bin/buf lint
	# verify copies whose ExecStart points at this checkout's ktrdrd / hostd (the units name /opt/ktrdr)
	@tmp=$$(mktemp -d) && \
	  sed 's|^ExecStart=/opt/ktrdr/.venv/bin/ktrdrd|ExecStart=$(CURDIR)/$(VENV)/bin/ktrdrd|' systemd/ktrdrd.service > $$tmp/ktrdrd.service && \
	  out=$$(systemd-analyze verify $$tmp/ktrdrd.service 2>&1 >/dev/null); rm -rf $$tmp; \
	  if [ -n "$$out" ]; then echo "$$out"; echo "systemd-analyze verify: output on stderr"; exit 1; fi
	@for unit in systemd/hostd-*.service; do \
	  tmp=$$(mktemp -d) && name=$$(basename $$unit) && \
	  sed 's|^ExecStart=/opt/ktrdr/.venv/bin/hostd|ExecStart=$(CURDIR)/$(VENV)/bin/hostd|' $$unit > $$tmp/$$name && \
	  out=$$(systemd-analyze verify $$tmp/$$name 2>&1 >/dev/null); rm -rf $$tmp; \
	  if [ -n "$$out" ]; then echo "$$out"; echo "systemd-analyze verify $$name: output on stderr"; exit 1; fi; \
	done
	# the user unit, as a user manager reads it (ExecStart=%h/ktrdr/... pointed at this checkout;
	# a user manager needs an XDG_RUNTIME_DIR, a temporary one here)
	@tmp=$$(mktemp -d) && mkdir $$tmp/xdg && \
	  sed 's|^ExecStart=%h/ktrdr/.venv/bin/ktrdrd|ExecStart=$(CURDIR)/$(VENV)/bin/ktrdrd|' systemd/user/ktrdrd.service > $$tmp/ktrdrd.service && \
	  out=$$(XDG_RUNTIME_DIR=$$tmp/xdg systemd-analyze --user verify $$tmp/ktrdrd.service 2>&1 >/dev/null); rm -rf $$tmp; \
	  if [ -n "$$out" ]; then echo "$$out"; echo "systemd-analyze --user verify: output on stderr"; exit 1; fi

clean:
	rm -rf $(VENV) tests/interop/node_modules .run .pytest_cache .ruff_cache
