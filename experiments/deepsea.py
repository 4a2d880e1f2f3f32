"""Train HyperAgent (or Ensemble+ / DQN) on DeepSea with the jitted loop, seeds vmapped.

  python experiments/deepsea.py --size 20 --seeds 5 --episodes 1000
  python experiments/deepsea.py --agent dqn --size 10 --mapping bsuite --set learning_rate=3e-4

Prints, per seed, the episode at which it solved the problem under bsuite's criterion (first episode
with total bad episodes / episodes < 0.9) and under the official code's (first evaluation whose test
episodes all reach the treasure), and writes a results folder (see hyperagent/deepsea/results.py).
A checkpoint in the folder is resumed when the same command is run again (--fresh to start over);
with a larger --episodes and the same --out it extends the run (the default folder's name changes
with --episodes, so name it).
"""
from __future__ import annotations

import signal
if __name__ == '__main__':  # Ctrl-C while JAX loads: end at once, no traceback (nothing is written yet)
  signal.signal(signal.SIGINT, signal.SIG_DFL)

import argparse
import dataclasses
import os
import sys
import time

from hyperagent import checkpoint, cli, runtime
from hyperagent.config import AGENTS, make_config, parse_overrides
from hyperagent.deepsea import run

def add_run_arguments(parser: argparse.ArgumentParser, exclude=()) -> None:
  """Every RunSpec field as a flag (generated), plus the first seed, config overrides and --no-progress
  (the caller adds --agent)."""
  cli.add_settings(parser, run.RunSpec, exclude=exclude, group='run settings (RunSpec)')
  parser.add_argument('--seed', type=int, default=0,
                      help='added to every seed, so --seeds 10 --seed 2020 runs seeds 2020..2029 (default: 0)')
  parser.add_argument('--set', action='append', default=[], metavar='FIELD=VALUE',
                      help='override any agent Config field, e.g. --set batch_size=64')
  parser.add_argument('--no-progress', action='store_true',
                      help='no progress bar (a run logged to a file): a line saying where it is every 10 minutes instead')


def make_run(args, agent_name: str, **given):
  """(config, spec) from parsed arguments and `given` RunSpec fields; raises ValueError naming the
  valid choices."""
  config = make_config(agent_name, 'deepsea', **parse_overrides(args.set))
  seeds = tuple(s + args.seed for s in given.pop('seeds', args.seeds))
  if not 0 <= min(seeds) <= max(seeds) <= cli.MAX_SEED:
    raise ValueError(f'--seed {args.seed} gives seeds {min(seeds)}..{max(seeds)}; '
                     'every seed must be in 0 .. 2**31 - 1.')
  return config, cli.settings_from(run.RunSpec, args, seeds=seeds, **given)


def run_folder(agent_name: str, config, spec: run.RunSpec, root: str = os.path.join('results', 'deepsea')) -> str:
  """<root>/<agent>-N<size>-<mapping>[-stochastic]-<run id>: readable, and different for any setting
  that changes the numbers."""
  name = f'{agent_name}-N{spec.size}-{spec.mapping}' + ('-stochastic' if spec.stochastic else '')
  return os.path.join(root, f'{name}-{checkpoint.run_id(config.to_dict(), dataclasses.asdict(spec))}')


class RunStopped(Exception):
  """A run stopped after printing its one-line reason; `code` is the exit status."""

  def __init__(self, code: int):
    super().__init__(code)
    self.code = code


def train_in_folder(out: str, config, spec: run.RunSpec, *, progress: bool, fresh: bool = False,
                    stop_when_solved: bool = False, announce: bool = False) -> run.Result:
  """Trains, resumes or loads the run whose folder is `out` (emptied first with `fresh`); `announce`
  prints whether it starts, resumes or loads, once the folder is ours. Ctrl-C, a foreign or
  unreadable checkpoint and a folder that is not a run's print one line and raise RunStopped."""
  path = os.path.join(out, 'checkpoint.npz')
  try:
    with checkpoint.folder_lock(out):
      checkpoint.check_kind(out, 'deepsea')
      if fresh:
        checkpoint.empty_folder(out)
      checkpoint.check_run_folder(out, path)
      return run.train_seeds(config, spec, progress=progress, stop_when_solved=stop_when_solved,
                             checkpoint_path=path, stop_on_interrupt=True, announce=announce)
  except checkpoint.FolderBusy as e:
    print(f'error: {e}', file=sys.stderr)
    raise RunStopped(checkpoint.BUSY_EXIT) from None
  except checkpoint.Interrupted as e:
    print(e, file=sys.stderr)
    raise RunStopped(130) from None
  except KeyboardInterrupt:  # outside a chunk (building, compiling, writing) or a second Ctrl-C
    print(checkpoint.interrupted_message(out, path), file=sys.stderr)
    raise RunStopped(130) from None
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    raise RunStopped(2) from None


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   allow_abbrev=False)
  parser.add_argument('--agent', default='hyperagent', help=f'one of {", ".join(AGENTS)} (default: hyperagent)')
  parser.add_argument('--out', type=cli.folder_flag, default=None,
                      help='results folder (default results/deepsea/<agent>-N<size>-<mapping>-<run id>, the run id '
                           'a hash of the resolved config and run settings: the same settings resume their run, '
                           'changed ones start their own)')
  parser.add_argument('--fresh', action='store_true', help='empty the results folder and start the run again')
  add_run_arguments(parser)
  args = parser.parse_args(argv)
  try:
    config, spec = make_run(args, args.agent)
  except ValueError as e:
    parser.error(str(e))

  out = args.out or run_folder(args.agent, config, spec)
  print(f'DeepSea N={spec.size}, {spec.episodes} episodes ({spec.total_steps:,} steps) x {len(spec.seeds)} '
        f'seeds {list(spec.seeds)}, agent {args.agent}, mapping {spec.mapping}; results in {out}')
  runtime.configure()
  start = time.perf_counter()
  try:
    result = train_in_folder(out, config, spec, progress=not args.no_progress, fresh=args.fresh,
                             announce=True)
  except RunStopped as stopped:
    return stopped.code
  wall = time.perf_counter() - start
  from hyperagent.deepsea import results as report
  rows = report.write_results(out, config, spec, result, extra=dict(command=' '.join(sys.argv)))
  print(report.format_summary(rows))
  print(f'{wall:.1f} s wall-clock in this invocation (compilation included); '
        f'{result.eval_wall_s[-1]:.1f} s for the whole run. Results: {out}/ (deepsea.png, summary.csv)')
  return 0


if __name__ == '__main__':
  signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on a run saves and says how to resume
  sys.exit(main())
