"""The hypermodel forward pass: vmap vs loop, one-hot = ensemble, inits, parameter counts, bad input."""
import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hyperagent import hypermodel, indices
from hyperagent.config import Config, make_config


@pytest.mark.parametrize('agent,overrides', [
    ('hyperagent', {}), ('ensemble', {}), ('dqn', {}),
    ('hyperagent', dict(base_prior=False, index_dist='gaussian', bias_init='xavier'))])
def test_batched_forward_equals_loop_over_indices(agent, overrides):
  """apply_batch and apply_taken (through the coefficients C), the plain vmap of apply and a Python loop
  agree, values and gradients."""
  config = make_config(agent, 'deepsea', **overrides)
  network = hypermodel.make_network(config, (6, 6), 2)
  params = network.init(jax.random.key(0))
  obs = jax.nn.one_hot(jnp.array([3, 17, 35]), 36).reshape(3, 6, 6)
  index = indices.make_index_law(config.index_dist, config.index_dim).sample(jax.random.key(1), (3, 5))
  batched = hypermodel.apply_batch(network, params, obs, index)
  reference = hypermodel.apply_batch_reference(network, params, obs, index)
  assert batched.shape == (3, 5, 2)
  np.testing.assert_allclose(batched, reference, rtol=1e-5, atol=1e-5)
  for b in range(3):
    for k in range(5):
      np.testing.assert_allclose(batched[b, k], network.apply(params, obs[b], index[b, k]), rtol=1e-5, atol=1e-5)
  trainable, prior = hypermodel.split_params(params)
  weights = jax.random.normal(jax.random.key(2), batched.shape)
  def grad(apply):
    return jax.grad(lambda t: jnp.sum(weights * apply(network, hk.data_structures.merge(t, prior), obs, index)))(trainable)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
               grad(hypermodel.apply_batch), grad(hypermodel.apply_batch_reference))
  # apply_taken: the reference at the given actions only, values and gradients.
  action = jnp.array([1, 0, 1])
  def taken_reference(network, params, obs, index):
    return jnp.take_along_axis(hypermodel.apply_batch_reference(network, params, obs, index),
                               action[:, None, None], axis=-1)[..., 0]
  def taken(network, params, obs, index):
    return hypermodel.apply_taken(network, params, obs, index, action)
  np.testing.assert_allclose(taken(network, params, obs, index), taken_reference(network, params, obs, index),
                             rtol=1e-5, atol=1e-5)
  weights = weights[..., 0]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
               grad(taken), grad(taken_reference))


def test_position_input_equals_dense_one_hot_input():
  """DeepSea's compact observation: a row lookup in the first layer equals the dense layer on the
  one-hot grid (same params, same init), including the all-zeros observation after the last row; the
  frozen prior, tabulated at init over the n + 1 inputs, equals the dense network's prior."""
  config = make_config('hyperagent', 'deepsea')
  n = 7
  dense = hypermodel.make_network(config, (n, n), 2)
  lookup = hypermodel.make_network(config, (n, n), 2, one_hot_input=True)
  params = lookup.init(jax.random.key(0))
  table = params.pop('prior_table')['coefficients']
  jax.tree.map(np.testing.assert_array_equal, params, dense.init(jax.random.key(0)))
  all_inputs = jax.nn.one_hot(jnp.arange(n * n + 1), n * n).reshape(-1, n, n)
  posterior = dense.coefficients({**params, 'prior_hyper': jax.tree.map(jnp.zeros_like, params['prior_hyper'])},
                                 all_inputs)
  np.testing.assert_allclose(table, dense.coefficients(params, all_inputs) - posterior, rtol=1e-5, atol=1e-5)
  dense_params, params = params, {**params, 'prior_table': {'coefficients': table}}
  positions = jnp.array([0, 5, 24, n * n - 1, n * n])
  one_hot = jax.nn.one_hot(positions, n * n).reshape(-1, n, n)
  index = jax.random.normal(jax.random.key(1), (5, 3, 4))
  np.testing.assert_allclose(hypermodel.apply_batch(lookup, params, positions, index),
                             hypermodel.apply_batch(dense, dense_params, one_hot, index), rtol=1e-5, atol=1e-5)
  for p, o, xi in zip(positions, one_hot, index[:, 0]):
    np.testing.assert_allclose(lookup.apply(params, p, xi), dense.apply(dense_params, o, xi), rtol=1e-5, atol=1e-5)
  def grad(network, params, obs):
    trainable, prior = hypermodel.split_params(params)
    return jax.grad(lambda t: jnp.sum(hypermodel.apply_batch(network, hk.data_structures.merge(t, prior), obs, index) ** 2))(trainable)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
               grad(lookup, params, positions), grad(dense, dense_params, one_hot))
  assert set(hypermodel.split_params(params)[1]) == {'prior_torso/linear_0', 'prior_torso/linear_1', 'prior_hyper',
                                                     'prior_table'}
  with pytest.raises(ValueError, match="torso='mlp'"):
    hypermodel.make_network(config.replace(torso='identity'), (n, n), 2, one_hot_input=True)


