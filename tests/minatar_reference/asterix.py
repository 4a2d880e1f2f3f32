"""Asterix: gymnax's state is the reference's, its 8 entity rows one per slot."""
import jax.numpy as jnp
import numpy as np

from minatar_reference.harness import Game


def to_gymnax(ref, time):
  from gymnax.environments.minatar.asterix import EnvState
  entities = np.zeros((8, 5), np.int32)
  for i, e in enumerate(ref.entities):
    if e is not None:
      entities[i] = [e[0], e[1], int(e[2]), int(e[3]), 1]
  return EnvState(player_x=ref.player_x, player_y=ref.player_y, shot_timer=ref.shot_timer,
                  spawn_speed=ref.spawn_speed, spawn_timer=ref.spawn_timer, move_speed=ref.move_speed,
                  move_timer=ref.move_timer, ramp_timer=ref.ramp_timer, ramp_index=ref.ramp_index,
                  entities=jnp.asarray(entities), time=time, terminal=ref.terminal)


def canonical(fields):
  entities = fields['entities'].copy()
  entities[entities[..., 4] == 0] = 0  # an empty slot's other columns mean nothing
  return dict(fields, entities=entities)


def scramble(ref, rng):
  """A reachable mid-game state: speeds follow the difficulty ramp's own schedule, nothing on the player."""
  ref.player_x, ref.player_y = rng.randint(10), rng.randint(1, 9)
  filled = rng.permutation(8)[:rng.randint(9)]
  ref.entities = [[int(rng.randint(10)), slot + 1, bool(rng.rand() < 0.5), bool(rng.rand() < 1 / 3)]
                  if slot in filled else None for slot in range(8)]
  ref.entities = [e if e is None or e[:2] != [ref.player_x, ref.player_y] else None for e in ref.entities]
  ref.ramp_index, ref.spawn_speed, ref.move_speed = rng.randint(10), 10, 5
  for k in range(ref.ramp_index):
    ref.move_speed -= ref.move_speed > 1 and k % 2
    ref.spawn_speed -= ref.spawn_speed > 1
  ended = ref.spawn_speed == 1 and ref.move_speed == 1  # the ramp leaves its timer at the interval
  ref.ramp_timer = 100 if ended else rng.randint(-1, 101)
  ref.spawn_timer, ref.move_timer = rng.randint(ref.spawn_speed + 1), rng.randint(ref.move_speed + 1)


def crowded_spawn(ref, full_action) -> bool:
  """A spawn is due and at most one row is free: gymnax's slot search skips the first slot of its
  random order, so with one free row it misses it 1 time in 8, and then (as always with no free row)
  it writes an empty entity over an occupied row, erasing what was there; the reference spawns into
  the free row, or does nothing when there is none."""
  return ref.spawn_timer == 0 and sum(e is None for e in ref.entities) <= 1


GAME = Game('asterix', 'Asterix-MinAtar', to_gymnax, canonical, scramble,
            crowded_spawn)
