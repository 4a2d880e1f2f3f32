"""Train HyperAgent (or Ensemble+ / DQN) on DeepSea with the jitted loop, seeds vmapped.

  python experiments/deepsea.py --size 20 --seeds 5 --episodes 1000
  python experiments/deepsea.py --agent dqn --size 10 --mapping bsuite --set learning_rate=3e-4

Prints, per seed, the episode at which it solved the problem under bsuite's criterion (first episode
with total bad episodes / episodes < 0.9) and under the official code's (first evaluation whose test
episodes all reach the treasure), and writes a results folder (see hyperagent/deepsea/results.py).
A checkpoint in the folder is resumed when the same command is run again (--fresh to start over).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from hyperagent import runtime
from hyperagent.config import AGENTS, make_config, parse_overrides
from hyperagent.deepsea import run
from hyperagent.deepsea.run import MAPPINGS, official_episodes

def add_run_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument('--agent', default='hyperagent', help=f'one of {", ".join(AGENTS)}')
  parser.add_argument('--seeds', type=int, default=5, help='number of seeds, run at once (vmapped)')
  parser.add_argument('--seed', type=int, default=0, help='first seed; seeds are seed, seed+1, ...')
  parser.add_argument('--mapping', default='seed',
                      help=f"one of {', '.join(MAPPINGS)}: mapping_seed = run seed (official code) or 42 (bsuite)")
  parser.add_argument('--stochastic', action='store_true', help="bsuite's deep_sea_stochastic dynamics")
  parser.add_argument('--eval-every', type=int, default=1_000, help='env steps between evaluations')
  parser.add_argument('--eval-episodes', type=int, default=100)
  parser.add_argument('--set', action='append', default=[], metavar='FIELD=VALUE',
                      help='override any agent Config field, e.g. --set batch_size=64')
  parser.add_argument('--no-progress', action='store_true')


def make_run(args, size: int, episodes: int):
  """(config, spec) from parsed arguments; raises ValueError naming the valid choices."""
  if args.agent not in AGENTS:
    raise ValueError(f'Unknown agent {args.agent!r}; valid agents: {", ".join(AGENTS)}.')
  if args.seeds < 1:
    raise ValueError(f'--seeds must be >= 1, got {args.seeds}.')
  config = make_config(args.agent, 'deepsea', **parse_overrides(args.set))
  spec = run.RunSpec(size=size, num_episodes=episodes, seeds=tuple(range(args.seed, args.seed + args.seeds)),
                      mapping=args.mapping, deterministic=not args.stochastic,
                      eval_every=args.eval_every, eval_episodes=args.eval_episodes)
  return config, spec


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--size', type=int, default=20, help='DeepSea size N (>= 2)')
  parser.add_argument('--episodes', type=int, default=None,
                      help='training episodes per seed (default: the official budget for the size)')
  parser.add_argument('--out', default=None, help='results folder (default results/deepsea/<agent>-N<size>-<mapping>)')
  parser.add_argument('--fresh', action='store_true', help='ignore a checkpoint in the results folder')
  add_run_arguments(parser)
  args = parser.parse_args(argv)
  try:
    episodes = args.episodes if args.episodes is not None else official_episodes(args.size)
    config, spec = make_run(args, args.size, episodes)
  except ValueError as e:
    parser.error(str(e))

  runtime.configure()
  out = args.out or os.path.join('results', 'deepsea', f'{args.agent}-N{args.size}-{args.mapping}'
                                 + ('-stochastic' if args.stochastic else ''))
  os.makedirs(out, exist_ok=True)
  print(f'DeepSea N={spec.size}, {spec.num_episodes} episodes ({spec.total_steps:,} steps) x {len(spec.seeds)} '
        f'seeds {list(spec.seeds)}, agent {args.agent}, mapping {spec.mapping}; results in {out}')
  start = time.perf_counter()
  try:
    result = run.train(config, spec, progress=not args.no_progress,
                        checkpoint_path=os.path.join(out, 'checkpoint.npz'), resume=not args.fresh)
  except ValueError as e:  # a checkpoint of another run in the folder
    print(f'error: {e}', file=sys.stderr)
    return 2
  wall = time.perf_counter() - start
  from hyperagent.deepsea import results as report
  rows = report.write_results(out, config, spec, result, extra=dict(command=' '.join(sys.argv)))
  print(report.format_summary(rows))
  print(f'{wall:.1f} s wall-clock in this invocation (compilation included); '
        f'{result.eval_wall_s[-1]:.1f} s for the whole run. Results: {out}/ (deepsea.png, summary.csv)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