@pytest.mark.parametrize('agent', ['hyperagent', 'ensemble'])
def test_a_table_of_the_reachable_cells_only_equals_the_full_table(agent):
  """With `one_hot_cells` the first layer and the prior table keep the rows of those cells alone,
  drawn as the full table's: Q and its gradient at every reachable input are the full network's, and
  an input outside the cells is NaN rather than a silent answer."""
  from hyperagent.agent import make_agent
  config = make_config(agent, 'deepsea')
  n = 6
  cells = tuple(r * n + c for r in range(n) for c in range(r + 1))
  full = make_agent(config, (n, n), 2, one_hot_input=True)
  kept = make_agent(config, (n, n), 2, one_hot_input=True, one_hot_cells=cells)
  full_params, kept_params = full.network.init(jax.random.key(0)), kept.network.init(jax.random.key(0))
  rows = np.append(cells, n * n)  # the all-zeros input is the tables' last row
  member = (lambda p: p) if agent == 'hyperagent' else (lambda p: jax.tree.map(lambda x: x[0], p))
  for name in ('torso/linear_0', 'prior_torso/linear_0'):
    np.testing.assert_array_equal(member(kept_params)[name]['w'], member(full_params)[name]['w'][np.array(cells)])
  np.testing.assert_array_equal(member(kept_params)['prior_table']['coefficients'],
                                member(full_params)['prior_table']['coefficients'][rows])
  index = full.network.index.sample(jax.random.key(1), (len(rows), 3))
  q_full = hypermodel.apply_batch(full.network, full_params, jnp.asarray(rows), index)
  np.testing.assert_array_equal(hypermodel.apply_batch(kept.network, kept_params, jnp.asarray(rows), index), q_full)
  assert np.isfinite(q_full).all()
  grad = lambda agent_, params: jax.grad(lambda t: jnp.sum(hypermodel.apply_batch(
      agent_.network, hk.data_structures.merge(t, hypermodel.split_params(params)[1]), jnp.asarray(rows), index) ** 2))(
      hypermodel.split_params(params)[0])
  g_full, g_kept = grad(full, full_params), grad(kept, kept_params)
  np.testing.assert_allclose(member(g_kept)['torso/linear_0']['w'],
                             member(g_full)['torso/linear_0']['w'][np.array(cells)], rtol=1e-6, atol=1e-7)
  assert not np.any(np.delete(np.asarray(member(g_full)['torso/linear_0']['w']), np.array(cells), axis=0))
  outside = jnp.array([1, -1, n * n + 1])  # row 0 column 1 (unreachable), and off the grid
  assert np.isnan(hypermodel.apply_batch(kept.network, kept_params, outside, index[:3])).all()
  assert np.isnan(hypermodel.apply_batch(full.network, full_params, outside[1:], index[:2])).all()
  for bad in ((3, 1), ()):
    with pytest.raises(ValueError, match='increasing'):
      make_agent(config, (n, n), 2, one_hot_input=True, one_hot_cells=bad)
  with pytest.raises(ValueError, match='one_hot_input'):
    hypermodel.make_network(config, (n, n), 2, one_hot_cells=cells)


