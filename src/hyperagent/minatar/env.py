"""MinAtar (Young & Tian 2019) through gymnax's pure-JAX versions, as `JaxEnv`s for the jitted loop.

gymnax (a maintained library) supplies the games; tests/test_minatar_reference.py checks them
against the reference `minatar` package step by step and pins the few places where they differ
(README). This module only adapts gymnax's `reset_env` / `step_env` (its functions without
auto-reset) to the contract in `environment.py`: the loop resets after `last` itself. A game ends by its own
termination (discount 0) or by gymnax's step limit (`max_steps_in_episode`), which is a truncation
(discount 1, bootstrapped). Observations are gymnax's [10, 10, C] grids of 0/1, kept as bool so
that the replay stores one byte per cell (the torso casts them to float).
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from hyperagent import cli
from hyperagent.environment import EnvStep, JaxEnv

# Our names -> gymnax's.
GAMES = {'asterix': 'Asterix-MinAtar', 'breakout': 'Breakout-MinAtar', 'freeway': 'Freeway-MinAtar',
         'seaquest': 'Seaquest-MinAtar', 'space_invaders': 'SpaceInvaders-MinAtar'}


def make(game: str) -> tuple[JaxEnv, Any]:
  """(JaxEnv, gymnax's default params) of one MinAtar game; unknown names list the valid ones."""
  cli.check_choice('MinAtar game', game, GAMES)
  import gymnax  # imported here: the rest of hyperagent does not need it
  game_env, params = gymnax.make(GAMES[game])

  def init(params, key):
    return game_env.reset_env(key, params)[1]

  def reset(params, state, key):
    observation, state = game_env.reset_env(key, params)
    return state, observation.astype(bool)

  def step(params, state, action, key):
    observation, state, reward, terminated, _ = game_env.step_env(key, state, action, params)
    truncated = game_env.is_truncated(state, params)
    last = jnp.asarray(terminated | truncated)
    discount = jnp.where(terminated, 0.0, 1.0).astype(jnp.float32)
    return state, EnvStep(observation.astype(bool), jnp.asarray(reward, jnp.float32), discount, last)

  shape = tuple(game_env.observation_space(params).shape)
  env = JaxEnv(name=f'minatar/{game}', static=(), num_actions=int(game_env.num_actions), observation_shape=shape,
               observation_dtype=jnp.bool_, info_names=(), init=init, reset=reset, step=step,
               info=lambda params, state: {}, max_episode_steps=int(params.max_steps_in_episode))
  return env, params
