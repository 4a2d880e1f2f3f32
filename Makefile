# Everything runs inside .venv, built from requirements.txt on first use and
# rebuilt only when requirements.txt or pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test test-slow bench bench-official minatar minatar-report archive deepsea deepsea-scaling deepsea-ablation deepsea-study-report bsuite bsuite-report atari atari-report clean

setup: $(STAMP)

# A variable given on the command line that the target does not read stops it, naming those it reads:
# `make deepsea-scaling AGENT=dqn` (AGENTS is the one) would otherwise run every agent for hours.
GIVEN := $(foreach v,$(.VARIABLES),$(if $(filter command line,$(origin $(v))),$(v)))
reads = $(foreach v,$(filter-out $(1) ARGS PYTHON,$(GIVEN)),$(error make $@ reads no $(v); it reads $(1) ARGS))

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# Compiling is most of the suite's time and XLA compiles on one thread, so one pytest worker per core
# (pytest-xdist) nearly halves it on the 2-core CI machine. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= auto
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS)

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow -n $(TEST_WORKERS)

bench: $(STAMP)
	$(PY) experiments/bench_core.py
	$(PY) experiments/bench_deepsea.py

# make bench-official OFFICIAL=<copy of szrlee/HyperAgent> [OFFICIAL_VENV=/tmp/official-venv] [PAIRS=3]
# DeepSea-20 side by side with the official PyTorch code, the two alternating; builds its venv on first use.
bench-official: $(STAMP)
	@$(call reads,OFFICIAL OFFICIAL_VENV PAIRS)
	@test -n "$(OFFICIAL)" || { echo "OFFICIAL=<folder with a copy of github.com/szrlee/HyperAgent> is required"; exit 2; }
	test -x $(or $(OFFICIAL_VENV),/tmp/official-venv)/bin/python || bash experiments/official_venv.sh $(or $(OFFICIAL_VENV),/tmp/official-venv)
	$(PY) experiments/bench_official.py --official $(OFFICIAL) \
	  --official-python $(or $(OFFICIAL_VENV),/tmp/official-venv)/bin/python --pairs $(or $(PAIRS),3)

# make deepsea [SIZE=20] [SEEDS=5] [EPISODES=1000] [AGENT=hyperagent|ensemble|dqn|hyperagent_one_hot]
#   [MAPPING=seed|bsuite] [ARGS=...]
# (defaults in the recipe, because other targets share these variable names)
deepsea: $(STAMP)
	@$(call reads,SIZE SEEDS EPISODES AGENT MAPPING)
	$(PY) experiments/deepsea.py --size $(or $(SIZE),20) --seeds $(or $(SEEDS),5) \
	  --episodes $(or $(EPISODES),1000) --agent $(or $(AGENT),hyperagent) --mapping $(or $(MAPPING),seed) $(ARGS)

# make deepsea-scaling [SIZES="10 20 30 40 50"] [AGENTS="hyperagent ensemble dqn"] [SEEDS=5] [ARGS=...]
deepsea-scaling: $(STAMP)
	@$(call reads,SIZES AGENTS SEEDS)
	$(PY) experiments/deepsea_scaling.py --sizes $(or $(SIZES),10 20 30 40 50) \
	  --agents $(or $(AGENTS),hyperagent ensemble dqn) --seeds $(or $(SEEDS),5) $(ARGS)

# make deepsea-ablation [SIZES="20 30"] [SEEDS=10] [ARGS=...]: one ingredient changed at a time
deepsea-ablation: $(STAMP)
	@$(call reads,SIZES SEEDS)
	$(PY) experiments/deepsea_ablation.py --sizes $(or $(SIZES),20 30) --seeds $(or $(SEEDS),10) $(ARGS)

# make deepsea-study-report STUDY="results/deepsea-scaling [more study folders]" [ARGS="--out DIR"]: exponents with
# bootstrap CIs over seeds, read from every folder named (a seed of an agent and size in one only)
deepsea-study-report: $(STAMP)
	@$(call reads,STUDY)
	$(PY) experiments/deepsea_study_report.py $(or $(STUDY),results/deepsea-scaling) $(ARGS)

# make bsuite SWEEP=<bsuite id | experiment | tag | all, comma-separated>
#   AGENT=<hyperagent|ensemble|dqn|hyperagent_one_hot|boot_dqn> [EPISODES=N] [RESULTS=DIR] [ARGS=...]
#   [ENGINE=jax|python] (jax: pure-JAX ports in one jitted loop, the default for our agents; python:
#   bsuite's own environments, the reference, and the engine for boot_dqn and mnist) [WORKERS=N] (python only)
#   [SEEDS=S] (jax only: sweep seeds seed .. seed+S-1 vmapped beside the ids, a folder each: the first
#   seed's is RESULTS, seed s's $(RESULTS)-seed<s>; ARGS="--seed k" starts them at k)
SWEEP ?= deep_sea/0
AGENT ?= hyperagent
EPISODES ?=
WORKERS ?=
ENGINE ?=

