"""gymnax's MinAtar games, which the MinAtar results run on, against the reference `minatar` package.

Transition by transition from shared states (tests/minatar_reference/harness.py says how), on a random
policy's play from reset and from random reachable mid-game states, and resets in distribution. The
differences found are skipped there and pinned here by tests of their own, so that a gymnax release
that changes them is noticed.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

import gymnax  # noqa: F401  (pinned, as minatar is: a missing one fails the suite, not skips it)
import minatar  # noqa: F401

import minatar_reference as ref_check
from minatar_reference import asterix, freeway, seaquest  # noqa: E402

# Random steps of seaquest (an enemy and a diver spawned together) have ~500 equally likely outcomes,
# so its distributions need more samples than the other games' (at most ~50 outcomes); that makes its
# steps the dearest, as are breakout's mid-game states (played to by the reference with look-ahead).
# These step counts keep the default suite short; `make test-slow` plays 1,000 steps on 3 seeds.
SAMPLES = {'seaquest': 1000}
STEPS = {'seaquest': 30, 'breakout': 50}


@pytest.mark.parametrize('game', sorted(ref_check.GAMES))
def test_gymnax_resets_as_the_reference(game):
  ref_check.compare_reset(ref_check.GAMES[game], samples=300)


@pytest.mark.optimized
@pytest.mark.parametrize('game', sorted(ref_check.GAMES))
def test_gymnax_steps_as_the_reference_from_reset(game):
  steps = STEPS.get(game, 75)
  report = ref_check.compare(ref_check.GAMES[game], seed=0, steps=steps, samples=SAMPLES.get(game, 300),
                             max_episode_steps=1000)
  assert report.steps == steps and report.episodes >= 1


@pytest.mark.optimized
@pytest.mark.parametrize('game', sorted(g for g, spec in ref_check.GAMES.items() if spec.scramble))
def test_gymnax_steps_as_the_reference_from_mid_game_states(game):
  steps = STEPS.get(game, 100)
  report = ref_check.compare(ref_check.GAMES[game], seed=1, steps=steps, samples=SAMPLES.get(game, 300),
                             max_episode_steps=20, scramble=True)
  assert report.episodes >= steps // 20  # a random mid-game start every 20 steps at least


@pytest.mark.slow
@pytest.mark.parametrize('game', sorted(ref_check.GAMES))
@pytest.mark.parametrize('scramble', [False, True])
def test_gymnax_steps_as_the_reference_long(game, scramble):
  spec = ref_check.GAMES[game]
  if scramble and not spec.scramble:
    pytest.skip('no mid-game states for this game')
  for seed in range(3):
    ref_check.compare(spec, seed=seed, steps=1000, samples=max(1000, SAMPLES.get(game, 0)),
                      max_episode_steps=20 if scramble else 2500, scramble=scramble)


# ---- asterix: spawning into crowded rows -------------------------------------------------------------

def _asterix_spawn_outcomes(filled_rows, samples=800):
  """Which rows hold an entity after one spawning step: [samples, 8] booleans from the reference
  (sampled) and from gymnax (one key each), from the same state."""
  import jax
  from minatar.environments import asterix as reference
  ref = reference.Env(ramping=False)
  ref.reset()
  ref.player_x, ref.player_y = 5, 1
  # Entities at the left edge, the player in column 5: no collision, and no move this step.
  ref.entities = [[0, row + 1, False, False] if row in filled_rows else None for row in range(8)]
  ref.spawn_timer, ref.move_timer = 0, 3
  rows_ref = []
  for i in range(samples):
    other = copy.deepcopy(ref)
    other.random = np.random.RandomState(i)
    other.act(0)
    rows_ref.append([e is not None for e in other.entities])
  env, params = gymnax.make('Asterix-MinAtar')
  step = jax.vmap(env.step_env, in_axes=(0, None, None, None))
  _, nxt, _, _, _ = step(jax.random.split(jax.random.PRNGKey(0), samples), asterix.to_gymnax(ref, 0), 0, params)
  return np.asarray(rows_ref), np.asarray(nxt.entities)[:, :, 4] == 1


def _within(p, target, n):
  return abs(p - target) < 4 * np.sqrt(target * (1 - target) / n)  # 4 standard errors


def test_gymnax_asterix_erases_an_entity_when_it_spawns_into_full_rows():
  """Known difference: with all 8 rows taken the reference spawns nothing, gymnax writes an empty
  entity over a random row (the enemy or gold there vanishes)."""
  rows_ref, rows_gym = _asterix_spawn_outcomes(set(range(8)))
  assert rows_ref.all()
  assert (rows_gym.sum(axis=1) == 7).all()


def test_gymnax_asterix_misses_the_last_free_row_one_time_in_eight():
  """Known difference: with one free row the reference always spawns there; gymnax's slot search
  never looks at the first slot of its random order, so 1 time in 8 it erases an entity instead."""
  rows_ref, rows_gym = _asterix_spawn_outcomes(set(range(8)) - {3})
  assert rows_ref.all()
  counts = rows_gym.sum(axis=1)
  assert set(counts) == {6, 8}
  assert _within(np.mean(counts == 6), 1 / 8, len(counts))


def test_gymnax_asterix_spawns_uniformly_over_two_or_more_free_rows():
  """With two or more free rows the skipped first slot does not matter: both spawn into each free
  row half the time (the step-by-step comparison checks this on every spawn it meets, too)."""
  rows_ref, rows_gym = _asterix_spawn_outcomes({0, 1, 2, 4, 5, 6})
  for rows in rows_ref, rows_gym:
    assert (rows.sum(axis=1) == 7).all()
    assert _within(rows[:, 3].mean(), 1 / 2, len(rows))


# ---- seaquest: four differences, each shown from one hand-built state ----------------------------------

def _only(outcomes):
  assert len(outcomes) == 1  # gymnax gives one outcome under every key: nothing is drawn here
  return dict(next(iter(outcomes)))


def test_gymnax_seaquest_surfacing_without_divers_refills_the_oxygen():
  """Both end the game; the reference leaves the oxygen (and its gauge) as it was, gymnax runs the
  whole surfacing: oxygen refilled, diver count 0 -> -1. Ends most random-play episodes."""
  ref, gym = seaquest.demo_surface_without_divers()
  ref, gym = dict(ref), _only(gym)
  assert ref['done'] and gym['done'] and ref['reward'] == gym['reward'] == 0
  assert (ref['oxygen'], ref['diver_count']) == (150, 0)
  assert (gym['oxygen'], gym['diver_count']) == (200, -1)
  assert ref['observation'] != gym['observation']


def test_gymnax_seaquest_a_sub_killed_on_its_firing_step_does_not_fire():
  """The reference lets a sub shot on the step its shot timer runs out fire anyway; gymnax does not."""
  ref, gym = seaquest.demo_killed_sub_fires()
  ref, gym = dict(ref), _only(gym)
  assert ref['reward'] == gym['reward'] == 1
  assert ref['e_bullets'] == ((5, 3, 0),) and gym['e_bullets'] == ()


def test_gymnax_seaquest_an_enemy_moving_onto_the_player_on_a_bullet():
  """Both end the game; the reference gives 0 and keeps fish and bullet, gymnax also kills the fish (+1)."""
  ref, gym = seaquest.demo_enemy_onto_player_on_bullet()
  ref, gym = dict(ref), _only(gym)
  assert ref['done'] and gym['done']
  assert (ref['reward'], gym['reward']) == (0, 1)
  assert len(ref['e_fish']) == 1 and gym['e_fish'] == ()


def test_gymnax_seaquest_picks_up_another_diver_when_the_sub_is_nearly_full():
  """One seat left and two divers reach the player together: the two take different divers."""
  ref, gym = seaquest.demo_crowded_diver_pickup()
  ref, gym = dict(ref), _only(gym)
  assert len(ref['divers']) == len(gym['divers']) == 1 and ref['divers'] != gym['divers']


# ---- freeway: how the game ends ------------------------------------------------------------------------

def test_gymnax_freeway_never_ends_the_game_itself():
  """The reference ends freeway as terminal on its 2,501st step; gymnax's step never ends it (its only
  end is the step limit of 2,500, a truncation), so its episodes are a step shorter and end truncated.
  Every other field of that step is equal."""
  ref, gym = freeway.demo_last_step()
  ref, gym = dict(ref), _only(gym)
  assert ref['done'] and ref['terminal'] and not gym['done'] and not gym['terminal']
  assert {k: v for k, v in ref.items() if k not in ('done', 'terminal')} == \
         {k: v for k, v in gym.items() if k not in ('done', 'terminal')}


# ---- the comparison itself notices a difference ----------------------------------------------------------

def test_the_comparison_notices_a_changed_law(monkeypatch):
  """A reference whose freeway cars draw speeds 1..4 instead of 1..5: nearly every reset is an outcome of
  its own, so only the per-element check can see it, and it must."""
  from minatar.environments import freeway as reference

  def slower_cars(self, initialize=False):
    speeds = self.random.randint(1, 5, 8) * np.sign(self.random.rand(8) - 0.5).astype(int)
    self.cars = [[0, i + 1, abs(s), s] for i, s in enumerate(speeds)] if initialize else self.cars
    for car, s in zip(self.cars, speeds):
      car[2:4] = [abs(s), s]

  monkeypatch.setattr(reference.Env, '_randomize_cars', slower_cars)
  with pytest.raises(AssertionError, match='differs in law'):
    ref_check.compare_reset(ref_check.GAMES['freeway'], samples=300)


def test_the_comparison_notices_a_changed_step(monkeypatch):
  """A reference asterix whose gold never pays: the first gold picked up must fail the comparison."""
  from minatar.environments import asterix as reference
  act = reference.Env.act

  def stingy(self, a):
    reward, done = act(self, a)
    return 0, done

  monkeypatch.setattr(reference.Env, 'act', stingy)
  with pytest.raises(AssertionError, match='deterministic here|differ'):
    ref_check.compare(ref_check.GAMES['asterix'], seed=1, steps=200, samples=50, max_episode_steps=20, scramble=True)
