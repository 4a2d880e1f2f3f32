"""The agent: explicit state, four jitted pure functions (`init`, `init_actor`, `act`, `learn`), and
the one draw of the stored perturbation and the one warm-up predicate every loop shares.

Every loop (the jitted DeepSea loop, the envpool actor-learner, the bsuite adapter) calls these
same functions; they know nothing of environments or replay.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Sequence

import haiku as hk
import jax
import jax.numpy as jnp
import optax

from hyperagent import acting, hypermodel, indices, losses
from hyperagent.acting import ActorState
from hyperagent.config import Config
from hyperagent.replay import Batch


class TrainState(NamedTuple):
  params: hk.Params         # θ and the frozen prior, in one tree (the prior never changes)
  target_params: hk.Params  # θ⁻, the trainable part only: the prior is shared
  opt_state: optax.OptState  # over the trainable parameters only
  step: jax.Array           # gradient steps taken
  key: jax.Array


class Agent(NamedTuple):
  config: Config
  network: hypermodel.Network
  init: Callable[[jax.Array], TrainState]
  init_actor: Callable[[jax.Array, int], ActorState]
  act: Callable[..., tuple[jax.Array, ActorState]]   # (params, actor_state, obs, first, evaluation=False)
  learn: Callable[[TrainState, Batch, jax.Array], tuple[TrainState, dict[str, Any]]]  # (state, batch, |D|)
  perturbation: Callable[[jax.Array, tuple[int, ...]], jax.Array]  # (key, shape) -> z[*shape, M] to store
  warmed_up: Callable[[Any], Any]  # transitions stored -> learning has started (Config.warmed_up)


def make_optimizer(config: Config) -> optax.GradientTransformation:
  return optax.chain(
      optax.clip_by_global_norm(config.max_grad_norm),
      optax.adam(config.learning_rate, b1=0.9, b2=0.999, eps=config.adam_eps))


def make_agent(config: Config, obs_shape: Sequence[int], num_actions: int,
               one_hot_input: bool = False, one_hot_cells: Sequence[int] | None = None) -> Agent:
  """The agent for observations of `obs_shape` (one env, no batch axis) and `num_actions` actions.

  one_hot_input: observations come as int positions of one-hot arrays, of which only `one_hot_cells`
    can be hot if given (see hypermodel.make_network).
  """
  if config.model == 'ensemble' and config.ensemble_torso == 'independent':
    return make_ensemble_agent(config, obs_shape, num_actions, one_hot_input, one_hot_cells)
  network = hypermodel.make_network(config, obs_shape, num_actions, one_hot_input, one_hot_cells)
  optimizer = make_optimizer(config)
  loss_fn = functools.partial(losses.loss, network, config)

  def init(key: jax.Array) -> TrainState:
    key, init_key = jax.random.split(key)
    params = network.init(init_key)
    trainable, _ = hypermodel.split_params(params)
    return TrainState(params, trainable, optimizer.init(trainable), jnp.zeros((), jnp.int32), key)

  def learn(state: TrainState, batch: Batch, replay_size: jax.Array) -> tuple[TrainState, dict[str, Any]]:
    batch_size = batch.action.shape[0]
    key, k_update, k_target, k_tie = jax.random.split(state.key, 4)
    trainable, prior = hypermodel.split_params(state.params)
    # θ⁻ ← θ at the start of every T-th update, the very first included (SPEC §2.6).
    copy = state.step % config.target_update_period == 0
    target = jax.tree.map(lambda new, old: jnp.where(copy, new, old), trainable, state.target_params)
    if config.model == 'ensemble':  # shared torso: every member on every transition, on its own target
      update_index = jnp.broadcast_to(jnp.eye(config.index_dim), (batch_size, config.index_dim, config.index_dim))
      target_index = update_index
      batch = bootstrap(config, batch)  # column k of the masks weighs member k's term
    else:
      update_index = network.index.sample(k_update, (batch_size, config.num_update_indices))
      target_index = network.index.sample(k_target, (batch_size,))

    (total, info), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        trainable, prior, target, batch, update_index, target_index, k_tie, replay_size)
    updates, opt_state = optimizer.update(grads, state.opt_state, trainable)
    trainable = optax.apply_updates(trainable, updates)
    metrics = dict(info._asdict(), loss=total, grad_norm=optax.tree.norm(grads))
    new_state = TrainState(hk.data_structures.merge(trainable, prior), target, opt_state, state.step + 1, key)
    return new_state, metrics

  def perturbation(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    if config.model == 'ensemble':
      return bootstrap_masks(config, key, shape)
    return indices.sample_perturbation(key, config.perturbation_dist, config.index_dim, shape)

  return _assemble(config, network, init, learn, perturbation)


def _assemble(config: Config, network: hypermodel.Network, init: Callable, learn: Callable,
              perturbation: Callable) -> Agent:
  """The Agent of a network and its init/learn: acting is the same for every agent (`acting.act`)."""

  def init_actor(key: jax.Array, num_envs: int) -> ActorState:
    return acting.init_actor(network, key, num_envs)

  def act(params, actor_state: ActorState, obs: jax.Array, first: jax.Array, evaluation: bool = False):
    return acting.act(network, config, params, actor_state, obs, first, evaluation)

  return Agent(
      config=config, network=network, init=jax.jit(init),
      init_actor=jax.jit(init_actor, static_argnums=1),
      act=jax.jit(act, static_argnames='evaluation'), learn=jax.jit(learn),
      perturbation=perturbation, warmed_up=config.warmed_up)


def bootstrap_masks(config: Config, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """Ensemble+'s per-transition draw, stored in the replay's perturbation slot (σ = 0 leaves it free):
  mask[m] = 1 puts the transition in member m's bootstrap sample, with probability bootstrap_prob."""
  shape = tuple(shape) + (config.index_dim,)
  if config.bootstrap_prob == 1.0:
    return jnp.ones(shape)
  return jax.random.bernoulli(key, config.bootstrap_prob, shape).astype(jnp.float32)


