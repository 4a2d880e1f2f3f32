"""The hypermodel Q(s, a, ξ) of SPEC §1: a torso, a linear hypermodel last layer and a frozen prior.

    Q(s, a, ξ) = posterior_scale · φ_w(s)ᵀ W(ξ̂)[:, a] + prior_scale · φ₀(s)ᵀ W₀(ξ̂)[:, a]
    W(ξ̂) = reshape(U ξ̂ + b, (H, A)),   W₀(ξ̂) = reshape(U₀ ξ̂ + b₀, (H, A))

`apply(params, obs, index)` takes ONE observation and ONE raw index and returns q[A]; it is
vmapped over indices and over the batch by `apply_batch`. Every frozen parameter lives in a
module whose name starts with 'prior' and is wrapped in `stop_gradient`, so its gradient is
exactly zero whatever the loss.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from hyperagent import indices, networks
from hyperagent.config import Config

Params = hk.Params


class Network(NamedTuple):
  init: Callable[[jax.Array], Params]                     # key -> all parameters (trainable + prior)
  apply: Callable[[Params, jax.Array, jax.Array], jax.Array]  # (params, obs, raw index[M]) -> q[A]
  apply_batch: Callable[[Params, jax.Array, jax.Array], jax.Array]  # (params, obs[B], index[B, K, M]) -> q[B, K, A]
  num_actions: int
  feature_dim: int                                         # H


def is_prior(module_name: str, name: str, value) -> bool:
  del name, value
  return module_name.startswith('prior')


def split_params(params: Params) -> tuple[Params, Params]:
  """(trainable, prior)."""
  prior, trainable = hk.data_structures.partition(is_prior, params)
  return trainable, prior


def _unit_sphere_init(scale: float):
  def init(shape, dtype):
    v = jax.random.normal(hk.next_rng_key(), shape, dtype)
    return scale * v / jnp.linalg.norm(v)
  return init


def _sdb_init(scale: float):
  """Standard-normal rows, each normalised to unit ℓ2 norm, times `scale` (SPEC §1.5 'sDB')."""
  def init(shape, dtype):
    v = jax.random.normal(hk.next_rng_key(), shape, dtype)
    return scale * v / jnp.maximum(jnp.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
  return init


class HyperLinear(hk.Module):
  """Generates head weights W(ξ̂) = reshape(U ξ̂ + b, (H, A)) and returns φᵀW: no per-action bias."""

  def __init__(self, num_actions: int, u_init, b_init, name: str):
    super().__init__(name=name)
    self.num_actions = num_actions
    self.u_init = u_init
    self.b_init = b_init

  def weights(self, feature_dim: int, index: jax.Array) -> jax.Array:
    size = feature_dim * self.num_actions
    u = hk.get_parameter('U', (size, index.shape[-1]), init=self.u_init)
    b = hk.get_parameter('b', (size,), init=self.b_init)
    return u @ index + b

  def __call__(self, features: jax.Array, index: jax.Array) -> jax.Array:
    w = self.weights(features.shape[-1], index)
    return features @ w.reshape(features.shape[-1], self.num_actions)

  def batch(self, features: jax.Array, index: jax.Array, frozen: bool = False) -> jax.Array:
    """q[B, K, A] for features[B, H] and indices[B, K, M], the same numbers as __call__ per pair.

    φᵀ(Uξ + b) = ξᵀ(φᵀU) + φᵀb: projecting φ onto U once per observation costs B·H·A·M instead of
    building every W(ξ) (B·K·H·A·M), which dominated the learn step at K = 20.
    """
    h, a, m = features.shape[-1], self.num_actions, index.shape[-1]
    u = hk.get_parameter('U', (h * a, m), init=self.u_init)
    b = hk.get_parameter('b', (h * a,), init=self.b_init)
    if frozen:
      u, b = jax.lax.stop_gradient(u), jax.lax.stop_gradient(b)
    projection = jnp.einsum('bh,ham->bam', features, u.reshape(h, a, m))
    return jnp.einsum('bkm,bam->bka', index, projection) + (features @ b.reshape(h, a))[:, None, :]


def make_network(config: Config, obs_shape: Sequence[int], num_actions: int,
                 one_hot_input: bool = False) -> Network:
  """Builds the hypermodel for observations of `obs_shape` (no batch axis) and `num_actions` actions.

  one_hot_input: observations are one-hot arrays of `obs_shape` passed in compact form, as the int
    position of their single 1 (prod(obs_shape) for all zeros). The MLP's first layer is then a row
    lookup, equal to the dense layer on the one-hot array and with the same params (DeepSea).
  """
  if not isinstance(num_actions, int) or num_actions < 1:
    raise ValueError(f'num_actions must be a positive int, got {num_actions!r}.')
  networks.check_obs_shape(config.torso, obs_shape)
  obs_shape = tuple(obs_shape)
  if one_hot_input and config.torso != 'mlp':
    raise ValueError(f"one_hot_input needs torso='mlp', got torso={config.torso!r}.")
  one_hot_size = int(np.prod(obs_shape)) if one_hot_input else None
  H = networks.feature_dim(config.torso, config.hidden_sizes, config.cnn_feature_dim, obs_shape)
  A = num_actions
  has_prior = config.prior_scale != 0.0 and config.prior_std > 0.0

  def bias_init(scale):
    if config.bias_init == 'sphere':
      return _unit_sphere_init(scale)
    # Atari: the flattening of an (A x H) Xavier-normal matrix; not multiplied by prior_std.
    return hk.initializers.RandomNormal(stddev=(2.0 / (A + H)) ** 0.5)

  def torso(name):
    return networks.make_torso(config.torso, config.hidden_sizes, config.cnn_feature_dim, name, one_hot_size)

  # One place for the heads' names and inits: forward and forward_batch must share their params.
  def head():
    return HyperLinear(A, networks.XAVIER_NORMAL, bias_init(config.prior_std), name='hyper')

  def prior_head():
    return HyperLinear(A, _sdb_init(config.prior_std), bias_init(config.prior_std), name='prior_hyper')

  def forward(obs: jax.Array, index: jax.Array) -> jax.Array:
    xi = indices.network_index(index, config.index_dist)
    features = torso('torso')(obs)
    q = config.posterior_scale * head()(features, xi)
    if has_prior:
      prior_features = jax.lax.stop_gradient(torso('prior_torso')(obs)) if config.base_prior else features
      w0 = jax.lax.stop_gradient(prior_head().weights(H, xi))
      q = q + config.prior_scale * (prior_features @ w0.reshape(H, A))
    return q

  def forward_batch(obs: jax.Array, index: jax.Array) -> jax.Array:
    """q[B, K, A] for obs[B, ...] and raw indices[B, K, M]; modules and params are forward's."""
    xi = indices.network_index(index, config.index_dist)
    features = hk.vmap(torso('torso'), split_rng=False)(obs)
    q = config.posterior_scale * head().batch(features, xi)
    if has_prior:
      prior_features = (jax.lax.stop_gradient(hk.vmap(torso('prior_torso'), split_rng=False)(obs))
                        if config.base_prior else features)
      q = q + config.prior_scale * prior_head().batch(prior_features, xi, frozen=True)
    return q

  transformed = hk.without_apply_rng(hk.transform(forward))
  transformed_batch = hk.without_apply_rng(hk.transform(forward_batch))
  example_obs = jnp.zeros((), jnp.int32) if one_hot_input else jnp.zeros(obs_shape, jnp.float32)
  example_index = jnp.ones((config.index_dim,), jnp.float32)

  def init(key: jax.Array) -> Params:
    return transformed.init(key, example_obs, example_index)

  return Network(init=init, apply=transformed.apply, apply_batch=transformed_batch.apply,
                 num_actions=A, feature_dim=H)


def apply_batch(network: Network, params: Params, obs: jax.Array, index: jax.Array) -> jax.Array:
  """q[B, K, A] for obs[B, ...] and raw indices[B, K, M]: the torso runs once per observation.

  The optimised (factorised) form; `apply_batch_reference` is the plain vmap of `apply` it must equal.
  """
  return network.apply_batch(params, obs, index)


def apply_batch_reference(network: Network, params: Params, obs: jax.Array, index: jax.Array) -> jax.Array:
  per_obs = jax.vmap(network.apply, in_axes=(None, None, 0))
  return jax.vmap(per_obs, in_axes=(None, 0, 0))(params, obs, index)


def hyper_weights(params: Params, index: jax.Array, index_dist: str) -> jax.Array:
  """The trainable generated weights U ξ̂ + b for raw indices[..., M] (input of the regulariser R)."""
  xi = indices.network_index(index, index_dist)
  return xi @ params['hyper']['U'].T + params['hyper']['b']


def count_params(params: Params) -> int:
  return sum(x.size for x in jax.tree.leaves(params))
