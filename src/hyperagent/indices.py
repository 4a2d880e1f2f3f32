"""Index laws (ξ) and perturbation laws (z), SPEC §2: the one place that knows them.

An index law is a small object built once with the network (`make_index_law`): `sample(key, shape)`
draws *raw* indices [*shape, M] and `network_input` maps them to ξ̂, what the hypermodel sees. For
the paper's 'sphere' law the raw index is Gaussian and the network sees ξ/‖ξ‖, while the
perturbation σ⟨ξ, z⟩ uses the raw ξ (SPEC §2.7). Adding a law means one entry in `INDEX_LAWS`.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from hyperagent import cli


def _normal(key, shape, dim):
  return jax.random.normal(key, shape + (dim,))


def _one_hot(key, shape, dim):
  return jax.nn.one_hot(jax.random.randint(key, shape, 0, dim), dim)


def _empty(key, shape, dim):
  del key
  return jnp.zeros(shape + (dim,))


def _unit(x):
  return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


_identity = lambda x: x

# name -> (raw sampler (key, shape, dim) -> [*shape, dim], map raw -> network input)
INDEX_LAWS: dict[str, tuple[Callable, Callable]] = {
    'sphere': (_normal, _unit),         # the paper's: Gaussian draws, normalised inside the network
    'gaussian': (_normal, _identity),
    'one_hot': (_one_hot, _identity),   # an ensemble of M members
    'none': (_empty, _identity),        # M = 0: no index (DQN)
}

# name -> sampler (key, shape, dim) -> z[*shape, dim]
PERTURBATION_LAWS: dict[str, Callable] = {
    'sphere': lambda key, shape, dim: _unit(_normal(key, shape, dim)) if dim else _normal(key, shape, dim),
    'gaussian': _normal,
}


class IndexLaw(NamedTuple):
  name: str
  dim: int                                                       # M
  sample: Callable[[jax.Array, tuple[int, ...]], jax.Array]      # (key, shape) -> raw ξ [*shape, M]
  network_input: Callable[[jax.Array], jax.Array]                # raw ξ [..., M] -> ξ̂ [..., M]


def make_index_law(name: str, dim: int) -> IndexLaw:
  cli.check_choice('index_dist', name, INDEX_LAWS)
  draw, network_input = INDEX_LAWS[name]
  return IndexLaw(name, dim, lambda key, shape=(): draw(key, tuple(shape), dim), network_input)


def sample_perturbation(key: jax.Array, dist: str, dim: int, shape: tuple[int, ...] = ()) -> jax.Array:
  """z stored with every transition: uniform on S^{M-1} ('sphere', the paper's) or N(0, I_M)."""
  cli.check_choice('perturbation_dist', dist, PERTURBATION_LAWS)
  return PERTURBATION_LAWS[dist](key, tuple(shape), dim)
