"""DeepSea loop benchmarks (issue 3): the official DeepSea-20 run end to end, seeds vmapped, and N.

  python experiments/bench_deepsea.py              # all three parts
  python experiments/bench_deepsea.py --parts seeds sizes --steps 2000

1. `official`: the official code's DeepSea-20 run, 50,000 env steps with one update each plus its
   evaluations (100 test episodes every 1,000 steps), one seed: wall-clock end to end, compilation
   included and reported separately.
2. `seeds`: ms per seed-step at N = 20 with S seeds in one vmapped call, S = 1, 2, 5, 10.
3. `sizes`: ms per env step (one seed) for N = 10 ... 100.
--agent picks the agent of parts 2-3 (HyperAgent unless told; part 1 is always HyperAgent's).
Timings of parts 2-3 are the median of 3 chunks of --steps steps after a compiling chunk.
"""
from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from hyperagent import runtime
from hyperagent.config import AGENTS, make_config, parse_overrides
from hyperagent import jitloop
from hyperagent.deepsea import run


def time_chunks(size: int, seeds: int, steps: int, repeats: int = 3, overrides=None,
                agent_name: str = 'hyperagent') -> tuple[float, float]:
  """(compile + first chunk seconds, median seconds per chunk of `steps` steps)."""
  config = make_config(agent_name, 'deepsea', **(overrides or {}))
  spec = run.RunSpec(size=size, episodes=10 * steps, seeds=tuple(range(seeds)), eval_every=steps)
  agent = jitloop.make_agent_for(config, spec.env)
  chunk = jitloop.make_chunk_fn(config, spec.env, spec.loop)
  env_params, states = run.initial_states(agent, spec)
  start = time.perf_counter()
  states, _ = chunk(steps, env_params, states)
  jax.block_until_ready(states)
  first = time.perf_counter() - start
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    states, _ = chunk(steps, env_params, states)
    jax.block_until_ready(states)
    times.append(time.perf_counter() - start)
  return first, float(np.median(times))


def official_run() -> None:
  config = make_config('hyperagent', 'deepsea')
  spec = run.RunSpec(size=20, episodes=2_500, seeds=(2020,), eval_every=1_000, eval_episodes=100)
  start = time.perf_counter()
  result = run.train_seeds(config, spec, progress=False)
  wall = time.perf_counter() - start
  first_chunk = result.eval_wall_s[0]
  rest = (result.eval_wall_s[-1] - first_chunk) / (len(result.eval_wall_s) - 1)
  solved = run.eval_solve_episode(result.eval_optimal[0], result.eval_steps, spec.size)
  print(official_row(wall, first_chunk, 1e3 * rest / spec.eval_every, solved))


def official_row(wall_s: float, first_chunk_s: float, per_step_ms: float, solved) -> str:
  """The table row bench_official.py parses (tests/test_bench_official.py holds the two together)."""
  return (f'| DeepSea-20, 50,000 steps + 50 evaluations x 100 episodes, seed 2020 | {wall_s:.1f} s | '
          f'{first_chunk_s:.1f} s | {per_step_ms:.3f} ms | all-optimal at episode {solved} |')


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--parts', nargs='+', default=['official', 'seeds', 'sizes'], choices=['official', 'seeds', 'sizes'])
  parser.add_argument('--steps', type=int, default=2_000)
  parser.add_argument('--agent', default='hyperagent', choices=AGENTS)
  parser.add_argument('--sizes', type=int, nargs='+', default=[10, 20, 50, 100])
  parser.add_argument('--seed-counts', type=int, nargs='+', default=[1, 2, 5, 10])
  parser.add_argument('--compile-cache', metavar='DIR',
                      help="keep compiled programs in DIR (JAX's persistent cache, as `make deepsea` does); "
                           'run twice to time a warm second run. Off by default: timings include compilation')
  parser.add_argument('--set', action='append', default=[], metavar='FIELD=VALUE',
                      help='override a config field in the seeds/sizes parts, e.g. --set warmup_steps=1000000000 '
                           'to time the loop without updates')
  args = parser.parse_args()
  try:
    overrides = parse_overrides(args.set)
    make_config(args.agent, 'deepsea', **overrides)
    if args.steps < 1 or min(args.seed_counts) < 1:
      raise ValueError(f'--steps and --seed-counts must be >= 1, got {args.steps} and {args.seed_counts}')
    for size in args.sizes:  # the runs time_chunks builds, checked before any is compiled
      run.RunSpec(size=size, episodes=10 * args.steps, seeds=(0,), eval_every=args.steps)
  except ValueError as e:
    parser.error(str(e))
  runtime.unroll_cpu_threefry()  # HYPERAGENT_STOCK_PRNG=1 measures JAX's own lowering
  if args.compile_cache:
    runtime.enable_compilation_cache(args.compile_cache)
  device = jax.devices()[0]
  print(f'# device: {device.platform} ({device.device_kind}), jax {jax.__version__}; agent of the seeds/sizes '
        f'parts: {args.agent}')
  if 'official' in args.parts:
    print('\n| run | wall-clock total | first chunk (compile + 1,000 steps + eval) | per step after | solved |')
    print('|---|---|---|---|---|')
    official_run()
  if 'seeds' in args.parts:
    print('\n| seeds S (N=20, vmapped) | ms per step (all seeds) | ms per seed-step | compile + first chunk |')
    print('|---|---|---|---|')
    for s in args.seed_counts:
      first, per_chunk = time_chunks(20, s, args.steps, overrides=overrides, agent_name=args.agent)
      print(f'| {s} | {1e3 * per_chunk / args.steps:.3f} | {1e3 * per_chunk / args.steps / s:.3f} | {first:.1f} s |',
            flush=True)
  if 'sizes' in args.parts:
    print('\n| N (one seed) | ms per env step (act + env + store + learn) | compile + first chunk |')
    print('|---|---|---|')
    for n in args.sizes:
      first, per_chunk = time_chunks(n, 1, args.steps, overrides=overrides, agent_name=args.agent)
      print(f'| {n} | {1e3 * per_chunk / args.steps:.3f} | {first:.1f} s |', flush=True)


if __name__ == '__main__':
  main()