bsuite: RESULTS = results/bsuite/$(AGENT)
bsuite: $(STAMP)
	@$(call reads,SWEEP AGENT EPISODES WORKERS ENGINE SEEDS RESULTS)
	$(PY) experiments/bsuite_run.py --sweep $(SWEEP) --agent $(AGENT) --results $(RESULTS) \
	  $(if $(EPISODES),--episodes $(EPISODES)) $(if $(WORKERS),--workers $(WORKERS)) $(if $(ENGINE),--engine $(ENGINE)) $(if $(SEEDS),--seeds $(SEEDS)) $(ARGS)

# the archived runs (docs/results) when this workspace has none of its own
RESULTS ?= $(or $(wildcard results/bsuite/*),$(wildcard docs/results/bsuite/*))
REPORT_DIR ?= reports/bsuite

bsuite-report: $(STAMP)
	@$(call reads,RESULTS REPORT_DIR)
	$(PY) experiments/bsuite_report.py $(RESULTS) --out $(REPORT_DIR) $(ARGS)

# make minatar [GAME=breakout] [SEEDS=3] [STEPS=1000000] [AGENT=hyperagent|ensemble|dqn] [ARGS=...]
# (GAME's default is set in the recipe: `make atari` shares the variable)
minatar: $(STAMP)
	@$(call reads,GAME SEEDS STEPS AGENT)
	$(PY) experiments/minatar.py --game $(or $(GAME),breakout) --seeds $(or $(SEEDS),3) --steps $(or $(STEPS),1000000) \
	  --agent $(or $(AGENT),hyperagent) $(ARGS)

# make minatar-report [MINATAR_RESULTS=results/minatar]: table (final returns, CIs, random policy) and curves;
# runs with the SPEC's short targets (the preset's until session 23) are a series of their own where they exist
MINATAR_RESULTS ?= $(if $(wildcard results/minatar),results/minatar $(if $(wildcard results/minatar-spec-targets),spec-targets=results/minatar-spec-targets),docs/results/minatar)
minatar-report: $(STAMP)
	@$(call reads,MINATAR_RESULTS)
	$(PY) experiments/minatar_report.py $(MINATAR_RESULTS) --out reports/minatar $(ARGS)

# make archive: results/'s small files (CSVs, configs, run logs; interim MinAtar rows from checkpoints)
# into docs/results/, which git tracks (results/ is not: its checkpoints are hundreds of MB)
archive: $(STAMP)
	@$(call reads,)
	$(PY) experiments/archive_results.py results --to docs/results $(ARGS)

# make atari [GAME=breakout] [STEPS=3000] [SEEDS=1] [PROTOCOL=paper|machado] [AGENT=hyperagent|ensemble|dqn]
# The default budget is a CPU demo of a few minutes; ATARI_ARGS holds its lighter settings: clear it
# (ATARI_ARGS=) for the paper's (1 update/step, 2k warm-up, 10 eval games of up to 27k steps every
# 20k steps, 200 final games), e.g. `make atari GAME=pong STEPS=2000000 ATARI_ARGS=`.
# SEEDS is a count (3 = seeds 0,1,2), a list (2025,2030) or a range (5-9). ARGS adds flags after
# ATARI_ARGS (a later flag wins), e.g. ARGS="--num-envs 4".
ATARI_ARGS ?= --replay-ratio 0.25 --set warmup_steps=1000 --eval-every 2000 --eval-episodes 4 \
	--final-eval-episodes 8 --final-eval-envs 4 --eval-max-episode-steps 2000 --log-every 500 \
	--checkpoint-every 1000
ATARI_OUT ?= results/atari
ATARI_REPORT_DIR ?= reports/atari

atari: $(STAMP)
	@$(call reads,GAME STEPS SEEDS PROTOCOL AGENT ATARI_ARGS ATARI_OUT)
	$(PY) experiments/atari.py --game $(or $(GAME),breakout) --steps $(or $(STEPS),3000) --seeds $(or $(SEEDS),1) \
		--protocol $(or $(PROTOCOL),paper) --agent $(or $(AGENT),hyperagent) --out $(ATARI_OUT) $(ATARI_ARGS) $(ARGS)

# RESULTS defaults to the bsuite folders above; for this target, unless given, it is $(ATARI_OUT).
atari-report: $(STAMP)
	@$(call reads,RESULTS ATARI_OUT ATARI_REPORT_DIR)
	$(PY) experiments/atari_report.py $(if $(filter command line environment,$(origin RESULTS)),$(RESULTS),$(ATARI_OUT)) \
		--out $(ATARI_REPORT_DIR) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
