"""bsuite ids as pure-JAX environments, built as bsuite's own loaders build them (`bsuite.load_from_id`).

Each builder takes the keyword arguments `bsuite.sweep.SETTINGS[id]` gives the experiment's loader,
so `make_id('cartpole_noise/3')` is the JAX twin of `bsuite.load_from_id('cartpole_noise/3')`.
"""
from __future__ import annotations

from typing import Any, Callable

from bsuite import sweep

from hyperagent.deepsea import env as deep_sea
from hyperagent.environment import JaxEnv
from hyperagent.bsuite.envs import bandit

# bsuite's MNIST experiments need its dataset and a 28x28 classifier per step; not ported.
NOT_PORTED = ('mnist', 'mnist_noise', 'mnist_scale')

BUILDERS: dict[str, Callable[..., tuple[JaxEnv, Any]]] = dict(
    bandit=bandit.make,
    deep_sea=lambda size, mapping_seed=None: deep_sea.make(size, True, mapping_seed=mapping_seed),
    deep_sea_stochastic=lambda size, mapping_seed=0: deep_sea.make(size, False, mapping_seed=mapping_seed),
)


def experiment_of(bsuite_id: str) -> str:
  return bsuite_id.split(sweep.SEPARATOR)[0]


def is_ported(bsuite_id: str) -> bool:
  return experiment_of(bsuite_id) in BUILDERS


def make_id(bsuite_id: str) -> tuple[JaxEnv, Any]:
  """(JaxEnv, params) of one bsuite id; a ValueError naming the ported experiments otherwise."""
  if bsuite_id not in sweep.SETTINGS:
    raise ValueError(f'unknown bsuite id {bsuite_id!r}')
  experiment = experiment_of(bsuite_id)
  if experiment not in BUILDERS:
    raise ValueError(f'{experiment} has no pure-JAX port (ported: {", ".join(BUILDERS)}); '
                     f'run it with ENGINE=python')
  return BUILDERS[experiment](**sweep.SETTINGS[bsuite_id])
