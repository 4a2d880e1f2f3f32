# Everything runs inside .venv, built from requirements.txt on first use and
# rebuilt only when requirements.txt changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test test-slow bench deepsea deepsea-scaling bsuite-report clean

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

# make deepsea [SIZE=20] [SEEDS=5] [EPISODES=1000] [AGENT=hyperagent|ensemble|dqn] [MAPPING=seed|bsuite] [ARGS=...]
# (defaults in the recipe, because other targets share these variable names)
deepsea: $(STAMP)
	$(PY) experiments/deepsea.py --size $(or $(SIZE),20) --seeds $(or $(SEEDS),5) \
	  --episodes $(or $(EPISODES),1000) --agent $(or $(AGENT),hyperagent) --mapping $(or $(MAPPING),seed) $(ARGS)

# make deepsea-scaling [SIZES="10 20 30 40 50"] [AGENTS="hyperagent ensemble dqn"] [SEEDS=5] [ARGS=...]
deepsea-scaling: $(STAMP)
	$(PY) experiments/deepsea_scaling.py --sizes $(or $(SIZES),10 20 30 40 50) \
	  --agents $(or $(AGENTS),hyperagent ensemble dqn) --seeds $(or $(SEEDS),5) $(ARGS)

RESULTS ?= $(wildcard results/bsuite/*)
REPORT_DIR ?= reports/bsuite

bsuite-report: $(STAMP)
	$(PY) experiments/bsuite_report.py $(RESULTS) --out $(REPORT_DIR)

clean:
	rm -rf $(VENV) .pytest_cache
