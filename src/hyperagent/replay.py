"""A device-resident FIFO replay for vector observations, with n-step folding at sampling time.

The buffer is time-major, [capacity, num_envs, ...]: `add` writes one time step of every env, so
consecutive rows of one env column are consecutive steps of that env and n-step chains follow them.
Observations may be stored in any compact form (e.g. DeepSea cell positions); `Batch.obs` holds
what was stored, and the caller turns it into network input.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np


class Batch(NamedTuple):
  """Transitions already folded into n-step form (`n_step_return` does the folding)."""
  obs: jax.Array           # [B, ...] s_i
  action: jax.Array        # [B] a_i
  reward: jax.Array        # [B] Σ_{j<m} γ^j r_{i,j}
  discount: jax.Array      # [B] γ^m · 𝟙[bootstrap]: 0 after a terminal, γ^m through a truncation
  next_obs: jax.Array      # [B, ...] s_i^{(m)}
  perturbation: jax.Array  # [B, M] z_i of the first transition (Ensemble+: its bootstrap mask)
  weight: jax.Array | None = None  # [B] or [B, K] loss weights, None = all 1 (Ensemble+'s masks, agent.py)


class ReplayState(NamedTuple):
  obs: jax.Array           # [C, E, ...]
  action: jax.Array        # [C, E]
  reward: jax.Array        # [C, E]
  terminated: jax.Array    # [C, E] the episode ended in a terminal state: no bootstrap
  truncated: jax.Array     # [C, E] the episode was cut (time limit): bootstrap from next_obs
  next_obs: jax.Array      # [C, E, ...]
  perturbation: jax.Array  # [C, E, M]
  position: jax.Array      # next row to write
  rows: jax.Array          # rows stored, at most C


def capacity(wanted: int, most_steps: int | None = None) -> int:
  """`wanted` (config.replay_capacity), or the most transitions a run can store when that is fewer:
  a FIFO that never wraps behaves the same at any larger capacity. `most_steps` None: unbounded."""
  return wanted if most_steps is None else min(wanted, most_steps)


def memory_capped(wanted: int, transition_bytes: int, max_bytes: int, floor: int) -> int:
  """`wanted` transitions, or as many of `transition_bytes` as fit in `max_bytes` when fewer, but never
  fewer than `floor` (one batch) on account of memory. Both bsuite engines cap their buffers here."""
  return int(min(wanted, max(max_bytes // transition_bytes, floor)))


def grow(state: ReplayState, capacity: int, axis: int = 0) -> ReplayState:
  """The buffer at a `capacity` at least its own (its C axis at `axis`: 1 for runs stacked on a leading
  axis), as a buffer of that size from the start would hold the same rows. Exact only for a buffer that
  never overwrote a row, which the caller must know: `capacity(wanted, most_steps)` guarantees it for a
  run's buffer (it holds every step), so a finished run extended to more steps may grow. A buffer whose
  next row is not rows % C has wrapped and is refused; one written exactly k·C times cannot be told
  from one written once."""
  old = state.action.shape[axis]
  rows, position = np.asarray(state.rows), np.asarray(state.position)
  if capacity < old or np.any(position != rows % old):
    raise ValueError(f'a replay of {old} rows grows only to a capacity at least its own (not {capacity}), and '
                     f'only if it never overwrote a row (next row {position.tolist()}, rows {rows.tolist()}).')

  def pad(x):
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, capacity - old)
    return jnp.pad(x, widths)
  buffers = [name for name in ReplayState._fields if name not in ('position', 'rows')]  # every [.., C, ..] field
  return state._replace(**{name: pad(getattr(state, name)) for name in buffers},
                        position=state.rows % capacity)  # a new buffer: the loop donates both


def transition_bytes(obs_shape, one_hot_input: bool, index_dim: int) -> int:
  """Bytes one stored transition takes: obs and next obs (float32, or one int32 position for a
  one-hot input), the M-wide perturbation, and action, reward and flags."""
  obs = 4 if one_hot_input else 4 * math.prod(obs_shape)
  return 2 * obs + 4 * index_dim + 16


def init(capacity: int, num_envs: int, obs_example: jax.Array, index_dim: int) -> ReplayState:
  """An empty buffer of `capacity` time steps for `num_envs` envs; obs_example has no batch axis."""
  obs = jnp.zeros((capacity, num_envs) + obs_example.shape, obs_example.dtype)
  zeros = jnp.zeros((capacity, num_envs))
  # next_obs gets its own buffer: sharing one would break donation (the same buffer donated twice)
  return ReplayState(obs, zeros.astype(jnp.int32), zeros, zeros.astype(bool), zeros.astype(bool), jnp.zeros_like(obs),
                     jnp.zeros((capacity, num_envs, index_dim)), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def add(state: ReplayState, obs, action, reward, terminated, truncated, next_obs, perturbation) -> ReplayState:
  """Writes one time step of every env (each argument has a leading [E] axis)."""
  chex.assert_shape([obs, next_obs], [state.obs.shape[1:]] * 2,
                    custom_message=f'obs and next_obs must be [E, ...] = {list(state.obs.shape[1:])}')
  chex.assert_shape([action, reward, terminated, truncated], [state.action.shape[1:]] * 4,
                    custom_message=f'action, reward, terminated and truncated must be [E] = {list(state.action.shape[1:])}')
  chex.assert_shape(perturbation, state.perturbation.shape[1:],
                    custom_message=f'perturbation must be [E, M] = {list(state.perturbation.shape[1:])}')
  row = state.position
  put = lambda buf, x: buf.at[row].set(x.astype(buf.dtype))
  capacity = state.action.shape[0]
  return ReplayState(
      put(state.obs, obs), put(state.action, action), put(state.reward, reward),
      put(state.terminated, terminated), put(state.truncated, truncated), put(state.next_obs, next_obs),
      put(state.perturbation, perturbation), (row + 1) % capacity, jnp.minimum(state.rows + 1, capacity))


def size(state: ReplayState) -> jax.Array:
  """|D|, the number of transitions stored."""
  return state.rows * state.action.shape[1]


def n_step_return(reward, terminated, truncated, available, discount: float):
  """Folds a chain of n transitions (axis -1) into (Σ_{j<m} γ^j r_j, γ^m·𝟙[bootstrap], m).

  The chain stops at the first terminated or truncated transition and before the first one that is
  not `available` (not yet stored); it bootstraps unless it stopped on a terminal.
  """
  n = reward.shape[-1]
  done = terminated | truncated
  # transition j is used if it is available and no earlier one ended the episode
  ended_before = jnp.cumsum(done, axis=-1) - done > 0
  used = available & ~ended_before & (jnp.cumsum(~available, axis=-1) == 0)
  m = used.sum(axis=-1)
  powers = discount ** jnp.arange(n)
  ret = jnp.sum(jnp.where(used, reward * powers, 0.0), axis=-1)
  last = jnp.maximum(m - 1, 0)
  last_terminal = jnp.take_along_axis(terminated, last[..., None], axis=-1)[..., 0]
  return ret, jnp.where(last_terminal, 0.0, discount ** m), m


def sample(state: ReplayState, key: jax.Array, batch_size: int, n_step: int, discount: float) -> Batch:
  """Uniform with replacement over stored transitions, folded into n-step form."""
  if batch_size < 1 or n_step < 1:
    raise ValueError(f'batch_size and n_step must be >= 1, got {batch_size} and {n_step}.')
  capacity, num_envs = state.action.shape
  k_row, k_env = jax.random.split(key)
  age = jax.random.randint(k_row, (batch_size,), 0, state.rows)     # 0 = the newest row
  env = jax.random.randint(k_env, (batch_size,), 0, num_envs)
  row = (state.position - 1 - age) % capacity
  offsets = jnp.arange(n_step)
  chain = (row[:, None] + offsets) % capacity                         # [B, n]
  available = offsets[None, :] <= age[:, None]
  pick = lambda buf: buf[chain, env[:, None]]
  ret, disc, m = n_step_return(pick(state.reward), pick(state.terminated), pick(state.truncated),
                               available, discount)
  last_row = chain[jnp.arange(batch_size), m - 1]
  return Batch(obs=state.obs[row, env], action=state.action[row, env], reward=ret, discount=disc,
               next_obs=state.next_obs[last_row, env], perturbation=state.perturbation[row, env])
