"""Where a bsuite engine step goes: ms per run-step of the jitted loop on one id, 1 run and R vmapped
runs, for the 'deepsea' preset and variants with fewer update indices or a smaller batch.

  python experiments/bench_engine.py [--id catch/0] [--runs 1 20] [--steps 1000]
  python experiments/bench_engine.py --agent ensemble --runs 1 2 5 10 20
  python experiments/bench_engine.py --compaction umbrella_length [--episodes 150] [--rounds 2]

--agent dqn or ensemble times that agent's preset alone (HyperAgent also shows its variants).
Each figure is one chunk of --steps steps after the warm-up and the compilation (a first chunk of the
same length), so it is the steady state: act, env step, store, sample and one gradient step per run.

--compaction plays every id of an experiment as one group (`engine.run_group`) with finished runs
leaving the compiled loop and without, alternated --rounds times: the whole group's wall-clock,
compilation included, as a sweep pays it.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from hyperagent import cli, jitloop, runtime
from hyperagent.config import AGENTS, make_config
from hyperagent.bsuite import engine, sweep
from hyperagent.bsuite.envs import registry

VARIANTS = {"the 'deepsea' preset (batch 128, K = 20)": {}, 'K = 1': dict(num_update_indices=1),
            'batch 32': dict(batch_size=32)}


def ms_per_run_step(bsuite_id: str, runs: int, steps: int, overrides, agent_name: str = 'hyperagent') -> float:
  config = make_config(agent_name, 'deepsea', **overrides)
  env, params = registry.make_id(bsuite_id)
  agent = jitloop.make_agent_for(config, env)
  params = jitloop.stack_runs([params] * runs)
  states = jitloop.init_runs(agent, env, 2 * steps + config.warmup_steps, jnp.arange(runs), params,
                             np.full(runs, 10**6))
  chunk = jitloop.make_chunk_fn(config, env, jitloop.LoopSpec(own_budgets=True))
  states, _ = chunk(steps, params, states)  # compiles; passes the warm-up
  jax.block_until_ready(states)
  start = time.perf_counter()
  states, _ = chunk(steps, params, states)
  jax.block_until_ready(states)
  return 1e3 * (time.perf_counter() - start) / steps / runs


def compaction(experiment: str, episodes: int, rounds: int, agent: str = 'hyperagent') -> None:
  config = make_config(agent, 'deepsea')
  ids = sweep.resolve_ids(experiment)
  budgets = {i: episodes for i in ids}
  groups = engine.groups(engine.runs(ids), config, budgets)
  print(f'{experiment}: {len(ids)} ids, {episodes} episodes each, {len(groups)} group(s)')
  print('| round | finished runs stay: s | finished runs leave: s | ratio |')
  print('|---|---|---|---|')
  for r in range(rounds):
    seconds = []
    for compact in (False, True):
      label = f'round {r + 1}, finished runs {"leave" if compact else "stay"}'
      # disable=None: a bar on a terminal only, so a log keeps just the table
      with tqdm(total=episodes * len(ids), desc=label, unit='ep', leave=False, disable=None) as bar:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
          for group in groups:
            engine.run_group(group, config, budgets, out, compact=compact, on_chunk=bar.update)
        seconds.append(time.perf_counter() - start)
    print(f'| {r + 1} | {seconds[0]:.1f} | {seconds[1]:.1f} | {seconds[0] / seconds[1]:.2f}x |', flush=True)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   allow_abbrev=False)
  parser.add_argument('--id', default='catch/0', help='a bsuite id, e.g. deep_sea/3')
  parser.add_argument('--agent', default='hyperagent', choices=AGENTS)
  parser.add_argument('--runs', type=cli.count, nargs='+', default=[1, 20])
  parser.add_argument('--steps', type=cli.count, default=1_000)
  parser.add_argument('--compaction', metavar='EXPERIMENT', help='time an experiment with and without compaction')
  parser.add_argument('--episodes', type=cli.count, default=150)
  parser.add_argument('--rounds', type=cli.count, default=2)
  args = parser.parse_args()
  try:  # the error names the valid ids and experiments
    ids = sweep.resolve_ids(args.id)
    if ids != (args.id,):
      raise ValueError(f'--id takes one bsuite id, such as {ids[0]}; got {args.id!r}')
    if args.compaction:
      sweep.resolve_ids(args.compaction)
  except ValueError as error:
    parser.error(str(error))
  runtime.configure()
  if args.compaction:
    return compaction(args.compaction, args.episodes, args.rounds, args.agent)
  print('| setting | ' + ' | '.join(f'ms per run-step, {r} run(s)' for r in args.runs) + ' |')
  print('|---|' + '---|' * len(args.runs))
  variants = VARIANTS if args.agent == 'hyperagent' else {f"{args.agent}, the 'deepsea' preset": {}}
  for name, overrides in variants.items():
    cells = [f'{ms_per_run_step(args.id, r, args.steps, overrides, args.agent):.3f}' for r in args.runs]
    print(f'| {name} | ' + ' | '.join(cells) + ' |', flush=True)


if __name__ == '__main__':
  main()
