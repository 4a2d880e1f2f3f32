"""DeepSea-20 side by side with the official PyTorch code (issue 16): the two codes alternate.

  experiments/official_venv.sh /tmp/official-venv            # once: a Python that runs the official code
  python experiments/bench_official.py --official DIR --official-python /tmp/official-venv/bin/python

DIR is a local copy of https://github.com/szrlee/HyperAgent (this project does not vendor it). Both
codes run the official DeepSea-20 protocol (seed 2020, 50 epochs of 1,000 steps with one update each,
100 test episodes after every epoch), the official one with the flags of its
`experiments/deepsea/run_HyperAgent.sh`, ours as `bench_deepsea.py --parts official`. Each pair runs
a calibration, one code, a calibration, the other code; the order alternates from pair to pair, so
a slow phase of the machine does not fall on one code only. Run it with nothing else on the machine.

Measured from outside, for both codes alike:
- whole run: the process wall-clock, interpreter start and imports included;
- per 1,000 steps: the time from the end of the first epoch to the end of the last, divided by the
  remaining epochs (each includes its 100 test episodes). The official code's epoch ends are the
  times its "Epoch #k: test_reward" lines arrive; ours comes from its own evaluation clock.
- all-optimal: the first epoch whose 100 test episodes all reach the treasure, as an episode count.
The calibration (a fixed pure-Python and NumPy workload in this process) shows the machine's speed at
that moment; the pairs' ratios are compared only within a sitting.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from hyperagent import cli

ROOT = Path(__file__).resolve().parents[1]
SIZE, EPOCHS, STEPS_PER_EPOCH = 20, 50, 1_000
# experiments/deepsea/run_HyperAgent.sh of the official code, size 20 (its seed loop starts at 2020).
OFFICIAL_FLAGS = ['--seed=2020', '--task=DeepSea-v0', '--noise-dim=4', '--noise-per-sample=20',
                  '--target-noise-per-sample=1', '--action-sample-num=1', '--action-select-scheme=Greedy',
                  f'--size={SIZE}', f'--epoch={EPOCHS}']
# All 100 test episodes reach the treasure iff their mean return is 0.99 (1 minus the move costs);
# one miss brings the mean to at most 0.9801.
ALL_OPTIMAL_MEAN = 0.985
EPOCH_LINE = re.compile(r'Epoch #(\d+): test_reward: (-?[\d.]+)\(mean\)')
OUR_ROW = re.compile(r'\| ([\d.]+) s \| ([\d.]+) s \| ([\d.]+) ms \| all-optimal at episode (\S+) \|')


class Run(NamedTuple):
  code: str
  calibration_s: float
  wall_s: float
  per_1000_s: float
  solved_episode: float  # nan: never all-optimal


def calibrate() -> float:
  """Seconds for a fixed single-threaded workload: a pure-Python loop and small NumPy matmuls."""
  start = time.perf_counter()
  total = 0
  for i in range(3_000_000):
    total += i * i % 7
  a = np.random.default_rng(0).standard_normal((128, 64)).astype(np.float32)
  w = np.eye(64, dtype=np.float32)
  for _ in range(20_000):
    a = a @ w
  return time.perf_counter() - start


def run_official(folder: Path, python: str, log: Path) -> Run:
  env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHONPATH=str(folder))
  with tempfile.TemporaryDirectory() as logdir, open(log, 'w') as err:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [python, '-m', 'hyperagent.scripts.hyperagent.run_deepsea', *OFFICIAL_FLAGS, f'--logdir={logdir}'],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    epoch_ends, rewards = [], []
    for line in proc.stdout:
      err.write(line)
      match = EPOCH_LINE.search(line)
      if match:
        epoch_ends.append(time.perf_counter() - start)
        rewards.append(float(match.group(2)))
    if proc.wait() != 0 or len(epoch_ends) != EPOCHS:
      raise SystemExit(f'The official code failed or stopped early ({len(epoch_ends)} of {EPOCHS} epochs); '
                       f'see {log}.')
    wall = time.perf_counter() - start
  per_1000 = (epoch_ends[-1] - epoch_ends[0]) / (EPOCHS - 1)
  solved = next((i + 1 for i, r in enumerate(rewards) if r >= ALL_OPTIMAL_MEAN), float('nan'))
  return Run('official', 0.0, wall, per_1000, solved * STEPS_PER_EPOCH / SIZE)


def run_ours(python: str, extra: list[str], log: Path) -> Run:
  start = time.perf_counter()
  proc = subprocess.run([python, 'experiments/bench_deepsea.py', '--parts', 'official', *extra],
                        cwd=ROOT, capture_output=True, text=True)
  wall = time.perf_counter() - start
  log.write_text(proc.stdout + proc.stderr)
  match = OUR_ROW.search(proc.stdout)
  if proc.returncode != 0 or not match:
    raise SystemExit(f'bench_deepsea.py failed; see {log}.')
  per_step_ms, solved = float(match.group(3)), match.group(4)  # ms per step = s per 1,000 steps
  return Run('ours', 0.0, wall, per_step_ms, float(solved) if solved != 'None' else float('nan'))


def spread(values: list[float]) -> str:
  return f'{statistics.median(values):.1f}× (range {min(values):.1f}–{max(values):.1f}×)'


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--official', type=Path, required=True, help='a local copy of szrlee/HyperAgent')
  parser.add_argument('--official-python', required=True, help='a Python that runs it (official_venv.sh)')
  parser.add_argument('--python', default=sys.executable, help='the Python that runs this project')
  parser.add_argument('--pairs', type=cli.count, default=3)
  parser.add_argument('--ours-args', nargs=argparse.REMAINDER, default=[],
                      help='passed to bench_deepsea.py, e.g. --compile-cache DIR (must come last)')
  parser.add_argument('--logs', type=Path, default=ROOT / 'results' / 'bench-official')
  args = parser.parse_args()
  script = args.official / 'hyperagent' / 'scripts' / 'hyperagent' / 'run_deepsea.py'
  if not script.is_file():
    parser.error(f'--official {args.official} is not a copy of szrlee/HyperAgent (no {script.relative_to(args.official)}).')
  args.logs.mkdir(parents=True, exist_ok=True)

  runs: list[Run] = []
  print('| pair | code | calibration | whole run | per 1,000 steps | all-optimal at episode |')
  print('|---|---|---|---|---|---|')
  for pair in range(args.pairs):
    order = ('official', 'ours') if pair % 2 == 0 else ('ours', 'official')
    for code in order:
      calibration = calibrate()
      log = args.logs / f'pair{pair + 1}-{code}.log'
      if code == 'official':
        run = run_official(args.official, args.official_python, log)
      else:
        run = run_ours(args.python, args.ours_args, log)
      run = run._replace(calibration_s=calibration)
      runs.append(run)
      print(f'| {pair + 1} | {code} | {calibration:.2f} s | {run.wall_s:.1f} s | {run.per_1000_s:.3f} s | '
            f'{run.solved_episode:.0f} |', flush=True)

  official = [r for r in runs if r.code == 'official']
  ours = [r for r in runs if r.code == 'ours']
  whole = [o.wall_s / u.wall_s for o, u in zip(official, ours)]
  steady = [o.per_1000_s / u.per_1000_s for o, u in zip(official, ours)]
  print(f'\nwhole run, official / ours, per pair: {spread(whole)}')
  print(f'per 1,000 steps, official / ours, per pair: {spread(steady)}')
  print(f'official: {min(r.wall_s for r in official):.0f}–{max(r.wall_s for r in official):.0f} s whole, '
        f'{min(r.per_1000_s for r in official):.2f}–{max(r.per_1000_s for r in official):.2f} s per 1,000 steps; '
        f'ours: {min(r.wall_s for r in ours):.1f}–{max(r.wall_s for r in ours):.1f} s whole, '
        f'{min(r.per_1000_s for r in ours):.3f}–{max(r.per_1000_s for r in ours):.3f} s per 1,000 steps')


if __name__ == '__main__':
  main()
