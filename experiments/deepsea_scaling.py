"""Episodes-to-solve against DeepSea size N, per agent: a CSV table and a log-log plot.

  python experiments/deepsea_scaling.py --sizes 10 20 30 40 50 --agents hyperagent ensemble dqn --seeds 5

Each (agent, size) runs all seeds at once with the jitted loop, for the official budget of that size
(SPEC §5.1; 2,500 episodes up to N = 20) unless --episodes is given, and stops early once every seed
has solved under both criteria. Each run keeps its own results folder (resumed if present); the table
`scaling.csv` has one row per agent, size and seed, and `scaling_<criterion>.png` shows the median
episodes to solve with a fitted power law N^k and the 2^N episodes that dithering needs.
"""
from __future__ import annotations

import argparse
import os
import time

import pandas as pd
# experiments/deepsea.py, the `make deepsea` script: Python puts this script's folder on sys.path
from deepsea import add_run_arguments, make_run

from hyperagent import runtime
from hyperagent.deepsea import results as report
from hyperagent.deepsea import run

CRITERIA = ('bsuite_solve_episode', 'eval_solve_episode')


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--sizes', type=int, nargs='+', default=[10, 20, 30, 40, 50])
  parser.add_argument('--agents', nargs='+', default=['hyperagent', 'ensemble', 'dqn'])
  parser.add_argument('--out', default=os.path.join('results', 'deepsea-scaling'))
  add_run_arguments(parser, exclude=('size',))
  args = parser.parse_args(argv)
  runs = []
  try:  # every agent, size and override is checked before any training starts
    for agent in args.agents:
      for size in args.sizes:
        config, spec = make_run(args, agent, size=size)
        runs.append((agent, config, spec))
  except ValueError as e:
    parser.error(str(e))

  runtime.configure()
  rows = []
  for agent, config, spec in runs:
    out = os.path.join(args.out, f'{agent}-N{spec.size}-{spec.mapping}')
    start = time.perf_counter()
    result = run.train_seeds(config, spec, progress=not args.no_progress, stop_when_solved=True,
                        checkpoint_path=os.path.join(os.makedirs(out, exist_ok=True) or out, 'checkpoint.npz'))
    summary = report.write_results(out, config, spec, result)
    print(f'{agent} N={spec.size}: {time.perf_counter() - start:.0f} s')
    print(report.format_summary(summary))
    rows += [dict(agent=agent, budget_episodes=spec.episodes, **r) for r in summary]

  table = pd.DataFrame(rows)
  table.to_csv(os.path.join(args.out, 'scaling.csv'), index=False)
  for criterion in CRITERIA:
    fits = report.plot_scaling(os.path.join(args.out, f'scaling_{criterion}.png'), table, criterion)
    for agent, (k, c) in fits.items():
      print(f'{criterion}: {agent} episodes ≈ {c:.3g} · N^{k:.2f}')
  medians = table.groupby(['agent', 'size'])[list(CRITERIA)].median()
  solved = table.groupby(['agent', 'size'])[list(CRITERIA)].count().add_suffix('_seeds_solved')
  print(pd.concat([medians, solved], axis=1).to_string())
  print(f'table and plots in {args.out}/')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
