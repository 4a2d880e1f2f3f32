"""The index-sampled Bellman loss of SPEC §2.6, as a pure function of given indices.

`learn` (agent.py) samples the indices; keeping them arguments here makes the loss deterministic,
so tests can check it against hand-computed values and closed-form posteriors.
"""
from __future__ import annotations

from typing import NamedTuple

import chex
import haiku as hk
import jax
import jax.numpy as jnp

from hyperagent import hypermodel
from hyperagent.config import Config
from hyperagent.replay import Batch


class LossInfo(NamedTuple):
  td_loss: jax.Array
  hyper_reg: jax.Array
  grad_penalty: jax.Array
  q_mean: jax.Array
  target_mean: jax.Array


def rd_argmax(q: jax.Array, key: jax.Array) -> jax.Array:
  """argmax over the last axis, uniform at random among exact maxima."""
  noise = jax.random.uniform(key, q.shape)
  return jnp.argmax(jnp.where(q == q.max(axis=-1, keepdims=True), noise, -1.0), axis=-1)


def td_target(network: hypermodel.Network, params, target_params, batch: Batch,
              target_index: jax.Array, tie_key: jax.Array) -> jax.Array:
  """G_i = R_i + D_i · Q_θ⁻(s', a*, ξ⁻_i), a* = rd_argmax Q_θ(s', ·, ξ⁻_i): one ξ⁻ per transition.

  A target index [B, K, M], one per update index, gives G[B, K]: the shared-torso Ensemble+, where
  every member is regressed onto its own target (its own argmax and its own target head).
  """
  if target_index.ndim == 3:
    online, target = (hypermodel.apply_batch(network, p, batch.next_obs, target_index) for p in (params, target_params))
    value = jnp.take_along_axis(target, rd_argmax(online, tie_key)[..., None], axis=-1)[..., 0]
    return jax.lax.stop_gradient(batch.reward[:, None] + batch.discount[:, None] * value)
  q_next = lambda p: hypermodel.apply_batch(network, p, batch.next_obs, target_index[:, None, :])[:, 0]
  online, target = q_next(params), q_next(target_params)
  best = rd_argmax(online, tie_key)
  value = jnp.take_along_axis(target, best[:, None], axis=-1)[:, 0]
  return jax.lax.stop_gradient(batch.reward + batch.discount * value)


def loss(network: hypermodel.Network, config: Config, trainable, prior, target_trainable,
         batch: Batch, update_index: jax.Array, target_index: jax.Array, tie_key: jax.Array,
         replay_size: jax.Array) -> tuple[jax.Array, LossInfo]:
  """L(θ) = (1/B) Σ_i (1/K) Σ_k (G_i + σ⟨ξ_ik, z_i⟩ − Q_θ(s_i, a_i, ξ_ik))² + (λ_r/|D|) R + λ_g P.

  Args:
    trainable, prior, target_trainable: Haiku params; only `trainable` is differentiated.
    update_index: raw ξ_ik, [B, K, M]. target_index: raw ξ⁻_i, [B, M], or [B, K, M]: one per update
      index.
    replay_size: |D|, the number of transitions stored (scales the regulariser).
  """
  b, m = batch.action.shape[0], network.index.dim
  chex.assert_shape([batch.action, batch.reward, batch.discount], [(b,)] * 3,
                    custom_message='batch.action, reward and discount must be [B]')
  chex.assert_shape(batch.perturbation, (b, m), custom_message=f'batch.perturbation must be [B, M] = [{b}, {m}]')
  chex.assert_shape(update_index, (b, None, m), custom_message=f'update_index must be [B, K, M] = [{b}, K, {m}]')
  chex.assert_shape(target_index, {2: (b, m), 3: update_index.shape}.get(target_index.ndim, (b, m)),
                    custom_message=f'target_index must be [B, M] = [{b}, {m}], or [B, K, M] like update_index')
  params = hk.data_structures.merge(trainable, prior)
  target_params = hk.data_structures.merge(target_trainable, prior)
  target = td_target(network, params, target_params, batch, target_index, tie_key)

  def q_taken(trainable):  # [B, K]
    return hypermodel.apply_taken(network, hk.data_structures.merge(trainable, prior), batch.obs,
                                  update_index, batch.action)

  q = q_taken(trainable)
  perturbation = config.perturbation_scale * jnp.einsum('bkm,bm->bk', update_index, batch.perturbation)
  squared = ((target if target.ndim == 2 else target[:, None]) + perturbation - q) ** 2  # [B, K]
  if batch.weight is not None:  # bootstrap masks: a transition outside a member's sample counts 0
    squared = squared * (batch.weight if batch.weight.ndim == 2 else batch.weight[:, None])
  td_loss = jnp.mean(squared)
  total = td_loss

  hyper_reg = jnp.zeros(())
  if config.hyper_reg_coef:
    hyper_reg = jnp.mean(hypermodel.hyper_weights(network, trainable, update_index) ** 2)
    total = total + config.hyper_reg_coef / jnp.maximum(replay_size, 1) * hyper_reg

  grad_penalty = jnp.zeros(())
  if config.grad_penalty_coef:
    grads = jax.grad(lambda t: jnp.mean(q_taken(t)))(trainable)  # differentiated again: double backprop
    grad_penalty = sum(jnp.sum(g ** 2) for g in jax.tree.leaves(grads))
    total = total + config.grad_penalty_coef * grad_penalty

  return total, LossInfo(td_loss, hyper_reg, grad_penalty, jnp.mean(q), jnp.mean(target))
