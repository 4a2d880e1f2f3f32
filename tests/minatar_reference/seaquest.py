"""gymnax's Seaquest-MinAtar against the reference minatar seaquest, step by step (the comparison: harness.py)."""
from collections import Counter

import numpy as np

from minatar_reference.harness import Game, one_step

CAPACITY = 100  # gymnax's MAX_ENTITIES
UP = 2  # full action 'u'


def _buffer(entities, width):
  """A reference list as gymnax's fixed buffer: the list order is the slot order (both append at the end
  and remove stably), so row i is entry i."""
  rows = np.zeros((CAPACITY, width), np.int32)
  for i, e in enumerate(entities):
    rows[i] = [int(v) for v in e]
  return rows, len(entities)


def to_gymnax(ref, time):
  from gymnax.environments.minatar.seaquest import EnvState
  f_bullets, n_f = _buffer(ref.f_bullets, 3)
  e_bullets, n_e = _buffer(ref.e_bullets, 3)
  fish, n_fish = _buffer(ref.e_fish, 4)
  subs, n_subs = _buffer(ref.e_subs, 5)
  divers, n_divers = _buffer(ref.divers, 4)
  # numpy rather than jnp: the harness converts thousands of reference states per random step
  i32 = lambda v: np.int32(v)
  return EnvState(
      oxygen=i32(ref.oxygen), sub_x=i32(ref.sub_x), sub_y=i32(ref.sub_y), sub_or=np.bool_(ref.sub_or),
      f_bullet_count=i32(n_f), f_bullets=f_bullets, e_bullet_count=i32(n_e), e_bullets=e_bullets,
      e_fish_count=i32(n_fish), e_fish=fish, e_subs_count=i32(n_subs), e_subs=subs,
      diver_count=i32(ref.diver_count), divers_count=i32(n_divers), divers=divers,
      e_spawn_speed=i32(ref.e_spawn_speed), e_spawn_timer=i32(ref.e_spawn_timer),
      d_spawn_timer=i32(ref.d_spawn_timer), move_speed=i32(ref.move_speed), ramp_index=i32(ref.ramp_index),
      shot_timer=i32(ref.shot_timer), surface=np.bool_(ref.surface), time=i32(time),
      terminal=np.bool_(ref.terminal))


def _clear_unused(rows, counts):
  rows = rows.copy()
  rows[np.arange(rows.shape[1])[None, :] >= counts[:, None]] = 0
  return rows


COUNTS = {'f_bullets': 'f_bullet_count', 'e_bullets': 'e_bullet_count', 'e_fish': 'e_fish_count',
          'e_subs': 'e_subs_count', 'divers': 'divers_count'}


def canonical(fields):
  out = dict(fields)
  for name, count in COUNTS.items():
    out[name] = _clear_unused(fields[name], fields[count])
  # Enemy bullets never interact with each other, so their order means nothing; the reference appends
  # the shots of one step in reverse sub order, gymnax in sub order. Sort the used rows (zeros stay last
  # because unused rows are sorted after every used one).
  eb = out['e_bullets']
  used = np.arange(CAPACITY)[None, :] < fields['e_bullet_count'][:, None]
  wide = eb.astype(np.int64)  # the int32 rows would wrap the int64 sentinel below
  key = np.where(used, wide[..., 0] * 10_000 + wide[..., 1] * 100 + wide[..., 2], np.iinfo(np.int64).max)
  order = np.argsort(key, axis=1, kind='stable')
  out['e_bullets'] = eb[np.arange(len(eb))[:, None], order]
  return out


def surfacing_without_divers(ref, full_action) -> bool:
  """The player reaches the surface from below with no rescued diver, which ends the game. The reference
  (act, timer section) only sets terminal; gymnax's _step_timers computes `surfacing` without excluding
  the no-diver case, so it also runs the whole _surface bookkeeping: oxygen refilled to max_oxygen,
  diver_count 0 -> -1, surface True and one step of the difficulty ramp. The terminal observation's oxygen
  gauge then differs (full in gymnax), and so do those state fields."""
  _, y = _player_after(ref, full_action)
  return y == 0 and not ref.surface and ref.diver_count == 0


