"""Index distributions (ξ) and perturbation vectors (z), SPEC §2.

An index is always sampled *raw*; `network_index` is what the hypermodel sees. For the paper's
'sphere' law the raw index is Gaussian and the network sees ξ/‖ξ‖, while the perturbation
σ⟨ξ, z⟩ uses the raw ξ (SPEC §2.7).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from hyperagent.config import INDEX_DISTS, PERTURBATION_DISTS


def sample_index(key: jax.Array, dist: str, dim: int, shape: tuple[int, ...] = ()) -> jax.Array:
  """Raw indices of shape `shape + (dim,)`."""
  if dist in ('sphere', 'gaussian'):
    return jax.random.normal(key, shape + (dim,))
  if dist == 'one_hot':
    return jax.nn.one_hot(jax.random.randint(key, shape, 0, dim), dim)
  if dist == 'none':
    return jnp.zeros(shape + (0,))
  raise ValueError(f'Unknown index_dist {dist!r}; valid values: {", ".join(INDEX_DISTS)}.')


def network_index(index: jax.Array, dist: str) -> jax.Array:
  """ξ̂, the index the hypermodel sees."""
  if dist == 'sphere':
    return index / jnp.linalg.norm(index, axis=-1, keepdims=True)
  return index


def sample_perturbation(key: jax.Array, dist: str, dim: int, shape: tuple[int, ...] = ()) -> jax.Array:
  """z stored with every transition: uniform on S^{M-1} ('sphere', the paper's) or N(0, I_M)."""
  z = jax.random.normal(key, shape + (dim,))
  if dist == 'sphere':
    return z / jnp.linalg.norm(z, axis=-1, keepdims=True) if dim else z
  if dist == 'gaussian':
    return z
  raise ValueError(f'Unknown perturbation_dist {dist!r}; valid values: {", ".join(PERTURBATION_DISTS)}.')
