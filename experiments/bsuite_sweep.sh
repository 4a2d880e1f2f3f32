#!/bin/bash
# The whole non-MNIST bsuite sweep for one agent on the jax engine, cheap experiments first, so that
# complete experiments come early. Resumable: run it again (finished ids are skipped, a group in
# progress resumes from its checkpoint).
#   CODE=<a git worktree of the commit to run> AGENT=hyperagent OUT=results/bsuite/hyperagent [SEEDS=3] \
#     bash experiments/bsuite_sweep.sh
# A frozen worktree (CODE) keeps edits to the working tree from changing the code half-way.
# Two cores: the same command twice, each under `taskset -c <core>`. Each process locks the ids it
# plays, so the other leaves them and takes the next experiment: the two share the list.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CODE=$(realpath -ms "${CODE:-$ROOT}")
AGENT=${AGENT:-hyperagent}
OUT=${OUT:-$ROOT/results/bsuite/$AGENT}
OUT=$(realpath -ms "$OUT")  # relative paths are the caller's, not $CODE's
PY=${PY:-$ROOT/.venv/bin/python}
case $PY in */*) PY=$(realpath -ms "$PY");; esac  # a bare name (python3) is looked up on PATH
cd $CODE
# The cheapest experiments first (seconds to minutes each), then deep_sea, then the rest by cost
# (HyperAgent, one core: memory_size 8 min and umbrella_distract ~40 min, as separate ids; memory_len
# 3 h in session 22, when a vmapped group was held to its longest chain; since session 26 finished
# runs leave the loop, and DQN's umbrella_length took 10 min, its cartpole 9 min).
# A session that may end first can split an experiment into groups of ids, each archived when done:
#   EXPERIMENTS="cartpole/0,cartpole/1,cartpole/2,cartpole/3,cartpole/4 cartpole/5,..."
for s in ${EXPERIMENTS:-bandit catch bandit_noise bandit_scale catch_noise catch_scale deep_sea discounting_chain \
    memory_size umbrella_distract memory_len umbrella_length deep_sea_stochastic cartpole cartpole_swingup \
    mountain_car cartpole_noise cartpole_scale mountain_car_noise mountain_car_scale}; do
  echo "=== $s $(date +%T)"
  # Without a terminal bsuite_run prints a line per finished id and, for a long group, one every 10 min
  # (episodes so far): passed on as they come, so the log shows where a sweep is.
  PYTHONPATH=$CODE/src $PY experiments/bsuite_run.py --sweep $s --agent $AGENT --results $OUT ${SEEDS:+--seeds $SEEDS} \
    < /dev/null 2>&1 \
    | grep --line-buffered -v "it/s\|ep/s\|s/it"
  status=${PIPESTATUS[0]}  # 75: ids left to the other process; 1: an id failed; 130: interrupted
  if [ "$status" != 0 ]; then
    echo "=== $s: bsuite_run exited $status"
    LEFT="$LEFT $s"
  fi
done
echo "SWEEP-DONE $(date +%T)${LEFT:+; not all finished here:$LEFT (run the sweep again once the other process ends)}"
