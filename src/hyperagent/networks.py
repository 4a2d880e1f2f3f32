"""Feature torsos φ(s) (SPEC §1.2), as Haiku modules applied to ONE observation (no batch axis).

The hypermodel's `apply` is written for one observation; batches vmap the torso over observations
once (`coefficients`), and indices enter only as a contraction afterwards.
"""
from __future__ import annotations

from typing import Sequence

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

# Xavier/Glorot *normal* (SPEC §1.2): Haiku's default would be a truncated normal.
XAVIER_NORMAL = hk.initializers.VarianceScaling(1.0, 'fan_avg', 'normal')

CNN_INPUT_MIN = 36  # the smallest square input the three valid convolutions accept


def one_hot_rows(input_size: int, cells: Sequence[int] | None = None) -> np.ndarray:
  """int32 [input_size + 1]: the table row of each position of a one-hot input.

  `cells` are the positions that can be hot (all if None); the table holds their rows in that order,
  then one row for the all-zeros input (`position == input_size`). A position outside `cells` maps to
  -1: OneHotLinear makes it NaN (as it does any position outside [0, input_size]), so an environment
  that breaks its promise cannot go unnoticed.
  """
  if cells is None:
    return np.arange(input_size + 1, dtype=np.int32)
  cells = np.asarray(cells, np.int64)
  if cells.ndim != 1 or not cells.size or np.any(np.diff(cells) <= 0) or cells[0] < 0 or cells[-1] >= input_size:
    raise ValueError(f'one-hot cells must be increasing positions in [0, {input_size}).')
  rows = np.full(input_size + 1, -1, np.int32)
  rows[cells] = np.arange(len(cells))
  rows[input_size] = len(cells)
  return rows


class OneHotLinear(hk.Module):
  """hk.Linear applied to one_hot(position, input_size), computed as a row lookup.

  `position == input_size` stands for the all-zeros input (DeepSea after its last row). Parameter
  names, initialisers and (without `cells`) shapes are hk.Linear's, so the same params serve both
  forms and the cost no longer grows with input_size (DeepSea's N² one-hot cells).

  cells: the positions that can be hot, when only some can (DeepSea's column never passes its row:
    N(N+1)/2 of N² cells). `w` then holds only their rows, drawn as the dense layer's rows at those
    cells. The other rows could never get a gradient, so leaving them out changes no output and no
    update, but halves what Adam, the clipping norm and the target copy sweep every step.
  """

  def __init__(self, output_size: int, input_size: int, w_init, cells: Sequence[int] | None = None,
               name: str | None = None):
    super().__init__(name=name)
    self.output_size = output_size
    self.input_size = input_size
    self.w_init = w_init
    self.cells = None if cells is None else np.asarray(cells)
    self.rows = one_hot_rows(input_size, cells)

  def __call__(self, position: jax.Array) -> jax.Array:
    dense_shape = [self.input_size, self.output_size]
    if self.cells is None:
      w = hk.get_parameter('w', dense_shape, jnp.float32, init=self.w_init)
    else:
      w = hk.get_parameter('w', [len(self.cells), self.output_size], jnp.float32,
                           init=lambda shape, dtype: self.w_init(dense_shape, dtype)[self.cells])
    b = hk.get_parameter('b', [self.output_size], jnp.float32, init=jnp.zeros)
    inside = (position >= 0) & (position <= self.input_size)  # a gather would clamp the others
    row = jnp.where(inside, jnp.asarray(self.rows)[jnp.clip(position, 0, self.input_size)], -1)
    looked_up = w[jnp.clip(row, 0, w.shape[0] - 1)]
    return jnp.where(row < 0, jnp.nan, jnp.where(row < w.shape[0], looked_up, 0.0)) + b


