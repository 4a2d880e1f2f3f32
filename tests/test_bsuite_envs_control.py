"""The pure-JAX Cartpole, CartpoleSwingup, MountainCar and reward wrappers against bsuite's own.

Two kinds of check, as the ports split each play-time draw from the function that uses it:
- exact: the deterministic cores (`start`, `step`, `wrappers.add_noise` / `scale_reward`) fed the
  very draws bsuite made, replayed from a `RandomState` we seed into bsuite's env (its reset draws,
  its wrapper's noise: two generators, as in bsuite), step for step over several episodes;
- in distribution: the key-based `reset` and noisy `step` against bsuite's draws (Kolmogorov-Smirnov
  and moments over a few thousand draws from fixed keys and seeds, so the tests are deterministic).

Float precision. bsuite integrates in float64, the ports in float32. Every episode is checked twice:
- forced: before each step our state's physics is set to bsuite's (rounded to float32), so each step
  is checked alone: observations, rewards to 1e-5 (a step's float32 rounding, ~1e-6 on values up to
  ~10), discounts, step types and (after each episode, from our own counters) bsuite_info exactly;
- free: our own float32 trajectory, compared to bsuite's within a drift tolerance (see CARTPOLE
  below). The upright pole is unstable (errors grow like exp(4 t / s)), so a free cartpole is
  compared over its first second only (to 3e-4); the hanging pole (swing-up under random pushes)
  and the mountain car are stable, so they are compared over whole episodes (to 1e-4 and 2e-5).
A discrete event (a reward, the end of an episode, a +-1 entry, the car stopped at the wall) flips
when a state is within float error of its threshold; the forced check requires every step of the
chosen seeds to be at least 1e-5 from one (100 times the error), the free check compares events only
at steps at least 10 tolerances from one.
"""
from __future__ import annotations

import functools
import inspect
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from bsuite import bsuite as bsuite_loader
from bsuite import sweep as bsuite_sweep
from bsuite.environments import bandit as bsuite_bandit
from bsuite.environments import cartpole as bsuite_cartpole
from bsuite.environments import mountain_car as bsuite_mountain_car
from bsuite.experiments.cartpole_swingup import cartpole_swingup as bsuite_swingup
from bsuite.utils import wrappers as bsuite_wrappers

from bsuite_env_checks import assert_info, assert_specs
from hyperagent.bsuite.envs import bandit, cartpole, mountain_car, umbrella_chain, wrappers

from hyperagent.bsuite.envs import catch
from hyperagent.bsuite.envs import registry

KEY = jax.random.PRNGKey(0)  # for the functions that draw nothing: any key will do
FORCED_MARGIN = 1e-5
NUM_DRAWS = 4000


# ------------------------------------------------------------------------- what differs per env

class Kind(NamedTuple):
  """How the checks drive one environment family (ours and bsuite's)."""
  step: Callable              # our step (params, state, action, key) -> (state, EnvStep)
  start: Callable             # our reset core (params, state, draws) -> (state, observation)
  reset_draws: Callable       # (RandomState, settings) -> the draws bsuite's reset makes, in order
  read: Callable | None       # bsuite env -> float64 [k]: the state a step starts from
  force: Callable | None      # (our state, float32 [k]) -> our state with that physics
  margin: Callable            # (bsuite env after a step, read() before it, action) -> distance
  tags: Callable              # (bsuite env after a step, timestep) -> {event names}
  free_steps: int | None = None  # how many steps of each episode the free check compares
  free_tol: float = 1e-5         # and to what tolerance


def _cartpole_draws(rng, settings):
  init_range = settings.get('init_range', 0.05)
  return np.array([rng.uniform(low=-init_range, high=init_range) for _ in range(4)])


def _read_cartpole(raw):
  s = raw._state
  return np.array([s.x, s.x_dot, s.theta, s.theta_dot])


def _force_cartpole(state, vector):
  return state._replace(physics=cartpole.Physics(*vector))


def _cartpole_margin(raw, before, action):
  s = raw._state
  return min(abs(np.cos(s.theta) - raw._height_threshold), abs(abs(s.x) - raw._x_threshold))


def _swingup_margin(raw, before, action):
  s = raw._state
  return min(abs(np.cos(s.theta) - raw._height_threshold),
             abs(abs(s.theta_dot) - raw._theta_dot_threshold),
             abs(abs(s.x) - raw._x_reward_threshold), abs(abs(s.x) - raw._x_threshold))


