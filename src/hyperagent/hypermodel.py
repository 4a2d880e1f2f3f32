"""The hypermodel Q(s, a, ξ) of SPEC §1: a torso, a linear hypermodel last layer and a frozen prior.

    Q(s, a, ξ) = posterior_scale · φ_w(s)ᵀ W(ξ̂)[:, a] + prior_scale · φ₀(s)ᵀ W₀(ξ̂)[:, a]
    W(ξ̂) = reshape(U ξ̂ + b, (H, A)),   W₀(ξ̂) = reshape(U₀ ξ̂ + b₀, (H, A))

`apply(params, obs, index)` is that definition for ONE observation and ONE raw index: it builds
W(ξ̂) and returns q[A]. Batches go through the same function written the other way round: Q is
affine in ξ̂, Q(s, a, ξ) = ξ̂ᵀ C(s)[a, :M] + C(s)[a, M], and `coefficients(params, obs)` gives
C(s) [A, M + 1] once per observation, prior included; K indices then cost one small contraction
each (`affine`, used by `apply_batch` and `apply_taken`). `apply_batch_reference`, the plain vmap
of `apply`, is what they are tested against. Every frozen parameter lives in a module whose name
starts with 'prior' and is wrapped in `stop_gradient`, so its gradient is exactly zero whatever the
loss. With one-hot inputs (DeepSea) the frozen prior's C₀ is also tabulated at init ('prior_table').
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import chex
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
  coefficients: Callable[[Params, jax.Array], jax.Array]  # (params, obs[B]) -> C[B, A, M + 1], see `affine`
  num_actions: int
  index: indices.IndexLaw                                  # ξ's law: sample(key, shape), network_input


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
  """Generates head weights W(ξ̂) = reshape(U ξ̂ + b, (H, A)) and returns φᵀW: no per-action bias.

  b_init=None: no intercept (b = 0, not a parameter), so one-hot indices pick independent heads U[:, m]
  (the shared-torso Ensemble+).
  """

  def __init__(self, num_actions: int, index_dim: int, u_init, b_init, name: str):
    super().__init__(name=name)
    self.num_actions = num_actions
    self.index_dim = index_dim
    self.u_init = u_init
    self.b_init = b_init

  def weights(self, feature_dim: int, index: jax.Array) -> jax.Array:
    size = feature_dim * self.num_actions
    u = hk.get_parameter('U', (size, self.index_dim), init=self.u_init)
    b = self.intercept(size)
    return u @ index + b

  def intercept(self, size: int) -> jax.Array:
    return jnp.zeros((size,)) if self.b_init is None else hk.get_parameter('b', (size,), init=self.b_init)

  def __call__(self, features: jax.Array, index: jax.Array) -> jax.Array:
    w = self.weights(features.shape[-1], index)
    return features @ w.reshape(features.shape[-1], self.num_actions)

  def coefficients(self, features: jax.Array, frozen: bool = False) -> jax.Array:
    """C[B, A, M + 1] with φᵀW(ξ̂)[:, a] = ξ̂ᵀ C[a, :M] + C[a, M]: the same numbers as __call__.

    φᵀ(Uξ̂ + b) = ξ̂ᵀ(φᵀU) + φᵀb: one matmul per observation, [φᵀU | φᵀb], instead of building
    W(ξ̂) for each of its K indices (B·K·H·A·M), which dominated the learn step at K = 20.
    """
    h, a = features.shape[-1], self.num_actions
    u = hk.get_parameter('U', (h * a, self.index_dim), init=self.u_init)
    b = self.intercept(h * a)
    if frozen:
      u, b = jax.lax.stop_gradient(u), jax.lax.stop_gradient(b)
    ub = jnp.concatenate([u, b[:, None]], axis=-1).reshape(h, a * (self.index_dim + 1))
    return (features @ ub).reshape(features.shape[0], a, self.index_dim + 1)


def make_network(config: Config, obs_shape: Sequence[int], num_actions: int,
                 one_hot_input: bool = False, one_hot_cells: Sequence[int] | None = None) -> Network:
  """Builds the hypermodel for observations of `obs_shape` (no batch axis) and `num_actions` actions.

  one_hot_input: observations are one-hot arrays of `obs_shape` passed in compact form, as the int
    position of their single 1 (prod(obs_shape) for all zeros). The MLP's first layer is then a row
    lookup, equal to the dense layer on the one-hot array and with the same params (DeepSea).
  one_hot_cells: with one_hot_input, the positions that can be hot when only some can (DeepSea: the
    N(N+1)/2 cells with column <= row). The first layer and the prior table then hold those rows
    alone (networks.OneHotLinear); every Q and gradient at those positions is unchanged.
  """
  if not isinstance(num_actions, int) or num_actions < 1:
    raise ValueError(f'num_actions must be a positive int, got {num_actions!r}.')
  networks.check_obs_shape(config.torso, obs_shape)
  obs_shape = tuple(obs_shape)
  if one_hot_input and config.torso != 'mlp':
    raise ValueError(f"one_hot_input needs torso='mlp', got torso={config.torso!r}.")
  if one_hot_cells is not None and not one_hot_input:
    raise ValueError('one_hot_cells needs one_hot_input=True.')
  one_hot_size = int(np.prod(obs_shape)) if one_hot_input else None
  table_rows = networks.one_hot_rows(one_hot_size, one_hot_cells) if one_hot_input else None
  table_positions = None if table_rows is None else np.flatnonzero(table_rows >= 0)  # in row order
  H = networks.feature_dim(config.torso, config.hidden_sizes, config.cnn_feature_dim, obs_shape)
  A = num_actions
  has_prior = config.prior_scale != 0.0 and config.prior_std > 0.0
  index_law = indices.make_index_law(config.index_dist, config.index_dim)

  ensemble = config.model == 'ensemble'

  def intercept_init(scale):
    if config.bias_init == 'sphere':
      return _unit_sphere_init(scale)
    # Atari: the flattening of an (A x H) Xavier-normal matrix; not multiplied by prior_std.
    return hk.initializers.RandomNormal(stddev=(2.0 / (A + H)) ** 0.5)

  def bias_init(scale):
    if ensemble:
      return None  # Ensemble+ on a shared torso: independent heads U[:, m], no shared intercept
    return intercept_init(scale)

  def member_heads(scale):
    """Ensemble+ on a shared torso: column m of U (or U₀) is member m's head (or prior head), drawn as
    an independent member's (an M = 0 network's intercept), not with the Xavier fans of the stacked
    (H·A, M) matrix, which would make each head √((H·A + M)/(H + A)) times narrower (2-4x)."""
    members = intercept_init(scale)
    return lambda shape, dtype: jnp.stack([members(shape[:1], dtype) for _ in range(shape[1])], axis=1)

  def torso(name):
    return networks.make_torso(config.torso, config.hidden_sizes, config.cnn_feature_dim, name, one_hot_size,
                               one_hot_cells)

  # One place for the heads' names and inits: forward and forward_coefficients must share their params.
  def head():
    u_init = member_heads(config.prior_std) if ensemble else networks.XAVIER_NORMAL
    return HyperLinear(A, config.index_dim, u_init, bias_init(config.prior_std), name='hyper')

  def prior_head():
    u_init = member_heads(config.prior_std) if ensemble else _sdb_init(config.prior_std)
    return HyperLinear(A, config.index_dim, u_init, bias_init(config.prior_std), name='prior_hyper')

  # With one-hot inputs the frozen prior C₀ (base prior torso + prior head) takes only n + 1
  # values (one per cell that can be hot, and the all-zeros input); it is tabulated once at init, from
  # the prior's own parameters, and looked up after.
  tabulate_prior = has_prior and config.base_prior and one_hot_input

  def prior_coefficients(obs: jax.Array, features: jax.Array) -> jax.Array:
    """prior_scale · C₀[B, A, M + 1] for obs[B, ...]: the frozen prior part of `forward_coefficients`.

    Without a base prior, the prior head reads the online features φ(obs) (given as `features`).
    """
    if not config.base_prior:
      return config.prior_scale * prior_head().coefficients(features, frozen=True)

    def compute(obs):
      prior_features = jax.lax.stop_gradient(hk.vmap(torso('prior_torso'), split_rng=False)(obs))
      return config.prior_scale * prior_head().coefficients(prior_features, frozen=True)
    if not tabulate_prior:
      return compute(obs)
    table_init = None
    if hk.running_init():  # creates the prior's parameters in the order an untabulated network does
      table = compute(jnp.asarray(table_positions, jnp.int32))
      table_init = lambda shape, dtype: table
    with hk.name_scope('prior_table'):
      table = hk.get_parameter('coefficients', (len(table_positions), A, config.index_dim + 1), init=table_init)
    return jax.lax.stop_gradient(table[jnp.asarray(table_rows)[jnp.asarray(obs, jnp.int32)]])

  def forward(obs: jax.Array, index: jax.Array) -> jax.Array:
    xi = index_law.network_input(index)
    features = torso('torso')(obs)
    q = config.posterior_scale * head()(features, xi)
    if tabulate_prior:
      q = q + affine(xi, prior_coefficients(obs[None], features[None])[0])
    elif has_prior:
      prior_features = jax.lax.stop_gradient(torso('prior_torso')(obs)) if config.base_prior else features
      w0 = jax.lax.stop_gradient(prior_head().weights(H, xi))
      q = q + config.prior_scale * (prior_features @ w0.reshape(H, A))
    return q

  def forward_coefficients(obs: jax.Array) -> jax.Array:
    """C[B, A, M + 1] for obs[B, ...] (see `affine`); modules and params are forward's."""
    features = hk.vmap(torso('torso'), split_rng=False)(obs)
    coefficients = config.posterior_scale * head().coefficients(features)
    if has_prior:
      coefficients = coefficients + prior_coefficients(obs, features)
    return coefficients

  transformed = hk.without_apply_rng(hk.transform(forward))
  transformed_coefficients = hk.without_apply_rng(hk.transform(forward_coefficients))
  example_obs = jnp.zeros((), jnp.int32) if one_hot_input else jnp.zeros(obs_shape, jnp.float32)
  example_index = jnp.ones((config.index_dim,), jnp.float32)

  def init(key: jax.Array) -> Params:
    return transformed.init(key, example_obs, example_index)

  return Network(init=init, apply=transformed.apply, coefficients=transformed_coefficients.apply,
                 num_actions=A, index=index_law)


