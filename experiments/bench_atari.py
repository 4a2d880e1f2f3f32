"""Throughput of the Atari actor-learner loop: agent steps/s and the share of time in env/act/learn.

For each replay ratio, builds the loop with the paper's Atari agent (SPEC §4; batch 32 x K = 20
indices, gradient penalty on), fills the replay past a short warm-up, then times `--iters`
iterations of  act → env.step → fused add+learn  with a device sync after each phase (so shares are
exact; throughput without the syncs is within a few % on CPU). 'xla' mode times the fused
jitted loop as a whole.

  python experiments/bench_atari.py --ratios 1 0.25 --num-envs 1 --iters 20
"""
from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from hyperagent import cli, runtime
from hyperagent.atari import env as atari


def bench(game: str, num_envs: int, ratio: float, iters: int, mode: str, num_threads: int) -> dict:
  from hyperagent.atari.loop import RunConfig, init_learner, reset_carry
  from hyperagent.atari.runner import Runner
  warmup = 64
  run = RunConfig(game=game, num_envs=num_envs, replay_ratio=ratio, env_mode=mode, num_threads=num_threads,
                  overrides=(('warmup_steps', warmup), ('replay_capacity', 10_000)))
  runner = Runner(run)
  state = init_learner(runner.agent, run, jax.random.PRNGKey(0))
  env = runner.make_env(num_envs, 0, evaluation=False)
  obs, info = env.reset()
  state = runner.start_segment(state, obs[:, -1])
  carry = reset_carry(info)
  # Warm-up plus a few learning iterations: compiles every variant before timing.
  fill = -(-warmup // num_envs) + max(4, int(np.ceil(4 / max(ratio * num_envs, 1e-9))))
  handle = env.xla()[0] if mode == 'xla' else None
  if mode == 'host':
    state, obs, carry, _ = runner.run_host(env, state, obs, carry, fill, {})
  else:
    handle, state, obs, carry, _ = runner.run_xla(env, handle, state, obs, carry, fill, {})
  updates0 = int(state.updates)
  timer = {'sync': True}
  t0 = time.perf_counter()
  if mode == 'host':
    state, obs, carry, _ = runner.run_host(env, state, obs, carry, iters, timer)
  else:
    handle, state, obs, carry, _ = runner.run_xla(env, handle, state, obs, carry, iters, timer)
  jax.block_until_ready(state.env_steps)
  wall = time.perf_counter() - t0
  env.close()
  timer.pop('sync')
  steps, updates = iters * num_envs, int(state.updates) - updates0
  return dict(game=game, mode=mode, num_envs=num_envs, replay_ratio=ratio, backend=jax.default_backend(),
              steps=steps, updates=updates, seconds=round(wall, 2), steps_per_s=round(steps / wall, 2),
              updates_per_s=round(updates / wall, 2),
              share={k: round(v / wall, 3) for k, v in timer.items()})


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--game', type=cli.reader(atari.canonical_game), default='Breakout')
  p.add_argument('--ratios', type=float, nargs='+', default=[1.0, 0.25])
  p.add_argument('--num-envs', type=cli.count, nargs='+', default=[1])
  p.add_argument('--iters', type=cli.count, default=20, help='timed iterations (each = num_envs agent steps)')
  p.add_argument('--mode', default='host', choices=('host', 'xla'))
  p.add_argument('--num-threads', type=int, default=0)
  args = p.parse_args(argv)
  runtime.configure()
  for num_envs in args.num_envs:
    for ratio in args.ratios:
      print(json.dumps(bench(args.game, num_envs, ratio, args.iters, args.mode, args.num_threads)), flush=True)
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