def _cartpole_tags(raw, timestep):
  tags = {'reward'} if timestep.reward > 0 else set()
  if timestep.last():
    tags.add('time' if raw._state.time_elapsed > raw._max_time else 'fail')
  return tags


def _swingup_tags(raw, timestep):
  tags = {'upright'} if timestep.reward > 0.5 else set()
  if timestep.last():
    tags.add('time' if raw._state.time_elapsed > raw._max_time else 'off-track')
  return tags


def _mountain_car_draws(rng, settings):
  return rng.uniform(-0.6, -0.4)


def _read_mountain_car(raw):
  return np.array([raw._position, raw._velocity], np.float64)


def _force_mountain_car(state, vector):
  return state._replace(position=vector[0], velocity=vector[1])


def _mountain_car_margin(raw, before, action):
  """To the goal, and to the left wall (where the car stops): there the clipped position hides how
  close it came, so recompute the unclipped one in float64 from bsuite's state before the step."""
  position, velocity = before
  velocity = np.clip(velocity + (action - 1) * 0.001 - 0.0025 * np.cos(3 * position), -.07, .07)
  return min(abs(raw._position - 0.5), abs(position + velocity + 1.2))


def _mountain_car_tags(raw, timestep):
  tags = {'wall'} if raw._position == -1.2 else set()
  if timestep.last():
    tags.add('goal' if raw._position >= 0.5 else 'time')
  return tags


def _no_draws(rng, settings):
  return None


def _no_margin(raw, before, action):
  return np.inf  # integer-valued envs: nothing to round


def _last_tag(raw, timestep):
  return {'end'} if timestep.last() else set()


def _bandit_start(params, state, draws):
  return bandit.reset(params, state, KEY)


# Free drift bounds. Near upright a float32 rounding error e (~1e-7 on theta_dot ~ 1) made at
# each step grows like exp(lambda t), lambda = sqrt(g / (l (4/3 - m_pole / m_total))) ~ 4 / s, so
# the errors sum to ~ e exp(lambda t) / (lambda dt) ~ 1.4e-4 after 1 s of 0.01 steps: a free
# cartpole is compared over 100 steps to 3e-4. The hanging pole (swing-up under random pushes) and
# the car are stable: errors add up without growing (measured 3e-5 over 800 steps, 3e-6 over 1000).
CARTPOLE = Kind(cartpole.step, jax.jit(cartpole.start), _cartpole_draws, _read_cartpole,
                _force_cartpole, _cartpole_margin, _cartpole_tags, free_steps=100, free_tol=3e-4)
SWINGUP = Kind(cartpole.step_swingup, jax.jit(cartpole.start_swingup), _cartpole_draws,
               _read_cartpole, _force_cartpole, _swingup_margin, _swingup_tags, free_steps=100,
               free_tol=3e-4)
SWINGUP_HANGING = SWINGUP._replace(free_steps=None, free_tol=1e-4)  # only for random pushes
MOUNTAIN_CAR = Kind(mountain_car.step, jax.jit(mountain_car.start), _mountain_car_draws,
                    _read_mountain_car, _force_mountain_car, _mountain_car_margin,
                    _mountain_car_tags, free_steps=None, free_tol=2e-5)
BANDIT = Kind(bandit.step, _bandit_start, _no_draws, None, None, _no_margin, _last_tag)


@functools.lru_cache(maxsize=None)
def _catch_kind(rows, columns):
  shape = dict(rows=rows, columns=columns)
  return Kind(functools.partial(catch.step, **shape),
              jax.jit(functools.partial(catch.reset_with, **shape)),
              lambda rng, settings: rng.randint(columns), None, None, _no_margin, _last_tag)


# ---------------------------------------------------------------------------------- policies

def _random(observation, rng):
  return rng.randint(3)


def _balance(observation, rng):
  """Keeps bsuite's pole up for the whole 10 s (so the time limit is reached)."""
  x, x_dot, sin, cos, theta_dot = observation[0, :5]
  return 2 if 10 * np.arctan2(sin, cos) + theta_dot + 1.5 * x + 3 * x_dot > 0 else 0


