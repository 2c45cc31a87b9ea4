# MCPN for QGIS — developer tasks. `make test` is the test command (also run by .ci/run).
SHELL := /bin/bash
ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
QGIS_PROCESS := qgis_process.bin
PROFILE := $(ROOT)/.build/profile
PLUGINS := $(PROFILE)/profiles/default/python/plugins
# the QGIS desktop's own profile (it enables QGIS's bundled plugins in the profile it starts with, which the
# test profile must not get: qgis_process would then print their warnings)
DESKTOP_PROFILE := $(ROOT)/.build/desktop
DEMO_STEPS ?= 500
DEMO_OUT ?= $(ROOT)/.build/demo
SCREENSHOTS ?= $(ROOT)/docs/screenshots
SCREENSHOT_STEPS ?= 300
MATRIX ?= host trixie sid
VERSION = $(shell sed -n 's/^version=//p' metadata.txt)
ZIP := dist/mcpn-$(VERSION).zip

# what qgis_process and QGIS need to load the plugin from $(PROFILE) with the venv's packages: scripts/qgis_env.py
RUN_ENV = $(shell MCPN_QGIS_PROCESS=$(QGIS_PROCESS) $(PY) scripts/qgis_env.py)
# the same for the QGIS desktop; expanding it makes the desktop's profile with the plugin enabled
DESKTOP_ENV = $(shell $(PY) scripts/qgis_env.py --desktop-profile $(DESKTOP_PROFILE))
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help venv deploy demo screenshots test matrix claims lint format compat package check-package clean

help:
	@echo "make venv     - system packages (QGIS, GDAL, Chromium for the report test) if missing + .venv with requirements.txt"
	@echo "make deploy   - link the repo as plugin 'mcpn' into .build/profile and enable it"
	@echo "make demo     - the three algorithms on resources/sample via qgis_process, scored against the truth (DEMO_STEPS=$(DEMO_STEPS))"
	@echo "make screenshots - both dialogs and a run's log from the QGIS desktop under Xvfb (installed if missing) into docs/screenshots"
	@echo "make test     - the test suite: tests/engine without QGIS, then tests/plugin in a real offscreen QGIS"
	@echo "make matrix   - tests/plugin and the demo on QGIS 3.22 (host), 3.40 (trixie), 3.44 (sid) chroots (root; MATRIX=\"$(MATRIX)\")"
	@echo "make claims   - every testable claim of README.md backed by tests or results that exist and hold its figures (scripts/claims.json; --numbers: each figure)"
	@echo "make lint     - ruff check + ruff format --check"
	@echo "make compat   - every Python file of the repository must run on Python 3.8 (vermin; QGIS 3.22 on Ubuntu 20.04)"
	@echo "make package  - dist/mcpn-<version>.zip for the QGIS plugin manager"
	@echo "make check-package - build the zip and check it as plugins.qgis.org does (structure, metadata, LICENSE, Bandit)"
	@echo "make clean    - remove .build, dist and caches"

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@if ! command -v $(QGIS_PROCESS) >/dev/null; then \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y qgis python3-qgis gdal-bin python3-venv; fi
	@if [ ! -x /usr/bin/chromium ]; then \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; fi
	@[ -x $(PY) ] || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	$(PY) -m pip install -r requirements.txt
	@touch $@

deploy: venv
	@mkdir -p $(PLUGINS)
	@ln -sfn $(ROOT) $(PLUGINS)/mcpn
	@out=$$($(RUN_ENV) $(QGIS_PROCESS) plugins enable mcpn 2>&1) || \
		case "$$out" in *"already enabled"*) ;; *) echo "$$out"; exit 1;; esac
	@echo "plugin 'mcpn' deployed in $(PROFILE)"

demo: deploy
	$(RUN_ENV) $(PY) scripts/demo.py --steps $(DEMO_STEPS) --output-dir $(DEMO_OUT)

# the real desktop (qgis, not offscreen) on a virtual display; scripts/screenshots.py runs inside it and exits it
screenshots: venv
	@if ! command -v xvfb-run >/dev/null; then \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y xvfb; fi
	$(DESKTOP_ENV) \
		MCPN_SCREENSHOTS=$(SCREENSHOTS) MCPN_SCREENSHOT_STEPS=$(SCREENSHOT_STEPS) timeout 900 \
		xvfb-run -a -s "-screen 0 1600x1000x24" qgis --profiles-path $(DESKTOP_PROFILE) --nologo --noversioncheck \
		--code $(ROOT)/scripts/screenshots.py

# The engine tests in plain Python (pytest-qgis off, QGIS unimportable), then the plugin tests in a real QGIS.
test: deploy
	$(RUN_ENV) $(PY) -m pytest -p no:pytest_qgis tests/engine
	$(RUN_ENV) $(PY) -m pytest tests/plugin

# not in .ci/run (it takes long): Debian chroots cached in .build/chroot, results in benchmarks/results/qgis_versions.md
matrix: venv
	$(SUDO) DEMO_STEPS=$(DEMO_STEPS) scripts/qgis_matrix.sh $(MATRIX)

claims:
	python3 scripts/claims.py --quiet

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# vermin: the minimum Python version from the syntax and library use of every file (not only the plugin's)
compat: venv
	$(VENV)/bin/vermin --target=3.8- --no-tips --violations --exclude-regex '(^|/)\.(venv|build|git)/' \
		--exclude-regex '(^|/)dist/' .

package:
	/usr/bin/python3 scripts/package.py --output-dir dist

check-package: package venv
	$(PY) scripts/check_package.py $(ZIP)

clean:
	rm -rf .build dist .pytest_cache .ruff_cache
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
