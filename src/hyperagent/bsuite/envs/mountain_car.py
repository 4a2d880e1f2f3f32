"""bsuite's `MountainCar` (bsuite.environments.mountain_car) as pure JAX functions.

An underpowered car in a valley: -1 per step until it reaches the goal at position 0.5, or until
`max_steps` steps; both end the episode with `dm_env.termination` (discount 0) in bsuite, the time
limit included, and so they do here. bsuite computes in float64, this port in float32.

Randomness: the only draw is the start position, uniform in [-0.6, -0.4) as bsuite's `_reset`;
`start` takes it explicitly, `reset` draws it from its key.

`max_steps` fixes no shape (the loop calls `reset` after `last`, whenever that comes), so it lives
in `Params` with the other ids' settings.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from hyperagent.environment import EnvStep, JaxEnv

# bsuite's constants, the same for every id.
MIN_POSITION = -1.2
MAX_POSITION = 0.6
MAX_SPEED = 0.07
GOAL_POSITION = 0.5
FORCE = 0.001
GRAVITY = 0.0025
START_LOW, START_HIGH = -0.6, -0.4


class Params(NamedTuple):
  max_steps: jax.Array  # int32 []: the step on which an episode ends if the goal was not reached


class State(NamedTuple):
  position: jax.Array   # float32 []
  velocity: jax.Array   # float32 []
  timestep: jax.Array   # int32 []: steps taken this episode
  raw_return: jax.Array  # float32 []: -1 per step over all episodes (exact in float32 to 2**24)


def observation(params: Params, state: State) -> jax.Array:
  """float32 [1, 3]: position, velocity, and the fraction of max_steps taken. Bit-equal to bsuite's
  float32(t / max_steps) where max_steps is a traced value, as in the engine (params stacked per run);
  where XLA sees it as a constant (params shared by every run of a vmap) it may multiply by the
  reciprocal instead, one float32 ulp off for some t (584 of 1,001 at max_steps 1,000: an audit's count)."""
  fraction = state.timestep.astype(jnp.float32) / params.max_steps.astype(jnp.float32)
  return jnp.stack([state.position, state.velocity, fraction]).reshape(1, 3).astype(jnp.float32)


def init(params: Params, key: jax.Array) -> State:
  """A fresh environment, all zero as bsuite's constructor leaves it."""
  zero_f = jnp.zeros((), jnp.float32)
  return State(zero_f, zero_f, jnp.zeros((), jnp.int32), zero_f)


def start_position(key: jax.Array) -> jax.Array:
  """float32 []: bsuite's one reset draw, `uniform(-0.6, -0.4)`."""
  return jax.random.uniform(key, (), jnp.float32, START_LOW, START_HIGH)


def start(params: Params, state: State, position: jax.Array) -> tuple[State, jax.Array]:
  """`MountainCar._reset` given its draw: at rest at `position`; raw_return is kept."""
  state = state._replace(position=jnp.asarray(position, jnp.float32),
                         velocity=jnp.zeros((), jnp.float32), timestep=jnp.zeros((), jnp.int32))
  return state, observation(params, state)


def reset(params: Params, state: State, key: jax.Array) -> tuple[State, jax.Array]:
  return start(params, state, start_position(key))


def step(params: Params, state: State, action: jax.Array, key: jax.Array) -> tuple[State, EnvStep]:
  """`MountainCar._step`: push left / not / right against gravity, speed and position clipped; at
  the left wall the car stops unless it is already moving right."""
  push = (action - 1).astype(jnp.float32) * FORCE
  velocity = state.velocity + (push + jnp.cos(3 * state.position) * -GRAVITY)
  velocity = jnp.clip(velocity, -MAX_SPEED, MAX_SPEED)
  position = jnp.clip(state.position + velocity, MIN_POSITION, MAX_POSITION)
  at_wall = position == jnp.float32(MIN_POSITION)
  velocity = jnp.where(at_wall, jnp.clip(velocity, 0, MAX_SPEED), velocity)
  state = State(position, velocity, state.timestep + 1, state.raw_return - 1)
  done = (position >= GOAL_POSITION) | (state.timestep >= params.max_steps)
  return state, EnvStep(observation(params, state), jnp.float32(-1),
                        jnp.where(done, 0.0, 1.0).astype(jnp.float32), done)


def info(params: Params, state: State) -> dict[str, jax.Array]:
  return dict(raw_return=state.raw_return)


def make(max_steps: int = 1000, seed: int | None = None) -> tuple[JaxEnv, Params]:
  """bsuite's `MountainCar(max_steps, seed)`. `seed` seeded bsuite's start positions; here they
  come from the loop's keys, so it is accepted and unused."""
  del seed
  env = JaxEnv(name='mountain_car', static=(), num_actions=3, observation_shape=(1, 3),
               observation_dtype=jnp.float32, info_names=('raw_return',),
               init=init, reset=reset, step=step, info=info, max_episode_steps=max_steps)
  return env, Params(jnp.asarray(max_steps, jnp.int32))
