"""DeepSea (Osband et al. 2019) as pure JAX functions, matching `bsuite.environments.deep_sea`.

The agent starts top-left of an N x N grid and falls one row per step, choosing per cell (through a
fixed random mapping) between 'left' and 'right'. Going right costs `unscaled_move_cost / N`; the
only positive reward, +1, is for going right in the last column, so dithering needs ~2^N episodes.

Observations are compact: an int32 `position = row * N + column`, with `N * N` for the all-zeros
observation bsuite emits after the last step. A Linear layer on the flattened one-hot observation
equals an embedding lookup of row `position` in a table with one extra all-zeros row, so agents can
use either form; `one_hot_observation` gives bsuite's [N, N] array.

Episodes last exactly N steps. `step` does not auto-reset: call `reset_episode` after `terminated`
(stepping a finished episode is meaningless). The size is read from `mapping.shape` inside the
jitted functions and `deterministic` is only used in `jnp` ops, so `params` may be closed over or
passed as a (vmapped) traced argument.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hyperagent.environment import EnvStep, JaxEnv


class DeepSeaParams(NamedTuple):
  size: int
  mapping: jax.Array  # int32 [N, N]: action a at (row, col) is 'right' iff a == mapping[row, col].
  deterministic: bool = True
  unscaled_move_cost: float = 0.01


class DeepSeaState(NamedTuple):
  row: jax.Array
  column: jax.Array
  bad_episode: jax.Array  # Left the optimal diagonal by choosing 'left' (bsuite's regret proxy).
  total_bad_episodes: jax.Array
  denoised_return: jax.Array  # Sum of +1 treasures over all episodes, noise excluded.
  episode: jax.Array  # Finished episodes.
  episode_return: jax.Array  # Reward (noise included) of the current episode.


def make_mapping(size: int, mapping_seed: int) -> np.ndarray:
  """The same draw as bsuite's `DeepSea(size, mapping_seed=mapping_seed)._action_mapping`."""
  return np.random.RandomState(mapping_seed).binomial(1, 0.5, [size, size]).astype(np.int32)


def make_params(size: int, mapping_seed: int, deterministic: bool = True) -> DeepSeaParams:
  if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
    raise ValueError(f'DeepSea size must be an integer >= 1, got {size!r}.')
  mapping = jnp.asarray(make_mapping(int(size), mapping_seed))
  return DeepSeaParams(int(size), mapping, bool(deterministic))


def optimal_return(params: DeepSeaParams) -> float:
  """Expected return of always going right; in the stochastic variant all N-1 moves must succeed."""
  n = params.size
  no_cost = 1.0 if params.deterministic else (1 - 1 / n) ** (n - 1)
  return no_cost - params.unscaled_move_cost


def one_hot_observation(position: jax.Array, size: int) -> jax.Array:
  """bsuite's float32 [N, N] observation; `position == N * N` (episode end) gives all zeros."""
  return jax.nn.one_hot(position, size * size, dtype=jnp.float32).reshape(
      jnp.shape(position) + (size, size))


def _position(row: jax.Array, column: jax.Array, n: int) -> jax.Array:
  return jnp.where(row >= n, n * n, row * n + column).astype(jnp.int32)


def reachable_positions(size: int) -> tuple[int, ...]:
  """The cells an observation can show: each step moves one row down and at most one column right
  from (0, 0), so column <= row, N(N+1)/2 of the N² cells (in the stochastic variant too)."""
  return tuple(row * size + column for row in range(size) for column in range(row + 1))


def reset_episode(params: DeepSeaParams, state: DeepSeaState) -> tuple[DeepSeaState, jax.Array]:
  """Start a new episode at (0, 0), keeping the cross-episode counters used for scoring."""
  zero = jnp.zeros((), jnp.int32)
  state = state._replace(row=zero, column=zero, bad_episode=jnp.zeros((), bool),
                         episode_return=jnp.zeros((), jnp.float32))
  return state, zero


def reset(params: DeepSeaParams) -> tuple[DeepSeaState, jax.Array]:
  """A fresh environment: first episode, all counters zero."""
  zero = jnp.zeros((), jnp.int32)
  fresh = DeepSeaState(zero, zero, jnp.zeros((), bool), zero, jnp.zeros((), jnp.float32), zero,
                       jnp.zeros((), jnp.float32))
  return reset_episode(params, fresh)


