"""gymnax's Breakout-MinAtar against the reference `minatar` breakout, step by step.

Breakout's only random draw is the reset's choice of ball start, so every compared step is
deterministic and must match exactly under every gymnax key.
"""
import copy

import jax.numpy as jnp
import numpy as np

from minatar_reference.harness import Game

LEFT, NOOP, RIGHT = 1, 0, 3  # full action indices of the reference


def to_gymnax(ref, time):
  from gymnax.environments.minatar.breakout import EnvState
  i32 = lambda v: jnp.asarray(int(v), jnp.int32)
  return EnvState(ball_y=i32(ref.ball_y), ball_x=i32(ref.ball_x), ball_dir=i32(ref.ball_dir),
                  pos=i32(ref.pos), brick_map=jnp.asarray(ref.brick_map, jnp.float32),
                  strike=jnp.asarray(bool(ref.strike)), last_y=i32(ref.last_y), last_x=i32(ref.last_x),
                  time=i32(time), terminal=jnp.asarray(bool(ref.terminal)))


def canonical(fields):
  # Every breakout field carries meaning (no slots); the brick map is 0/1 in both, only its dtype differs.
  return dict(fields, brick_map=fields['brick_map'].astype(np.int64))


def _heading_right(ref):
  return ref.ball_dir in (1, 2)


def _tracking_action(ref, rng, noise):
  """Mostly keep the paddle under the ball's next column; sometimes move at random."""
  if noise > 0 and rng.rand() < noise:
    return [LEFT, NOOP, RIGHT][rng.randint(3)]
  target = min(9, max(0, ref.ball_x + (1 if _heading_right(ref) else -1)))
  return LEFT if target < ref.pos else RIGHT if target > ref.pos else NOOP


def _recoverable(ref, horizon=20):
  """Whether the plain tracking paddle keeps the ball in play from here for `horizon` steps (a
  full descent and climb), so a random move now does not doom the game later."""
  trial = copy.deepcopy(ref)
  for _ in range(horizon):
    trial.act(_tracking_action(trial, None, 0.0))
    if trial.terminal:
      return False
  return True


def _after(ref, action):
  trial = copy.deepcopy(ref)
  trial.act(action)
  return trial


def _play_alive(ref, rng, steps, noise):
  """Play the reference itself for `steps` steps without losing the ball, so the state is reachable
  by construction. Returns False when no action keeps the game recoverable (the caller starts over)."""
  for _ in range(steps):
    preferred = _tracking_action(ref, rng, noise)
    options = [preferred] + [a for a in (LEFT, NOOP, RIGHT) if a != preferred]
    chosen = next((a for a in options if _recoverable(_after(ref, a))), None)
    if chosen is None:
      return False
    ref.act(chosen)
  return True


def _next_cell(ref):
  return (ref.ball_x + (1 if _heading_right(ref) else -1), ref.ball_y + (1 if ref.ball_dir in (2, 3) else -1))


def _pass_through_due(ref):
  """The ball runs into a brick right after a strike: it enters the brick without breaking it."""
  x, y = _next_cell(ref)
  return ref.strike and 0 <= x <= 9 and 0 <= y <= 9 and ref.brick_map[y, x] == 1


def _rebuild_due(ref):
  """The ball reaches the paddle row with no bricks left: the wall is rebuilt."""
  return _next_cell(ref)[1] == 9 and not ref.brick_map.any()


def _play_until(ref, rng, noise, due, limit=3000):
  for _ in range(limit):
    if due(ref) or not _play_alive(ref, rng, 1, noise):
      return


def scramble(ref, rng):
  """A reachable mid-game state: the reference plays on from its reset for up to ~2 brick walls
  (brick refills, paddle-edge bounces), with a noisy ball-tracking paddle."""
  start = copy.deepcopy(ref)
  steps, noise = rng.randint(1500), rng.rand()
  while True:
    game = copy.deepcopy(start)
    if _play_alive(game, rng, steps, noise):
      break
  # Random play seldom shows these two steps; a third of the scrambles play on to one of them.
  rare = rng.rand()
  if rare < 1 / 6:
    _play_until(game, rng, noise, _pass_through_due)
  elif rare < 1 / 3:
    _play_until(game, rng, noise, _rebuild_due)
  ref.__dict__.update(game.__dict__)


GAME = Game('breakout', 'Breakout-MinAtar', to_gymnax, canonical, scramble)