def affine(xi: jax.Array, coefficients: jax.Array) -> jax.Array:
  """ξ̂ᵀ C[..., :M] + C[..., M], broadcasting the leading axes: Q from the coefficients C for network
  indices ξ̂[..., M]. An einsum: written as a multiply and a sum instead, the DeepSea CPU step was
  13-30% slower (BENCHMARKS.md).
  """
  m = xi.shape[-1]
  return jnp.einsum('...m,...m->...', xi, coefficients[..., :m]) + coefficients[..., m]


def check_indices(network: Network, obs: jax.Array, index: jax.Array) -> None:
  """Raw indices for a batch must be [B, K, M]: a [B, M] index (one per transition) would broadcast
  against the batch axis silently, so it is refused at trace time."""
  chex.assert_shape(index, (obs.shape[0], None, network.index.dim),
                    custom_message=f'indices must be [B, K, M] = [{obs.shape[0]}, K, {network.index.dim}] '
                                   f'for {obs.shape[0]} observations; give one index per transition as [B, 1, M]')


def apply_batch(network: Network, params: Params, obs: jax.Array, index: jax.Array) -> jax.Array:
  """q[B, K, A] for obs[B, ...] and raw indices[B, K, M]: the torso runs once per observation.

  The optimised form; `apply_batch_reference` is the plain vmap of `apply` it must equal.
  """
  check_indices(network, obs, index)
  xi = network.index.network_input(index)
  return affine(xi[:, :, None, :], network.coefficients(params, obs)[:, None])


