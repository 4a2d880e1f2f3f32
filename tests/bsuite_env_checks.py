"""Assertions shared by the tests of the pure-JAX bsuite environments (tests/test_bsuite_envs*.py).

bsuite computes in float64 and the ports in float32, so floats agree to float32 precision; discounts,
step types, shapes and integer counters agree exactly.
"""
from __future__ import annotations

import numpy as np


def assert_step(env_step, timestep, rtol=1e-6, atol=1e-6):
  """One port step (an EnvStep) against bsuite's dm_env TimeStep."""
  observation = np.asarray(env_step.observation)
  assert observation.shape == np.shape(timestep.observation)
  np.testing.assert_allclose(observation, timestep.observation, rtol=rtol, atol=atol)
  np.testing.assert_allclose(float(env_step.reward), timestep.reward, rtol=rtol, atol=atol)
  assert float(env_step.discount) == timestep.discount
  assert bool(env_step.last) == timestep.last()


def assert_info(env, params, state, ref, rtol=1e-5, atol=1e-5):
  """The port's info(...) against bsuite's bsuite_info(): same keys, same order, same values."""
  ours, theirs = env.info(params, state), ref.bsuite_info()
  assert tuple(ours) == tuple(theirs) == env.info_names
  for name in env.info_names:
    if isinstance(theirs[name], (int, np.integer)):  # a counter: exactly
      assert float(ours[name]) == theirs[name], name
    else:
      np.testing.assert_allclose(float(ours[name]), theirs[name], rtol=rtol, atol=atol)


def assert_specs(env, ref):
  assert env.observation_shape == ref.observation_spec().shape
  assert env.num_actions == ref.action_spec().num_values