def test_sphere_index_is_normalised_inside_the_network():
  config = make_config('hyperagent', 'deepsea')
  network = hypermodel.make_network(config, (4,), 2)
  params = network.init(jax.random.key(0))
  obs = jnp.array([0., 1., 0., 0.])
  xi = jnp.array([0.3, -1.2, 2.0, 0.5])
  np.testing.assert_allclose(network.apply(params, obs, xi), network.apply(params, obs, 7.5 * xi), rtol=1e-5)


def test_one_hot_index_is_an_explicit_ensemble_with_priors():
  """With one-hot indices (hyperagent_one_hot), member m is a linear head (U[:, m] + b) on φ plus a prior
  head (U₀[:, m] + b₀) on φ₀: the members share the torso and the intercept b."""
  config = make_config('hyperagent_one_hot', 'deepsea', hidden_sizes=(16, 8))
  M, A = config.index_dim, 3
  network = hypermodel.make_network(config, (5,), A)
  params = network.init(jax.random.key(0))
  obs = jax.random.normal(jax.random.key(1), (5,))
  features = hk.without_apply_rng(hk.transform(
      lambda x: hypermodel.networks.MLP(config.hidden_sizes, name='torso')(x))).apply(
      {k: v for k, v in params.items() if k.startswith('torso')}, obs)
  prior_phi = hk.without_apply_rng(hk.transform(
      lambda x: hypermodel.networks.MLP(config.hidden_sizes, name='prior_torso')(x))).apply(
      {k: v for k, v in params.items() if k.startswith('prior_torso')}, obs)
  U, b = params['hyper']['U'], params['hyper']['b']
  U0, b0 = params['prior_hyper']['U'], params['prior_hyper']['b']
  for m in range(M):
    head = (U[:, m] + b).reshape(-1, A)
    prior_head = (U0[:, m] + b0).reshape(-1, A)
    expected = config.posterior_scale * features @ head + config.prior_scale * prior_phi @ prior_head
    np.testing.assert_allclose(network.apply(params, obs, jax.nn.one_hot(m, M)), expected, rtol=1e-5, atol=1e-5)


def test_inits_follow_spec():
  deepsea = make_config('hyperagent', 'deepsea')
  params = hypermodel.make_network(deepsea, (30, 30), 2).init(jax.random.key(0))
  # b, b₀: prior_std × a unit vector; U₀: unit rows × prior_std (sDB); torso biases zero.
  np.testing.assert_allclose(jnp.linalg.norm(params['hyper']['b']), deepsea.prior_std, rtol=1e-5)
  np.testing.assert_allclose(jnp.linalg.norm(params['prior_hyper']['b']), deepsea.prior_std, rtol=1e-5)
  np.testing.assert_allclose(jnp.linalg.norm(params['prior_hyper']['U'], axis=1), deepsea.prior_std, rtol=1e-5)
  assert all(jnp.all(params[m]['b'] == 0) for m in params if 'torso' in m)
  # Xavier normal on the 900 → 64 layer: std √(2 / 964), not truncated (some |w| > 2 std).
  w = params['torso/linear_0']['w']
  std = (2 / (900 + 64)) ** 0.5
  np.testing.assert_allclose(jnp.std(w), std, rtol=0.03)
  assert jnp.max(jnp.abs(w)) > 2.5 * std
  # U: Xavier normal with fans (M, H·A).
  np.testing.assert_allclose(jnp.std(params['hyper']['U']), (2 / (4 + 128)) ** 0.5, rtol=0.15)


