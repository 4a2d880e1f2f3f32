#!/bin/bash
# The full non-MNIST bsuite sweep for one agent on the jax engine, cheap experiments first.
cd /work/main
AGENT=${AGENT:-hyperagent}
OUT=results/bsuite/$AGENT
for s in bandit catch deep_sea bandit_noise bandit_scale catch_noise catch_scale discounting_chain memory_len memory_size umbrella_length umbrella_distract deep_sea_stochastic cartpole cartpole_swingup mountain_car cartpole_noise cartpole_scale mountain_car_noise mountain_car_scale; do
  echo "=== $s $(date +%T)"
  .venv/bin/python experiments/bsuite_run.py --sweep $s --agent $AGENT --results $OUT < /dev/null 2>&1 | grep -v "it/s\|ep/s\|s/it" | tail -3
done
echo SWEEP-DONE $(date +%T)
