"""Feature torsos φ(s) (SPEC §1.2), as Haiku modules applied to ONE observation (no batch axis).

The hypermodel is vmapped over indices and over the batch, so torsos never see a batch axis.
"""
from __future__ import annotations

from typing import Sequence

import haiku as hk
import jax
import jax.numpy as jnp

# Xavier/Glorot *normal* (SPEC §1.2): Haiku's default would be a truncated normal.
XAVIER_NORMAL = hk.initializers.VarianceScaling(1.0, 'fan_avg', 'normal')

CNN_INPUT_MIN = 36  # the smallest square input the three valid convolutions accept


class MLP(hk.Module):
  """Flatten, then Linear+ReLU layers (DeepSea: 64-64, no normalisation)."""

  def __init__(self, hidden_sizes: Sequence[int], name: str | None = None):
    super().__init__(name=name)
    self.hidden_sizes = tuple(hidden_sizes)

  def __call__(self, obs: jax.Array) -> jax.Array:
    x = jnp.ravel(obs).astype(jnp.float32)
    for i, width in enumerate(self.hidden_sizes):
      x = jax.nn.relu(hk.Linear(width, w_init=XAVIER_NORMAL, name=f'linear_{i}')(x))
    return x


class NatureCNN(hk.Module):
  """Nature-DQN convolutions on raw 0-255 pixels, per-sample min-max, then FC (SPEC §1.2).

  Input is channels-first (stack, height, width), as envpool returns it.
  """

  def __init__(self, feature_dim: int = 256, name: str | None = None):
    super().__init__(name=name)
    self.feature_dim = feature_dim

  def __call__(self, obs: jax.Array) -> jax.Array:
    x = jnp.transpose(obs.astype(jnp.float32), (1, 2, 0))  # not divided by 255: the min-max handles scale
    for i, (channels, kernel, stride) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
      x = hk.Conv2D(channels, kernel, stride, padding='VALID', w_init=XAVIER_NORMAL, name=f'conv_{i}')(x)
      x = jax.nn.relu(x)
    x = jnp.ravel(x)
    x = (x - x.min()) / (x.max() - x.min() + 1e-8)
    return jax.nn.relu(hk.Linear(self.feature_dim, w_init=XAVIER_NORMAL, name='linear')(x))


def make_torso(kind: str, hidden_sizes: Sequence[int], cnn_feature_dim: int, name: str):
  """A callable obs -> features; 'identity' uses the (flattened) observation itself as φ(s)."""
  if kind == 'mlp':
    return MLP(hidden_sizes, name=name)
  if kind == 'nature_cnn':
    return NatureCNN(cnn_feature_dim, name=name)
  return lambda obs: jnp.ravel(obs).astype(jnp.float32)


def feature_dim(kind: str, hidden_sizes: Sequence[int], cnn_feature_dim: int, obs_shape: Sequence[int]) -> int:
  """H for a torso on observations of `obs_shape`."""
  if kind == 'mlp':
    return hidden_sizes[-1]
  if kind == 'nature_cnn':
    return cnn_feature_dim
  size = 1
  for d in obs_shape:
    size *= d
  return size


def check_obs_shape(kind: str, obs_shape: Sequence[int]):
  """Raise a ValueError when a torso cannot take observations of this shape."""
  obs_shape = tuple(obs_shape)
  if kind == 'nature_cnn':
    if len(obs_shape) != 3 or min(obs_shape[1:]) < CNN_INPUT_MIN:
      raise ValueError(
          f"torso='nature_cnn' needs channels-first images (stack, height, width) with height and width "
          f">= {CNN_INPUT_MIN}, e.g. (4, 84, 84); got observation shape {obs_shape}. "
          f"Use torso='mlp' or 'identity' for vector observations.")
  elif len(obs_shape) == 0 or min(obs_shape) < 1:
    raise ValueError(f"torso={kind!r} needs a non-empty observation; got shape {obs_shape}.")
