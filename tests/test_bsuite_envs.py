"""The pure-JAX bsuite environments against bsuite's own, step for step.

Deterministic parts must agree exactly (observations, discounts, step types, bsuite_info); floats
to float32 precision, since bsuite computes in float64 and the ports in float32.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from bsuite.environments import bandit as bsuite_bandit

from bsuite_env_checks import assert_info, assert_specs, assert_step
from hyperagent.bsuite.envs import bandit


def test_unseeded_bandit_arms_are_a_permutation_of_bsuites_values():
  """Without a mapping_seed both draw from fresh OS entropy (RandomState(None)), so only the law can
  be compared: the arms are linspace(0, 1, A) in some order, in bsuite and here."""
  _, params = bandit.make(None, 5)
  ref = bsuite_bandit.SimpleBandit(None, num_actions=5)
  np.testing.assert_allclose(np.sort(np.asarray(params.rewards)), np.linspace(0, 1, 5), rtol=1e-6)
  np.testing.assert_allclose(np.sort(ref._rewards), np.linspace(0, 1, 5))


@pytest.mark.parametrize('mapping_seed,num_actions', [(0, 11), (7, 11), (3, 2), (5, 5)])
def test_bandit_matches_bsuite(mapping_seed, num_actions):
  seed = mapping_seed
  ref = bsuite_bandit.SimpleBandit(seed, num_actions=num_actions)
  env, params = bandit.make(seed, num_actions)
  np.testing.assert_allclose(np.asarray(params.rewards), ref._rewards, rtol=1e-7)
  step = jax.jit(env.step)
  key = jax.random.PRNGKey(0)
  state = env.init(params, key)
  actions = np.random.RandomState(1).randint(num_actions, size=60)
  for action in actions:
    timestep = ref.reset()
    state, observation = env.reset(params, state, key)
    np.testing.assert_array_equal(np.asarray(observation), timestep.observation)
    state, env_step = step(params, state, jnp.int32(action), key)
    assert_step(env_step, ref.step(int(action)))
  assert_info(env, params, state, ref)
  assert_specs(env, ref)


def test_every_non_mnist_id_builds_as_bsuites_loader_builds_it():
  """All 408 ids: specs, bsuite_info keys, the constructor's draws, and the episode-length bound."""
  import contextlib
  import io

  import bsuite
  from bsuite import sweep as bsuite_sweep

  from hyperagent.bsuite import sweep
  from hyperagent.bsuite.envs import registry

  assert set(registry.BUILDERS) == set(sweep.experiments()) - set(sweep.NO_JAX_PORT)
  ids = [i for i in bsuite_sweep.SWEEP if sweep.has_jax_port(i)]
  assert len(ids) == 408
  for bsuite_id in ids:
    env, params = registry.make_id(bsuite_id)
    with contextlib.redirect_stdout(io.StringIO()):
      ref = bsuite.load_from_id(bsuite_id)
    assert_specs(env, ref)
    assert env.info_names == tuple(ref.bsuite_info()), bsuite_id
    raw = getattr(ref, '_env', ref)  # under a RewardNoise / RewardScale wrapper
    inner = getattr(params, 'inner', params)
    for level in ('noise_scale', 'reward_scale'):  # the wrapper's level, and no wrapper where bsuite has none
      assert (float(getattr(params, level)) if hasattr(params, level) else None) == (
          pytest.approx(getattr(ref, '_' + level), rel=1e-7) if hasattr(ref, '_' + level) else None), bsuite_id
    if hasattr(raw, '_rewards'):  # bandit arms, discounting chain bonus: drawn in the constructor
      np.testing.assert_allclose(np.asarray(inner.rewards), raw._rewards, rtol=1e-6, err_msg=bsuite_id)
    if hasattr(raw, '_action_mapping'):
      np.testing.assert_array_equal(np.asarray(inner.mapping), raw._action_mapping, err_msg=bsuite_id)
    # One episode in bsuite's env never outlasts the bound the replay is sized with.
    timestep, steps = ref.reset(), 0
    while not timestep.last():
      timestep, steps = ref.step(0), steps + 1
    assert steps <= env.max_episode_steps, bsuite_id
    if bsuite_id.split('/')[0] in ('catch', 'deep_sea', 'memory_len', 'memory_size', 'umbrella_length',
                                   'umbrella_distract', 'bandit', 'discounting_chain'):
      assert steps == env.max_episode_steps, bsuite_id  # fixed-length episodes: the bound is exact
