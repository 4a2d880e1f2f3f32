"""bsuite's reward wrappers `RewardNoise` and `RewardScale` (bsuite.utils.wrappers) for `JaxEnv`s.

Each takes the (JaxEnv, params) pair of an inner environment and returns the wrapped pair, as
bsuite's *_noise and *_scale experiments wrap their base environment. As in bsuite:
- only the rewards of steps change; a reset (bsuite's `first()` timestep) passes through untouched;
- RewardNoise adds `noise_scale` times a standard normal draw to every step's reward, one fresh
  draw per step (here from the step's key, bsuite's from the wrapper's own RandomState);
- RewardScale multiplies every step's reward by `reward_scale`;
- `bsuite_info()` is the inner environment's, computed from its own, unchanged rewards.

The wrapped env's name is the inner one's plus '+noise' / '+scale', so a wrapped env never shares a
compiled loop with its unwrapped self; the scale and noise level are params (one compile serves all
levels of an experiment).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from hyperagent.environment import EnvStep, JaxEnv


class NoiseParams(NamedTuple):
  inner: Any               # the inner environment's params
  noise_scale: jax.Array   # float32 []: the standard deviation of the reward noise


class ScaleParams(NamedTuple):
  inner: Any
  reward_scale: jax.Array  # float32 []


def add_noise(params: NoiseParams, env_step: EnvStep, draw: jax.Array) -> EnvStep:
  """`RewardNoise` on one step, given its standard normal draw."""
  reward = env_step.reward + params.noise_scale * jnp.asarray(draw, jnp.float32)
  return env_step._replace(reward=reward.astype(jnp.float32))


def scale_reward(params: ScaleParams, env_step: EnvStep) -> EnvStep:
  """`RewardScale` on one step."""
  return env_step._replace(reward=(env_step.reward * params.reward_scale).astype(jnp.float32))


def split_step_key(key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """A noisy step's key becomes the inner step's key and the noise's, independent of each other."""
  inner_key, noise_key = jax.random.split(key)
  return inner_key, noise_key


def noise_draw(key: jax.Array) -> jax.Array:
  """float32 []: the standard normal draw (bsuite's `rng.randn()`) a noisy step makes."""
  return jax.random.normal(key, (), jnp.float32)


# The wrapped env's functions: the inner env's, with the inner params unwrapped. Module-level and
# bound to the inner env with functools.partial, so they stay pure and picklable.

def _init(inner: JaxEnv, params, key: jax.Array):
  return inner.init(params.inner, key)


def _reset(inner: JaxEnv, params, state, key: jax.Array):
  return inner.reset(params.inner, state, key)


def _info(inner: JaxEnv, params, state) -> dict[str, jax.Array]:
  return inner.info(params.inner, state)


def _noise_step(inner: JaxEnv, params: NoiseParams, state, action: jax.Array, key: jax.Array):
  inner_key, noise_key = split_step_key(key)
  state, env_step = inner.step(params.inner, state, action, inner_key)
  return state, add_noise(params, env_step, noise_draw(noise_key))


def _scale_step(inner: JaxEnv, params: ScaleParams, state, action: jax.Array, key: jax.Array):
  state, env_step = inner.step(params.inner, state, action, key)
  return state, scale_reward(params, env_step)


def _wrap(inner: JaxEnv, suffix: str, step) -> JaxEnv:
  return JaxEnv(name=f'{inner.name}+{suffix}', static=inner.static, num_actions=inner.num_actions,
                observation_shape=inner.observation_shape,
                observation_dtype=inner.observation_dtype, info_names=inner.info_names,
                init=functools.partial(_init, inner), reset=functools.partial(_reset, inner),
                step=functools.partial(step, inner), info=functools.partial(_info, inner),
                one_hot_input=inner.one_hot_input, one_hot_cells=inner.one_hot_cells,
                max_episode_steps=inner.max_episode_steps)


def reward_noise(env_and_params: tuple[JaxEnv, Any], noise_scale: float,
                 seed: int | None = None) -> tuple[JaxEnv, NoiseParams]:
  """bsuite's `RewardNoise(env, noise_scale, seed)`. `seed` seeded bsuite's noise; here the draws
  come from the loop's keys, so it is accepted and unused."""
  del seed
  inner, params = env_and_params
  return (_wrap(inner, 'noise', _noise_step),
          NoiseParams(params, jnp.asarray(noise_scale, jnp.float32)))


def reward_scale(env_and_params: tuple[JaxEnv, Any], reward_scale: float,
                 seed: int | None = None) -> tuple[JaxEnv, ScaleParams]:
  """bsuite's `RewardScale(env, reward_scale, seed)`; its seed draws nothing in bsuite either."""
  del seed
  inner, params = env_and_params
  return (_wrap(inner, 'scale', _scale_step),
          ScaleParams(params, jnp.asarray(reward_scale, jnp.float32)))
