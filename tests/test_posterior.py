"""Linear-Gaussian check of the index-sampled loss (SPEC §6.2).

With identity features, one action, discount 0 (G = y), a Gaussian index and the additive sDB
prior P ξ + p₀ (prior_std = prior_scale = 1, so E[PPᵀ] = I), the project's own `losses.loss` with
λ_r = σ²·d is, up to the factor σ²/T, the objective of SPEC §6.2 with prior N(p₀, I):

    E_ξ[ Σ_s (y_s + σ z_sᵀξ − x_sᵀθ(ξ))²/σ² + ‖θ(ξ) − P ξ − p₀‖² ],   θ(ξ) = μ + A ξ.

Its minimiser is μ = the conjugate posterior mean and A = Σ_T (P + Σ_s x_s z_sᵀ/σ), with
A Aᵀ ≈ Σ_T. The update indices are ±√M e_m: their first two moments are exactly 0 and I, so the
K-sample loss equals its expectation over ξ and is exactly quadratic in (U, b); conjugate gradients
on its Hessian-vector products reaches the minimiser.
"""
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from hyperagent import hypermodel, indices, losses
from hyperagent.config import Config
from hyperagent.replay import Batch

D, T, M, SIGMA = 3, 100, 256, 0.5


def fit():
  config = Config(torso='identity', index_dist='gaussian', index_dim=M, prior_std=1.0, prior_scale=1.0,
                  posterior_scale=1.0, perturbation_scale=SIGMA, hyper_reg_coef=SIGMA ** 2 * D)
  network = hypermodel.make_network(config, (D,), 1)
  trainable, prior = hypermodel.split_params(network.init(jax.random.key(0)))
  kx, kb, kz = jax.random.split(jax.random.key(1), 3)
  x = jax.random.normal(kx, (T, D))
  y = x @ jax.random.normal(kb, (D,)) + SIGMA * jax.random.normal(jax.random.fold_in(kb, 1), (T,))
  z = indices.sample_perturbation(kz, 'sphere', M, (T,))
  batch = Batch(obs=x, action=jnp.zeros(T, jnp.int32), reward=y, discount=jnp.zeros(T), next_obs=x,
                perturbation=z)
  eye = np.sqrt(M) * np.eye(M, dtype=np.float32)
  index_set = jnp.broadcast_to(jnp.concatenate([eye, -eye]), (T, 2 * M, M))

  flat, unravel = ravel_pytree(trainable)

  def objective(flat):
    return losses.loss(network, config, unravel(flat), prior, unravel(flat), batch, index_set,
                       jnp.zeros((T, M)), jax.random.key(0), jnp.array(T))[0]

  grad = jax.grad(objective)
  hvp = lambda v: jax.jvp(grad, (flat,), (v,))[1]
  step, _ = jax.scipy.sparse.linalg.cg(hvp, -grad(flat), tol=1e-7, maxiter=200)
  fitted = unravel(flat + step)
  mu = fitted['hyper']['b'] + prior['prior_hyper']['b']
  A = fitted['hyper']['U'] + prior['prior_hyper']['U']
  return np.asarray(x, np.float64), np.asarray(y, np.float64), np.asarray(z, np.float64), prior, mu, A


def test_hypermodel_matches_conjugate_posterior():
  x, y, z, prior, mu, A = fit()
  p0 = np.asarray(prior['prior_hyper']['b'], np.float64)
  P = np.asarray(prior['prior_hyper']['U'], np.float64)
  cov = np.linalg.inv(np.eye(D) + x.T @ x / SIGMA ** 2)
  mean = cov @ (p0 + x.T @ y / SIGMA ** 2)
  A_closed = cov @ (P + x.T @ z / SIGMA)

  assert np.linalg.norm(mu - mean) / np.linalg.norm(mean) < 1e-3
  assert np.linalg.norm(A - A_closed) / np.linalg.norm(A_closed) < 1e-3
  A = np.asarray(A, np.float64)
  error = np.linalg.norm(A @ A.T - cov, 2) / np.linalg.norm(cov, 2)
  assert error < 0.3, error
