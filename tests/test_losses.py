"""The index-sampled Bellman loss against values computed by hand, and the n-step folding."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from hyperagent import hypermodel, losses, replay
from hyperagent.config import Config
from hyperagent.replay import Batch

# A tiny network whose Q we can write down: identity features φ(s) = s (H = 2), A = 2, M = 2,
# Gaussian index seen as is, the prior torso is the identity too.
TINY = Config(torso='identity', index_dim=2, index_dist='gaussian', prior_scale=2.0, prior_std=1.0,
              posterior_scale=1.0, perturbation_scale=0.5, hyper_reg_coef=0.2, grad_penalty_coef=0.1)
# Rows of U are the generated weights (h, a) in row-major order: (0,0), (0,1), (1,0), (1,1).
U = jnp.array([[1., 0.], [0., 1.], [1., 1.], [0., 0.]])
B_ONLINE = jnp.array([0., 0., 0., 1.])
B_TARGET = jnp.array([0., 0., 0., 5.])
PRIOR = {'prior_hyper': {'U': jnp.zeros((4, 2)), 'b': jnp.array([1., 0., 0., 0.])}}
# So Q(s, ξ) = [s0 ξ0 + s1 (ξ0 + ξ1) + 2 s0,  s0 ξ1 + s1 · b(1,1)].


def tiny_case():
  network = hypermodel.make_network(TINY, (2,), 2)
  trainable = {'hyper': {'U': U, 'b': B_ONLINE}}
  target = {'hyper': {'U': U, 'b': B_TARGET}}
  batch = Batch(obs=jnp.array([[1., 2.], [0., 1.]]), action=jnp.array([0, 1]),
                reward=jnp.array([0.5, 1.0]), discount=jnp.array([0.9, 0.0]),
                next_obs=jnp.array([[1., 1.], [2., 0.]]), perturbation=jnp.array([[1., 0.], [0., 1.]]))
  update_index = jnp.array([[[1., 0.], [0., 1.]], [[1., 1.], [-1., 0.]]])
  target_index = jnp.array([[1., 0.], [0., 1.]])
  return network, trainable, target, batch, update_index, target_index


def test_params_layout_matches_tiny_case():
  network = hypermodel.make_network(TINY, (2,), 2)
  params = network.init(jax.random.key(0))
  assert jax.tree.map(jnp.shape, params) == {'hyper': {'U': (4, 2), 'b': (4,)},
                                             'prior_hyper': {'U': (4, 2), 'b': (4,)}}


def test_loss_matches_hand_computation():
  network, trainable, target, batch, update_index, target_index = tiny_case()
  total, info = losses.loss(network, TINY, trainable, PRIOR, target, batch, update_index, target_index,
                            jax.random.key(0), jnp.array(4))
  # Transition 1: s' = (1, 1), ξ⁻ = (1, 0). Online Q = [4, 1] → a* = 0; the target net gives
  # [4, 5], so the double-Q value is 4 (not the max, 5): G = 0.5 + 0.9·4 = 4.1.
  # Transition 2 is terminal: G = 1.
  np.testing.assert_allclose(info.target_mean, (4.1 + 1.0) / 2, rtol=1e-6)
  # TD errors (G + σ⟨ξ, z⟩ − Q): 4.1 + 0.5 − 5 = −0.4, 4.1 + 0 − 4 = 0.1, 1 + 0.5 − 1 = 0.5, 1 + 0 − 1 = 0.
  np.testing.assert_allclose(info.td_loss, (0.16 + 0.01 + 0.25 + 0.0) / 4, rtol=1e-6)
  # R: the generated weights Uξ + b have squared sums 3, 3, 7, 3 over 16 entries → 1; λ_r/|D| = 0.2/4.
  np.testing.assert_allclose(info.hyper_reg, 1.0, rtol=1e-6)
  # P: ‖∂U‖² = 0.6875 and ‖∂b‖² = 1.5 for the mean of Q(s_i, a_i, ξ_ik) over the four pairs.
  np.testing.assert_allclose(info.grad_penalty, 2.1875, rtol=1e-6)
  np.testing.assert_allclose(total, 0.105 + 0.05 + 0.1 * 2.1875, rtol=1e-6)


def test_sphere_index_law_by_hand():
  """The paper's law (SPEC §1.6, §2.3): the network sees ξ̂ = ξ/‖ξ‖ (Q and R), the perturbation the raw ξ,
  the target its own index ξ⁻ (not an update index), and posterior_scale scales the trained part."""
  config = TINY.replace(index_dist='sphere', posterior_scale=0.5, grad_penalty_coef=0.0)
  network = hypermodel.make_network(config, (2,), 2)
  # Q(s, ξ̂) = 0.5 [s0 ξ̂0 + s1 (ξ̂0 + ξ̂1),  s0 ξ̂1 + s1 b(1,1)] + 2 [s0, 0]
  batch = Batch(obs=jnp.array([[1., 2.], [0., 1.]]), action=jnp.array([0, 1]), reward=jnp.array([0.5, 1.0]),
                discount=jnp.array([0.0, 0.9]), next_obs=jnp.array([[1., 1.], [1., 1.]]),
                perturbation=jnp.array([[1., 0.], [0., 1.]]))
  update_index = jnp.array([[[3., 4.], [0., 2.]], [[-2., 0.], [0., 0.5]]])  # ξ̂ (.6, .8), (0, 1); (-1, 0), (0, 1)
  target_index = jnp.array([[2., 0.], [0., 5.]])                          # ξ̂⁻ of transition 2: (0, 1)
  total, info = losses.loss(network, config, {'hyper': {'U': U, 'b': B_ONLINE}}, PRIOR,
                            {'hyper': {'U': U, 'b': B_TARGET}}, batch, update_index, target_index,
                            jax.random.key(0), jnp.array(4))
  # Transition 1 is terminal: G = 0.5. Transition 2: at s' = (1, 1) under ξ̂⁻ = (0, 1) the online Q is
  # [0.5 + 2, 1] → a* = 0, which the target net values at 2.5 too: G = 1 + 0.9 · 2.5 = 3.25.
  np.testing.assert_allclose(info.target_mean, (0.5 + 3.25) / 2, rtol=1e-6)
  # Q(s, a, ξ̂): 0.5 · 3.4 + 2 = 3.7 and 0.5 · 2 + 2 = 3; 0.5 and 0.5. Perturbations σ⟨ξ, z⟩ with the
  # raw ξ: 0.5 · 3 = 1.5 and 0; 0 and 0.5 · 0.5 = 0.25. TD errors: -1.7, -2.5, 2.75, 3.
  np.testing.assert_allclose(info.td_loss, (1.7 ** 2 + 2.5 ** 2 + 2.75 ** 2 + 3.0 ** 2) / 4, rtol=1e-6)
  # R over the generated weights Uξ̂ + b: [.6, .8, 1.4, 1], [0, 1, 1, 1], [-1, 0, -1, 1], [0, 1, 1, 1]
  np.testing.assert_allclose(info.hyper_reg, (3.96 + 3 + 3 + 3) / 16, rtol=1e-6)
  np.testing.assert_allclose(total, 6.425625 + 0.2 / 4 * 0.81, rtol=1e-6)


def test_prior_never_receives_gradient():
  network, trainable, target, batch, update_index, target_index = tiny_case()

  def all_params_loss(params):
    train, prior = hypermodel.split_params(params)
    return losses.loss(network, TINY, train, prior, target, batch, update_index, target_index,
                       jax.random.key(0), jnp.array(4))[0]

  grads = jax.grad(all_params_loss)({**trainable, **PRIOR})
  assert all(jnp.all(g == 0) for g in jax.tree.leaves(grads['prior_hyper']))
  assert any(jnp.any(g != 0) for g in jax.tree.leaves(grads['hyper']))


def test_target_index_is_used_for_argmax_and_evaluation():
  """Changing ξ⁻ changes G exactly as the hand formula says; changing ξ_ik does not."""
  network, trainable, target, batch, update_index, target_index = tiny_case()
  params = {**trainable, **PRIOR}
  target_params = {**target, **PRIOR}
  other = jnp.array([[0., 1.], [0., 1.]])
  g = losses.td_target(network, params, target_params, batch, other, jax.random.key(0))
  # s' = (1, 1), ξ⁻ = (0, 1): online [0 + 1 + 2, 1 + 1] = [3, 2] → a* = 0; target [3, 1 + 5] → 3.
  np.testing.assert_allclose(g, [0.5 + 0.9 * 3.0, 1.0], rtol=1e-6)
  # under the tiny case's own ξ⁻ = (1, 0) it is 4.1 (test_loss_matches_hand_computation)
  g = losses.td_target(network, params, target_params, batch, target_index, jax.random.key(0))
  np.testing.assert_allclose(g, [4.1, 1.0], rtol=1e-6)
  # the loss's target under other update indices ξ_ik: unchanged
  for xi in (update_index, -3 * update_index):
    _, info = losses.loss(network, TINY, trainable, PRIOR, target, batch, xi, target_index, jax.random.key(0),
                          jnp.array(4))
    np.testing.assert_allclose(info.target_mean, (4.1 + 1.0) / 2, rtol=1e-6)


def test_matches_rlax_double_q_learning():
  """K = 1, σ = 0, no regularisers: the loss is the squared rlax double-Q TD error."""
  config = TINY.replace(perturbation_scale=0.0, hyper_reg_coef=0.0, grad_penalty_coef=0.0,
                        num_update_indices=1)
  network = hypermodel.make_network(config, (3,), 4)
  key = jax.random.key(3)
  params = network.init(key)
  train, prior = hypermodel.split_params(params)
  target = jax.tree.map(lambda x: x + 0.3, train)
  ks = jax.random.split(key, 6)
  batch = Batch(obs=jax.random.normal(ks[0], (8, 3)), action=jax.random.randint(ks[1], (8,), 0, 4),
                reward=jax.random.normal(ks[2], (8,)), discount=jnp.linspace(0.0, 0.99, 8),
                next_obs=jax.random.normal(ks[3], (8, 3)), perturbation=jnp.zeros((8, 2)))
  xi = jax.random.normal(ks[4], (8, 2))
  xi_target = jax.random.normal(ks[5], (8, 2))
  total, _ = losses.loss(network, config, train, prior, target, batch, xi[:, None], xi_target,
                         jax.random.key(0), jnp.array(8))
  q = jax.vmap(network.apply, in_axes=(None, 0, 0))
  td = jax.vmap(rlax.double_q_learning)(
      q(params, batch.obs, xi), batch.action, batch.reward, batch.discount,
      q({**target, **prior}, batch.next_obs, xi_target), q(params, batch.next_obs, xi_target))
  np.testing.assert_allclose(total, jnp.mean(td ** 2), rtol=1e-5)


def test_the_gradient_penalty_is_differentiated_through():
  """λ_g P with P = ‖∂/∂θ mean_ik Q_θ(s_i, a_i, ξ_ik)‖² (double backprop): on an MLP torso, where ∂P/∂θ
  is not 0 (on the tiny linear case it is), the loss's gradient is the TD part's plus λ_g ∂P/∂θ, with P
  written out here from the network's own forward pass."""
  from hyperagent.config import make_config
  config = make_config('hyperagent', 'deepsea', grad_penalty_coef=0.5, hyper_reg_coef=0.0, perturbation_scale=0.0)
  network = hypermodel.make_network(config, (3,), 4)
  params = network.init(jax.random.key(0))
  train, prior = hypermodel.split_params(params)
  ks = jax.random.split(jax.random.key(1), 5)
  batch = Batch(obs=jax.random.normal(ks[0], (6, 3)), action=jax.random.randint(ks[1], (6,), 0, 4),
                reward=jax.random.normal(ks[2], (6,)), discount=jnp.full((6,), 0.9),
                next_obs=jax.random.normal(ks[3], (6, 3)), perturbation=jnp.zeros((6, config.index_dim)))
  xi = jax.random.normal(ks[4], (6, 3, config.index_dim))
  grad = lambda c: jax.grad(lambda t: losses.loss(network, config.replace(grad_penalty_coef=c), t, prior, train,
                                                  batch, xi, xi[:, 0], jax.random.key(2), jnp.array(6))[0])(train)
  q = jax.vmap(jax.vmap(network.apply, in_axes=(None, None, 0)), in_axes=(None, 0, 0))  # [B, K, A]

  def penalty(t):
    def mean_q(t):
      return jnp.mean(jnp.take_along_axis(q({**t, **prior}, batch.obs, xi), batch.action[:, None, None], -1))
    return sum(jnp.sum(g ** 2) for g in jax.tree.leaves(jax.grad(mean_q)(t)))

  dp = jax.grad(penalty)(train)
  assert sum(float(jnp.sum(g ** 2)) for g in jax.tree.leaves(dp)) > 1e-6
  for with_p, without, d in zip(jax.tree.leaves(grad(0.5)), jax.tree.leaves(grad(0.0)), jax.tree.leaves(dp)):
    np.testing.assert_allclose(with_p - without, 0.5 * d, rtol=1e-4, atol=1e-6)


