#!/bin/bash
# The DeepSea scaling study over seeds (issue 13): HyperAgent, Ensemble+ and DQN at the official budgets,
# 5 seeds up to N = 50 and 3 from N = 70, each run stopping once its seeds have solved. Resumable: run it
# again and every run continues from its checkpoint (a finished one is returned as it was).
#   CODE=<a git worktree of the commit to measure> OUT=results/scaling bash experiments/deepsea_study.sh
# Session 5 ran it from a frozen worktree (CODE=/tmp/study-code at commit b2f7414), so that edits to the
# working tree could not change a run half-way. Then: make deepsea-study-report STUDY=$OUT
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CODE=$(realpath -ms "${CODE:-$ROOT}")
OUT=${OUT:-$ROOT/results/scaling}
OUT=$(realpath -ms "$OUT")  # relative paths are the caller's, not $CODE's
PY=${PY:-$ROOT/.venv/bin/python}
case $PY in */*) PY=$(realpath -ms "$PY");; esac  # a bare name (python3) is looked up on PATH
cd $CODE
run() { PYTHONPATH=$CODE/src $PY experiments/deepsea_scaling.py --out $OUT --no-progress "$@" >> $OUT.log 2>&1; }
mkdir -p $OUT
run --agents hyperagent --sizes 70 100 120 --seeds 3
run --agents ensemble --sizes 10 20 30 50 --seeds 5
run --agents hyperagent --sizes 10 20 30 50 --seeds 5
run --agents dqn --sizes 10 20 30 --seeds 5
run --agents ensemble --sizes 70 100 --seeds 3
# DQN beyond N = 30 runs its whole budget (it solves nothing past N = 10), ~1 core-hour for 50-120
run --agents dqn --sizes 50 --seeds 5
run --agents dqn --sizes 70 100 120 --seeds 3
echo STUDY-DONE >> $OUT.log
