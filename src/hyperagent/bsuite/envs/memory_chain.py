"""bsuite's `MemoryChain` (bsuite.environments.memory_chain), the environment of bsuite's memory_len
and memory_size experiments: a random context of `num_bits` bits is shown at the start, and after
`memory_length` steps whose actions do nothing the agent must answer with the bit a random query
points at: +1 if right, -1 if wrong.

The observation is float32 [1, num_bits + 2]: (time left, 1 - t / memory_length; the query, shown
on the step before the answer; the context as +-1, shown at t == 0). As in bsuite, a step returns
the observation of the timestep *before* it advances, so the first step repeats the reset's
observation and an episode is `memory_length + 1` steps.

`num_bits` shapes the observation, so it is static (memory_size varies it); `memory_length` only
sets when the episode ends, so it is a `Params` array (memory_len varies it, and its ids stack). The
draws while playing are the context and the query at each reset, taken from the reset's key.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hyperagent.environment import EnvStep, JaxEnv

# The longest chain allowed: it sizes the time-left table in the params (bsuite's sweeps stop at 100).
MAX_LENGTH = 2**11 - 1


def time_left_table(length: int) -> np.ndarray:
  """float32 [MAX_LENGTH + 1]: entry t is bsuite's time feature `1 - t / L` at step t <= L, computed
  as bsuite computes it (float64, then stored in its float32 observation); zeros after L. A table
  built on the host keeps that value exact: XLA may turn a division by a vmapped-but-shared length
  into a multiplication by its reciprocal, an ulp off for some t."""
  table = np.zeros(MAX_LENGTH + 1, np.float32)
  table[:length + 1] = 1 - np.arange(length + 1) / length
  return table


class Params(NamedTuple):
  memory_length: jax.Array  # int32 []: steps between the context and the query's step
  time_left: jax.Array      # float32 [MAX_LENGTH + 1]: time_left_table(memory_length)


class State(NamedTuple):
  timestep: jax.Array       # int32 []: steps taken this episode
  context: jax.Array        # int32 [num_bits]: the bits to remember, drawn at reset
  query: jax.Array          # int32 []: which bit to answer with, drawn at reset
  total_perfect: jax.Array  # float32 []: episodes answered right
  total_regret: jax.Array   # float32 []: 2 per episode answered wrong


def _observation(params: Params, state: State) -> jax.Array:
  length = params.memory_length
  time = params.time_left[state.timestep]
  query = jnp.where(state.timestep == length - 1, state.query, 0).astype(jnp.float32)
  context = jnp.where(state.timestep == 0, 2 * state.context - 1, 0).astype(jnp.float32)
  return jnp.concatenate([jnp.stack([time, query]), context])[None, :]


def init(params: Params, key: jax.Array, *, num_bits: int) -> State:
  zero = jnp.zeros((), jnp.int32)
  return State(zero, jnp.zeros((num_bits,), jnp.int32), zero, jnp.zeros((), jnp.float32),
               jnp.zeros((), jnp.float32))


def reset_with(params: Params, state: State, context: jax.Array,
               query: jax.Array) -> tuple[State, jax.Array]:
  """`reset` given its draws (context bits in {0, 1}, the query's index); counters are kept."""
  state = state._replace(timestep=jnp.zeros((), jnp.int32),
                         context=jnp.asarray(context, jnp.int32),
                         query=jnp.asarray(query, jnp.int32))
  return state, _observation(params, state)


def reset(params: Params, state: State, key: jax.Array, *,
          num_bits: int) -> tuple[State, jax.Array]:
  """bsuite draws `binomial(1, 0.5, num_bits)` for the context, then `randint(num_bits)`: here one
  draw of num_bits + 1 independent uniform ints, each with its own range (one random-bits
  computation to compile, not two)."""
  ranges = jnp.asarray([2] * num_bits + [num_bits], jnp.int32)
  draws = jax.random.randint(key, (num_bits + 1,), 0, ranges, jnp.int32)
  return reset_with(params, state, draws[:num_bits], draws[num_bits])


def step(params: Params, state: State, action: jax.Array, key: jax.Array) -> tuple[State, EnvStep]:
  """Steps 1..L pay 0; step L + 1 checks the action against the queried bit and terminates.
  No draws. (bsuite raises if stepped past the end; the loop resets there instead.)"""
  observation = _observation(params, state)
  last = state.timestep >= params.memory_length
  right = jnp.asarray(action, jnp.int32) == state.context[state.query]
  reward = jnp.where(last, jnp.where(right, 1.0, -1.0), 0.0).astype(jnp.float32)
  state = state._replace(
      timestep=state.timestep + 1,
      total_perfect=state.total_perfect + jnp.where(last & right, 1.0, 0.0),
      total_regret=state.total_regret + jnp.where(last & ~right, 2.0, 0.0))
  discount = jnp.where(last, 0.0, 1.0).astype(jnp.float32)
  return state, EnvStep(observation, reward, discount, last)


def info(params: Params, state: State) -> dict[str, jax.Array]:
  return dict(total_perfect=state.total_perfect, total_regret=state.total_regret)


def make(memory_length: int, num_bits: int = 1,
         seed: int | None = None) -> tuple[JaxEnv, Params]:
  """bsuite's `MemoryChain(memory_length, num_bits, seed)`. `seed` only seeds bsuite's draws, all
  of which matter only from the first reset on (the constructor's context and query are redrawn
  there), and those come from the loop's keys; so it is accepted and unused."""
  del seed
  if not 1 <= memory_length <= MAX_LENGTH:
    raise ValueError(f'memory_length must be in [1, {MAX_LENGTH}], got {memory_length}.')
  env = JaxEnv(name='memory_chain', static=(('num_bits', num_bits),), num_actions=2,
               observation_shape=(1, num_bits + 2), observation_dtype=jnp.float32,
               info_names=('total_perfect', 'total_regret'),
               init=functools.partial(init, num_bits=num_bits),
               reset=functools.partial(reset, num_bits=num_bits), step=step, info=info,
               max_episode_steps=memory_length + 1)
  return env, Params(jnp.asarray(memory_length, jnp.int32), jnp.asarray(time_left_table(memory_length)))
