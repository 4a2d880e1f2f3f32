"""Train on one Atari game with envpool, for one or more seeds: `make atari GAME=breakout`.

Each seed writes results/atari/<Game>/<agent>-<protocol>-<run id>/seed<k>/ (config.json, train.csv,
eval.csv, final.json, checkpoint.npz); the same command resumes from the checkpoint there. Agent config
fields are overridden with --set name=value (e.g. --set warmup_steps=500).

On a CPU, `make atari GAME=breakout` is the smoke test (its ATARI_ARGS shorten the evaluations, which by
default are 10 games at step 0 and 200 at the end, up to 27k steps each).
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

from hyperagent import cli
from hyperagent.atari.loop import RunConfig
from hyperagent.config import parse_overrides


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                              allow_abbrev=False)
  cli.add_settings(p, RunConfig, exclude=('seed', 'overrides'), group='run settings (RunConfig)')
  p.add_argument('--seeds', type=cli.parse_seeds, default=(0,),
                 help="a count ('3' = 0,1,2), a list ('2025,2030') or a range ('5-9') (default: '1': seed 0)")
  p.add_argument('--set', action='append', default=[], metavar='NAME=VALUE', help='agent Config override')
  p.add_argument('--out', type=cli.folder_flag, default='results/atari',
                 help='results root: each seed writes <out>/<Game>/<agent>-<protocol>-<run id>/seed<k>, the run id a '
                      'hash of the settings that change the numbers (the same command resumes its run)')
  p.add_argument('--fresh', action='store_true', help='empty the run folders and start again')
  p.add_argument('--resume', action='store_true', help='(the default now: kept so old commands still work)')
  p.add_argument('--no-progress', action='store_true', help='no progress bar')
  args = p.parse_args(argv)
  try:
    import envpool  # noqa: F401  (here, so that its absence is one line before any folder is made)
  except ImportError:
    p.error('Atari runs on envpool, which is not installed in this environment (requirements.txt pins '
            'envpool==1.2.5; it has wheels for Linux x86-64 only).')

  try:
    overrides = tuple(parse_overrides(args.set).items())
    runs = [cli.settings_from(RunConfig, args, seed=seed, overrides=overrides) for seed in args.seeds]
    runs[0].agent_config()  # unknown or invalid fields fail here, before any env is built
  except ValueError as e:
    p.error(str(e))
  game = runs[0].game

  from hyperagent import checkpoint, runtime
  from hyperagent.atari.runner import RUN_FILES, Runner
  folder = run_folder(args.out, runs[0])
  if jax_platform() == 'cpu' and runs[0].steps < 100_000:
    print('[atari] this is a CPU smoke test: far too few steps to show learning. Atari learning curves need a '
          'GPU (README, "Status and known gaps"; the GPU runbook in BENCHMARKS.md).', file=sys.stderr)
  runtime.configure()
  runner = None
  try:
    with checkpoint.folder_lock(folder):  # every seed of the run: a second process stops at once
      for run in runs:
        out_dir = os.path.join(folder, f'seed{run.seed}')
        checkpoint.check_kind(out_dir, 'atari')
        if args.fresh:
          checkpoint.empty_folder(out_dir, run_files=('config.json',) + RUN_FILES)
        # one set of compiled functions serves every seed (the seed is data, not structure)
        runner = Runner(run) if runner is None else runner.reseed(run.seed)
        print(f'[atari] {game} {run.agent} {run.protocol} seed {run.seed}: {run.total_steps} steps -> {out_dir}',
              file=sys.stderr)
        result = runner.train(out_dir, resume=True, progress=False if args.no_progress else None,
                              stop_on_interrupt=True)
        if 'loaded_from' in result:
          print(f'[atari] this run finished already: loaded {result["loaded_from"]}', file=sys.stderr)
        print(json.dumps({k: v for k, v in result.items() if k != 'scores'}))
  except checkpoint.Interrupted as e:
    print(e, file=sys.stderr)
    return 130
  except checkpoint.FolderBusy as e:
    print(f'error: {e}', file=sys.stderr)
    return checkpoint.BUSY_EXIT
  except KeyboardInterrupt:
    print(f'interrupted: the last checkpoint in {folder} is kept (every --checkpoint-every steps); the same '
          'command resumes from it.', file=sys.stderr)
    return 130
  except ValueError as e:  # a foreign or unreadable checkpoint, or a folder holding another run
    print(f'error: {e}', file=sys.stderr)
    return 2
  return 0


def run_folder(out: str, run: RunConfig) -> str:
  """<out>/<Game>/<agent>-<protocol>-<run id>: the folder of `run`'s seeds, named by every setting that
  changes the numbers (not the seed, nor what a resumed run may change)."""
  from hyperagent import checkpoint
  from hyperagent.atari.runner import RESUMABLE_CHANGES
  settings = {k: v for k, v in dataclasses.asdict(run).items() if k not in RESUMABLE_CHANGES + ('seed',)}
  run_id = checkpoint.run_id(settings, run.agent_config().to_dict())
  return os.path.join(out, run.game, f'{run.agent}-{run.protocol}-{run_id}')


def jax_platform() -> str:
  import jax
  return jax.default_backend()


if __name__ == '__main__':
  signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on a run saves and says how to resume
  sys.exit(main())
