"""bsuite's `UmbrellaChain` (bsuite.environments.umbrella_chain), the environment of bsuite's
umbrella_length and umbrella_distract experiments: only the first action matters (take the umbrella
or not); at the end of `chain_length` steps it pays +1 if that matched the random weather and -1 if
not. Every other step pays a fair coin's +-1, and `n_distractor` observation bits are fresh coin
flips every step: noise the agent must learn to ignore.

The observation is float32 [1, 3 + n_distractor]: (need umbrella, have umbrella, time left
1 - t / chain_length, the distractor bits). At reset bsuite draws "have umbrella" too, so the
reset's observation shows a random bit until the first action replaces it.

`n_distractor` shapes the observation, so it is static (umbrella_distract varies it);
`chain_length` only sets when the episode ends, so it is a `Params` array (umbrella_length varies
it, and its ids stack). Every draw while playing (the weather, the initial umbrella, the coin
rewards, the distractors) comes from the reset's or step's key.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from hyperagent.bsuite.envs.memory_chain import MAX_LENGTH, time_left_table
from hyperagent.environment import EnvStep, JaxEnv


class Params(NamedTuple):
  chain_length: jax.Array  # int32 []: steps per episode
  time_left: jax.Array     # float32 [MAX_LENGTH + 1]: memory_chain.time_left_table(chain_length)


class State(NamedTuple):
  timestep: jax.Array       # int32 []: steps taken this episode
  need_umbrella: jax.Array  # int32 []: the weather, drawn at reset
  has_umbrella: jax.Array   # int32 []: drawn at reset, then the first action
  total_regret: jax.Array   # float32 []: 2 per episode that ended with -1


def _observation(params: Params, state: State, distractors: jax.Array) -> jax.Array:
  time = params.time_left[state.timestep]
  head = jnp.stack([state.need_umbrella.astype(jnp.float32),
                    state.has_umbrella.astype(jnp.float32), time])
  return jnp.concatenate([head, jnp.asarray(distractors, jnp.float32)])[None, :]


def _coins(key: jax.Array, num: int) -> jax.Array:
  """`num` of bsuite's `rng.binomial(1, 0.5)`: independent, 0 or 1 with probability 1/2 each. One
  draw for all of a reset's or step's coins (one random-bits computation to compile, not four)."""
  return jax.random.bernoulli(key, 0.5, (num,)).astype(jnp.int32)


def init(params: Params, key: jax.Array) -> State:
  zero = jnp.zeros((), jnp.int32)
  return State(zero, zero, zero, jnp.zeros((), jnp.float32))


def reset_with(params: Params, state: State, need_umbrella: jax.Array, has_umbrella: jax.Array,
               distractors: jax.Array) -> tuple[State, jax.Array]:
  """`reset` given its draws (two bits and the distractor bits); the regret is kept."""
  state = State(jnp.zeros((), jnp.int32), jnp.asarray(need_umbrella, jnp.int32),
                jnp.asarray(has_umbrella, jnp.int32), state.total_regret)
  return state, _observation(params, state, distractors)


def reset(params: Params, state: State, key: jax.Array, *,
          n_distractor: int) -> tuple[State, jax.Array]:
  """bsuite draws the weather, the initial umbrella, then the distractors, each a fair coin."""
  coins = _coins(key, 2 + n_distractor)
  return reset_with(params, state, coins[0], coins[1], coins[2:])


def step_with(params: Params, state: State, action: jax.Array, coin: jax.Array,
              distractors: jax.Array) -> tuple[State, EnvStep]:
  """`step` given its draws: `coin` (0 or 1) sets a non-final step's reward 2 * coin - 1 (bsuite
  draws it only then, so it is ignored on the final step); `distractors` fill the observation."""
  timestep = state.timestep + 1
  has_umbrella = jnp.where(timestep == 1, jnp.asarray(action, jnp.int32), state.has_umbrella)
  last = timestep == params.chain_length
  right = has_umbrella == state.need_umbrella
  reward = jnp.where(last, jnp.where(right, 1.0, -1.0), 2.0 * coin - 1.0).astype(jnp.float32)
  state = State(timestep, state.need_umbrella, has_umbrella,
                state.total_regret + jnp.where(last & ~right, 2.0, 0.0))
  discount = jnp.where(last, 0.0, 1.0).astype(jnp.float32)
  return state, EnvStep(_observation(params, state, distractors), reward, discount, last)


def step(params: Params, state: State, action: jax.Array, key: jax.Array, *,
         n_distractor: int) -> tuple[State, EnvStep]:
  """bsuite draws the reward's coin (on all but the last step), then the distractors."""
  coins = _coins(key, 1 + n_distractor)
  return step_with(params, state, action, coins[0], coins[1:])


def info(params: Params, state: State) -> dict[str, jax.Array]:
  return dict(total_regret=state.total_regret)


def make(chain_length: int, n_distractor: int = 0,
         seed: int | None = None) -> tuple[JaxEnv, Params]:
  """bsuite's `UmbrellaChain(chain_length, n_distractor, seed)`. `seed` only seeds bsuite's draws,
  which matter only from the first reset on (the constructor's weather is redrawn there), and
  those come from the loop's keys; so it is accepted and unused."""
  del seed
  if not 1 <= chain_length <= MAX_LENGTH:
    raise ValueError(f'chain_length must be in [1, {MAX_LENGTH}], got {chain_length}.')
  env = JaxEnv(name='umbrella_chain', static=(('n_distractor', n_distractor),), num_actions=2,
               observation_shape=(1, 3 + n_distractor), observation_dtype=jnp.float32,
               info_names=('total_regret',), init=init,
               reset=functools.partial(reset, n_distractor=n_distractor),
               step=functools.partial(step, n_distractor=n_distractor), info=info,
               max_episode_steps=chain_length)
  return env, Params(jnp.asarray(chain_length, jnp.int32), jnp.asarray(time_left_table(chain_length)))
