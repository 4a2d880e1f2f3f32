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

from hyperagent.config import AGENTS, parse_overrides
from hyperagent.atari import env as atari


def parse_seeds(text: str) -> list[int]:
  """'3' -> seeds 0, 1, 2; '2025,2030' -> those seeds; '5-9' -> 5..9."""
  if ',' in text:
    return [int(s) for s in text.split(',') if s.strip()]
  if '-' in text.strip('-'):
    lo, hi = text.split('-')
    return list(range(int(lo), int(hi) + 1))
  return list(range(int(text)))


def main(argv=None) -> int:
  from hyperagent.atari.loop import ENV_MODES, RunConfig
  defaults = RunConfig()
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--game', default='breakout', help='any envpool Atari game, any case (breakout, Pong, ms_pacman)')
  p.add_argument('--agent', default='hyperagent', choices=AGENTS)
  p.add_argument('--protocol', default='paper', choices=atari.PROTOCOLS)
  p.add_argument('--seeds', default='1', help="a count ('3' = 0,1,2), a list ('2025,2030') or a range ('5-9')")
  p.add_argument('--steps', type=int, default=defaults.steps, help='agent steps (frames = 4x)')
  p.add_argument('--num-envs', type=int, default=defaults.num_envs)
  p.add_argument('--replay-ratio', type=float, default=defaults.replay_ratio, help='gradient updates per agent step')
  p.add_argument('--env-mode', default=defaults.env_mode, choices=ENV_MODES)
  p.add_argument('--num-threads', type=int, default=defaults.num_threads)
  p.add_argument('--eval-every', type=int, default=defaults.eval_every)
  p.add_argument('--eval-episodes', type=int, default=defaults.eval_episodes)
  p.add_argument('--final-eval-episodes', type=int, default=defaults.final_eval_episodes)
  p.add_argument('--final-eval-envs', type=int, default=defaults.final_eval_envs)
  p.add_argument('--eval-max-episode-steps', type=int, default=defaults.eval_max_episode_steps)
  p.add_argument('--log-every', type=int, default=defaults.log_every)
  p.add_argument('--checkpoint-every', type=int, default=defaults.checkpoint_every)
  p.add_argument('--no-checkpoint-replay', action='store_true', help='smaller checkpoints; resume is then not exact')
  p.add_argument('--set', action='append', default=[], metavar='NAME=VALUE', help='agent Config override')
  p.add_argument('--out', default='results/atari')
  p.add_argument('--resume', action='store_true')
  p.add_argument('--no-progress', action='store_true')
  args = p.parse_args(argv)

  try:
    game = atari.canonical_game(args.game)
    overrides = tuple(parse_overrides(args.set).items())
    seeds = parse_seeds(args.seeds)
    runs = [RunConfig(
        game=game, protocol=args.protocol, agent=args.agent, seed=seed, steps=args.steps,
        num_envs=args.num_envs, replay_ratio=args.replay_ratio, env_mode=args.env_mode,
        num_threads=args.num_threads, eval_every=args.eval_every, eval_episodes=args.eval_episodes,
        final_eval_episodes=args.final_eval_episodes, final_eval_envs=args.final_eval_envs,
        eval_max_episode_steps=args.eval_max_episode_steps, log_every=args.log_every,
        checkpoint_every=args.checkpoint_every, checkpoint_replay=not args.no_checkpoint_replay,
        overrides=overrides) for seed in seeds]
    runs[0].agent_config()  # unknown or invalid fields fail here, before any env is built
  except ValueError as e:
    p.error(str(e))

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
