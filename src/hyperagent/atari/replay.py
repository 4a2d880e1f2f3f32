"""A device-resident Atari replay that stores each frame once and rebuilds 4-frame stacks when sampling.

envpool's stacked observations repeat 3 of their 4 frames from one step to the next, and next_obs
repeats them again; storing only the newest frame of every observation cuts memory 8-fold (a 1e5
buffer of single 84x84 frames is 0.7 GB instead of 5.6 GB of (obs, next_obs) stacks).

Layout: time-major rows, [capacity, num_envs, ...]. Every env step writes one row for every env (as
replay.py does), so one env's consecutive rows are its consecutive steps. A row holds the newest
frame of the observation that step returned and, unless the row is `first`, the transition that led
to it: action, reward, terminated, truncated and the perturbation z drawn for it. A `first` row
holds an episode's first observation and no transition: it is written for the initial reset and for
envpool's auto-reset pseudo-step (the step after a game over or a truncation, whose action is
ignored), so that pseudo-transition is never stored as one. The step after a life loss is a reset
too (of the life, same frame stack), so `valid_mask` never samples it either.

Loop contract (E envs; `first` from `atari.loop.read_step`: `info['elapsed_step'] == 0`, or a game
envpool began inside a life reset, `atari.is_first`):
    obs, info = env.reset();            state = add_reset(state, obs[:, -1])
    obs, r, term, trunc, info = env.step(a)
    state = add(state, a, r, term, trunc, obs[:, -1], z, first)

Stacks are rebuilt as envpool builds them: oldest frame first, and frames before an episode's first
observation are replaced by that first frame (envpool's reset observation is its first frame
repeated). An episode here is a game (between real resets): with episodic life a life loss ends
n-step chains (terminated) but not stacks, exactly as in envpool. A transition is sampleable once
every frame of its obs stack is still stored (the ring may have overwritten the oldest ones).
"""
from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from hyperagent.replay import Batch
from hyperagent.replay import n_step_return

STACK = 4


class AtariReplayState(NamedTuple):
  frame: jax.Array         # [C, E, H, W] uint8: newest frame of the observation this step returned
  action: jax.Array        # [C, E] int32: the action that led to `frame` (unused on first rows)
  reward: jax.Array        # [C, E] float32: as given to `add` (clip it before, for training)
  terminated: jax.Array    # [C, E] bool: terminal for learning (a life loss under episodic life)
  truncated: jax.Array     # [C, E] bool: cut by the time limit: n-step targets bootstrap through it
  perturbation: jax.Array  # [C, E, M] float32: z drawn for this transition
  first: jax.Array         # [C, E] bool: `frame` starts an episode; the row holds no transition
  position: jax.Array      # next row to write
  rows: jax.Array          # rows written, at most C


def init(capacity: int, num_envs: int, index_dim: int, frame_shape=(84, 84)) -> AtariReplayState:
  """An empty buffer of `capacity` rows (env steps) for `num_envs` envs."""
  zeros = jnp.zeros((capacity, num_envs))
  return AtariReplayState(
      frame=jnp.zeros((capacity, num_envs) + tuple(frame_shape), jnp.uint8),
      action=zeros.astype(jnp.int32), reward=zeros.astype(jnp.float32),
      terminated=zeros.astype(bool), truncated=zeros.astype(bool),
      perturbation=jnp.zeros((capacity, num_envs, index_dim), jnp.float32), first=zeros.astype(bool),
      position=jnp.zeros((), jnp.int32), rows=jnp.zeros((), jnp.int32))


def add(state: AtariReplayState, action, reward, terminated, truncated, frame, perturbation,
        first) -> AtariReplayState:
  """Writes one env step of every env; each argument has a leading [E] axis.

  frame: [E, H, W], the newest frame of the returned observation (`obs[:, -1]`).
  first: [E] bool, the returned observation starts an episode (`atari.is_first`); then the
    step's action, reward and flags are ignored (envpool's auto-reset pseudo-step).
  Jit it with `donate_argnums=0`, or every call copies the whole buffer.
  """
  num_envs = state.first.shape[1]
  chex.assert_shape(frame, state.frame.shape[1:], custom_message=f'frame must be [E, H, W] = {list(state.frame.shape[1:])}')
  chex.assert_shape([action, reward, terminated, truncated, first], [(num_envs,)] * 5,
                    custom_message=f'action, reward, terminated, truncated and first must be [E] = [{num_envs}]')
  chex.assert_shape(perturbation, state.perturbation.shape[1:],
                    custom_message=f'perturbation must be [E, M] = {list(state.perturbation.shape[1:])}')
  row = state.position
  capacity = state.action.shape[0]
  put = lambda buf, x: buf.at[row].set(jnp.asarray(x).astype(buf.dtype))
  first = jnp.asarray(first, bool)
  flag = lambda x: ~first & jnp.asarray(x, bool)
  return AtariReplayState(
      frame=put(state.frame, frame), action=put(state.action, action),
      reward=put(state.reward, jnp.where(first, 0.0, reward)),
      terminated=put(state.terminated, flag(terminated)), truncated=put(state.truncated, flag(truncated)),
      perturbation=put(state.perturbation, perturbation), first=put(state.first, first),
      position=(row + 1) % capacity, rows=jnp.minimum(state.rows + 1, capacity))


