"""MinAtar in the jitted loop: ms per agent step (act, env step, store, one update), 1 seed and S seeds
vmapped, for each agent with the 'minatar' preset (HyperAgent and DQN unless told).

  python experiments/bench_minatar.py [--game breakout] [--seeds 1 3] [--steps 500] [--agents hyperagent dqn]

`ensemble` is Ensemble+ with the preset's shared CNN under ten heads; `ensemble_independent` is the
same with ten full CNNs (the config's `ensemble_torso='independent'`), what its cost would be.

Each figure is one chunk of --steps steps after the compilation and the warm-up (100 steps here).
Before session 28 the second call on freeway and space_invaders compiled the chunk again (weak-typed
env-state fields; BENCHMARKS.md, "MinAtar"), and figures before session 27 timed that call.
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from hyperagent import cli, jitloop, runtime
from hyperagent.config import AGENTS, make_config
from hyperagent.minatar import env as minatar


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   allow_abbrev=False)
  parser.add_argument('--game', default='breakout', choices=tuple(minatar.GAMES))
  parser.add_argument('--seeds', type=cli.count, nargs='+', default=[1, 3])
  parser.add_argument('--steps', type=cli.count, default=500)
  parser.add_argument('--agents', nargs='+', default=['hyperagent', 'dqn'],
                      choices=AGENTS + ('ensemble_independent',))
  args = parser.parse_args()
  runtime.configure()
  env, params = minatar.make(args.game)
  print('| agent | seeds | ms per step (all seeds) | ms per seed-step | seed-steps per second |')
  print('|---|---|---|---|---|')
  for agent_name in args.agents:
    if agent_name == 'ensemble_independent':
      config = make_config('ensemble', 'minatar', warmup_steps=100, ensemble_torso='independent')
    else:
      config = make_config(agent_name, 'minatar', warmup_steps=100)
    agent = jitloop.make_agent_for(config, env)
    chunk = jitloop.make_chunk_fn(config, env, jitloop.LoopSpec())
    for seeds in args.seeds:
      stacked = jitloop.stack_runs([params] * seeds)
      states = jitloop.init_runs(agent, env, 2 * args.steps, jnp.arange(seeds), stacked, np.full(seeds, 10**6))
      states, _ = chunk(args.steps, stacked, states)  # compiles and passes the warm-up
      jax.block_until_ready(states)
      start = time.perf_counter()
      states, _ = chunk(args.steps, stacked, states)
      jax.block_until_ready(states)
      step = (time.perf_counter() - start) / args.steps
      print(f'| {agent_name} | {seeds} | {1e3 * step:.2f} | {1e3 * step / seeds:.2f} | {seeds / step:,.0f} |',
            flush=True)


if __name__ == '__main__':
  main()
