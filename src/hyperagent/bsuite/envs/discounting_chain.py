"""bsuite's `DiscountingChain` (bsuite.environments.discounting_chain): the first action picks one
of five chains, and chain a pays its reward once, after `REWARD_TIMESTEPS[a]` steps (1, 3, 10, 30
or 100); every chain pays 1 except one, chosen by `mapping_seed`, which pays 1.1. Episodes last 100
steps and end in a termination.

The observation is float32 [1, 2]: (the chosen chain, -1 before the first step; steps / 100). The
bonus chain is a setting, so the per-chain rewards are `Params` (stackable over the experiment's
ids); nothing is drawn while playing.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hyperagent.environment import EnvStep, JaxEnv

EPISODE_LEN = 100
REWARD_TIMESTEPS = (1, 3, 10, 30, 100)  # the step at which chain a pays
NUM_ACTIONS = len(REWARD_TIMESTEPS)
# bsuite's `t / 100` (float64, stored in float32) for t = 0..100. A table, as XLA turns a float32
# division by the constant 100 into a multiplication by float32(0.01), up to an ulp off.
_TIMES = np.arange(EPISODE_LEN + 1) / EPISODE_LEN


class Params(NamedTuple):
  rewards: jax.Array  # float32 [5]: what each chain pays; 1 but for the bonus chain's 1.1


class State(NamedTuple):
  timestep: jax.Array  # int32 []: steps taken this episode
  context: jax.Array   # int32 []: the chain chosen by the first action; -1 before it


def chain_rewards(mapping_seed: int | None) -> np.ndarray:
  """bsuite's constructor: the bonus chain is `mapping_seed % 5`, or, without a seed, a draw from
  numpy's global generator (`np.random.randint(0, 5)`, as bsuite does)."""
  if mapping_seed is None:
    mapping_seed = np.random.randint(0, NUM_ACTIONS)
  else:
    mapping_seed = mapping_seed % NUM_ACTIONS
  rewards = np.ones(NUM_ACTIONS)
  rewards[mapping_seed] += 0.1
  return rewards


def _observation(state: State) -> jax.Array:
  time = jnp.asarray(_TIMES, jnp.float32)[state.timestep]
  return jnp.stack([state.context.astype(jnp.float32), time])[None, :]


def init(params: Params, key: jax.Array) -> State:
  return State(jnp.zeros((), jnp.int32), jnp.full((), -1, jnp.int32))


def reset(params: Params, state: State, key: jax.Array) -> tuple[State, jax.Array]:
  state = init(params, key)
  return state, _observation(state)


def step(params: Params, state: State, action: jax.Array, key: jax.Array) -> tuple[State, EnvStep]:
  """The first action fixes the chain; later actions do nothing. No draws."""
  context = jnp.where(state.timestep == 0, jnp.asarray(action, jnp.int32), state.context)
  timestep = state.timestep + 1
  paid = timestep == jnp.asarray(REWARD_TIMESTEPS, jnp.int32)[context]
  reward = jnp.where(paid, params.rewards[context], 0.0).astype(jnp.float32)
  state = State(timestep, context)
  last = timestep == EPISODE_LEN
  discount = jnp.where(last, 0.0, 1.0).astype(jnp.float32)
  return state, EnvStep(_observation(state), reward, discount, last)


def info(params: Params, state: State) -> dict[str, jax.Array]:
  """bsuite's `bsuite_info()` is empty: the analysis uses the episode returns alone."""
  return {}


def make(mapping_seed: int | None = None) -> tuple[JaxEnv, Params]:
  env = JaxEnv(name='discounting_chain', static=(), num_actions=NUM_ACTIONS,
               observation_shape=(1, 2), observation_dtype=jnp.float32, info_names=(),
               init=init, reset=reset, step=step, info=info, max_episode_steps=EPISODE_LEN)
  return env, Params(jnp.asarray(chain_rewards(mapping_seed), jnp.float32))