def add_reset(state: AtariReplayState, frame) -> AtariReplayState:
  """Writes the first observations of a fresh `env.reset()` (frame = obs[:, -1])."""
  num_envs = state.action.shape[1]
  zeros = jnp.zeros((num_envs,))
  return add(state, zeros, zeros, zeros, zeros, frame,
             jnp.zeros((num_envs, state.perturbation.shape[-1])), jnp.ones((num_envs,), bool))


def valid_mask(state: AtariReplayState, stack: int = STACK) -> jax.Array:
  """[C, E] bool: rows holding a transition whose whole obs stack is still stored.

  The step after a life loss is not one: envpool resets the life there (no-ops and FIRE), ignoring
  the action, so a row after a `terminated` row is excluded as a `first` row is (after a game over
  that row is `first` anyway). Its frame stays, for the stacks of the rows after it."""
  capacity = state.first.shape[0]
  age = (state.position - 1 - jnp.arange(capacity)) % capacity   # 0 = the newest row
  older = (state.rows - 1 - age)[:, None]                          # stored rows before this one
  # Its stack is complete if `stack` older rows are stored, or an episode start is among them.
  start_seen = jnp.zeros_like(state.first)
  for k in range(1, stack + 1):
    start_seen |= jnp.roll(state.first, k, axis=0) & (k <= older)
  # A row with older == 0 fails the stack test, so the ring's wrap in `roll` never decides a row.
  after_terminal = jnp.roll(state.terminated, 1, axis=0)
  return (age < state.rows)[:, None] & ~state.first & ~after_terminal & ((older >= stack) | start_seen)


def nbytes(state: AtariReplayState) -> int:
  """Device bytes the buffer holds (frames plus per-step fields)."""
  return sum(x.nbytes for x in jax.tree.leaves(state))


def _stack_rows(first, row, env, stack):
  """[B, stack] rows of the frames of the stack whose newest frame is at `row`, oldest first.

  Frames before the episode's first row are replaced by that first row's frame.
  """
  capacity = first.shape[0]
  back = jnp.arange(stack)                                            # offsets back from `row`
  is_start = first[(row[:, None] - back) % capacity, env[:, None]]
  to_start = jnp.min(jnp.where(is_start, back, stack), axis=1)        # stack = no start within reach
  return (row[:, None] - jnp.minimum(back[::-1], to_start[:, None])) % capacity


def gather(state: AtariReplayState, row, env, n_step: int, discount: float, stack: int = STACK) -> Batch:
  """The n-step transitions starting at rows `row` [B] of envs `env` [B] (which must be valid).

  The chain follows the env's rows and stops at a terminal or truncation (`replay.n_step_return`),
  at the newest stored row and before an episode start; next_obs is the stack after its last step.
  """
  capacity = state.first.shape[0]
  age = (state.position - 1 - row) % capacity
  offsets = jnp.arange(n_step)
  chain = (row[:, None] + offsets) % capacity                          # [B, n]
  pick = lambda buf: buf[chain, env[:, None]]
  available = (offsets <= age[:, None]) & ((offsets == 0) | ~pick(state.first))
  ret, disc, m = n_step_return(pick(state.reward), pick(state.terminated), pick(state.truncated),
                               available, discount)
  last = (row + m - 1) % capacity
  frames = lambda rows: state.frame[rows, env[:, None]]                # [B, stack, H, W]
  return Batch(obs=frames(_stack_rows(state.first, (row - 1) % capacity, env, stack)),
               action=state.action[row, env], reward=ret, discount=disc,
               next_obs=frames(_stack_rows(state.first, last, env, stack)),
               perturbation=state.perturbation[row, env])


def valid_counts(state: AtariReplayState, stack: int = STACK) -> jax.Array:
  """[C·E] running count of valid transitions in flat (row, env) order; the last entry is |D|.

  Computed once and shared by every `sample` of one learner call: the buffer does not change there.
  """
  return jnp.cumsum(valid_mask(state, stack).ravel())


def sample(state: AtariReplayState, key: jax.Array, batch_size: int, n_step: int, discount: float,
           stack: int = STACK, counts: jax.Array | None = None) -> Batch:
  """B transitions uniform with replacement over the valid ones, in n-step form.

  obs and next_obs are uint8 [B, stack, H, W], channels first like envpool's. Needs at least one
  valid transition (the warm-up guarantees it). `counts`: `valid_counts(state, stack)`, if known.
  """
  if batch_size < 1 or n_step < 1:
    raise ValueError(f'batch_size and n_step must be >= 1, got {batch_size} and {n_step}.')
  count = valid_counts(state, stack) if counts is None else counts
  draw = jax.random.randint(key, (batch_size,), 0, count[-1])
  flat = jnp.searchsorted(count, draw, side='right')                   # the (draw+1)-th valid entry
  num_envs = state.first.shape[1]
  return gather(state, flat // num_envs, flat % num_envs, n_step, discount, stack)
