"""What an agent believes at the start of a bsuite episode: trains a few ids of one experiment as the
jitted engine does (vmapped, each id on its own seed `sweep.id_seed(seed, id)`, to its own episode
budget), then prints per id the mean return per episode and Q(s₀, a, ξ) at the first observation
over sampled indices: the mean over ξ, its spread, and how often each action is greedy.

Made for discounting_chain (BENCHMARKS.md, issue 14), whose first action picks one of five chains;
the ids 0, 5, 10 and 15 pay the 1.1 bonus on the chain that pays after 1 step. With γ = 0.99 the true
values of the chains paying after 1, 3, 10, 30 and 100 steps are then 1.10, 0.98, 0.91, 0.75, 0.37.

  python experiments/bsuite_values.py discounting_chain/0 discounting_chain/5 discounting_chain/10 \\
      discounting_chain/15 --agent hyperagent --episodes 1000
"""
from __future__ import annotations

import argparse

import jax
import numpy as np
from tqdm import tqdm

from hyperagent import hypermodel, jitloop
from hyperagent.bsuite import engine
from hyperagent.bsuite.envs import registry
from hyperagent.config import Config, make_config, parse_overrides


def train(config: Config, ids: list[str], episodes: int, seed: int, chunk_steps: int = 5_000):
  """(agent, env, env params[R], final RunState[R]) after `episodes` episodes of every id."""
  envs = {registry.make_id(i)[0] for i in ids}
  if len(envs) != 1:
    raise ValueError(f'the ids must share one environment (one experiment and shape): {", ".join(ids)}')
  env = envs.pop()
  size = engine.capacity(config, env, [engine.most_steps(i, episodes) for i in ids], len(ids))
  agent, params, _, states = engine.initial_runs(config, env, ids, np.full(len(ids), episodes, np.int32), seed,
                                                 size)
  chunk = jitloop.make_chunk_fn(config, env, jitloop.LoopSpec(own_budgets=True))
  played = np.asarray(states.counters.episode)
  with tqdm(total=episodes * len(ids), unit='ep', desc='episodes', disable=None) as bar:  # a TTY only
    while np.any(played < episodes):
      states, _ = chunk(chunk_steps, params, states)
      now = np.asarray(states.counters.episode)
      bar.update(int(now.sum() - played.sum()))
      played = now
  return agent, env, params, states


def first_values(agent, env, params, states, indices: int, seed: int) -> list[dict[str, np.ndarray]]:
  """Per run: Q(s₀, ·, ξ) over `indices` sampled ξ, summarised."""
  rows = []
  for run in range(len(states.counters.episode)):
    run_params = jax.tree.map(lambda x: x[run], params)
    _, obs = env.reset(run_params, env.init(run_params, jax.random.PRNGKey(0)), jax.random.PRNGKey(0))
    net_params = jax.tree.map(lambda x: x[run], states.train.params)
    xi = agent.network.index.sample(jax.random.PRNGKey(seed + run), (1, indices))
    q = np.asarray(hypermodel.apply_batch(agent.network, net_params, obs[None], xi)[0])  # [K, A]
    greedy = np.bincount(q.argmax(-1), minlength=env.num_actions) / len(q)
    rows.append(dict(mean=q.mean(0), sd=q.std(0), greedy=greedy))
  return rows


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   allow_abbrev=False)
  parser.add_argument('ids', nargs='+', help='bsuite ids of one experiment, e.g. discounting_chain/0')
  parser.add_argument('--agent', default='hyperagent', help='hyperagent, ensemble, dqn or hyperagent_one_hot')
  parser.add_argument('--episodes', type=int, default=1_000, help='episodes per id (default 1,000)')
  parser.add_argument('--seed', type=int, default=0, help="the sweep's seed: id n plays 1000 x seed + n")
  parser.add_argument('--indices', type=int, default=2_000, help='sampled indices for Q at s0')
  parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='FIELD=VALUE',
                      help='override a config field (repeatable)')
  args = parser.parse_args(argv)
  try:
    for bsuite_id in args.ids:
      registry.make_id(bsuite_id)  # an unknown or unported id is a ValueError naming the valid ones
    if args.episodes < 1:
      raise ValueError(f'--episodes must be positive, got {args.episodes}')
    config = make_config(args.agent, 'deepsea', **parse_overrides(args.overrides))  # bsuite's preset
    agent, env, params, states = train(config, args.ids, args.episodes, args.seed)
  except ValueError as error:
    parser.error(str(error))
  returns = np.asarray(states.counters.total_return) / np.asarray(states.counters.episode)
  # three significant digits, not three decimals: the scale experiments' rewards go down to 0.001
  np.set_printoptions(formatter={'float': lambda v: f'{v:.3g}'})
  for bsuite_id, ret, row in zip(args.ids, returns, first_values(agent, env, params, states, args.indices, args.seed)):
    print(f'{bsuite_id}: return per episode {ret:.4g}; Q(s0) mean over xi {row["mean"]}, '
          f'sd {row["sd"]}, greedy under {row["greedy"]}')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