def test_atari_trainable_parameter_count():
  config = make_config('hyperagent', 'atari')
  params = hypermodel.make_network(config, (4, 84, 84), 18).init(jax.random.key(0))
  trainable, prior = hypermodel.split_params(params)
  assert hypermodel.count_params(trainable) == 904_096     # SPEC §1.7
  assert hypermodel.count_params(prior) == 904_096          # the frozen copy
  small = hypermodel.make_network(config, (4, 84, 84), 4).init(jax.random.key(0))
  # Breakout's 4 actions: 14 fewer heads, each H = 256 weights made from ξ by an affine map of M + 1 = 5 columns
  assert hypermodel.count_params(hypermodel.split_params(small)[0]) == 904_096 - 14 * 256 * 5


def test_deepsea_trainable_parameter_count():
  params = hypermodel.make_network(make_config(), (20, 20), 2).init(jax.random.key(0))
  assert hypermodel.count_params(hypermodel.split_params(params)[0]) == 64 * 400 + 4224 + 640


def test_dqn_has_no_index_and_no_prior():
  config = make_config('dqn', 'deepsea')
  network = hypermodel.make_network(config, (3,), 2)
  params = network.init(jax.random.key(0))
  assert set(params) == {'torso/linear_0', 'torso/linear_1', 'hyper'}
  assert network.apply(params, jnp.ones(3), jnp.zeros(0)).shape == (2,)


def test_dqn_on_atari_is_the_official_ddqn_script():
  # SPEC §4 (4): ε 1 → 0.1 over 200k steps, ε_test 0.05, n = 10, grad_coef 0.01; the torso is HyperAgent's
  config, hyper = make_config('dqn', 'atari'), make_config('hyperagent', 'atari')
  assert (config.epsilon_start, config.epsilon_end, config.epsilon_decay_steps, config.epsilon_eval) == (
      1.0, 0.1, 200_000, 0.05)
  assert config.n_step == 10 != hyper.n_step and config.grad_penalty_coef == 0.01 and config.torso == hyper.torso


@pytest.mark.parametrize('env', ['atari', 'minatar'])
def test_dqn_config_does_not_follow_hyperagents_prior_scales(env):
  # HyperAgent's prior_std differs by preset; DQN's is the default on every preset, and on the
  # Xavier-bias presets the value does not reach DQN's network at all.
  config = make_config('dqn', env)
  assert make_config('hyperagent', env).prior_std != config.prior_std == Config.prior_std
  obs_shape = (10, 10, 4) if env == 'minatar' else (4, 84, 84)
  params = [hypermodel.make_network(config.replace(prior_std=s), obs_shape, 3).init(jax.random.key(1))
            for s in (0.1, config.prior_std)]
  chex.assert_trees_all_equal(*params)


@pytest.mark.parametrize('field, value, message', [
    ('index_dim', -1, 'index_dim'),
    ('num_update_indices', 0, 'num_update_indices'),
    ('index_dist', 'uniform', 'sphere, gaussian, one_hot, none'),
    ('torso', 'resnet', 'mlp, nature_cnn, minatar_cnn, identity'),
    ('perturbation_dist', 'bernoulli', 'sphere, gaussian'),
    ('n_step', 0, 'n_step'),
    ('discount', 1.5, 'discount'),
    ('learning_rate', 'abc', 'learning_rate must be a number'),
    ('learning_rate', -1.0, 'learning_rate must be > 0'),
    ('batch_size', 'abc', 'batch_size must be an integer'),
    ('batch_size', 2.5, 'batch_size must be an integer'),
    ('hidden_sizes', 32, r'hidden_sizes must be a tuple of integers'),
    ('base_prior', 'yes', 'base_prior must be True or False'),
    ('index_resample_prob', 1.5, r'probability in \[0, 1\]'),
    ('model', 'ensemble', "model='ensemble' draws one of index_dim members"),
])
def test_bad_config_names_field_and_valid_values(field, value, message):
  with pytest.raises(ValueError, match=message):
    Config().replace(**{field: value})


