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


@pytest.mark.parametrize('mapping_seed,num_actions', [(0, 11), (7, 11), (3, 2), (None, 5)])
def test_bandit_matches_bsuite(mapping_seed, num_actions):
  seed = 0 if mapping_seed is None else mapping_seed
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