def _swing_up(observation, rng):
  """Pumps energy into the hanging pole while centring the cart, then balances near the top; it
  gets upright now and then, which random pushes never do."""
  x, x_dot = 3 * observation[0, 0], 3 * observation[0, 1]
  sin, cos, theta_dot = observation[0, 2:5]
  if cos > 0.8:
    u = 10 * np.arctan2(sin, cos) + theta_dot + 0.5 * x + x_dot
  else:
    energy = 0.125 * theta_dot ** 2 + 4.9 * (cos - 1)  # 0 at rest upright
    u = theta_dot * cos * energy - 0.5 * x - 2 * x_dot
  return 2 if u > 0 else 0


def _pump(observation, rng):
  """Pushes along the car's velocity: reaches the goal in ~120 steps."""
  return 2 if observation[0, 1] >= 0 else 0


def _left_then_pump(max_steps):
  """60 steps of pushing left first: the car swings back into the left wall before the goal."""
  def policy(observation, rng):
    return 0 if observation[0, 2] * max_steps < 59.5 else _pump(observation, rng)
  return policy


def _random_arm(observation, rng):
  return rng.randint(11)


# ----------------------------------------------------------------------------- the comparison

@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _rollout(step, wrapper, force, params, state, actions, noise, forced, use_forced):
  """Our env over a padded action sequence, the wrapper's core fed bsuite's noise draws; where
  `use_forced`, the step starts from `forced` (bsuite's physics) instead of our own."""
  inner_params = params if wrapper is None else params.inner

  def body(state, xs):
    action, draw, vector, use = xs
    if force is not None:
      state = jax.tree.map(functools.partial(jnp.where, use), force(state, vector), state)
    state, env_step = step(inner_params, state, action, KEY)
    if wrapper == 'noise':
      env_step = wrappers.add_noise(params, env_step, draw)
    elif wrapper == 'scale':
      env_step = wrappers.scale_reward(params, env_step)
    return state, (env_step, state)

  return jax.lax.scan(body, state, (actions, noise, forced, use_forced))


class Episode(NamedTuple):
  actions: np.ndarray       # int32 [n]
  before: np.ndarray        # float64 [n, k]: bsuite's state before each step
  observations: np.ndarray  # float32 [n, ...]
  rewards: np.ndarray
  discounts: np.ndarray
  lasts: np.ndarray
  margins: np.ndarray       # [n]: distance of each step's state to its nearest threshold
  tags: set


def _play_reference(ref, raw, kind, policy, rng) -> tuple[np.ndarray, Episode]:
  """One bsuite episode from its reset, recorded."""
  timestep = ref.reset()
  first_observation = timestep.observation
  rows, tags = [], set()
  while not timestep.last():
    before = kind.read(raw) if kind.read else np.zeros(0)
    action = policy(timestep.observation, rng)
    timestep = ref.step(action)
    rows.append((action, before, timestep.observation, timestep.reward, timestep.discount,
                 timestep.last(), kind.margin(raw, before, action)))
    tags |= kind.tags(raw, timestep)
  columns = [np.array(column) for column in zip(*rows)]
  return first_observation, Episode(*columns, tags)


def _pad(array, length, dtype):
  padded = np.zeros((length,) + array.shape[1:], dtype)
  padded[:len(array)] = array
  return jnp.asarray(padded)


def _compare(env_steps, episode, upto, tol, discrete):
  """Our stacked EnvSteps [:upto] against bsuite's; the discrete parts only where `discrete`."""
  observations = np.asarray(env_steps.observation[:upto])
  assert observations.dtype == np.float32 == episode.observations.dtype
  np.testing.assert_allclose(observations, episode.observations[:upto], rtol=tol, atol=tol)
  rewards = np.asarray(env_steps.reward[:upto])
  np.testing.assert_allclose(rewards[discrete], episode.rewards[:upto][discrete], rtol=tol,
                             atol=tol)
  np.testing.assert_array_equal(np.asarray(env_steps.discount[:upto])[discrete],
                                episode.discounts[:upto][discrete])
  np.testing.assert_array_equal(np.asarray(env_steps.last[:upto])[discrete],
                                episode.lasts[:upto][discrete])