def bootstrap(config: Config, batch: Batch) -> Batch:
  """The stored masks [B, M] become the loss weights and the slot holds no perturbation; without
  masking there are no weights, so the compiled update is the unmasked one."""
  weight = batch.perturbation if config.bootstrap_prob < 1.0 else None
  return batch._replace(perturbation=jnp.zeros_like(batch.perturbation), weight=weight)


def member_config(config: Config) -> Config:
  """One Ensemble+ member: Double DQN with an additive frozen prior, Q = f_θ(s) + β·p(s) (Osband et al.
  2018), which is the hypermodel with no index (M = 0): the prior is its base prior torso and head."""
  return config.replace(model='hypermodel', index_dist='none', index_dim=0, num_update_indices=1,
                        perturbation_scale=0.0, hyper_reg_coef=0.0, grad_penalty_coef=0.0,
                        bootstrap_prob=1.0)  # the ensemble hands each member its mask column as weights


def make_ensemble_agent(config: Config, obs_shape: Sequence[int], num_actions: int,
                        one_hot_input: bool = False, one_hot_cells: Sequence[int] | None = None) -> Agent:
  """Ensemble+ as M = config.index_dim independent members, each `make_agent(member_config(config))`.

  Every leaf of the TrainState has a leading member axis, and `learn` is the members' own `learn`
  vmapped over it: each member keeps its own network, frozen prior, target network, optimiser state
  (gradient clipping included) and key, and is trained on its own Double-DQN target on every sampled
  transition (with bootstrap_prob < 1, on those its stored mask admits). As a `Network`, the ensemble
  is Q(s, ·, ξ) = Σ_m ξ_m Q_m(s, ·) for a one-hot ξ, with coefficients C[..., m] = Q_m and
  C[..., M] = 0, so `act`, `apply_batch` and the loops treat it like any other agent; the actor holds
  one member per episode (index_resample_prob = 0).
  """
  members = config.index_dim
  member = make_agent(member_config(config), obs_shape, num_actions, one_hot_input, one_hot_cells)
  no_index = jnp.zeros((0,))
  every_member = functools.partial(jax.vmap, in_axes=(0, None, None))

  def apply(params, obs, index):
    q = every_member(member.network.apply)(params, obs, no_index)  # [M, A]
    return index @ q  # a one-hot ξ picks its member exactly: the other terms add 0·Q

  def coefficients(params, obs):
    q = jax.vmap(member.network.coefficients, in_axes=(0, None))(params, obs)[..., 0]  # [M, B, A]
    return jnp.concatenate([jnp.moveaxis(q, 0, -1), jnp.zeros(q.shape[1:] + (1,))], axis=-1)

  def init_params(key):
    return jax.vmap(member.network.init)(jax.random.split(key, members))

  network = hypermodel.Network(init=init_params, apply=apply, coefficients=coefficients,
                               num_actions=num_actions, index=indices.make_index_law('one_hot', members))

  def init(key: jax.Array) -> TrainState:
    return jax.vmap(member.init)(jax.random.split(key, members))

  def learn(state: TrainState, batch: Batch, replay_size: jax.Array) -> tuple[TrainState, dict[str, Any]]:
    batch = bootstrap(config, batch)
    # member m gets column m of the masks (if any) and everything else whole
    batch_axes = Batch(*[None] * len(Batch._fields))._replace(weight=None if batch.weight is None else 1)
    batch = batch._replace(perturbation=batch.perturbation[:, :0])  # members have no index: M = 0
    state, metrics = jax.vmap(member.learn, in_axes=(0, batch_axes, None))(state, batch, replay_size)
    return state, jax.tree.map(jnp.mean, metrics)  # the members' mean, as the loops log one number

  return _assemble(config, network, init, learn, functools.partial(bootstrap_masks, config))
