#!/bin/bash
# The GPU checks (issue 15's `one`; `bench` and `learn` from issues 3 and 4), run ON THE DEVICE MACHINE from the repository root, .gpu carried
# (made here by experiments/gpu_prepare.sh). Each part fits one device call (10 minutes at most) and
# writes flat files under $OUT (the device tool brings back 8 files, two folders deep at most).
#
#   bash experiments/gpu_checks.sh one              # issue 15 in ONE call (a task gets 15 device minutes,
#                                                   # machine start included): Atari steps/s at 1 and 1/4
#                                                   # updates per step, MinAtar with many seeds vmapped,
#                                                   # then Pong with the paper's settings to the end
#   bash experiments/gpu_checks.sh bench            # Atari steps/s (host + xla) and DeepSea seeds/N
#   bash experiments/gpu_checks.sh learn GAME STEPS  # one Atari learning run; its CSVs back (final.json
#                                                   # too if it finishes in the call)
#
# Written before any GPU was lent to this project: the first session with one should expect to fix
# small things here, and should record what it measures in BENCHMARKS.md with these commands.
set -uo pipefail
source "$(dirname "$0")/gpu_env.sh" || exit 1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1

learn_atari() {  # GAME STEPS SECONDS: one paper-settings run, stopped before SECONDS
  # SIGINT is Ctrl-C to the runner: it saves its checkpoint and CSVs and exits (SIGTERM would not)
  timeout -s INT -k 30 "$3" python3 experiments/atari.py --game "$1" --steps "$2" --eval-every 50000 \
    --final-eval-episodes 20 --no-checkpoint-replay --no-progress --out /tmp/atari 2>&1 \
    | tail -n 40 > "$OUT/${1}_log.txt"
  run=$(find /tmp/atari -name train.csv -printf '%h\n' | head -n 1)
  for f in train.csv eval.csv final.json; do
    [ -n "$run" ] && [ -f "$run/$f" ] && cp "$run/$f" "$OUT/${1}_$f"
  done
}

case "${1:-}" in
  one)
    # ~9.5 minutes in all: the device call's limit is 10 (timeout_s=600)
    timeout 150 python3 experiments/bench_atari.py --game Breakout --ratios 1 0.25 --num-envs 1 8 \
      --iters 300 --mode host 2>&1 | tee "$OUT/bench_atari_host.jsonl"
    timeout 100 python3 experiments/bench_minatar.py --game breakout --seeds 1 32 256 --steps 1000 2>&1 \
      | tee "$OUT/bench_minatar_gpu.md"
    learn_atari Pong 2000000 280
    ;;
  bench)
    # the paper's ratio (1 update of 32 x K=20 per agent step) and CleanRL's (1 per 4 steps)
    timeout 240 python3 experiments/bench_atari.py --game Breakout --ratios 1 0.25 --num-envs 1 8 \
      --iters 400 --mode host 2>&1 | tee "$OUT/bench_atari_host.jsonl"
    timeout 150 python3 experiments/bench_atari.py --game Breakout --ratios 1 0.25 --num-envs 8 \
      --iters 400 --mode xla 2>&1 | tee "$OUT/bench_atari_xla.jsonl"
    timeout 150 python3 experiments/bench_deepsea.py --parts seeds sizes --steps 2000 2>&1 \
      | tee "$OUT/bench_deepsea_gpu.md"
    ;;
  learn)
    # stop cleanly before the call's 10-minute limit; the run writes its CSVs as it goes
    learn_atari "${2:?usage: gpu_checks.sh learn GAME STEPS}" "${3:?usage: gpu_checks.sh learn GAME STEPS}" 520
    ;;
  *)
    echo "usage: gpu_checks.sh one | bench | learn GAME STEPS" >&2
    exit 2
    ;;
esac
