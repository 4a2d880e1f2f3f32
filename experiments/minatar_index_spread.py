"""How much a MinAtar run's sampled index changes its policy, per seed, on states drawn from its replay:

- the posterior mean's action gap (top two of Q averaged over ξ: E[ξ̂]ᵀC[..., :M] + C[..., M], where
  E[ξ̂] is 0 for the sphere and Gaussian laws and 1/M per member for one-hot ones, Ensemble+'s);
- the spread of Q over ξ (standard deviation over 200 draws, averaged over actions), and that of each
  of its two parts alone: the frozen prior's, and the trained network's (Q = trained + prior);
- how often the greedy action under a sampled ξ differs from the posterior mean's;
- with --episodes N, the return of N test episodes under a sampled index each (the run's own evaluation,
  SPEC §2.2) beside that of the posterior mean's greedy policy, on the same games.

A spread far below the gap means Thompson sampling barely changes what the agent does, so it barely
explores. Reads a run folder of experiments/minatar.py (config.json and checkpoint.npz, finished or not).

  python experiments/minatar_index_spread.py results/minatar/breakout/hyperagent [--states 2000] [--episodes 20]
"""
from __future__ import annotations

import argparse
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from hyperagent import checkpoint, cli, hypermodel, jitloop
from hyperagent.config import Config
from hyperagent.minatar import env as minatar
from hyperagent.minatar import run


def load_run(folder: str):
  """(config, spec, agent, RunState of every seed, steps done) from a run folder."""
  paths = [os.path.join(folder, name) for name in ('config.json', 'checkpoint.npz')]
  missing = [path for path in paths if not os.path.exists(path)]
  if missing:
    raise checkpoint.CheckpointError(f'{folder} is not a MinAtar run folder of experiments/minatar.py: '
                                     f'{" and ".join(missing)} not found.')
  with open(paths[0]) as f:
    saved = json.load(f)
  config = Config.from_dict(saved['config'])
  # the checkpoint's own spec: a run being extended has config.json's new steps and its buffer still
  # at the old run's size
  saved_spec = checkpoint.load_meta(paths[1]).get('run', {}).get('spec', saved.get('spec', {}))
  spec = cli.from_record(run.RunSpec, saved_spec)
  _, _, agent, template = run.initial_states(config, spec)
  _, trees = checkpoint.load(paths[1], dict(states=template, result=run.empty_result(len(spec.seeds))),
                             exact_shapes=('states',))
  return config, spec, agent, trees['states'], int(trees['result'].steps[-1])


def index_mean(config: Config) -> jax.Array:
  """E[ξ̂], the mean network index: 0 for the symmetric laws, the uniform mixture of members for one-hot."""
  m = config.index_dim
  return jnp.full(m, 1.0 / m) if config.index_dist == 'one_hot' else jnp.zeros(m)


def mean_q(agent, params, obs: jax.Array) -> jax.Array:
  """[B, A] Q averaged over ξ: affine in ξ̂, so Q at E[ξ̂]."""
  return hypermodel.affine(index_mean(agent.config), agent.network.coefficients(params, obs))


def without_prior(config: Config, env):
  """The agent with its frozen prior left out (prior_scale 0): its network, given the same params, gives
  the trained part of Q alone (the prior's parameters are there but unread)."""
  return jitloop.make_agent_for(config.replace(prior_scale=0.0), env)


def spread(agent, params, obs: jax.Array, key: jax.Array, draws: int = 200, trained=None) -> dict[str, float]:
  """The figures above for one seed's `params` on observations obs[B, ...]; with `trained` (the agent
  `without_prior`), the spread of each part of Q alone too."""
  network = agent.network
  coefficients = network.coefficients(params, obs)                      # [B, A, M + 1]
  xi = network.index.network_input(network.index.sample(key, (draws,)))  # [draws, M]
  q = hypermodel.affine(xi[:, None, None], coefficients[None])          # [draws, B, A]
  mean = hypermodel.affine(index_mean(agent.config), coefficients)     # [B, A]
  top = jnp.sort(mean, axis=-1)
  std = lambda q: float(jnp.median(q.std(0).mean(-1)))
  figures = dict(gap=float(jnp.median(top[:, -1] - top[:, -2])), spread=std(q),
                 changed=float((q.argmax(-1) != mean.argmax(-1)[None]).mean()))
  if trained is not None:
    q_trained = hypermodel.affine(xi[:, None, None], trained.network.coefficients(params, obs)[None])
    figures.update(trained_spread=std(q_trained), prior_spread=std(q - q_trained))
  return figures


def evaluation_returns(agent, game: str, params, key: jax.Array, episodes: int, mean_index: bool) -> np.ndarray:
  """[episodes] returns of test episodes of `game` (`run.evaluation_returns`), each under a sampled index,
  or all under the posterior mean's greedy policy: the argmax of Q averaged over ξ (`mean_q`). The same
  `key` gives both the same games' draws."""
  if mean_index:
    mean_greedy = lambda params, actor, obs, first, evaluation=False: (mean_q(agent, params, obs).argmax(-1), actor)
    agent = agent._replace(act=mean_greedy)
  return run.evaluation_returns(agent, game, params, key, episodes)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('folder')
  parser.add_argument('--states', type=int, default=2000, help='replay states per seed (drawn uniformly)')
  parser.add_argument('--episodes', type=int, default=0,
                      help='test episodes per seed under a sampled index and under the posterior mean (0: none)')
  args = parser.parse_args(argv)
  if args.states < 1 or args.episodes < 0:
    parser.error(f'--states must be >= 1 and --episodes >= 0, got {args.states} and {args.episodes}')
  try:
    config, spec, agent, states, steps = load_run(args.folder)
  except (checkpoint.CheckpointError, ValueError) as error:  # ValueError: another kind of run's record
    parser.error(f'{args.folder}: {error}')
  if config.index_dim == 0:
    parser.error(f'{args.folder} has no index (index_dim 0: DQN); nothing to measure.')
  print(f'{args.folder}: {spec.game}, {steps:,} steps; medians over {args.states:,} replay states per seed')
  trained = without_prior(config, minatar.make(spec.game)[0])
  rng = np.random.default_rng(0)
  for i, seed in enumerate(spec.seeds):
    rows = rng.integers(0, int(states.replay.rows[i]), args.states)
    obs = jnp.asarray(np.asarray(states.replay.obs[i])[rows, 0])
    params = jax.tree.map(lambda x: jnp.asarray(x[i]), states.train.params)
    figures = spread(agent, params, obs, jax.random.PRNGKey(seed), trained=trained)
    print(f'seed {seed}: action gap {figures["gap"]:.3f}, spread of Q over the index {figures["spread"]:.4f} '
          f'(the prior alone {figures["prior_spread"]:.4f}, the trained part alone {figures["trained_spread"]:.4f}), '
          f'greedy action changed by a sampled index on {100 * figures["changed"]:.1f}% of states')
    if args.episodes:
      key = jax.random.PRNGKey(1000 + seed)
      sampled, mean = (evaluation_returns(agent, spec.game, params, key, args.episodes, mean_index)
                       for mean_index in (False, True))
      print(f'seed {seed}: test return over {args.episodes} episodes: {sampled.mean():.2f} under a sampled '
            f'index each, {mean.mean():.2f} under the posterior mean')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