def _reseed(ref, wrapped: bool, reset_seed: int, noise_seed: int):
  """Gives bsuite's env (and its wrapper's) generators we can replay: the sweep seeds them with
  None. Returns the replaying twins."""
  raw = ref._env if wrapped else ref
  raw._rng = np.random.RandomState(reset_seed)
  if wrapped:
    ref._rng = np.random.RandomState(noise_seed)
  return raw, np.random.RandomState(reset_seed), np.random.RandomState(noise_seed)


def _check_against_bsuite(ref, env, params, kind, *, wrapper=None, settings=None, policy=_random,
                          episodes=4, pad=1001, seed=0):
  """Plays `episodes` of bsuite's `ref` and checks ours (forced and free) after every step and its
  info after every episode. Returns the set of event tags bsuite's episodes showed."""
  raw, reset_rng, noise_rng = _reseed(ref, wrapper is not None, seed, seed + 1000)
  policy_rng = np.random.RandomState(seed + 2000)
  settings = settings or {}
  inner_params = params if wrapper is None else params.inner
  state = env.init(params, KEY)
  tags = set()
  for _ in range(episodes):
    draws = kind.reset_draws(reset_rng, settings)
    first_observation, episode = _play_reference(ref, raw, kind, policy, policy_rng)
    state, observation = kind.start(inner_params, state, draws)
    assert np.asarray(observation).dtype == np.float32
    np.testing.assert_allclose(np.asarray(observation), first_observation, rtol=1e-6, atol=1e-6)
    n = len(episode.actions)
    assert n <= pad
    noise = noise_rng.randn(n) if wrapper == 'noise' else np.zeros(n)  # one randn a step
    args = (_pad(episode.actions, pad, np.int32), _pad(noise, pad, np.float32),
            _pad(episode.before, pad, np.float32))
    run = functools.partial(_rollout, kind.step, wrapper, kind.force, params, state, *args)
    if kind.force is not None:  # free
      _, (env_steps, _) = run(jnp.zeros(pad, bool))
      upto = n if kind.free_steps is None else min(n, kind.free_steps)
      _compare(env_steps, episode, upto, kind.free_tol,
               episode.margins[:upto] > 10 * kind.free_tol)
    assert episode.margins.min() > FORCED_MARGIN, 'a state within float error of a threshold'
    _, (env_steps, states) = run(jnp.ones(pad, bool))  # forced (or plain, for integer envs)
    _compare(env_steps, episode, n, 1e-5, np.ones(n, bool))
    state = jax.tree.map(lambda leaf: leaf[n - 1], states)
    assert_info(env, params, state, ref)
    tags |= episode.tags
  assert_specs(env, ref)
  assert env.observation_dtype == ref.observation_spec().dtype == np.float32
  return tags


# ------------------------------------------------------------------------------- the envs alone

CARTPOLE_CASES = [  # (settings, policy, episodes, events bsuite's episodes must show)
    (dict(), _random, 8, {'fail', 'reward'}),
    (dict(), _balance, 2, {'time'}),
    (dict(max_time=0.3), _random, 6, {'time'}),
    (dict(height_threshold=0.5, x_threshold=1., timescale=0.02, max_time=1., init_range=0.2,
          seed=3), _random, 8, {'time', 'fail'}),
]


@pytest.mark.parametrize('settings,policy,episodes,events', CARTPOLE_CASES)
def test_cartpole_matches_bsuite(settings, policy, episodes, events):
  ref = bsuite_cartpole.Cartpole(**settings)
  env, params = cartpole.make(**settings)
  assert (env.name, env.static, env.info_names) == ('cartpole', (), ('raw_return', 'best_episode'))
  tags = _check_against_bsuite(ref, env, params, CARTPOLE, settings=settings, policy=policy,
                               episodes=episodes, seed=len(settings))
  assert events <= tags


SWINGUP_CASES = [
    (dict(), _random, 3, {'off-track'}),
    (dict(height_threshold=0.35, x_reward_threshold=0.65), _swing_up, 2, {'upright', 'time'}),
    (dict(height_threshold=0.3, theta_dot_threshold=3., x_reward_threshold=2., move_cost=0.01,
          x_threshold=2.5, timescale=0.015, max_time=6., init_range=0.3), _swing_up, 3,
     {'upright', 'time', 'off-track'}),
]


