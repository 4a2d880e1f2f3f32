"""Train on one Atari game with envpool, for one or more seeds: `make atari GAME=breakout`.

Each seed writes results/atari/<Game>/<agent>-<protocol>/seed<k>/ (config.json, train.csv,
eval.csv, final.json, checkpoint.npz); `--resume` continues from the checkpoint there. Agent config
fields are overridden with --set name=value (e.g. --set warmup_steps=500).

Example (CPU demo):  python experiments/atari.py --game breakout --steps 5000 --set warmup_steps=1000
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from hyperagent import cli
from hyperagent.atari.loop import RunConfig
from hyperagent.config import parse_overrides


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  cli.add_settings(p, RunConfig, exclude=('seed', 'overrides'), group='run settings (RunConfig)')
  p.add_argument('--seeds', type=cli.parse_seeds, default=(0,),
                 help="a count ('3' = 0,1,2), a list ('2025,2030') or a range ('5-9') (default: 0)")
  p.add_argument('--set', action='append', default=[], metavar='NAME=VALUE', help='agent Config override')
  p.add_argument('--out', default='results/atari')
  p.add_argument('--resume', action='store_true')
  p.add_argument('--no-progress', action='store_true')
  args = p.parse_args(argv)

  try:
    overrides = tuple(parse_overrides(args.set).items())
    runs = [cli.settings_from(RunConfig, args, seed=seed, overrides=overrides) for seed in args.seeds]
    runs[0].agent_config()  # unknown or invalid fields fail here, before any env is built
  except ValueError as e:
    p.error(str(e))
  game = runs[0].game

  from hyperagent import runtime
  from hyperagent.atari.runner import Runner
  runtime.configure()
  runner = None
  for run in runs:
    out_dir = os.path.join(args.out, game, f'{run.agent}-{run.protocol}', f'seed{run.seed}')
    # one set of compiled functions serves every seed (the seed is data, not structure)
    runner = Runner(run) if runner is None else runner.reseed(run.seed)
    print(f'[atari] {game} {run.agent} {run.protocol} seed {run.seed}: {run.total_steps} steps -> {out_dir}',
          file=sys.stderr)
    result = runner.train(out_dir, resume=args.resume, progress=False if args.no_progress else None)
    print(json.dumps({k: v for k, v in result.items() if k != 'scores'}))
  return 0


if __name__ == '__main__':
  sys.exit(main())
