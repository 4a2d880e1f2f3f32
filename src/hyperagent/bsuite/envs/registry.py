"""bsuite ids as pure-JAX environments, built as bsuite's own loaders build them (`bsuite.load_from_id`).

Each builder takes the keyword arguments `bsuite.sweep.SETTINGS[id]` gives the experiment's loader,
so `make_id('cartpole_noise/3')` is the JAX twin of `bsuite.load_from_id('cartpole_noise/3')`.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from bsuite import sweep

from hyperagent.deepsea import env as deep_sea
from hyperagent.environment import JaxEnv
from hyperagent.bsuite.envs import (bandit, cartpole, catch, discounting_chain, memory_chain, mountain_car,
                                    umbrella_chain, wrappers)


def _noisy(make: Callable[..., tuple[JaxEnv, Any]]) -> Callable[..., tuple[JaxEnv, Any]]:
  """The `<experiment>_noise` loader: the base env (its own settings) under RewardNoise."""
  return lambda noise_scale, seed=None, **kw: wrappers.reward_noise(make(seed=seed, **kw), noise_scale, seed)


def _scaled(make: Callable[..., tuple[JaxEnv, Any]]) -> Callable[..., tuple[JaxEnv, Any]]:
  """The `<experiment>_scale` loader: the base env (its own settings) under RewardScale."""
  return lambda reward_scale, seed=None, **kw: wrappers.reward_scale(make(seed=seed, **kw), reward_scale, seed)


def _bandit(mapping_seed=None, num_actions=11, seed=None):
  del seed  # the bandit's loaders pass the wrapper's seed; the bandit itself draws nothing
  return bandit.make(mapping_seed, num_actions)


# experiment -> builder taking bsuite.sweep.SETTINGS[id], as bsuite.bsuite.EXPERIMENT_NAME_TO_ENVIRONMENT
BUILDERS: dict[str, Callable[..., tuple[JaxEnv, Any]]] = dict(
    bandit=bandit.make,
    bandit_noise=_noisy(_bandit),
    bandit_scale=_scaled(_bandit),
    cartpole=cartpole.make,
    cartpole_noise=_noisy(cartpole.make),
    cartpole_scale=_scaled(cartpole.make),
    cartpole_swingup=cartpole.make_swingup,
    catch=catch.make,
    catch_noise=_noisy(catch.make),
    catch_scale=_scaled(catch.make),
    deep_sea=lambda size, mapping_seed=None: deep_sea.make(size, True, mapping_seed=mapping_seed),
    deep_sea_stochastic=lambda size, mapping_seed=0: deep_sea.make(size, False, mapping_seed=mapping_seed),
    discounting_chain=discounting_chain.make,
    memory_len=lambda memory_length, seed=0: memory_chain.make(memory_length, num_bits=1, seed=seed),
    memory_size=lambda num_bits, seed=0: memory_chain.make(2, num_bits=num_bits, seed=seed),
    mountain_car=mountain_car.make,
    mountain_car_noise=_noisy(mountain_car.make),
    mountain_car_scale=_scaled(mountain_car.make),
    umbrella_distract=lambda n_distractor, seed=0: umbrella_chain.make(20, n_distractor, seed=seed),
    umbrella_length=umbrella_chain.make,
)


def experiment_of(bsuite_id: str) -> str:
  return bsuite_id.split(sweep.SEPARATOR)[0]


@functools.lru_cache(maxsize=None)  # the engine asks for an id several times; its params are immutable
def make_id(bsuite_id: str) -> tuple[JaxEnv, Any]:
  """(JaxEnv, params) of one bsuite id; a ValueError naming the ported experiments otherwise."""
  if bsuite_id not in sweep.SETTINGS:
    raise ValueError(f'unknown bsuite id {bsuite_id!r}')
  experiment = experiment_of(bsuite_id)
  if experiment not in BUILDERS:
    raise ValueError(f'{experiment} has no pure-JAX port (ported: {", ".join(BUILDERS)}); '
                     f'run it with ENGINE=python')
  return BUILDERS[experiment](**sweep.SETTINGS[bsuite_id])
