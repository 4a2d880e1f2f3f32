"""How far each agent's Q spreads over its index (over its members) at initialisation, on the bsuite presets:

for random binary observations of each size, the standard deviation of Q(s, a, ξ) over ξ, averaged over
observations and actions, then over initialisations. Untrained, that spread is almost all the frozen
prior's, so it says how large a prior a given prior_scale makes in each agent: the same prior_scale is
not the same prior (a member of Ensemble+ draws its prior head as its trainable head, over H·A weights;
HyperAgent's prior head generates weights of variance 1/M). One-hot agents are read at every member,
the others at 200 sampled indices. `boot_dqn` is bsuite's reference agent as
bsuite/baselines/jax/boot_dqn/agent.py's default_agent builds it: 20 members, each a Haiku MLP 50-50
plus 5 × a frozen one.

  python experiments/prior_spread.py [--bits 9 13 100] [--agents hyperagent ensemble ...] [--set prior_scale=50]
"""
from __future__ import annotations

import argparse

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from hyperagent import hypermodel
from hyperagent.agent import make_agent
from hyperagent.bsuite.sweep import BOOT_DQN, BOOT_DQN_DEFAULTS
from hyperagent.config import AGENTS, make_config, parse_overrides

BOOT_DQN_PRIOR_SCALE = 5.0  # fixed inside bsuite 0.3.6's boot_dqn.default_agent, as is its MLP
BOOT_DQN_HIDDEN = (50, 50)


def observations(key: jax.Array, bits: int, count: int) -> jax.Array:
  return jax.random.bernoulli(key, 0.5, (count, bits)).astype(jnp.float32)


def agent_spread(agent_name: str, bits: int, key: jax.Array, *, num_actions: int = 2, states: int = 64,
                 draws: int = 200, **overrides) -> float:
  """Mean over states and actions of the std of Q over the index (every member, for one-hot laws)."""
  config = make_config(agent_name, 'deepsea', **overrides)
  agent = make_agent(config, (bits,), num_actions)
  init_key, obs_key, index_key = jax.random.split(key, 3)
  params = agent.init(init_key).params
  obs = observations(obs_key, bits, states)
  if agent.network.index.name == 'one_hot':
    index = jnp.broadcast_to(jnp.eye(config.index_dim), (states, config.index_dim, config.index_dim))
  else:
    index = agent.network.index.sample(index_key, (states, draws))
  q = hypermodel.apply_batch(agent.network, params, obs, index)  # [B, K, A]
  return float(jnp.std(q, axis=1).mean())


def boot_dqn_spread(bits: int, key: jax.Array, *, num_actions: int = 2, states: int = 64,
                    members: int = BOOT_DQN_DEFAULTS['num_ensemble']) -> float:
  """The same measure for bsuite's boot_dqn: member m's Q is mlp_m(s) + 5 · prior_mlp_m(s)."""
  mlp = hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP([*BOOT_DQN_HIDDEN, num_actions])(x)))
  obs_key, *keys = jax.random.split(key, 2 * members + 1)
  obs = observations(obs_key, bits, states)
  q = jnp.stack([mlp.apply(mlp.init(keys[2 * m], obs), obs)
                 + BOOT_DQN_PRIOR_SCALE * mlp.apply(mlp.init(keys[2 * m + 1], obs), obs) for m in range(members)])
  return float(jnp.std(q, axis=0).mean())


def spread(agent_name: str, bits: int, inits: int, **overrides) -> float:
  keys = jax.random.split(jax.random.key(0), inits)
  if agent_name == BOOT_DQN:
    return float(np.mean([boot_dqn_spread(bits, k) for k in keys]))
  return float(np.mean([agent_spread(agent_name, bits, k, **overrides) for k in keys]))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   allow_abbrev=False)
  parser.add_argument('--bits', type=int, nargs='+', default=[9, 13, 100],
                      help='observation sizes (default: 9 13 100: umbrella_distract/5 and /9 have 9 and 13)')
  parser.add_argument('--agents', nargs='+', default=['hyperagent', 'hyperagent_one_hot', 'ensemble', BOOT_DQN],
                      choices=[*AGENTS, BOOT_DQN], metavar='AGENT',
                      help=f'a subset of: {", ".join([*AGENTS, BOOT_DQN])} (default: hyperagent '
                           'hyperagent_one_hot ensemble boot_dqn)')
  parser.add_argument('--set', action='append', default=[], metavar='FIELD=VALUE',
                      help="override a Config field of our agents, e.g. --set ensemble_torso=shared")
  parser.add_argument('--inits', type=int, default=5, help='initialisations averaged (default: 5)')
  args = parser.parse_args(argv)
  if min(args.bits) < 1 or args.inits < 1:
    parser.error(f'--bits and --inits must be >= 1, got {args.bits} and {args.inits}.')
  try:
    overrides = parse_overrides(args.set)
    make_config('hyperagent', 'deepsea', **overrides)
  except ValueError as error:
    parser.error(str(error))
  print('| observation bits | ' + ' | '.join(args.agents) + ' |')
  print('|---' * (len(args.agents) + 1) + '|')
  for bits in args.bits:
    cells = [f'{spread(name, bits, args.inits, **({} if name == BOOT_DQN else overrides)):.2f}'
             for name in args.agents]
    print(f'| {bits} | ' + ' | '.join(cells) + ' |', flush=True)
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
