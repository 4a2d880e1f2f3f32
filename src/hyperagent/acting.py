"""Thompson-style acting (SPEC §2.1-2.2): greedy w.r.t. Q(s, ·, ξ_e), one held index per env."""
from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from hyperagent import hypermodel
from hyperagent.config import Config
from hyperagent.losses import rd_argmax


class ActorState(NamedTuple):
  index: jax.Array  # [E, M] raw index ξ_e held by each environment
  step: jax.Array   # env steps taken in training (drives warm-up and the ε schedule)
  key: jax.Array


def init_actor(network: hypermodel.Network, key: jax.Array, num_envs: int) -> ActorState:
  key, sub = jax.random.split(key)
  index = network.index.sample(sub, (num_envs,))
  return ActorState(index=index, step=jnp.zeros((), jnp.int32), key=key)


def epsilon(config: Config, step: jax.Array) -> jax.Array:
  """Linear ε decay from epsilon_start to epsilon_end over epsilon_decay_steps (0 for HyperAgent)."""
  frac = jnp.clip(step / config.epsilon_decay_steps, 0.0, 1.0)
  return config.epsilon_start + frac * (config.epsilon_end - config.epsilon_start)


def act(network: hypermodel.Network, config: Config, params, actor_state: ActorState,
        obs: jax.Array, first: jax.Array, evaluation: bool = False) -> tuple[jax.Array, ActorState]:
  """One action per environment.

  Args:
    obs: [E, ...] current observations. first: [E] bool, True where obs starts an episode.
    evaluation: test-time policy: the index is resampled at episode start only, ε = epsilon_eval,
      no warm-up; the step counter does not advance.
  """
  num_envs = obs.shape[0]
  chex.assert_shape(first, (num_envs,), custom_message=f'first must be [E] = [{num_envs}], one flag per env')
  chex.assert_shape(actor_state.index, (num_envs, network.index.dim),
                    custom_message=f'actor_state.index must be [E, M] = [{num_envs}, {network.index.dim}]: '
                                   'init_actor with as many envs as obs has rows')
  key, k_coin, k_index, k_tie, k_eps, k_random = jax.random.split(actor_state.key, 6)
  resample = first
  if not evaluation:
    resample = resample | jax.random.bernoulli(k_coin, config.resample_prob, (num_envs,))
  fresh = network.index.sample(k_index, (num_envs,))
  index = jnp.where(resample[:, None], fresh, actor_state.index)

  q = jax.vmap(network.apply, in_axes=(None, 0, 0))(params, obs, index)
  greedy = rd_argmax(q, k_tie)

  if evaluation:
    eps, explore = config.epsilon_eval, jnp.zeros((num_envs,), bool)
  else:
    eps, explore = epsilon(config, actor_state.step), jnp.broadcast_to(~config.warmed_up(actor_state.step), (num_envs,))
  explore = explore | (jax.random.uniform(k_eps, (num_envs,)) < eps)
  random_action = jax.random.randint(k_random, (num_envs,), 0, network.num_actions)
  action = jnp.where(explore, random_action, greedy)

  step = actor_state.step if evaluation else actor_state.step + num_envs
  return action, ActorState(index=index, step=step, key=key)