def test_rd_argmax_is_uniform_over_ties():
  q = jnp.array([1.0, 3.0, 0.5, 3.0, 3.0])
  keys = jax.random.split(jax.random.key(0), 30_000)
  picks = np.asarray(jax.vmap(losses.rd_argmax, in_axes=(None, 0))(q, keys))
  counts = np.bincount(picks, minlength=5)
  assert counts[[0, 2]].sum() == 0
  # each tied action has probability 1/3: 5 standard deviations is about ±0.0136
  np.testing.assert_allclose(counts[[1, 3, 4]] / len(picks), 1 / 3, atol=0.0136)


@pytest.mark.parametrize('terminated, truncated, available, ret, disc, m', [
    ([0, 0, 0], [0, 0, 0], [1, 1, 1], 1 + 0.5 * 2 + 0.25 * 4, 0.125, 3),
    ([0, 1, 0], [0, 0, 0], [1, 1, 1], 1 + 0.5 * 2, 0.0, 2),       # terminal: no bootstrap
    ([0, 0, 0], [0, 1, 0], [1, 1, 1], 1 + 0.5 * 2, 0.25, 2),      # truncation: bootstrap
    ([1, 0, 0], [0, 0, 0], [1, 1, 1], 1.0, 0.0, 1),
    ([0, 0, 0], [0, 0, 0], [1, 1, 0], 1 + 0.5 * 2, 0.25, 2),      # newest stored transition
    ([0, 0, 1], [0, 0, 0], [1, 1, 1], 1 + 0.5 * 2 + 0.25 * 4, 0.0, 3),
])
def test_n_step_return_by_hand(terminated, truncated, available, ret, disc, m):
  out = replay.n_step_return(jnp.array([1.0, 2.0, 4.0]), jnp.array(terminated, bool),
                             jnp.array(truncated, bool), jnp.array(available, bool), 0.5)
  np.testing.assert_allclose(out[0], ret)
  np.testing.assert_allclose(out[1], disc)
  assert int(out[2]) == m
