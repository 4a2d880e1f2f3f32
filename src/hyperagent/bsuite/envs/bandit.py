"""bsuite's `SimpleBandit`: one step per episode, arm rewards linspace(0, 1, A) in a fixed random order."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hyperagent.environment import EnvStep, JaxEnv


class Params(NamedTuple):
  rewards: jax.Array  # float32 [A]: the reward of each arm


class State(NamedTuple):
  total_regret: jax.Array  # float32 []


def arm_rewards(mapping_seed: int | None, num_actions: int) -> np.ndarray:
  """bsuite's draw: `rng.choice(range(A), size=A, replace=False)` permutes linspace(0, 1, A)."""
  rng = np.random.RandomState(mapping_seed)
  order = rng.choice(range(num_actions), size=num_actions, replace=False)
  return np.linspace(0, 1, num_actions)[order]


def _observation() -> jax.Array:
  return jnp.ones((1, 1), jnp.float32)


def init(params: Params, key: jax.Array) -> State:
  return State(jnp.zeros((), jnp.float32))


def reset(params: Params, state: State, key: jax.Array) -> tuple[State, jax.Array]:
  return state, _observation()


def step(params: Params, state: State, action: jax.Array, key: jax.Array) -> tuple[State, EnvStep]:
  reward = params.rewards[action]
  state = State(state.total_regret + (1.0 - reward))  # the optimal arm pays 1
  return state, EnvStep(_observation(), reward, jnp.zeros((), jnp.float32), jnp.ones((), bool))


def info(params: Params, state: State) -> dict[str, jax.Array]:
  return dict(total_regret=state.total_regret)


def make(mapping_seed: int | None = None, num_actions: int = 11) -> tuple[JaxEnv, Params]:
  env = JaxEnv(name='bandit', static=(('num_actions', num_actions),), num_actions=num_actions,
               observation_shape=(1, 1), observation_dtype=jnp.float32, info_names=('total_regret',),
               init=init, reset=reset, step=step, info=info, max_episode_steps=1)
  return env, Params(jnp.asarray(arm_rewards(mapping_seed, num_actions), jnp.float32))