def _player_after(ref, full_action):
  dx = {1: -1, 3: 1}.get(full_action, 0)
  dy = {2: -1, 4: 1}.get(full_action, 0)
  return min(9, max(0, ref.sub_x + dx)), min(8, max(0, ref.sub_y + dy))


def _after_friendly_bullets(ref, full_action):
  """Friendly bullets, fish and subs as the reference leaves them after its friendly-bullet loop. An
  enemy spawned this step is left out: it could only absorb a bullet, so the bullets kept here are a
  superset and the predicates below stay conservative."""
  x, y = _player_after(ref, full_action)
  bullets = [list(b) for b in ref.f_bullets]
  if full_action == 5 and ref.shot_timer == 0:
    bullets.append([x, y, ref.sub_or])
  fish, subs = [list(f) for f in ref.e_fish], [list(s) for s in ref.e_subs]
  kept = []
  for b in reversed(bullets):  # the reference's order: the last bullet gets first pick
    b = [b[0] + (1 if b[2] else -1), b[1], b[2]]
    if not 0 <= b[0] <= 9:
      continue
    hit = next((t for t in fish if t[:2] == b[:2]), None)
    hit = hit if hit is not None else next((t for t in subs if t[:2] == b[:2]), None)
    if hit is not None:
      (fish if hit in fish else subs).remove(hit)
    else:
      kept.append(b)
  return kept, fish, subs


def _moved(target):
  return [target[0] + (1 if target[2] else -1), target[1]] if target[3] == 0 else target[:2]


def _enemy_on_bullet_cases(ref, full_action) -> bool:
  """Enemy-sub and enemy-fish phases meet friendly bullets. The reference lets only an enemy that has just
  moved (and not onto the player: `elif`) look for a bullet, takes the first bullet in list order, and
  lets a sub it kills still fire when its shot timer is 0. gymnax's collide_bullets checks every active
  enemy, also one that moved onto the player, gives a contested bullet to the lowest-index enemy and the
  enemy to the highest-index bullet, and a killed sub never fires. Flags the steps where that can matter."""
  player = list(_player_after(ref, full_action))
  bullets, fish, subs = _after_friendly_bullets(ref, full_action)
  cells = Counter(tuple(b[:2]) for b in bullets)
  for kind in (subs, fish):
    landing = Counter()
    for t in kind:
      cell = _moved(t)
      if not 0 <= cell[0] <= 9 or cells[tuple(cell)] == 0:
        continue
      moving = t[3] == 0
      fires = kind is subs and t[4] == 0
      if not moving or cell == player or cells[tuple(cell)] > 1 or fires:
        return True
      landing[tuple(cell)] += 1
    if any(n > 1 for n in landing.values()):
      return True
  return False


def _crowded_diver_pickup(ref, full_action) -> bool:
  """More divers reach the player in one step than there is room for. The reference walks the diver list
  from the end, so a later diver that moves onto the player is taken before an earlier one already there;
  gymnax first takes every diver already there (list order), then the ones that moved there."""
  player = list(_player_after(ref, full_action))
  near = sum(d[:2] == player or _moved(d) == player for d in ref.divers)
  return near > 1 and near > 6 - ref.diver_count


def known_difference(ref, full_action) -> bool:
  return (surfacing_without_divers(ref, full_action) or _enemy_on_bullet_cases(ref, full_action)
          or _crowded_diver_pickup(ref, full_action))


def _ramped(ramp_index):
  """e_spawn_speed and move_speed after ramp_index surfacings, by _surface's own schedule."""
  spawn, move, k = 20, 5, 0
  while k < ramp_index and (spawn > 1 or move > 2):
    move -= move > 2 and k % 2
    spawn -= spawn > 1
    k += 1
  return spawn, move, k


def _free_cell(rng, taken, y=None):
  for _ in range(50):
    cell = (int(rng.randint(10)), int(y if y is not None else rng.randint(1, 9)))
    if cell not in taken:
      return cell
  return None


