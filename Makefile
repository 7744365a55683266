# flask_pbx365 — developer and CI entry points (see README / interfaces.md "make targets").
#   make test    install everything the suite needs, run it on SQLite and on PostgreSQL
#   make demo    run the demo portal with the Microsoft 365 emulator
#   make bench   benchmarks against the emulator (writes bench-results/)
#   make soak    the contacts and presence fault matrix over 5,000 mailboxes (too long for make test)
#   make deps    install every system package (PostgreSQL, nginx, Chromium)
#   make clean   remove install stamps and generated data; `make distclean` also removes .venv
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# Reinstall only when the package metadata changed since the last install.
STAMP := $(VENV)/.pbx365-install-stamp

.PHONY: test demo bench soak deps install clean distclean

# Debian's python3 needs python3-venv for `-m venv`; a half-made venv (no pip) is completed.
$(VENV)/bin/pip:
	@[ -x $(VPY) ] || $(PYTHON) -m venv $(VENV) 2>/dev/null || true
	@[ -x $@ ] || { bash tools/ensure-deps.sh venv && $(PYTHON) -m venv $(VENV); }

$(STAMP): setup.cfg pyproject.toml | $(VENV)/bin/pip
	$(VPY) -m pip install --disable-pip-version-check -q -e '.[test,demo]'
	@touch $@

install: $(STAMP)

test: $(STAMP)
	bash tools/ensure-deps.sh postgres nginx chromium
	bash tools/run-tests.sh

demo: $(STAMP)
	bash tools/ensure-deps.sh nginx
	exec $(VPY) -m demo_app.launcher

bench: $(STAMP)
	bash tools/ensure-deps.sh postgres
	bash tools/bench.sh

soak: $(STAMP)
	PBX365_FAULT_MAILBOXES=$${PBX365_FAULT_MAILBOXES:-5000} PBX365_TEST_PASSES=sqlite \
		PYTEST_ARGS='tests/reliability/test_contacts_presence_faults.py -q -s -p no:randomly' bash tools/run-tests.sh

deps:
	bash tools/ensure-deps.sh make venv postgres nginx chromium

clean:
	rm -f $(STAMP)
	rm -rf instance .demo bench-results

distclean: clean
	rm -rf $(VENV)