@pytest.mark.parametrize('settings,policy,episodes,events', SWINGUP_CASES)
def test_cartpole_swingup_matches_bsuite(settings, policy, episodes, events):
  ref = bsuite_swingup.CartpoleSwingup(**settings)
  env, params = cartpole.make_swingup(**settings)
  assert env.info_names == ('raw_return', 'total_upright', 'best_episode')
  kind = SWINGUP_HANGING if policy is _random else SWINGUP
  tags = _check_against_bsuite(ref, env, params, kind, settings=settings, policy=policy,
                               episodes=episodes, seed=10 + len(settings))
  assert events <= tags


MOUNTAIN_CAR_CASES = [
    (1000, _random, 2, {'time'}),
    (1000, _pump, 4, {'goal'}),
    (150, _left_then_pump(150), 3, {'wall', 'time'}),
    (170, _left_then_pump(170), 2, {'wall', 'goal'}),
]


@pytest.mark.parametrize('max_steps,policy,episodes,events', MOUNTAIN_CAR_CASES)
def test_mountain_car_matches_bsuite(max_steps, policy, episodes, events):
  ref = bsuite_mountain_car.MountainCar(max_steps=max_steps)
  env, params = mountain_car.make(max_steps=max_steps)
  assert (env.name, env.info_names) == ('mountain_car', ('raw_return',))
  tags = _check_against_bsuite(ref, env, params, MOUNTAIN_CAR, policy=policy, episodes=episodes,
                               seed=max_steps)
  assert events <= tags


def _arguments(function, skip=0):
  parameters = list(inspect.signature(function).parameters.values())[skip:]
  return [(p.name, p.default) for p in parameters]


def test_make_takes_bsuites_arguments():
  """Same names, order and defaults as bsuite's constructors (the wrappers take the inner
  (env, params) pair where bsuite takes the inner env)."""
  assert _arguments(cartpole.make) == _arguments(bsuite_cartpole.Cartpole.__init__, 1)
  assert _arguments(cartpole.make_swingup) == _arguments(bsuite_swingup.CartpoleSwingup.__init__,
                                                         1)
  assert _arguments(mountain_car.make) == _arguments(bsuite_mountain_car.MountainCar.__init__, 1)
  assert _arguments(wrappers.reward_noise, 1) == _arguments(bsuite_wrappers.RewardNoise.__init__, 2)
  assert _arguments(wrappers.reward_scale, 1) == _arguments(bsuite_wrappers.RewardScale.__init__, 2)


def test_cartpole_time_limit_is_bsuites_float64_count():
  """bsuite ends on `time_elapsed > max_time` with time_elapsed a float64 running sum: 1001 steps
  for its 10 s of 0.01 (1000 sum to 9.99999999999998), 11 for 1 s of 0.1, 30 for 0.3 s of 0.01."""
  assert cartpole.time_limit(0.01, 10.) == 1001
  assert cartpole.time_limit(0.1, 1.) == 11
  assert cartpole.time_limit(0.01, 0.3) == 30
  assert cartpole.time_limit(0.01, -1.) == 1  # bsuite's first step is already past it
  # sums that land exactly on max_time end one step later (`>`, not `>=`): bsuite's own Cartpole,
  # made never to lose its reward, so that only the time ends its episode
  for timescale, max_time in ((0.5, 1.0), (0.25, 2.0), (0.3, 0.9)):
    ref = bsuite_cartpole.Cartpole(timescale=timescale, max_time=max_time, height_threshold=-2.0,
                                   x_threshold=1e9, seed=0)
    timestep, steps = ref.reset(), 0
    while not timestep.last():
      timestep, steps = ref.step(1), steps + 1
    assert cartpole.time_limit(timescale, max_time) == steps, (timescale, max_time)
  assert cartpole.time_limit(0.01, float('inf')) == 2 ** 31 - 1
  with pytest.raises(ValueError, match='timescale must be positive'):
    cartpole.time_limit(0., 1.)


# ---------------------------------------------------------------------------------- the wrappers