def scramble(ref, rng):
  """A reachable mid-game state: difficulty on the ramp's schedule, one travel direction per enemy row
  (spawning forbids opposite directions in a row), enemies and friendly bullets on distinct cells, and
  nothing that would already have ended the game or been collected on the player's cell."""
  ref.e_spawn_speed, ref.move_speed, ref.ramp_index = _ramped(rng.randint(25))
  ref.e_spawn_timer, ref.d_spawn_timer = rng.randint(ref.e_spawn_speed + 1), rng.randint(31)
  ref.shot_timer, ref.oxygen, ref.diver_count = rng.randint(6), rng.randint(1, 201), rng.randint(-1, 7)
  ref.sub_x, ref.sub_y = rng.randint(10), rng.randint(0 if ref.diver_count else 1, 9)
  ref.surface = ref.sub_y == 0
  ref.sub_or = ref.sub_x == 9 or (ref.sub_x > 0 and rng.rand() < 0.5)  # the back cell stays on the board
  taken = {(ref.sub_x, ref.sub_y)}
  right = rng.rand(9) < 0.5
  ref.e_fish, ref.e_subs, ref.f_bullets, ref.e_bullets, ref.divers = [], [], [], [], []
  for _ in range(rng.randint(7)):
    cell = _free_cell(rng, taken)
    if cell:
      taken.add(cell)
      enemy = [cell[0], cell[1], bool(right[cell[1]]), int(rng.randint(ref.move_speed + 1))]
      if rng.rand() < 1 / 3:
        ref.e_subs.append(enemy + [int(rng.randint(11))])
      else:
        ref.e_fish.append(enemy)
  for _ in range(rng.randint(3)):
    cell = _free_cell(rng, taken)
    if cell:
      taken.add(cell)
      ref.f_bullets.append([cell[0], cell[1], bool(rng.rand() < 0.5)])
  for _ in range(rng.randint(4)):
    cell = _free_cell(rng, {(ref.sub_x, ref.sub_y)})
    if cell:
      ref.e_bullets.append([cell[0], cell[1], bool(right[cell[1]])])
  for _ in range(rng.randint(4)):
    cell = _free_cell(rng, {(ref.sub_x, ref.sub_y)} if ref.diver_count < 6 else set())
    if cell:
      ref.divers.append([cell[0], cell[1], bool(rng.rand() < 0.5), int(rng.randint(6))])


GAME = Game('seaquest', 'Seaquest-MinAtar', to_gymnax, canonical, scramble, known_difference, COUNTS)


# ---- demonstrations of the differences (reference outcome, set of gymnax outcomes) ----------------------

def _quiet_game(**changes):
  """A reset reference game, spawn timers away from 0 (so nothing is drawn), then `changes`."""
  from minatar.environments.seaquest import Env
  ref = Env(ramping=True)
  ref.random = np.random.RandomState(0)
  ref.e_spawn_timer, ref.d_spawn_timer, ref.surface = 10, 10, False
  for name, value in changes.items():
    setattr(ref, name, value)
  return ref


def demo_surface_without_divers():
  """Player one row below the surface, no diver aboard, moves up: both end the game; the reference keeps
  oxygen 150 (gauge 7 cells), gymnax refills it to 200 (gauge 10 cells), sets diver_count -1, ramps."""
  return one_step(GAME, _quiet_game(sub_x=5, sub_y=1, oxygen=150), UP)


def demo_killed_sub_fires():
  """A sub with move and shot timers at 0 steps left onto the cell a friendly bullet has just reached.
  Both kill it (+1); the reference still fires its shot (enemy_bullets gets [5, 3, 0] after moving),
  gymnax does not."""
  return one_step(GAME, _quiet_game(sub_x=1, sub_y=8, f_bullets=[[5, 3, True]], e_subs=[[7, 3, False, 0, 0]]), 0)


def demo_enemy_onto_player_on_bullet():
  """The player's own bullet has reached the player's cell, and a fish moves onto that cell: both end the
  game; the reference gives 0 and leaves fish and bullet, gymnax also kills the fish and gives +1."""
  return one_step(GAME, _quiet_game(sub_x=5, sub_y=4, sub_or=True, f_bullets=[[4, 4, True]],
                                    e_fish=[[6, 4, False, 0]]), 0)


def demo_crowded_diver_pickup():
  """Five divers aboard; the player steps onto diver A (list index 0) while diver B (index 1) moves onto
  the same cell. The reference takes B and leaves A (timer 3 -> 2); gymnax takes A and leaves B."""
  return one_step(GAME, _quiet_game(sub_x=4, sub_y=3, diver_count=5,
                                    divers=[[5, 3, True, 3], [6, 3, False, 0]]), 3)
