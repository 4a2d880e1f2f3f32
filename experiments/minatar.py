"""Train HyperAgent (or Ensemble+ / DQN) on a MinAtar game with the jitted loop, seeds vmapped.

  python experiments/minatar.py --game breakout --seeds 3 --steps 1000000
  make minatar GAME=breakout [SEEDS=3] [STEPS=1000000] [AGENT=hyperagent|ensemble|dqn] [ARGS=...]

Writes results/minatar/<game>/<agent>-<run id>/: config.json (resolved config and run settings),
metrics.csv (per evaluation and seed: steps, training return, episodes, test return, TD loss),
curve.png (test and training returns against steps, per seed and mean) and checkpoint.npz. The same
command resumes from the checkpoint (saved every 5 minutes and on Ctrl-C), or returns a finished run;
with a larger --steps and the same --out it extends a finished run (the run folder's default name
changes with --steps, so name it).
"""
from __future__ import annotations

import signal
if __name__ == '__main__':  # Ctrl-C while JAX loads: end at once, no traceback (nothing is written yet)
  signal.signal(signal.SIGINT, signal.SIG_DFL)

import argparse
import dataclasses
import json
import os
import sys

import numpy as np

from hyperagent import checkpoint, cli, runtime
from hyperagent.config import AGENTS, make_config, parse_overrides
from hyperagent.minatar import results, run


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0], epilog=__doc__.split('\n', 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
  cli.add_settings(parser, run.RunSpec, group='run settings (RunSpec)')
  parser.add_argument('--agent', default='hyperagent', choices=AGENTS, help='the agent preset (default: hyperagent)')
  parser.add_argument('--set', action='append', default=[], metavar='FIELD=VALUE', help='override a config field')
  parser.add_argument('--out', type=cli.folder_flag, default=None, help='results folder (default: results/minatar/<game>/<agent>-<run id>)')
  parser.add_argument('--fresh', action='store_true', help='empty the run folder and start again')
  parser.add_argument('--no-progress', action='store_true',
                      help='no progress bar (a run logged to a file): a line saying where it is every 10 minutes instead')
  args = parser.parse_args(argv)
  try:
    config = make_config(args.agent, 'minatar', **parse_overrides(args.set))
    spec = cli.settings_from(run.RunSpec, args)
  except ValueError as error:
    parser.error(str(error))
  if spec.steps <= config.warmup_steps:
    print(f'note: --steps {spec.steps:,} ends within the warm-up (warmup_steps {config.warmup_steps:,}): the agent acts '
          'at random and never learns; the test returns are an untrained network\'s', file=sys.stderr)
  run_id = checkpoint.run_id(config.to_dict(), dataclasses.asdict(spec))
  out = args.out or os.path.join('results', 'minatar', spec.game, f'{args.agent}-{run_id}')
  runtime.configure()
  path = os.path.join(out, 'checkpoint.npz')
  try:
    with checkpoint.folder_lock(out):
      try:
        checkpoint.check_kind(out, 'minatar')
        if args.fresh:
          checkpoint.empty_folder(out)
        checkpoint.check_run_folder(out, path, own=('config.json',))  # config.json: written at the start

        def write_config():  # only once the checkpoint is accepted: a refused run leaves the folder's as it was
          checkpoint.write_text(os.path.join(out, 'config.json'),
                                json.dumps(dict(agent=args.agent, **run.run_meta(config, spec)), indent=2))

        result = run.train_seeds(config, spec, progress=not args.no_progress, stop_on_interrupt=True,
                                 checkpoint_path=path, announce=True, on_accepted=write_config)
      except ValueError as error:  # a foreign or unreadable checkpoint, a folder that holds no run
        print(f'error: {error}', file=sys.stderr)
        return 2
      # outside the ValueError above: a failure while plotting is a bug to see, not a checkpoint error
      frame = results.write_results(out, args.agent, result, spec)
  except checkpoint.Interrupted as error:
    print(error, file=sys.stderr)
    return 130
  except KeyboardInterrupt:  # outside a chunk (building, compiling, writing) or a second Ctrl-C
    print(checkpoint.interrupted_message(out, path), file=sys.stderr)
    return 130
  except checkpoint.FolderBusy as error:
    print(f'error: {error}', file=sys.stderr)
    return checkpoint.BUSY_EXIT
  final = frame[frame.steps == frame.steps.max()]
  print(f'{spec.game}, {args.agent}, {spec.steps:,} steps: final test return per seed '
        f'{np.round(final.eval_return.to_numpy(), 2).tolist()}, mean {final.eval_return.mean():.2f}; results in {out}')
  return 0


if __name__ == '__main__':
  signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on a run saves and says how to resume
  sys.exit(main())
