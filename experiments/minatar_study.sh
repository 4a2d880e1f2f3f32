#!/bin/bash
# The MinAtar results (issue 15): one agent on the five games in turn, 3 seeds x 1M steps each, into
# results/minatar/<game>/<agent>/. Resumable: run it again and each game continues from its checkpoint
# (a finished one is returned as it was). One process gains only 1.6x from a second core, so on a
# 2-core machine run two agents side by side, each pinned to its own core:
#   CODE=<a git worktree of the commit to run> AGENT=hyperagent CORE=0 bash experiments/minatar_study.sh &
#   CODE=<the same worktree> AGENT=dqn CORE=1 bash experiments/minatar_study.sh &
# or one agent's games over two chains: the same command twice, each with its own CORE and LOG. A run
# folder is locked while a process trains it, so a chain skips a game the other holds (exit 75) and
# goes on: each takes the games the other has not started.
# A variant of an agent goes to its own folder: OUT=results/minatar-paper-scales ARGS="--set prior_scale=0.1 ..."
# Breadth first: STEPS=100000 takes every game to 100k; the same chain with STEPS=1000000 later extends
# each run (MinAtar's replay holds 100k, so a run extended from 100k equals one run straight to 1M).
# then: make minatar-report
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CODE=$(realpath -ms "${CODE:-$ROOT}")
AGENT=${AGENT:-hyperagent}
OUT=${OUT:-$ROOT/results/minatar}
OUT=$(realpath -ms "$OUT")  # relative paths are the caller's, not $CODE's
PY=${PY:-$ROOT/.venv/bin/python}
case $PY in */*) PY=$(realpath -ms "$PY");; esac  # a bare name (python3) is looked up on PATH
PIN=${CORE:+taskset -c $CORE}
LOG=$(realpath -ms "${LOG:-$OUT-$AGENT.log}")
cd $CODE
for game in ${GAMES:-breakout space_invaders asterix freeway seaquest}; do
  echo "=== $game $AGENT $(date +%T)" >> $LOG
  PYTHONPATH=$CODE/src $PIN $PY experiments/minatar.py --game $game --agent $AGENT --seeds 3 --steps ${STEPS:-1000000} \
    --no-progress $ARGS --out $OUT/$game/$AGENT >> $LOG 2>&1
done
echo "MINATAR-DONE $AGENT $(date +%T)" >> $LOG
