"""bsuite's `Cartpole` (bsuite.environments.cartpole) and its swing-up form `CartpoleSwingup`
(bsuite.experiments.cartpole_swingup), as pure JAX functions.

Both share bsuite's physics (`step_cartpole`: Euler steps of the classic cart and pole, the angle
wrapped into [0, 2 pi)), computed here in float32 where bsuite uses float64. They differ in the
rest:
- `Cartpole` starts near upright, pays 1 while the pole is above `height_threshold` and the cart
  within `x_threshold`, and ends (a termination) as soon as it does not pay, or on the time limit;
- `CartpoleSwingup` starts hanging down, pays 1 while the pole is up, slow and central, charges
  `move_cost` for every push, and ends only when the cart leaves the track or on the time limit.
bsuite's time limit is a termination (discount 0), not a truncation, and so it is here.

Randomness: the only draws are the four reset offsets, uniform in [-init_range, init_range) as
bsuite's `_init_fn`; `start` takes them explicitly, `reset` draws them from its key.

Every setting is a number that fixes no shape, so all of them live in `Params` and the ids of an
experiment (cartpole_swingup's 20 thresholds) share one compiled program; only the form (cartpole
or swing-up: 6 or 8 observation entries) tells two `JaxEnv`s apart.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from hyperagent.environment import EnvStep, JaxEnv

# bsuite's `CartpoleConfig`, the same for both forms and every id.
MASS_CART = 1.0
MASS_POLE = 0.1
LENGTH = 0.5
FORCE_MAG = 10.0
GRAVITY = 9.8
_TOTAL_MASS = MASS_CART + MASS_POLE
_POLE_MASS_LENGTH = MASS_POLE * LENGTH
_NEVER = 2 ** 31 - 1       # a time limit no int32 step count reaches
_MAX_TIME_STEPS = 10 ** 7  # time_limit counts steps one by one on the host: ~1 s at most


class Params(NamedTuple):
  """`Cartpole`'s settings (float32 [] each, but `time_limit`)."""
  height_threshold: jax.Array
  x_threshold: jax.Array
  timescale: jax.Array
  max_time: jax.Array
  init_range: jax.Array
  time_limit: jax.Array  # int32 []: the step at which bsuite's time_elapsed first exceeds max_time


class SwingupParams(NamedTuple):
  """`CartpoleSwingup`'s settings (float32 [] each, but `time_limit`)."""
  height_threshold: jax.Array
  theta_dot_threshold: jax.Array
  x_reward_threshold: jax.Array
  move_cost: jax.Array
  x_threshold: jax.Array
  timescale: jax.Array
  max_time: jax.Array
  init_range: jax.Array
  time_limit: jax.Array  # int32 []


class Physics(NamedTuple):
  """The cart and pole (float32 [] each); theta is 0 upright, in [0, 2 pi) after a step."""
  x: jax.Array
  x_dot: jax.Array
  theta: jax.Array
  theta_dot: jax.Array


class State(NamedTuple):
  """Both forms' state. Returns are kept as counts (int32 []) of paying steps and of pushes, so
  that the cross-episode totals stay exact in float32: a return is `upright - move_cost * moves`
  (plain cartpole never charges for moves)."""
  physics: Physics
  steps: jax.Array           # int32 []: steps taken this episode (time_elapsed = steps * timescale)
  episode_upright: jax.Array
  episode_moves: jax.Array
  total_upright: jax.Array
  total_moves: jax.Array
  best_episode: jax.Array    # float32 []


def time_limit(timescale: float, max_time: float) -> int:
  """The step at which bsuite ends an episode on time: the first n whose time_elapsed (a float64
  sum of n timescales, accumulated one by one as bsuite does) exceeds max_time. Computed on the host
  so that the episode length matches bsuite's to the step whatever the rounding (10 steps of 0.1 sum
  to 0.9999999999999999, so a max_time of 1.0 ends after 11, not 10). An infinite max_time never
  ends an episode (int32's largest value)."""
  if not timescale > 0:
    raise ValueError(f'timescale must be positive, got {timescale}')
  if max_time == math.inf:
    return _NEVER
  if not max_time / timescale < _MAX_TIME_STEPS:
    raise ValueError(f'max_time / timescale must be finite and below {_MAX_TIME_STEPS:.0e}')
  elapsed, steps = 0.0, 0
  while True:  # as bsuite: add a timescale, then compare
    elapsed += timescale
    steps += 1
    if elapsed > max_time:
      return steps


def _f32(value) -> jax.Array:
  return jnp.asarray(value, jnp.float32)