WRAPPER_CASES = [  # (name, bsuite's env, ours, kind, settings, policy, episodes)
    ('cartpole+noise',
     lambda: bsuite_wrappers.RewardNoise(bsuite_cartpole.Cartpole(seed=2), 0.3, seed=2),
     lambda: wrappers.reward_noise(cartpole.make(seed=2), 0.3, seed=2), CARTPOLE, _random, 5),
    ('mountain_car+scale',
     lambda: bsuite_wrappers.RewardScale(bsuite_mountain_car.MountainCar(seed=3), 30., seed=3),
     lambda: wrappers.reward_scale(mountain_car.make(seed=3), 30., seed=3), MOUNTAIN_CAR, _pump,
     3),
    ('cartpole_swingup+scale',
     lambda: bsuite_wrappers.RewardScale(bsuite_swingup.CartpoleSwingup(max_time=3.), -2.5),
     lambda: wrappers.reward_scale(cartpole.make_swingup(max_time=3.), -2.5), SWINGUP, _random,
     2),
    ('bandit+noise',
     lambda: bsuite_wrappers.RewardNoise(bsuite_bandit.SimpleBandit(4), 3., seed=4),
     lambda: wrappers.reward_noise(bandit.make(4), 3., seed=4), BANDIT, _random_arm, 30),
]


@pytest.mark.parametrize('name,make_ref,make_ours,kind,policy,episodes', WRAPPER_CASES,
                         ids=[case[0] for case in WRAPPER_CASES])
def test_wrappers_match_bsuite(name, make_ref, make_ours, kind, policy, episodes):
  """Resets pass through, every step's reward is changed (noise: one randn a step from the
  wrapper's own generator), bsuite_info is the inner env's."""
  ref = make_ref()
  env, params = make_ours()
  assert env.name == name
  pad = 1 if kind is BANDIT else 1001
  _check_against_bsuite(ref, env, params, kind, wrapper=name.split('+')[1], policy=policy,
                        episodes=episodes, pad=pad, seed=7)


def test_wrapped_envs_compile_apart_from_their_inner_env():
  inner, params = cartpole.make()
  noisy, noise_params = wrappers.reward_noise((inner, params), 1.)
  scaled, _ = wrappers.reward_scale((inner, params), 1.)
  assert len({inner, noisy, scaled}) == 3
  assert (noisy.name, scaled.name) == ('cartpole+noise', 'cartpole+scale')
  assert noisy == wrappers.reward_noise(cartpole.make(), 10.)[0]  # one program for all levels
  assert noisy.info_names == inner.info_names
  assert float(noise_params.noise_scale) == 1.


@pytest.mark.parametrize('wrap', ['noise', 'scale'])
@pytest.mark.parametrize('inner_name', ['mountain_car', 'umbrella_chain'])
def test_wrapped_step_is_the_core_with_key_draws(wrap, inner_name):
  """The key-based wrapped `step` is the inner step plus the core tested above, its noise a
  standard normal from its own half of the key (so the inner env's draws stay independent). The
  umbrella chain draws its distractors in `step`, so the key the wrapper hands on is checked too."""
  if inner_name == 'mountain_car':
    inner, inner_params = mountain_car.make()
  else:
    inner, inner_params = umbrella_chain.make(5, 3, seed=0)
  if wrap == 'noise':
    env, params = wrappers.reward_noise((inner, inner_params), 0.7)
  else:
    env, params = wrappers.reward_scale((inner, inner_params), 0.7)
  if inner_name == 'mountain_car':
    state, _ = MOUNTAIN_CAR.start(inner_params, env.init(params, KEY), -0.5)
  else:
    state, _ = env.reset(params, env.init(params, KEY), jax.random.PRNGKey(9))

  @jax.jit
  def ours_and_want(state, action, key):
    ours = env.step(params, state, action, key)
    if wrap == 'noise':
      inner_key, noise_key = wrappers.split_step_key(key)
      want_state, plain = inner.step(inner_params, state, action, inner_key)
      want = plain._replace(reward=plain.reward + 0.7 * jax.random.normal(noise_key))
    else:
      want_state, plain = inner.step(inner_params, state, action, key)
      want = plain._replace(reward=plain.reward * 0.7)
    return ours, (want_state, want), plain.reward

  for seed in range(3):
    ours, want, plain_reward = ours_and_want(state, jnp.int32(seed % 2), jax.random.PRNGKey(seed))
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(want)):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    unnoised = float(plain_reward) * (1.0 if wrap == 'noise' else 0.7)
    assert (float(ours[1].reward) != np.float32(unnoised)) == (wrap == 'noise')
    state = ours[0]


# ------------------------------------------------------------------------- in distribution

