# Everything runs inside .venv, built from requirements.txt on first use and
# rebuilt only when requirements.txt changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test test-slow bench bsuite-report clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) experiments/bench_core.py

RESULTS ?= $(wildcard results/bsuite/*)
REPORT_DIR ?= reports/bsuite

bsuite-report: $(STAMP)
	$(PY) experiments/bsuite_report.py $(RESULTS) --out $(REPORT_DIR)

clean:
	rm -rf $(VENV) .pytest_cache