def test_integers_given_for_float_fields_become_floats():
  config = Config().replace(prior_scale=5, learning_rate=1)
  assert isinstance(config.prior_scale, float) and config.prior_scale == 5.0 and config.learning_rate == 1.0


def test_unknown_field_agent_and_env_are_rejected():
  with pytest.raises(ValueError, match='valid fields'):
    Config().replace(learnig_rate=1.0)
  with pytest.raises(ValueError, match='hyperagent, ensemble, dqn'):
    make_config('boot_dqn')
  with pytest.raises(ValueError, match='deepsea, atari'):
    make_config('hyperagent', 'mujoco')


@pytest.mark.parametrize('torso, shape', [('nature_cnn', (84, 84)), ('nature_cnn', (4, 20, 20)), ('mlp', ())])
def test_observation_shape_must_match_torso(torso, shape):
  with pytest.raises(ValueError, match=torso):
    hypermodel.make_network(Config(torso=torso), shape, 2)


def test_index_distributions():
  key = jax.random.key(0)
  one_hot = indices.make_index_law('one_hot', 5).sample(key, (1000,))
  assert jnp.all(one_hot.sum(-1) == 1)
  z = indices.sample_perturbation(key, 'sphere', 4, (100,))
  np.testing.assert_allclose(jnp.linalg.norm(z, axis=-1), 1.0, rtol=1e-5)
  assert indices.make_index_law('none', 0).sample(key, (3,)).shape == (3, 0)


def test_index_laws_draw_the_stated_numbers():
  """The index law object, built once with the network: raw draws under a key, and ξ̂ the network sees."""
  key = jax.random.key(3)
  normal = np.asarray(jax.random.normal(key, (6, 4)))
  sphere = indices.make_index_law('sphere', 4)
  np.testing.assert_array_equal(sphere.sample(key, (6,)), normal)
  np.testing.assert_allclose(sphere.network_input(normal), normal / np.linalg.norm(normal, axis=-1, keepdims=True),
                             rtol=1e-6)
  gaussian = indices.make_index_law('gaussian', 4)
  np.testing.assert_array_equal(gaussian.network_input(gaussian.sample(key, (6,))), normal)
  one_hot = indices.make_index_law('one_hot', 4).sample(key, (6,))
  np.testing.assert_array_equal(one_hot, np.eye(4)[np.asarray(jax.random.randint(key, (6,), 0, 4))])
  network = hypermodel.make_network(Config(index_dist='gaussian', index_dim=3), (5,), 2)
  assert network.index.name == 'gaussian' and network.index.dim == 3
  with pytest.raises(ValueError, match='sphere, gaussian, one_hot, none'):
    indices.make_index_law('uniform', 3)


def test_batched_heads_refuse_indices_of_the_wrong_shape():
  """A [B, M] index (the target index's shape) where [B, K, M] is due would broadcast to q[B, B]:
  refused at trace time with the expected shape named."""
  config = Config(index_dist='gaussian', index_dim=3)
  network = hypermodel.make_network(config, (5,), 2)
  params = network.init(jax.random.key(0))
  obs, action = jnp.ones((4, 5)), jnp.zeros((4,), jnp.int32)
  good = jnp.ones((4, 2, 3))
  assert hypermodel.apply_taken(network, params, obs, good, action).shape == (4, 2)
  for bad in (jnp.ones((4, 3)), jnp.ones((4, 2, 2)), jnp.ones((3, 2, 3))):
    with pytest.raises(AssertionError, match=r'\[B, K, M\] = \[4, K, 3\]'):
      hypermodel.apply_taken(network, params, obs, bad, action)
    with pytest.raises(AssertionError, match=r'\[B, K, M\] = \[4, K, 3\]'):
      jax.jit(lambda i: hypermodel.apply_batch(network, params, obs, i))(bad)