def physics_step(physics: Physics, action: jax.Array, timescale: jax.Array) -> Physics:
  """One Euler step of bsuite's `step_cartpole`; actions 0, 1, 2 push left, not at all, right."""
  force = (action - 1).astype(jnp.float32) * FORCE_MAG
  cos, sin = jnp.cos(physics.theta), jnp.sin(physics.theta)
  temp = (force + _POLE_MASS_LENGTH * physics.theta_dot ** 2 * sin) / _TOTAL_MASS
  theta_acc = (GRAVITY * sin - cos * temp) / (LENGTH * (4 / 3 - MASS_POLE * cos ** 2 / _TOTAL_MASS))
  x_acc = temp - _POLE_MASS_LENGTH * theta_acc * cos / _TOTAL_MASS
  return Physics(
      x=physics.x + timescale * physics.x_dot,
      x_dot=physics.x_dot + timescale * x_acc,
      theta=jnp.remainder(physics.theta + timescale * physics.theta_dot, 2 * math.pi),
      theta_dot=physics.theta_dot + timescale * theta_acc)


def _base_observation(params, state: State) -> list[jax.Array]:
  """bsuite's "approximately normalized" first six entries."""
  p = state.physics
  elapsed = state.steps.astype(jnp.float32) * params.timescale
  return [p.x / params.x_threshold, p.x_dot / params.x_threshold, jnp.sin(p.theta),
          jnp.cos(p.theta), p.theta_dot, elapsed / params.max_time]


def observation(params: Params, state: State) -> jax.Array:
  """float32 [1, 6]: (x, x_dot) / x_threshold, sin, cos, theta_dot, time_elapsed / max_time."""
  return jnp.stack(_base_observation(params, state)).reshape(1, 6).astype(jnp.float32)


def swingup_observation(params: SwingupParams, state: State) -> jax.Array:
  """float32 [1, 8]: the six above, then +-1 for the cart central and for the pole slow."""
  p = state.physics
  central = jnp.where(jnp.abs(p.x) < params.x_reward_threshold, 1.0, -1.0)
  slow = jnp.where(jnp.abs(p.theta_dot) < params.theta_dot_threshold, 1.0, -1.0)
  entries = _base_observation(params, state) + [central, slow]
  return jnp.stack(entries).reshape(1, 8).astype(jnp.float32)


def init(params, key: jax.Array) -> State:
  """A fresh environment of either form: all zero, as bsuite's constructor leaves it."""
  zero_f, zero_i = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)
  return State(Physics(zero_f, zero_f, zero_f, zero_f), zero_i, zero_i, zero_i, zero_i, zero_i,
               zero_f)


def _new_episode(state: State, physics: Physics) -> State:
  zero = jnp.zeros((), jnp.int32)
  return state._replace(physics=physics, steps=zero, episode_upright=zero, episode_moves=zero)


def reset_offsets(params, key: jax.Array) -> jax.Array:
  """float32 [4]: bsuite's four `_init_fn()` draws (x, x_dot, theta, theta_dot), in that order."""
  return jax.random.uniform(key, (4,), jnp.float32, -params.init_range, params.init_range)


def start(params: Params, state: State, offsets: jax.Array) -> tuple[State, jax.Array]:
  """`Cartpole.reset` given its draws: the pole near upright, the episode counters at zero."""
  offsets = _f32(offsets)
  state = _new_episode(state, Physics(*offsets))
  return state, observation(params, state)


def reset(params: Params, state: State, key: jax.Array) -> tuple[State, jax.Array]:
  return start(params, state, reset_offsets(params, key))


def _finish(state: State, physics: Physics, upright: jax.Array, moved: jax.Array,
            move_cost: jax.Array, done: jax.Array) -> State:
  """The bookkeeping both forms share: the counters, and best_episode when the episode ends."""
  upright, moved = upright.astype(jnp.int32), moved.astype(jnp.int32)
  episode_upright = state.episode_upright + upright
  episode_moves = state.episode_moves + moved
  episode_return = episode_upright.astype(jnp.float32) - move_cost * episode_moves
  best = jnp.where(done, jnp.maximum(state.best_episode, episode_return), state.best_episode)
  return State(physics, state.steps + 1, episode_upright, episode_moves,
               state.total_upright + upright, state.total_moves + moved, best.astype(jnp.float32))


def _env_step(observation_: jax.Array, reward: jax.Array, done: jax.Array) -> EnvStep:
  """bsuite ends every episode, time limit included, with `dm_env.termination`: discount 0."""
  return EnvStep(observation_, reward.astype(jnp.float32),
                 jnp.where(done, 0.0, 1.0).astype(jnp.float32), done)


