"""gymnax's Freeway-MinAtar against the reference `minatar` freeway, step by step.

The reference draws random numbers only when the chicken reaches the top (new car speeds and
directions); every other step is deterministic.
"""
import jax.numpy as jnp
import numpy as np

from minatar_reference.harness import Game, one_step

NOOP, UP, DOWN = 0, 2, 4  # full action indices of the reference
TIME_LIMIT = 2500  # the reference's terminate_timer at reset


def to_gymnax(ref, time):
  """gymnax's `time` (steps since reset) is the reference's countdown read the other way, so it is
  taken from the game rather than from the harness's step count (they differ after a scramble)."""
  from gymnax.environments.minatar.freeway import EnvState
  del time
  cars = jnp.asarray(np.array(ref.cars, np.int64), jnp.int32)
  return EnvState(pos=jnp.asarray(int(ref.pos), jnp.int32), cars=cars,
                  move_timer=jnp.asarray(int(ref.move_timer), jnp.int32),
                  time=jnp.asarray(TIME_LIMIT - int(ref.terminate_timer), jnp.int32),
                  terminal=jnp.asarray(bool(ref.terminal)))


def canonical(fields):
  # Every freeway field carries meaning: one car per lane, no empty slots.
  return fields


def _play(ref, rng, steps, up_bias):
  """Random play that leans upwards, so crossings (and with them new car speeds) happen."""
  for _ in range(steps):
    ref.act(UP if rng.rand() < up_bias else [NOOP, UP, DOWN][rng.randint(3)])


def _crossing_due(ref):
  """An UP now reaches the top: a crossing, the only step on which the reference draws."""
  return ref.pos == 1 and ref.move_timer == 0


def _climb(ref, rng, up_bias):
  """Play on, leaning upwards and waiting in the top lane, until a crossing is due (or time is up)."""
  while not _crossing_due(ref) and ref.terminate_timer > 0:
    if ref.pos == 1:
      ref.act(NOOP)
    else:
      _play(ref, rng, 1, up_bias)


def _with_own_generator(ref, rng, play):
  """Runs play(ref) with the crossings' car draws taken from a generator seeded by rng, leaving the
  game's own generator as it was."""
  own = ref.random
  ref.random = np.random.RandomState(rng.randint(2**31))
  play(ref)
  ref.random = own


def scramble(ref, rng):
  """A reachable mid-game state: the reference plays on from its reset for a random part of its
  2,500 steps (a fifth of the time into its last 20, so the final step is compared too); half the
  time it then climbs on until a crossing is due, since random play seldom crosses."""
  late = rng.rand() < 0.2
  steps = rng.randint(TIME_LIMIT - 19, TIME_LIMIT + 1) if late else rng.randint(TIME_LIMIT + 1)
  up_bias, climb = rng.rand(), rng.rand() < 0.5

  def play(game):
    _play(game, rng, steps, up_bias)
    if climb:
      _climb(game, rng, max(up_bias, 0.5))

  _with_own_generator(ref, rng, play)


def last_step(ref, full_action) -> bool:
  """The reference's 2,501st step, on which its countdown passes zero and the game ends (reward 0,
  terminal). gymnax's step never ends a freeway game (is_terminated is always False); its time limit
  is a truncation at time >= max_steps_in_episode = 2500, so its episode stops a step earlier and
  is marked truncated, not terminated."""
  return ref.terminate_timer == 0


GAME = Game('freeway', 'Freeway-MinAtar', to_gymnax, canonical, scramble, last_step)


def demo_last_step(samples=8):
  """The reference after 2,500 no-op steps (no crossing, so no draws), then one more no-op: the
  reference ends the game there, gymnax's step_env goes on (done False, terminal False)."""
  from minatar.environments.freeway import Env
  ref = Env(ramping=True)
  ref.random = np.random.RandomState(0)
  ref.reset()
  for _ in range(TIME_LIMIT):
    ref.act(NOOP)
  return one_step(GAME, ref, NOOP, time=TIME_LIMIT, keys=samples)
