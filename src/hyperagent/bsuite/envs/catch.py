"""bsuite's `Catch` (bsuite.environments.catch): move a paddle along the bottom row to catch a ball
that falls straight down from a random column of the top row; +1 for a catch, -1 for a miss.

An episode is `rows - 1` steps; the board is a float32 [rows, columns] picture with a 1 at the ball
and a 1 at the paddle. `rows` and `columns` fix the observation's shape, so they are static; Catch
has no other setting, so its `Params` is empty. The only draw while playing is the ball's column at
each reset (bsuite's `rng.randint(columns)`), taken from the reset's key.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from hyperagent.environment import EnvStep, JaxEnv


class Params(NamedTuple):
  """Empty: rows and columns shape the board (static); nothing else varies between ids."""


class State(NamedTuple):
  ball_x: jax.Array        # int32 []: the ball's column, drawn at reset
  ball_y: jax.Array        # int32 []: the ball's row, 0 at reset, +1 a step
  paddle_x: jax.Array      # int32 []: the paddle's column (its row is always rows - 1)
  total_regret: jax.Array  # float32 []: sum of (1 - reward) over finished episodes


def _observation(state: State, *, rows: int, columns: int) -> jax.Array:
  """The board: 1 where the ball or the paddle is (one cell when they coincide), 0 elsewhere."""
  row = jnp.arange(rows)[:, None]
  column = jnp.arange(columns)[None, :]
  ball = (row == state.ball_y) & (column == state.ball_x)
  paddle = (row == rows - 1) & (column == state.paddle_x)
  return (ball | paddle).astype(jnp.float32)


def init(params: Params, key: jax.Array) -> State:
  zero = jnp.zeros((), jnp.int32)
  return State(zero, zero, zero, jnp.zeros((), jnp.float32))


def reset_with(params: Params, state: State, ball_x: jax.Array, *, rows: int,
               columns: int) -> tuple[State, jax.Array]:
  """`reset` given its draw: the ball at (0, ball_x), the paddle centred; the regret is kept."""
  state = State(jnp.asarray(ball_x, jnp.int32), jnp.zeros((), jnp.int32),
                jnp.full((), columns // 2, jnp.int32), state.total_regret)
  return state, _observation(state, rows=rows, columns=columns)


def reset(params: Params, state: State, key: jax.Array, *, rows: int,
          columns: int) -> tuple[State, jax.Array]:
  """bsuite draws the ball's column uniformly from range(columns)."""
  ball_x = jax.random.randint(key, (), 0, columns, jnp.int32)
  return reset_with(params, state, ball_x, rows=rows, columns=columns)


def step(params: Params, state: State, action: jax.Array, key: jax.Array, *, rows: int,
         columns: int) -> tuple[State, EnvStep]:
  """Actions 0, 1, 2 move the paddle left, not at all, right (clipped to the board); then the
  ball drops a row, and the episode ends when it reaches the paddle's row. No draws."""
  paddle_x = jnp.clip(state.paddle_x + jnp.asarray(action, jnp.int32) - 1, 0, columns - 1)
  ball_y = state.ball_y + 1
  last = ball_y == rows - 1
  caught = paddle_x == state.ball_x
  reward = jnp.where(last, jnp.where(caught, 1.0, -1.0), 0.0).astype(jnp.float32)
  total_regret = state.total_regret + jnp.where(last, 1.0 - reward, 0.0)
  state = State(state.ball_x, ball_y, paddle_x, total_regret)
  discount = jnp.where(last, 0.0, 1.0).astype(jnp.float32)
  return state, EnvStep(_observation(state, rows=rows, columns=columns), reward, discount, last)


def info(params: Params, state: State) -> dict[str, jax.Array]:
  return dict(total_regret=state.total_regret)


def make(rows: int = 10, columns: int = 5, seed: int | None = None) -> tuple[JaxEnv, Params]:
  """bsuite's `Catch(rows, columns, seed)`. `seed` only seeds bsuite's play-time draws (the ball's
  column), which here come from the loop's keys, so it is accepted and unused."""
  del seed
  if rows < 2 or columns < 1:  # bsuite's ball would never reach a paddle in row 0
    raise ValueError(f'Catch needs rows >= 2 and columns >= 1, got {rows} x {columns}.')
  shape = dict(rows=rows, columns=columns)
  env = JaxEnv(name='catch', static=tuple(shape.items()), num_actions=3,
               observation_shape=(rows, columns), observation_dtype=jnp.float32,
               info_names=('total_regret',), init=init,
               reset=functools.partial(reset, **shape), step=functools.partial(step, **shape),
               info=info, max_episode_steps=rows - 1)
  return env, Params()