def step(params: Params, state: State, action: jax.Array, key: jax.Array) -> tuple[State, EnvStep]:
  """`Cartpole.step`: reward 1 while upright and on the track; any other step ends the episode."""
  physics = physics_step(state.physics, action, params.timescale)
  upright = (jnp.cos(physics.theta) > params.height_threshold) & (
      jnp.abs(physics.x) < params.x_threshold)
  done = (state.steps + 1 >= params.time_limit) | ~upright
  state = _finish(state, physics, upright, jnp.zeros((), bool), jnp.float32(0), done)
  return state, _env_step(observation(params, state), upright.astype(jnp.float32), done)


def info(params: Params, state: State) -> dict[str, jax.Array]:
  return dict(raw_return=state.total_upright.astype(jnp.float32), best_episode=state.best_episode)


def make(height_threshold: float = 0.8, x_threshold: float = 3., timescale: float = 0.01,
         max_time: float = 10., init_range: float = 0.05,
         seed: int | None = None) -> tuple[JaxEnv, Params]:
  """bsuite's `Cartpole(...)`, same arguments. `seed` seeded bsuite's reset draws; here they come
  from the loop's keys, so it is accepted and unused."""
  del seed
  env = JaxEnv(name='cartpole', static=(), num_actions=3, observation_shape=(1, 6),
               observation_dtype=jnp.float32, info_names=('raw_return', 'best_episode'),
               init=init, reset=reset, step=step, info=info,
               max_episode_steps=time_limit(timescale, max_time))
  params = Params(_f32(height_threshold), _f32(x_threshold), _f32(timescale), _f32(max_time),
                  _f32(init_range), jnp.asarray(time_limit(timescale, max_time), jnp.int32))
  return env, params


def start_swingup(params: SwingupParams, state: State,
                  offsets: jax.Array) -> tuple[State, jax.Array]:
  """`CartpoleSwingup.reset` given its draws: as `start`, but the pole hangs down (theta = pi +
  offset, not yet wrapped, as in bsuite)."""
  offsets = _f32(offsets)
  physics = Physics(offsets[0], offsets[1], jnp.float32(math.pi) + offsets[2], offsets[3])
  state = _new_episode(state, physics)
  return state, swingup_observation(params, state)


def reset_swingup(params: SwingupParams, state: State, key: jax.Array) -> tuple[State, jax.Array]:
  return start_swingup(params, state, reset_offsets(params, key))


def step_swingup(params: SwingupParams, state: State, action: jax.Array,
                 key: jax.Array) -> tuple[State, EnvStep]:
  """`CartpoleSwingup.step`: 1 while up, slow and central, minus move_cost per push; the episode
  ends only off the track (|x| > x_threshold) or on the time limit."""
  physics = physics_step(state.physics, action, params.timescale)
  upright = ((jnp.cos(physics.theta) > params.height_threshold)
             & (jnp.abs(physics.theta_dot) < params.theta_dot_threshold)
             & (jnp.abs(physics.x) < params.x_reward_threshold))
  moved = action != 1
  reward = upright.astype(jnp.float32) - moved.astype(jnp.float32) * params.move_cost
  done = (state.steps + 1 >= params.time_limit) | (jnp.abs(physics.x) > params.x_threshold)
  state = _finish(state, physics, upright, moved, params.move_cost, done)
  return state, _env_step(swingup_observation(params, state), reward, done)


def info_swingup(params: SwingupParams, state: State) -> dict[str, jax.Array]:
  raw_return = (state.total_upright.astype(jnp.float32)
                - params.move_cost * state.total_moves.astype(jnp.float32))
  return dict(raw_return=raw_return, total_upright=state.total_upright.astype(jnp.float32),
              best_episode=state.best_episode)


def make_swingup(height_threshold: float = 0.5, theta_dot_threshold: float = 1.,
                 x_reward_threshold: float = 1., move_cost: float = 0.1, x_threshold: float = 3.,
                 timescale: float = 0.01, max_time: float = 10., init_range: float = 0.05,
                 seed: int | None = None) -> tuple[JaxEnv, SwingupParams]:
  """bsuite's `CartpoleSwingup(...)` (the cartpole_swingup experiment), same arguments; `seed` as
  in `make`."""
  del seed
  env = JaxEnv(name='cartpole_swingup', static=(), num_actions=3, observation_shape=(1, 8),
               observation_dtype=jnp.float32,
               info_names=('raw_return', 'total_upright', 'best_episode'),
               init=init, reset=reset_swingup, step=step_swingup, info=info_swingup,
               max_episode_steps=time_limit(timescale, max_time))
  params = SwingupParams(_f32(height_threshold), _f32(theta_dot_threshold),
                         _f32(x_reward_threshold), _f32(move_cost), _f32(x_threshold),
                         _f32(timescale), _f32(max_time), _f32(init_range),
                         jnp.asarray(time_limit(timescale, max_time), jnp.int32))
  return env, params
