"""The pure-JAX DeepSea against bsuite's reference implementation."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from bsuite.environments import deep_sea as bsuite_deep_sea

from hyperagent.deepsea import env as deep_sea

# params is a traced argument here on purpose: one compilation per mapping shape.
_step = jax.jit(deep_sea.step)
_reset_episode = jax.jit(deep_sea.reset_episode)


def _assert_obs(position, size, bsuite_obs):
  np.testing.assert_array_equal(np.asarray(deep_sea.one_hot_observation(position, size)),
                                bsuite_obs)


@pytest.mark.parametrize('size,seed', [(1, 0), (5, 1), (5, 2), (10, 3), (23, 4)])
def test_matches_bsuite_step_by_step(size, seed):
  ref = bsuite_deep_sea.DeepSea(size, mapping_seed=seed, seed=seed)
  params = deep_sea.make_params(size, seed)
  rng = np.random.RandomState(100 + seed)
  key = jax.random.PRNGKey(seed)
  timestep = ref.reset()
  state, position = deep_sea.reset(params)
  _assert_obs(position, size, timestep.observation)
  # Per-episode probability of picking 'right', so both treasure and bad episodes occur.
  for episode, p_right in enumerate([1.0, 0.5, 0.9, 1.0, 0.0, 0.7]):
    if episode:
      timestep = ref.step(0)  # bsuite auto-resets here; the action is ignored.
      assert timestep.first()
      state, position = _reset_episode(params, state)
      _assert_obs(position, size, timestep.observation)
    rewards = []
    for t in range(size):
      right = ref._action_mapping[ref._row, ref._column]
      action = int(right if rng.rand() < p_right else 1 - right)
      timestep = ref.step(action)
      key, sub = jax.random.split(key)
      state, position, reward, terminated = _step(params, state, action, sub)
      _assert_obs(position, size, timestep.observation)
      np.testing.assert_allclose(float(reward), timestep.reward, rtol=1e-6, atol=1e-7)
      assert bool(terminated) == timestep.last() == (t == size - 1)
      assert bool(state.bad_episode) == ref._bad_episode
      rewards.append(timestep.reward)
    info = ref.bsuite_info()
    assert int(state.total_bad_episodes) == info['total_bad_episodes']
    assert float(state.denoised_return) == info['denoised_return']
    assert int(state.episode) == episode + 1
    np.testing.assert_allclose(float(state.episode_return), sum(rewards), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('size,seed', [(1, 0), (5, 7), (23, 42), (50, 3)])
def test_mapping_matches_bsuite(size, seed):
  ref = bsuite_deep_sea.DeepSea(size, mapping_seed=seed)
  mapping = deep_sea.make_mapping(size, seed)
  assert mapping.dtype == np.int32 and mapping.shape == (size, size)
  np.testing.assert_array_equal(mapping, ref._action_mapping)
  np.testing.assert_array_equal(deep_sea.make_params(size, seed).mapping, ref._action_mapping)


@pytest.mark.parametrize('bad', [0, -3, 2.5, True, '4'])
def test_make_params_rejects_bad_size(bad):
  with pytest.raises(ValueError, match='size'):
    deep_sea.make_params(bad, 0)


def test_one_hot_observation():
  size = 4
  obs = deep_sea.one_hot_observation(jnp.arange(size * size + 1), size)
  assert obs.shape == (size * size + 1, size, size) and obs.dtype == jnp.float32
  np.testing.assert_array_equal(obs[:-1].reshape(size * size, -1), np.eye(size * size))
  assert not obs[-1].any()


def _right_action(params, state):
  n = params.mapping.shape[-1]
  return params.mapping[jnp.minimum(state.row, n - 1), state.column]


def _auto_reset(params, state, position, terminated):
  new_state, new_position = deep_sea.reset_episode(params, state)
  state = jax.tree_util.tree_map(lambda a, b: jnp.where(terminated, a, b), new_state, state)
  return state, jnp.where(terminated, new_position, position)


def _rollout(params, key, num_steps, policy):
  """lax.scan over `num_steps` steps with auto-reset; `policy(params, state, key) -> action`."""
  def body(carry, key):
    state, position = carry
    act_key, env_key = jax.random.split(key)
    action = policy(params, state, act_key)
    state, position, reward, terminated = deep_sea.step(params, state, action, env_key)
    state, position = _auto_reset(params, state, position, terminated)
    return (state, position), (position, reward, terminated)
  (state, _), outputs = jax.lax.scan(body, deep_sea.reset(params), jax.random.split(key, num_steps))
  return state, outputs


@pytest.mark.parametrize('deterministic', [True, False])
def test_reachable_positions_are_the_cells_bsuite_visits(deterministic):
  """The cells the network keeps rows for (column <= row) are exactly those bsuite's own DeepSea
  shows in random play: every one of them, and no other."""
  size = 6
  ref = bsuite_deep_sea.DeepSea(size, deterministic=deterministic, mapping_seed=3, seed=3)
  rng = np.random.RandomState(0)
  seen = set()
  timestep = ref.reset()
  for _ in range(4_000 * size):
    if not timestep.last():
      seen.add(int(np.flatnonzero(timestep.observation)[0]))
    timestep = ref.step(int(rng.randint(2)))  # after the last step this is the auto-reset
  reachable = deep_sea.reachable_positions(size)
  assert sorted(seen) == list(reachable)
  assert len(reachable) == size * (size + 1) // 2
  assert deep_sea.make_env(size, deterministic).one_hot_cells == reachable


@pytest.mark.parametrize('size', [1, 5, 20])
def test_optimal_policy_returns_099(size):
  params = deep_sea.make_params(size, 0)
  assert deep_sea.optimal_return(params) == pytest.approx(0.99)
  state, _ = deep_sea.reset(params)
  for _ in range(size):
    action = _right_action(params, state)
    state, _, _, terminated = _step(params, state, action, jax.random.PRNGKey(0))
  assert bool(terminated)
  assert float(state.episode_return) == pytest.approx(0.99, abs=1e-5)
  assert float(state.denoised_return) == 1.0 and int(state.total_bad_episodes) == 0


def test_scan_under_vmap_over_mapping_seeds():
  size, episodes, seeds = 8, 6, 16
  mappings = jnp.stack([deep_sea.make_mapping(size, s) for s in range(seeds)])
  params = deep_sea.DeepSeaParams(size, mappings, True)
  in_axes = (deep_sea.DeepSeaParams(None, 0, None, None), 0)
  keys = jax.random.split(jax.random.PRNGKey(0), seeds)

  def run(policy):
    fn = functools.partial(_rollout, num_steps=size * episodes, policy=policy)
    return jax.jit(jax.vmap(fn, in_axes=in_axes))(params, keys)

  state, (positions, rewards, terminated) = run(lambda p, s, k: _right_action(p, s))
  assert positions.shape == rewards.shape == terminated.shape == (seeds, size * episodes)
  assert positions.dtype == jnp.int32 and rewards.dtype == jnp.float32
  np.testing.assert_array_equal(state.episode, episodes)
  np.testing.assert_array_equal(state.denoised_return, episodes)
  np.testing.assert_array_equal(state.total_bad_episodes, 0)
  np.testing.assert_allclose(rewards.sum(1), 0.99 * episodes, rtol=1e-5)
  assert terminated.sum() == seeds * episodes

  state, (positions, _, _) = run(lambda p, s, k: jax.random.bernoulli(k).astype(jnp.int32))
  assert ((positions >= 0) & (positions < size * size)).all()  # auto-reset hides position N*N
  np.testing.assert_array_equal(state.episode, episodes)
  assert int(state.total_bad_episodes.sum()) > 0


@jax.jit
def _one_step_batch(params, row, column, action, keys):
  """One step from (row, column) under each key; all arguments traced, so it compiles once."""
  state, _ = deep_sea.reset(params)
  state = state._replace(row=jnp.int32(row), column=jnp.int32(column))
  return jax.vmap(lambda k: deep_sea.step(params, state, action, k))(keys)


def test_stochastic_right_succeeds_with_prob_1_minus_1_over_n():
  size, samples = 5, 20000
  params = deep_sea.make_params(size, 0, deterministic=False)
  keys = jax.random.split(jax.random.PRNGKey(1), samples)
  right = int(params.mapping[2, 1])
  state, _, _, _ = _one_step_batch(params, 2, 1, right, keys)
  success = float((state.column == 2).mean())
  assert set(np.unique(state.column)) <= {1, 2}
  assert abs(success - (1 - 1 / size)) < 0.015
  assert not state.bad_episode.any()
  state, _, _, _ = _one_step_batch(params, 2, 1, 1 - right, keys)  # 'left' is never windy
  np.testing.assert_array_equal(state.column, 0)


@pytest.mark.parametrize('size', [1, 4])
def test_stochastic_noise_only_on_last_row_edges(size):
  samples = 2000
  params = deep_sea.make_params(size, 3, deterministic=False)
  keys = jax.random.split(jax.random.PRNGKey(2), samples)
  for row in range(size):
    for column in range(row + 1):
      for action in (0, 1):
        _, _, rewards, _ = _one_step_batch(params, row, column, action, keys)
        right = action == int(params.mapping[row, column])
        expected = float(right and column == size - 1) - right * params.unscaled_move_cost / size
        if row == size - 1 and column in (0, size - 1):
          assert abs(float(rewards.std()) - 1.0) < 0.08
          assert abs(float(rewards.mean()) - expected) < 0.1
        else:
          np.testing.assert_array_equal(rewards, np.float32(expected))


def test_stochastic_expected_optimal_return():
  size, episodes = 5, 20000
  params = deep_sea.make_params(size, 0, deterministic=False)
  fn = functools.partial(_rollout, num_steps=size, policy=lambda p, s, k: _right_action(p, s))
  _, (_, rewards, _) = jax.jit(jax.vmap(fn, in_axes=(None, 0)))(
      params, jax.random.split(jax.random.PRNGKey(3), episodes))
  assert abs(float(rewards.sum(1).mean()) - deep_sea.optimal_return(params)) < 0.03