def _assert_same_law(ours, theirs, low=None, high=None):
  """Two samples of one continuous law (fixed seeds and keys, so deterministic): a two-sample
  Kolmogorov-Smirnov test at p > 1e-3 (a correct sampler fails 1 key choice in 1000), means within
  5 standard errors of their difference, standard deviations within 6% (5 standard errors of a
  uniform's sample std over 4000 draws is ~4%, of a normal's ~6%), and the support [low, high)."""
  ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
  assert stats.ks_2samp(ours, theirs).pvalue > 1e-3
  stderr = np.sqrt(ours.var() / len(ours) + theirs.var() / len(theirs))
  assert abs(ours.mean() - theirs.mean()) < 5 * stderr
  np.testing.assert_allclose(ours.std(), theirs.std(), rtol=0.06)
  if low is not None:
    assert low <= ours.min() and ours.max() < high


@functools.lru_cache(maxsize=None)
def _batched_reset(reset):
  return jax.jit(jax.vmap(reset, in_axes=(None, None, 0)))


def _batched_resets(env, params, seed):
  keys = jax.random.split(jax.random.PRNGKey(seed), NUM_DRAWS)
  return _batched_reset(env.reset)(params, env.init(params, KEY), keys)


@pytest.mark.parametrize('swingup,init_range', [(False, 0.05), (True, 0.05), (False, 0.3)])
def test_cartpole_reset_in_distribution(swingup, init_range):
  if swingup:
    ref = bsuite_swingup.CartpoleSwingup(init_range=init_range, seed=0)
    env, params = cartpole.make_swingup(init_range=init_range)
  else:
    ref = bsuite_cartpole.Cartpole(init_range=init_range, seed=0)
    env, params = cartpole.make(init_range=init_range)
  theirs = []
  for _ in range(NUM_DRAWS):
    ref.reset()
    theirs.append(_read_cartpole(ref))
  theirs = np.array(theirs)
  states, observations = _batched_resets(env, params, seed=3)
  p = states.physics
  ours = np.stack([p.x, p.x_dot, p.theta, p.theta_dot], axis=1)
  shift = np.array([0, 0, np.pi if swingup else 0, 0], np.float32)
  for column in range(4):
    _assert_same_law(ours[:, column] - shift[column], theirs[:, column] - shift[column],
                     -init_range, init_range)
  assert (np.asarray(states.steps) == 0).all()


def test_mountain_car_reset_in_distribution():
  ref = bsuite_mountain_car.MountainCar(seed=0)
  theirs = []
  for _ in range(NUM_DRAWS):
    ref.reset()
    theirs.append(ref._position)
  env, params = mountain_car.make()
  states, _ = _batched_resets(env, params, seed=4)
  _assert_same_law(states.position, theirs, -0.6, -0.4)
  assert (np.asarray(states.velocity) == 0).all()


def test_reward_noise_in_distribution():
  """One arm paying 0, so the rewards are the noise alone: N(0, noise_scale^2) in both."""
  ref = bsuite_wrappers.RewardNoise(bsuite_bandit.SimpleBandit(0, num_actions=1), 2., seed=0)
  theirs = []
  for _ in range(NUM_DRAWS):
    ref.reset()
    theirs.append(ref.step(0).reward)
  env, params = wrappers.reward_noise(bandit.make(0, num_actions=1), 2.)
  keys = jax.random.split(jax.random.PRNGKey(5), NUM_DRAWS)
  state = env.init(params, KEY)
  step = jax.vmap(env.step, in_axes=(None, None, None, 0))
  _, env_steps = jax.jit(step)(params, state, jnp.int32(0), keys)
  _assert_same_law(env_steps.reward, theirs)
  assert stats.kstest(np.asarray(env_steps.reward) / 2., 'norm').pvalue > 1e-3


# ------------------------------------------------------------------- jit, vmap, and bsuite's ids

def _stack(params_list):
  return jax.tree.map(lambda *leaves: jnp.stack(leaves), *params_list)