def apply_taken(network: Network, params: Params, obs: jax.Array, index: jax.Array,
                action: jax.Array) -> jax.Array:
  """q[B, K] = Q(obs_b, action_b, ξ_bk): apply_batch at the given actions only.

  Picking C[b, action_b] before the contraction keeps the loss's backward pass free of a batched
  [K x A] by [K x M] matmul per transition, which picking from apply_batch's q costs: it was the
  slowest kernel of the CPU learn step (BENCHMARKS.md).
  """
  check_indices(network, obs, index)
  chex.assert_shape(action, (obs.shape[0],), custom_message='action must be [B], one per observation')
  coefficients = jnp.take_along_axis(network.coefficients(params, obs), action[:, None, None], axis=1)
  return affine(network.index.network_input(index), coefficients)


def apply_batch_reference(network: Network, params: Params, obs: jax.Array, index: jax.Array) -> jax.Array:
  per_obs = jax.vmap(network.apply, in_axes=(None, None, 0))
  return jax.vmap(per_obs, in_axes=(None, 0, 0))(params, obs, index)


def hyper_weights(network: Network, params: Params, index: jax.Array) -> jax.Array:
  """The trainable generated weights U ξ̂ + b for raw indices[..., M] (input of the regulariser R)."""
  xi = network.index.network_input(index)
  return xi @ params['hyper']['U'].T + params['hyper'].get('b', 0.0)


def count_params(params: Params) -> int:
  return sum(x.size for x in jax.tree.leaves(params))
