"""Does the bsuite runner learn deep_sea like the jitted DeepSea loop? Same agent, same ids, several seeds.

  python experiments/bsuite_agreement.py --ids deep_sea/0 deep_sea/1 --seeds 0 1 2 --episodes 1000

Both paths call the same jitted `act`/`learn` on bsuite's mapping (seed 42), but the runner steps
bsuite's own environment from Python and keeps its own replay, so their random streams differ and
they cannot agree run for run, only in distribution. Per id and path the table gives, over seeds,
the bad episodes within the budget and the bsuite solve episode (first logged episode with
bad episodes / episodes < 0.9), both read at the episodes bsuite's logger writes.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np
import pandas as pd
from bsuite import sweep

from hyperagent import runtime
from hyperagent.config import AGENTS, make_config
from hyperagent.bsuite import adapter as bsuite_adapter
from hyperagent.bsuite import csv_format as bsuite_csv
from hyperagent.bsuite import sweep as bsuite_sweep
from hyperagent.deepsea import run


def solve_episode(episodes: np.ndarray, bad: np.ndarray) -> float:
  """bsuite's criterion at the logged episodes, NaN (for the table's median) if never met."""
  solved = run.bsuite_solve_episode(bad, episodes=episodes)
  return float('nan') if solved is None else float(solved)


def runner_rows(bsuite_id: str, agent: str, seeds, episodes: int, out: str) -> list[dict]:
  rows = []
  for seed in seeds:
    results = os.path.join(out, 'runner', f'seed_{seed}')
    summary = bsuite_adapter.run_id(bsuite_id, results, agent, bsuite_sweep.resolve_agent(agent, {}), seed, episodes)
    log = pd.read_csv(bsuite_csv.bsuite_csv_path(results, bsuite_id))
    print(f'{bsuite_id} bsuite runner, seed {seed}: {summary["seconds"]:.0f} s', file=sys.stderr, flush=True)
    rows.append(dict(path='bsuite runner', seed=seed, bad=int(log.total_bad_episodes.iloc[-1]),
                     solve=solve_episode(log.episode.to_numpy(), log.total_bad_episodes.to_numpy()),
                     seconds=summary['seconds'], logged=log.episode.to_numpy()))
  return rows


def loop_rows(bsuite_id: str, agent: str, seeds, episodes: int, logged: np.ndarray) -> list[dict]:
  size = int(sweep.SETTINGS[bsuite_id]['size'])
  spec = run.RunSpec(size=size, episodes=episodes, seeds=tuple(seeds), mapping='bsuite')
  result = run.train_seeds(make_config(agent, 'deepsea'), spec)  # its own progress bar
  bad = result.total_bad_episodes[:, logged - 1]  # the loop keeps every episode; read bsuite's
  seconds = result.eval_wall_s[-1] / len(seeds)
  return [dict(path='jitted loop', seed=seed, bad=int(bad[i, -1]), solve=solve_episode(logged, bad[i]),
               seconds=round(seconds, 1)) for i, seed in enumerate(seeds)]


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--ids', nargs='+', default=['deep_sea/0', 'deep_sea/1'])
  parser.add_argument('--agent', default='hyperagent', choices=AGENTS)
  parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
  parser.add_argument('--episodes', type=int, default=1000)
  parser.add_argument('--out', default=None, help='folder for the runner CSVs (default: a temporary one)')
  args = parser.parse_args(argv)
  bad_ids = [i for i in args.ids if i not in sweep.DEEP_SEA]
  if bad_ids:
    parser.error(f'not deep_sea ids: {bad_ids}; valid: {", ".join(sweep.DEEP_SEA)}')
  if args.episodes < 1:
    parser.error(f'--episodes must be >= 1, got {args.episodes}')
  runtime.configure()
  out = args.out or tempfile.mkdtemp(prefix='bsuite_agreement_')
  table = []
  for bsuite_id in args.ids:
    runner = runner_rows(bsuite_id, args.agent, args.seeds, args.episodes, os.path.join(out, bsuite_id.replace('/', '-')))
    jitted = loop_rows(bsuite_id, args.agent, args.seeds, args.episodes, runner[0]['logged'])
    for rows in (runner, jitted):
      frame = pd.DataFrame(rows)
      table.append(dict(id=bsuite_id, path=rows[0]['path'], seeds=len(rows),
                        bad_per_seed=' '.join(str(b) for b in frame.bad), bad_mean=frame.bad.mean(),
                        solve_per_seed=' '.join(f'{s:.0f}' for s in frame.solve), solve_median=frame.solve.median(),
                        seconds_per_seed=frame.seconds.mean()))
  print(f'\n{args.agent}, {args.episodes} episodes, seeds {args.seeds}; runner CSVs in {out}\n')
  print('| id | path | bad episodes per seed | mean | bsuite solve episode per seed | median | s per seed |')
  print('|---|---|---|---|---|---|---|')
  for r in table:
    print(f"| {r['id']} | {r['path']} | {r['bad_per_seed']} | {r['bad_mean']:.0f} | {r['solve_per_seed']} | "
          f"{r['solve_median']:.0f} | {r['seconds_per_seed']:.0f} |")
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