def step(params: DeepSeaParams, state: DeepSeaState, action: jax.Array, key: jax.Array
         ) -> tuple[DeepSeaState, jax.Array, jax.Array, jax.Array]:
  """One step; returns (state, position, reward, terminated). `key` is unused if deterministic."""
  n = params.mapping.shape[-1]
  row, column = state.row, state.column
  right = jnp.asarray(action, jnp.int32) == params.mapping[row, column]
  treasure = jnp.where(right & (column == n - 1), 1.0, 0.0)
  # Same order of effects as bsuite: the treasure and move cost are paid even if the move fails.
  move_key, noise_key = jax.random.split(key)
  noisy_cell = ~jnp.asarray(params.deterministic) & (row == n - 1) & (
      (column == 0) | (column == n - 1))
  noise = jnp.where(noisy_cell, jax.random.normal(noise_key, ()), 0.0)
  reward = treasure + noise - jnp.where(right, params.unscaled_move_cost / n, 0.0)
  moved = jnp.asarray(params.deterministic) | (jax.random.uniform(move_key, ()) > 1 / n)
  new_column = jnp.where(right, jnp.where(moved, column + 1, column), column - 1)
  new_column = jnp.clip(new_column, 0, n - 1).astype(jnp.int32)
  bad = state.bad_episode | (~right & (row == column))
  new_row = row + 1
  terminated = new_row == n
  reward = reward.astype(jnp.float32)
  state = DeepSeaState(
      row=new_row, column=new_column, bad_episode=bad,
      total_bad_episodes=state.total_bad_episodes + (terminated & bad).astype(jnp.int32),
      denoised_return=state.denoised_return + treasure.astype(jnp.float32),
      episode=state.episode + terminated.astype(jnp.int32),
      episode_return=state.episode_return + reward)
  return state, _position(new_row, new_column, n), reward, terminated


# ----------------------------------------------------------------------------- as a JaxEnv


class EnvParams(NamedTuple):
  """The part of DeepSea's settings that may differ between runs of one compiled loop."""
  mapping: jax.Array  # int32 [N, N]


def make_env(size: int, deterministic: bool = True, unscaled_move_cost: float = 0.01) -> JaxEnv:
  """DeepSea of one size as a `JaxEnv` (observations: compact positions, `one_hot_input`)."""
  size, deterministic = int(size), bool(deterministic)

  def full(env_params: EnvParams) -> DeepSeaParams:
    return DeepSeaParams(size, env_params.mapping, deterministic, unscaled_move_cost)

  def init(env_params, key):
    return reset(full(env_params))[0]

  def reset_fn(env_params, state, key):
    return reset_episode(full(env_params), state)

  def step_fn(env_params, state, action, key):
    state, position, reward, terminated = step(full(env_params), state, action, key)
    return state, EnvStep(position, reward, jnp.where(terminated, 0.0, 1.0).astype(jnp.float32), terminated)

  def info(env_params, state):
    return dict(total_bad_episodes=state.total_bad_episodes, denoised_return=state.denoised_return)

  name = 'deep_sea' if deterministic else 'deep_sea_stochastic'
  return JaxEnv(name=name, static=(('size', size), ('unscaled_move_cost', unscaled_move_cost)),
                num_actions=2, observation_shape=(size, size), observation_dtype=jnp.int32,
                info_names=('total_bad_episodes', 'denoised_return'), init=init, reset=reset_fn,
                step=step_fn, info=info, one_hot_input=True, one_hot_cells=reachable_positions(size),
                max_episode_steps=size)


def make(size: int, deterministic: bool = True, unscaled_move_cost: float = 0.01,
         mapping_seed: int | None = None) -> tuple[JaxEnv, EnvParams]:
  """bsuite's `DeepSea(size, deterministic, unscaled_move_cost, mapping_seed=...)` as (JaxEnv, params).
  (bsuite's `randomize_actions=False` is not ported: no bsuite id uses it.)"""
  env = make_env(size, deterministic, unscaled_move_cost)
  return env, EnvParams(jnp.asarray(make_mapping(int(size), mapping_seed)))
