# Developer entry points. Each target creates its virtualenv on first use and installs
# the project into it (editable, with the `dev` extra); later runs skip the install
# until pyproject.toml or setup.py change.
#
#   make test                                   newest Django this Python allows, in .venv
#   make test DJANGO=4.2                        Django 4.2.x, in .venv-django4.2
#   make test PYTHON=python3.12 DJANGO=6.0      another interpreter, in .venv-django6.0
#   make test PYTEST_ARGS="-x -k echo"          arguments for pytest
#   make demo                                   the demo at http://127.0.0.1:8000
#   make lint                                   ruff and import-linter
#   make typecheck                              mypy
#   make docs                                   the HTML docs in docs/_build/html (-W)
#   make bench                                  the benchmark against peers, in .venv-bench
#   make bench BENCH_ARGS="--quick"             a short smoke run (see bench/README.rst)

PYTHON ?= python3
DJANGO ?=
PYTEST_ARGS ?=
DEMO_ADDR ?= 127.0.0.1:8000
BENCH_VENV ?= .venv-bench
BENCH_ARGS ?=

ifeq ($(strip $(DJANGO)),)
VENV ?= .venv
DJANGO_REQ := Django
else
VENV ?= .venv-django$(DJANGO)
DJANGO_REQ := Django~=$(DJANGO).0
endif

PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
# One stamp per (Python, Django) pair: a venv reused with other settings is reinstalled.
STAMP := $(VENV)/.installed-py$(PY_VERSION)-django$(or $(strip $(DJANGO)),latest)
VPY := $(VENV)/bin/python

.PHONY: help install test lint typecheck docs demo bench clean distclean

help:
	@sed -n '1,/^$$/s/^# \{0,1\}//p' Makefile

$(STAMP): pyproject.toml setup.py
	@test -n "$(PY_VERSION)" || { echo "error: cannot run PYTHON=$(PYTHON); pass PYTHON=/path/to/python3" >&2; exit 1; }
	@if [ -e "$(VPY)" ] && [ "$$("$(VPY)" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$(PY_VERSION)" ]; then \
		echo "$(VENV) does not run Python $(PY_VERSION): recreating it"; rm -rf "$(VENV)"; fi
	@[ -x "$(VPY)" ] || { echo "creating $(VENV) with $(PYTHON) (Python $(PY_VERSION))"; "$(PYTHON)" -m venv "$(VENV)"; }
	"$(VPY)" -m pip install --disable-pip-version-check --upgrade -e ".[dev]" "$(DJANGO_REQ)"
	@rm -f "$(VENV)"/.installed-*
	@touch "$@"

install: $(STAMP)

test: $(STAMP)
	@"$(VPY)" -c 'import sys, django; print("Python", sys.version.split()[0], "- Django", django.get_version())'
	"$(VPY)" -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	"$(VENV)/bin/ruff" check .
	"$(VENV)/bin/lint-imports"

typecheck: $(STAMP)
	"$(VENV)/bin/mypy"

docs: $(STAMP)
	"$(VPY)" -m sphinx -W -b html docs docs/_build/html

demo: $(STAMP)
	"$(VPY)" demo/manage.py migrate --noinput
	"$(VPY)" demo/manage.py runserver $(DEMO_ADDR)

# The benchmark has a virtualenv of its own: the peers (Channels, Starlette, flask-sock...)
# and the load generator's packages, pinned in bench/requirements.txt.
BENCH_STAMP := $(BENCH_VENV)/.installed-bench-py$(PY_VERSION)

$(BENCH_STAMP): pyproject.toml setup.py bench/requirements.txt
	@test -n "$(PY_VERSION)" || { echo "error: cannot run PYTHON=$(PYTHON); pass PYTHON=/path/to/python3" >&2; exit 1; }
	@if [ -e "$(BENCH_VENV)/bin/python" ] && [ "$$("$(BENCH_VENV)/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$(PY_VERSION)" ]; then \
		echo "$(BENCH_VENV) does not run Python $(PY_VERSION): recreating it"; rm -rf "$(BENCH_VENV)"; fi
	@[ -x "$(BENCH_VENV)/bin/python" ] || { echo "creating $(BENCH_VENV) with $(PYTHON) (Python $(PY_VERSION))"; "$(PYTHON)" -m venv "$(BENCH_VENV)"; }
	"$(BENCH_VENV)/bin/python" -m pip install --disable-pip-version-check --upgrade -e ".[redis]" -r bench/requirements.txt
	@rm -f "$(BENCH_VENV)"/.installed-*
	@touch "$@"

bench: $(BENCH_STAMP)
	"$(BENCH_VENV)/bin/python" bench/run.py $(BENCH_ARGS)

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache \
		docs/_build demo/db.sqlite3 tests/artifacts
	find . -path './.venv*' -prune -o -path './.git' -prune -o -name __pycache__ -type d -exec rm -rf {} +

# Also removes every virtualenv that `make` created.
distclean: clean
	rm -rf .venv .venv-django* $(BENCH_VENV)