@pytest.mark.parametrize('experiment', ['cartpole_swingup', 'cartpole_noise'])
def test_ids_share_one_program_and_vmap(experiment):
  """All ids of an experiment make equal JaxEnvs; their params stack, and a jitted vmapped reset
  and steps over them agree with each id run alone."""
  ids = [i for i in bsuite_sweep.SETTINGS if i.startswith(experiment + '/')]
  pairs = [registry.make_id(i) for i in ids]
  env = pairs[0][0]
  assert all(other == env for other, _ in pairs) and len({other for other, _ in pairs}) == 1
  stacked = _stack([params for _, params in pairs])
  keys = jax.random.split(jax.random.PRNGKey(6), len(ids))
  actions = jnp.array([0, 2, 2, 1, 0], jnp.int32)

  def play(params, key):
    reset_key, step_key = jax.random.split(key)
    state, observation = env.reset(params, env.init(params, key), reset_key)
    state, env_steps = jax.lax.scan(
        lambda state, action: env.step(params, state, action, step_key), state, actions)
    return state, observation, env_steps

  batched = jax.jit(jax.vmap(play))(stacked, keys)
  _, observations, env_steps = batched  # the contract's shapes and dtypes
  assert observations.shape == (len(ids),) + env.observation_shape
  assert observations.dtype == env.observation_dtype == jnp.float32
  assert [(leaf.shape, leaf.dtype) for leaf in env_steps[1:]] == [
      ((len(ids), len(actions)), jnp.float32)] * 2 + [((len(ids), len(actions)), jnp.bool_)]
  alone = jax.jit(play)
  for index in (0, 7, len(ids) - 1):
    one = alone(pairs[index][1], keys[index])
    for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(one)):
      np.testing.assert_allclose(np.asarray(a)[index], np.asarray(b), rtol=1e-6, atol=1e-7)


def test_jit_step_is_the_eager_step():
  env, params = registry.make_id('cartpole_noise/3')
  key = jax.random.PRNGKey(8)
  state, _ = jax.jit(env.reset)(params, env.init(params, key), key)
  eager = env.step(params, state, jnp.int32(2), key)
  jitted = jax.jit(env.step)(params, state, jnp.int32(2), key)
  for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


ID_CASES = [  # (bsuite_id, kind, policy, episodes, padded episode length)
    ('cartpole/0', CARTPOLE, _random, 4, 1001),
    ('cartpole_swingup/7', SWINGUP, _swing_up, 2, 1001),
    ('mountain_car/0', MOUNTAIN_CAR, _pump, 3, 1001),
    ('cartpole_noise/3', CARTPOLE, _random, 4, 1001),
    ('mountain_car_scale/4', MOUNTAIN_CAR, _pump, 2, 1001),
    ('bandit_noise/2', BANDIT, _random_arm, 20, 1),
    ('catch_scale/1', 'catch', _random, 10, 9),
]


@pytest.mark.parametrize('bsuite_id,kind,policy,episodes,pad', ID_CASES,
                         ids=[case[0] for case in ID_CASES])
def test_ids_match_bsuite_load(bsuite_id, kind, policy, episodes, pad):
  """The engine's env for an id (`registry.make_id`) against the env bsuite's own loader builds for
  it (its sweep seeds are None: we seed its generators afterwards, to replay them)."""
  if kind == 'catch':
    kind = _catch_kind(10, 5)
  name, _ = bsuite_loader.unpack_bsuite_id(bsuite_id)
  settings = bsuite_sweep.SETTINGS[bsuite_id]
  ref = bsuite_loader.load(name, settings)
  env, params = registry.make_id(bsuite_id)
  wrapped = isinstance(ref, (bsuite_wrappers.RewardNoise, bsuite_wrappers.RewardScale))
  wrapper = None
  if wrapped:
    wrapper = 'noise' if isinstance(ref, bsuite_wrappers.RewardNoise) else 'scale'
    assert env.name.endswith('+' + wrapper)
    level = 'noise_scale' if wrapper == 'noise' else 'reward_scale'
    assert float(getattr(params, level)) == pytest.approx(getattr(ref, '_' + level), rel=1e-7)
  raw = ref._env if wrapped else ref
  for attribute in ('_height_threshold', '_x_reward_threshold', '_max_steps'):
    if hasattr(raw, attribute):
      ours = getattr(params.inner if wrapped else params, attribute[1:])
      assert float(ours) == pytest.approx(getattr(raw, attribute), rel=1e-7)
  if name.startswith('bandit'):
    np.testing.assert_allclose(np.asarray(params.inner.rewards), raw._rewards, rtol=1e-7)
  _check_against_bsuite(ref, env, params, kind, wrapper=wrapper, settings=settings, policy=policy,
                        episodes=episodes, pad=pad, seed=11)
