"""Episodes-to-solve against DeepSea size N, per agent: a CSV table and a log-log plot.

  python experiments/deepsea_scaling.py --sizes 10 20 30 40 50 --agents hyperagent ensemble dqn --seeds 5

Each (agent, size) runs all seeds at once with the jitted loop, for the official budget of that size
(SPEC §5.1; 2,500 episodes up to N = 20) unless --episodes is given, and stops early once every seed
has solved under both criteria. Each run keeps its own results folder, <agent>-N<size>-<mapping>-<run id>
(the run id a hash of the resolved settings: a re-run resumes, or returns a finished run unchanged;
changed settings get their own folder; --fresh starts them again). The table `scaling.csv` has one row
per agent, size and seed (rows of pairs a re-run did not include are kept), and
`scaling_<criterion>.png` shows the median episodes to solve with a power law N^k fitted through three
or more sizes and the 2^N episodes that dithering needs. Ctrl-C saves and stops; the same command resumes.
A run whose folder another process holds is skipped, so two invocations (one per core) can share a
list of runs: each takes the runs the other has not started.
"""
from __future__ import annotations

import argparse
import os
import time

import pandas as pd
# experiments/deepsea.py, the `make deepsea` script: Python puts this script's folder on sys.path
from deepsea import RunStopped, add_run_arguments, make_run, run_folder, train_in_folder

from hyperagent import checkpoint, cli, runtime
from hyperagent.config import AGENTS
from hyperagent.deepsea import results as report

CRITERIA = ('bsuite_solve_episode', 'eval_solve_episode')


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   allow_abbrev=False)
  parser.add_argument('--sizes', type=int, nargs='+', default=[10, 20, 30, 40, 50],
                      help='DeepSea sizes N, each >= 2 (default: 10 20 30 40 50)')
  parser.add_argument('--agents', nargs='+', default=['hyperagent', 'ensemble', 'dqn'], choices=AGENTS,
                      metavar='AGENT', help=f'a subset of: {", ".join(AGENTS)} (default: hyperagent ensemble dqn)')
  parser.add_argument('--out', type=cli.folder_flag, default=os.path.join('results', 'deepsea-scaling'),
                      help='one folder per (agent, size) is made below it (default: results/deepsea-scaling)')
  parser.add_argument('--fresh', action='store_true', help='empty the folders of these runs and start them again')
  add_run_arguments(parser, exclude=('size',))
  args = parser.parse_args(argv)
  args.sizes, args.agents = list(dict.fromkeys(args.sizes)), list(dict.fromkeys(args.agents))  # each run once
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
    out = run_folder(agent, config, spec, root=args.out)
    start = time.perf_counter()
    try:
      result = train_in_folder(out, config, spec, progress=not args.no_progress, fresh=args.fresh,
                               stop_when_solved=True, announce=True)
    except RunStopped as stopped:
      if stopped.code == checkpoint.BUSY_EXIT:  # another process is training it; its rows come with that one
        continue
      return stopped.code
    summary = report.write_results(out, config, spec, result, extra=dict(agent=agent))
    print(f'{agent} N={spec.size}: {time.perf_counter() - start:.0f} s')
    print(report.format_summary(summary))
    rows += [dict(agent=agent, budget_episodes=spec.episodes, **r) for r in summary]

  path = os.path.join(args.out, 'scaling.csv')
  # two study processes share the folder: each adds its rows to the table under a lock, or one could
  # write over rows the other had just added
  with checkpoint.folder_lock(args.out, '.scaling.csv.lock', wait=True):
    table = report.with_earlier_rows(path, pd.DataFrame(rows), 'agent')
    if table.empty:  # every run was another process's, and no table exists yet
      print(f'nothing to tabulate yet in {args.out}/: the runs asked for are being trained by other processes')
      return 0
    table = table.sort_values(['agent', 'size', 'seed'], kind='stable').reset_index(drop=True)
    checkpoint.write_text(path, table.to_csv(index=False))  # a kill mid-write must not lose earlier rows
  for criterion in CRITERIA:
    fits = report.plot_scaling(os.path.join(args.out, f'scaling_{criterion}.png'), table, criterion)
    for agent, (k, c) in fits.items():
      print(f'{criterion}: {agent} episodes ≈ {c:.3g} · N^{k:.2f}')
  # unsolved seeds count as never (inf), as in the figure and the study's table
  medians = pd.concat({c: report.median_episodes(table, c, by=('agent', 'size')) for c in CRITERIA}, axis=1)
  solved = table.groupby(['agent', 'size'])[list(CRITERIA)].count().add_suffix('_seeds_solved')
  print(pd.concat([medians, solved], axis=1).to_string())
  print(f'table and plots in {args.out}/')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