class MLP(hk.Module):
  """Flatten, then Linear+ReLU layers (DeepSea: 64-64, no normalisation).

  With `one_hot_size`, the input is an integer position standing for a one-hot vector of that size,
  and the first layer is the equivalent `OneHotLinear` lookup (of `one_hot_cells` only, if given).
  """

  def __init__(self, hidden_sizes: Sequence[int], one_hot_size: int | None = None,
               one_hot_cells: Sequence[int] | None = None, name: str | None = None):
    super().__init__(name=name)
    self.hidden_sizes = tuple(hidden_sizes)
    self.one_hot_size = one_hot_size
    self.one_hot_cells = one_hot_cells

  def __call__(self, obs: jax.Array) -> jax.Array:
    if self.one_hot_size is None:
      x = jnp.ravel(obs).astype(jnp.float32)
      first = 0
    else:
      position = jnp.asarray(obs, jnp.int32).reshape(())
      first_layer = OneHotLinear(self.hidden_sizes[0], self.one_hot_size, XAVIER_NORMAL, self.one_hot_cells,
                                 name='linear_0')
      x, first = jax.nn.relu(first_layer(position)), 1
    for i, width in enumerate(self.hidden_sizes[first:], start=first):
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


class MinAtarCNN(hk.Module):
  """MinAtar's DQN torso (Young & Tian 2019): one 3x3 convolution with 16 filters, stride 1, no
  padding, then a dense layer of `feature_dim` (128) units, on the 10x10xC binary grid (channels last,
  as gymnax gives it)."""

  def __init__(self, feature_dim: int = 128, name: str | None = None):
    super().__init__(name=name)
    self.feature_dim = feature_dim

  def __call__(self, obs: jax.Array) -> jax.Array:
    # The 3x3 VALID convolution as one matmul over the image's 3x3 patches (im2col): XLA's CPU
    # convolution, vmapped over batch and indices, ran ~20x slower than this matmul. Its weights are
    # drawn as hk.Conv2D's (HWIO, whose Xavier fans are 9C and 9x16, not the matmul's 9C and 16) and
    # flattened in the patches' order.
    x = obs.astype(jnp.float32)
    height, width, channels = x.shape[0] - 2, x.shape[1] - 2, x.shape[2]
    patches = jnp.concatenate([x[i:i + height, j:j + width] for i in range(3) for j in range(3)], axis=-1)
    conv_init = lambda shape, dtype: XAVIER_NORMAL((3, 3, channels, 16), dtype).reshape(shape)
    x = jax.nn.relu(hk.Linear(16, w_init=conv_init, name='conv')(patches))
    return jax.nn.relu(hk.Linear(self.feature_dim, w_init=XAVIER_NORMAL, name='linear')(jnp.ravel(x)))


def make_torso(kind: str, hidden_sizes: Sequence[int], cnn_feature_dim: int, name: str,
               one_hot_size: int | None = None, one_hot_cells: Sequence[int] | None = None):
  """A callable obs -> features; 'identity' uses the (flattened) observation itself as φ(s)."""
  if kind == 'mlp':
    return MLP(hidden_sizes, one_hot_size, one_hot_cells, name=name)
  if kind == 'nature_cnn':
    return NatureCNN(cnn_feature_dim, name=name)
  if kind == 'minatar_cnn':
    return MinAtarCNN(cnn_feature_dim, name=name)
  return lambda obs: jnp.ravel(obs).astype(jnp.float32)


def feature_dim(kind: str, hidden_sizes: Sequence[int], cnn_feature_dim: int, obs_shape: Sequence[int]) -> int:
  """H for a torso on observations of `obs_shape`."""
  if kind == 'mlp':
    return hidden_sizes[-1]
  if kind in ('nature_cnn', 'minatar_cnn'):
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
  elif kind == 'minatar_cnn' and (len(obs_shape) != 3 or min(obs_shape[:2]) < 3):
    raise ValueError(f"torso='minatar_cnn' needs channels-last grids (height, width, channels) of at least "
                     f"3x3, e.g. MinAtar's (10, 10, 4); got observation shape {obs_shape}.")
  elif len(obs_shape) == 0 or min(obs_shape) < 1:
    raise ValueError(f"torso={kind!r} needs a non-empty observation; got shape {obs_shape}.")
