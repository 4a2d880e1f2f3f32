"""gymnax's SpaceInvaders-MinAtar against the reference `minatar` space_invaders, step by step.

The reference game draws no random numbers at all (its `random` is never used), so every step is
deterministic and gymnax must give the reference's outcome under every key.

Mid-game states come from the reference itself: `scramble` plays the reference from its reset state
with a scripted, partly random player for a random number of steps. Every state it hands over is
therefore reachable by construction, including later waves (ramp index 1..6 and the faster alien
speeds they imply), fresh waves with bullets still in flight, thinned formations that move every
frame, and formations low on the screen.
"""
import jax.numpy as jnp
import numpy as np

from minatar_reference.harness import Game


def _to_gymnax(ref, time):
  from gymnax.environments.minatar.space_invaders import EnvState
  grid = lambda a: jnp.asarray(np.asarray(a), jnp.float32)
  return EnvState(pos=int(ref.pos), f_bullet_map=grid(ref.f_bullet_map), e_bullet_map=grid(ref.e_bullet_map),
                  alien_map=grid(ref.alien_map), alien_dir=int(ref.alien_dir),
                  enemy_move_interval=int(ref.enemy_move_interval), alien_move_timer=int(ref.alien_move_timer),
                  alien_shot_timer=int(ref.alien_shot_timer), ramp_index=int(ref.ramp_index),
                  shot_timer=int(ref.shot_timer), ramping=bool(ref.ramping), time=time,
                  terminal=bool(ref.terminal))


def _canonical(fields):
  # Every field carries meaning: the grids are plain 0/1 maps and no slot can go stale.
  return fields


# ---- reaching mid-game states by playing the reference -------------------------------------------

NOOP, LEFT, RIGHT, FIRE = 0, 1, 3, 5


def _clone(ref):
  """A cheap copy for look-ahead (deepcopy of the RandomState is the slow part, and it is never used)."""
  from minatar.environments.space_invaders import Env
  other = Env.__new__(Env)
  other.__dict__.update(ref.__dict__)
  for name in ('f_bullet_map', 'e_bullet_map', 'alien_map'):
    setattr(other, name, getattr(ref, name).copy())
  return other


def _survives(ref, action, horizon=2):
  """Whether taking `action` and then standing still keeps the player alive for `horizon` steps."""
  probe = _clone(ref)
  for a in [action] + [NOOP] * (horizon - 1):
    _, done = probe.act(a)
    if done:
      return False
  return True


def _fire_hits(ref, first=None):
  """Whether a shot fired now (or after the move `first`) kills an alien before leaving the screen."""
  probe = _clone(ref)
  for a in ([first] if first is not None else []) + [FIRE] + [NOOP] * 9:
    r, done = probe.act(a)
    if r or done:
      return bool(r) and not done
  return False


def _target_column(ref):
  """The column under the lowest alien nearest the player, led one cell in the aliens' direction."""
  cols = np.flatnonzero(ref.alien_map.sum(axis=0))
  lowest = max(np.flatnonzero(ref.alien_map[:, c]).max() for c in cols)
  bottom = [c for c in cols if ref.alien_map[lowest, c]]
  c = min(bottom, key=lambda c: abs(c - ref.pos))
  return int(np.clip(c + ref.alien_dir, 0, 9))


def _policy(ref, rng, sloppiness):
  """A scripted player: shoots when the shot will land, steps to where the next shot will, walks
  toward the aliens otherwise, never walks into a death it can see two steps ahead, and acts at
  random (among safe actions) a `sloppiness` fraction of the time."""
  safe = [a for a in (NOOP, LEFT, RIGHT, FIRE) if _survives(ref, a)] or [NOOP]
  if rng.rand() < sloppiness:
    return safe[rng.randint(len(safe))]
  if ref.shot_timer == 0 and FIRE in safe and _fire_hits(ref):
    return FIRE
  if ref.shot_timer <= 1:
    setting_up = [a for a in (LEFT, RIGHT, NOOP) if a in safe and _fire_hits(ref, a)]
    if setting_up:
      return setting_up[0]
  target = _target_column(ref)
  step = LEFT if target < ref.pos else RIGHT if target > ref.pos else NOOP
  return step if step in safe else safe[rng.randint(len(safe))]


def _scramble(ref, rng):
  """Play the freshly reset reference to a random point of a random wave (a reachable state).

  The target is a wave (ramp index 0..6, or a later wave at the ramp's end) and a point in it: a
  random number of steps in, the step on which that wave is cleared (a fresh formation, with any
  other bullet still in flight), or one of the few steps before that clear, when the shot that
  clears it is already on its way (so the compared steps include clears whatever the actions). Should
  the player die first, one of the few states before its death is used.
  """
  wave = rng.randint(8)
  linger = rng.randint(rng.choice([20, 150, 600]))  # steps to play once that wave is reached
  stop = rng.choice(['linger', 'at_clear', 'before_clear'], p=[0.6, 0.2, 0.2])
  # Careless play in the last wave lets the formation come down the screen with many aliens left.
  sloppiness = rng.choice([0.0, 0.1, 0.3, 0.7, 1.0]) if stop == 'linger' else 0.0
  history, waves = [], 0
  for _ in range(6000):
    if waves >= wave and stop == 'linger':
      if linger <= 0:
        return
      linger -= 1
    action = _policy(ref, rng, sloppiness if waves >= wave else 0.0)
    history = (history + [_clone(ref)])[-8:]
    count = np.count_nonzero(ref.alien_map)
    reward, done = ref.act(action)
    # Moves never change the count, so only shooting every alien empties the formation.
    waves += reward == count
    if done or (waves > wave and stop == 'before_clear'):
      ref.__dict__.update(history[rng.randint(len(history))].__dict__)
      return
    if waves > wave and stop == 'at_clear':
      return


GAME = Game('space_invaders', 'SpaceInvaders-MinAtar', _to_gymnax, _canonical, _scramble)
