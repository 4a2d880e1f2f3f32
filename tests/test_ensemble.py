"""Ensemble+ (Osband et al. 2018): M independent Double-DQN members with frozen additive priors.

Checked against an explicit list of M independent learners (the member agent applied to each member's
slice of the state), against a Double-DQN loss written out here, and for independence: what one member
holds never moves another.
"""
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hyperagent import hypermodel
from hyperagent.agent import make_agent, member_config
from hyperagent.config import make_config
from hyperagent.replay import Batch

M, OBS, A, B = 4, 3, 2, 16
CONFIG = make_config('ensemble', 'deepsea', index_dim=M, hidden_sizes=(8, 8), batch_size=B,
                     target_update_period=2)


def member(state, m):
  return jax.tree.map(lambda x: x[m], state)


def same(a, b, **tol):
  """Two pytrees equal leaf by leaf (typed PRNG keys compared by their data)."""
  raw = lambda x: jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x
  jax.tree.map(lambda x, y: np.testing.assert_allclose(raw(x), raw(y), **tol), a, b)


def batch(key):
  ks = jax.random.split(key, 5)
  return Batch(obs=jax.random.normal(ks[0], (B, OBS)), action=jax.random.randint(ks[1], (B,), 0, A),
               reward=jax.random.normal(ks[2], (B,)), discount=0.99 * jax.random.bernoulli(ks[3], 0.8, (B,)),
               next_obs=jax.random.normal(ks[4], (B, OBS)), perturbation=jnp.zeros((B, M)))


def test_preset_is_an_ensemble_of_double_dqn_members_with_priors():
  assert CONFIG.model == 'ensemble' and CONFIG.index_dist == 'one_hot' and CONFIG.index_resample_prob == 0.0
  single = member_config(CONFIG)
  assert single.index_dim == 0 and single.base_prior and single.prior_scale == 10.0
  assert make_config('hyperagent_one_hot', 'deepsea').model == 'hypermodel'


def test_q_of_each_member_is_its_own_network_with_its_own_prior():
  ensemble = make_agent(CONFIG, (OBS,), A)
  single = make_agent(member_config(CONFIG), (OBS,), A)
  state = ensemble.init(jax.random.key(0))
  obs = jax.random.normal(jax.random.key(1), (5, OBS))
  q = jax.vmap(lambda m: jax.vmap(ensemble.network.apply, in_axes=(None, 0, None))(
      state.params, obs, jax.nn.one_hot(m, M)))(jnp.arange(M))                           # [M, 5, A]
  for m in range(M):
    np.testing.assert_allclose(q[m], jax.vmap(single.network.apply, in_axes=(None, 0, None))(
        member(state.params, m), obs, jnp.zeros((0,))), rtol=1e-5, atol=1e-6)  # vmapped matmuls round apart
  # the batched form (coefficients) gives the same numbers
  index = jnp.broadcast_to(jnp.eye(M), (5, M, M))
  np.testing.assert_allclose(hypermodel.apply_batch(ensemble.network, state.params, obs, index),
                             jnp.moveaxis(q, 0, 1), rtol=1e-6, atol=1e-6)
  # members differ, priors included: each was initialised from its own key
  _, prior = hypermodel.split_params(state.params)
  assert not np.allclose(prior['prior_hyper']['b'][0], prior['prior_hyper']['b'][1])
  assert not np.allclose(q[0], q[1])


def test_learn_equals_m_independent_double_dqn_learners():
  ensemble = make_agent(CONFIG, (OBS,), A)
  single = make_agent(member_config(CONFIG), (OBS,), A)
  state = ensemble.init(jax.random.key(0))
  for step in range(3):  # crosses a target-network copy (period 2)
    data = batch(jax.random.key(10 + step))
    new, metrics = ensemble.learn(state, data, jnp.array(100))
    td = []
    for m in range(M):
      alone, info = single.learn(member(state, m), data._replace(perturbation=jnp.zeros((B, 0))), jnp.array(100))
      same(member(new, m), alone, rtol=1e-6, atol=1e-7)
      td.append(info['td_loss'])
    np.testing.assert_allclose(metrics['td_loss'], np.mean(td), rtol=1e-6)
    state = new


def test_member_loss_is_double_dqn_on_its_own_target_network():
  """Each member's TD loss, written out: G = r + D·Q⁻_m(s', argmax_a Q_m(s', a)), one member at a time,
  on the eleventh update, where θ_m has moved ten Adam steps and θ⁻_m has not (copied before the
  first; period 20)."""
  config = CONFIG.replace(target_update_period=20)
  single = make_agent(member_config(config), (OBS,), A)
  ensemble = make_agent(config, (OBS,), A)
  state = ensemble.init(jax.random.key(3))
  for i in range(10):
    state, _ = ensemble.learn(state, batch(jax.random.key(50 + i)), jnp.array(100))
  data = batch(jax.random.key(4))
  _, metrics = ensemble.learn(state, data, jnp.array(100))
  q = lambda params, obs: jax.vmap(single.network.apply, in_axes=(None, 0, None))(params, obs, jnp.zeros((0,)))
  rows = jnp.arange(B)
  losses, with_theta = [], []
  for m in range(M):
    params = member(state.params, m)
    frozen = {**params, **member(state.target_params, m)}  # θ⁻_m with the member's own prior
    assert not np.allclose(params['hyper']['b'], frozen['hyper']['b'])
    taken = q(params, data.obs)[rows, data.action]
    argmax = jnp.argmax(q(params, data.next_obs), axis=-1)
    g = data.reward + data.discount * q(frozen, data.next_obs)[rows, argmax]
    losses.append(np.mean((g - taken) ** 2))
    g_theta = data.reward + data.discount * q(params, data.next_obs)[rows, argmax]
    with_theta.append(np.mean((g_theta - taken) ** 2))
  np.testing.assert_allclose(metrics['td_loss'], np.mean(losses), rtol=1e-5)
  # ten Adam steps apart, θ in the target instead of θ⁻ moves the loss by far more than the tolerance
  # (measured: 1.75e-3 of the loss apart), 20 times the tolerance that the equality above holds to
  assert abs(np.mean(with_theta) - np.mean(losses)) > 20 * 1e-5 * np.mean(losses), (np.mean(with_theta), np.mean(losses))


def test_one_member_never_moves_another():
  """Changing member 0 (its parameters made huge, so its gradient is clipped hard) leaves every other
  member's update bit for bit the same: no shared head, no shared clipping, no shared target."""
  ensemble = make_agent(CONFIG, (OBS,), A)
  state = ensemble.init(jax.random.key(0))
  data = batch(jax.random.key(1))
  trainable, prior = hypermodel.split_params(state.params)
  blown = jax.tree.map(lambda x: x.at[0].multiply(100.0), trainable)
  other = state._replace(params=hk.data_structures.merge(blown, prior))
  a, _ = ensemble.learn(state, data, jnp.array(100))
  b, _ = ensemble.learn(other, data, jnp.array(100))
  for m in range(1, M):
    same(member(a, m), member(b, m), rtol=0, atol=0)
  assert not np.allclose(member(a, 0).params['torso/linear_0']['w'], member(b, 0).params['torso/linear_0']['w'])


def test_acting_holds_one_member_per_episode():
  ensemble = make_agent(CONFIG.replace(warmup_steps=0), (OBS,), A)
  state = ensemble.init(jax.random.key(0))
  actor = ensemble.init_actor(jax.random.key(1), 3)
  obs = jnp.ones((3, OBS))
  held = []
  for t in range(40):
    _, actor = ensemble.act(state.params, actor, obs, jnp.full((3,), t % 20 == 0))
    held.append(np.argmax(np.asarray(actor.index), axis=-1))
  held = np.array(held)
  assert np.all(held[1:20] == held[0]) and np.all(held[21:40] == held[20])
  assert np.all(np.asarray(actor.index).sum(-1) == 1)


SHARED = CONFIG.replace(ensemble_torso='shared')


def test_shared_torso_ensemble_regresses_each_member_onto_its_own_target():
  """The shared-torso form (Atari's and MinAtar's default): one torso, heads U[:, m] with no shared intercept, every
  member trained on every transition against its own Double-DQN target; the loss written out here."""
  from hyperagent import losses
  agent = make_agent(SHARED, (OBS,), A)
  assert make_config('ensemble', 'atari').ensemble_torso == 'shared'
  assert make_config('ensemble', 'minatar').ensemble_torso == 'shared'
  assert make_config('ensemble', 'deepsea').ensemble_torso == 'independent'
  state = agent.init(jax.random.key(0))
  trainable, prior = hypermodel.split_params(state.params)
  assert 'b' not in trainable['hyper'] and 'b' not in prior['prior_hyper']
  data = batch(jax.random.key(1))
  target_params = jax.tree.map(lambda x: -30 * x, trainable)  # differs, argmax included: it outweighs the prior
  every = jnp.broadcast_to(jnp.eye(M), (B, M, M))
  total, info = losses.loss(agent.network, SHARED, trainable, prior, target_params, data, every, every,
                            jax.random.key(2), jnp.array(100))
  q = lambda params, obs, m: jax.vmap(agent.network.apply, in_axes=(None, 0, None))(params, obs, jax.nn.one_hot(m, M))
  online_params = hk.data_structures.merge(trainable, prior)
  target_full = hk.data_structures.merge(target_params, prior)

  def written_out(target_full):  # [B, M] squared TD errors, and how often the target's argmax differs
    expected, disagree = [], 0
    for m in range(M):
      best = jnp.argmax(q(online_params, data.next_obs, m), axis=-1)
      disagree += int(jnp.sum(best != jnp.argmax(q(target_full, data.next_obs, m), axis=-1)))
      g = data.reward + data.discount * q(target_full, data.next_obs, m)[jnp.arange(B), best]
      expected.append((g - q(online_params, data.obs, m)[jnp.arange(B), data.action]) ** 2)
    return expected, disagree

  expected, disagree = written_out(target_full)
  np.testing.assert_allclose(info.td_loss, np.mean(expected), rtol=1e-5)
  assert disagree >= B * M // 4  # so the target's own argmax (plain Q-learning) would give another loss
  # agent.learn hands the loss every member with its own target index: its first update (θ⁻ = θ)
  # reports the written-out loss (member 0's target index for every member would not)
  _, metrics = agent.learn(state, data, jnp.array(100))
  np.testing.assert_allclose(metrics['td_loss'], np.mean(written_out(online_params)[0]), rtol=1e-5)
  # with bootstrap masks, member m's terms are weighted by column m of the stored masks
  masks = jax.random.bernoulli(jax.random.key(3), 0.5, (B, M)).astype(jnp.float32)
  _, info = losses.loss(agent.network, SHARED, trainable, prior, target_params, data._replace(weight=masks),
                        every, every, jax.random.key(2), jnp.array(100))
  np.testing.assert_allclose(info.td_loss, np.mean(np.stack(expected, -1) * masks), rtol=1e-5)


def test_shared_torso_members_have_independent_heads():
  """Member 0's loss moves the torso and head 0 only: the gradient on every other head is exactly 0."""
  from hyperagent import losses
  agent = make_agent(SHARED, (OBS,), A)
  state = agent.init(jax.random.key(0))
  trainable, prior = hypermodel.split_params(state.params)
  data = batch(jax.random.key(1))
  first = jnp.broadcast_to(jnp.eye(M)[:1], (B, 1, M))
  grads = jax.grad(lambda t: losses.loss(agent.network, SHARED, t, prior, trainable, data, first, first,
                                         jax.random.key(2), jnp.array(100))[0])(trainable)
  heads = np.asarray(grads['hyper']['U'])  # [H * A, M]
  assert np.abs(heads[:, 0]).sum() > 0 and np.all(heads[:, 1:] == 0)
  assert np.abs(np.asarray(grads['torso/linear_0']['w'])).sum() > 0


def test_shared_torso_heads_are_drawn_as_independent_members_heads():
  """Column m of U and U₀ is member m's head and prior head, drawn as an M = 0 member draws its
  intercept b: on DeepSea's preset a unit vector times prior_std, on MinAtar's (Xavier for an H x A
  layer) std √(2/(H + A)), not the stacked (H·A, M) matrix's √(2/(H·A + M)), 2.4x smaller here."""
  shared = make_agent(SHARED, (OBS,), A).init(jax.random.key(0)).params
  for name in ('hyper', 'prior_hyper'):
    np.testing.assert_allclose(np.linalg.norm(shared[name]['U'], axis=0), CONFIG.prior_std, rtol=1e-5)
  alone = make_agent(member_config(CONFIG), (OBS,), A).init(jax.random.key(0)).params
  np.testing.assert_allclose(np.linalg.norm(alone['hyper']['b']), CONFIG.prior_std, rtol=1e-5)

  minatar = make_config('ensemble', 'minatar')
  obs, actions, features = (10, 10, 4), 6, minatar.cnn_feature_dim
  xavier = np.sqrt(2 / (features + actions))
  heads = make_agent(minatar, obs, actions).init(jax.random.key(1)).params
  independent = make_agent(minatar.replace(ensemble_torso='independent'), obs, actions).init(jax.random.key(1)).params
  assert heads['hyper']['U'].shape == (features * actions, minatar.index_dim)
  for u in (heads['hyper']['U'], heads['prior_hyper']['U'], independent['hyper']['b']):
    assert abs(float(np.std(u)) / xavier - 1) < 0.05  # 7,680 draws: the std's own error is ~1%
  columns = np.corrcoef(np.asarray(heads['hyper']['U']).T)
  assert np.max(np.abs(columns - np.eye(minatar.index_dim))) < 0.1  # drawn independently


MASKED = CONFIG.replace(bootstrap_prob=0.5)


def test_bootstrap_masks_weigh_each_members_loss_by_its_own_column():
  """With masks, member m's update is the lone learner's on a loss whose terms are weighted by column m;
  its loss written out is mean_i(w_im · (G_im − Q_m(s_i, a_i))²), as bsuite's boot_dqn masks it."""
  ensemble = make_agent(MASKED, (OBS,), A)
  single = make_agent(member_config(CONFIG), (OBS,), A)
  state = ensemble.init(jax.random.key(0))
  data = batch(jax.random.key(1))
  masks = ensemble.perturbation(jax.random.key(2), (B,))
  new, metrics = ensemble.learn(state, data._replace(perturbation=masks), jnp.array(100))
  q = lambda params, obs: jax.vmap(single.network.apply, in_axes=(None, 0, None))(params, obs, jnp.zeros((0,)))
  losses = []
  for m in range(M):
    alone, _ = single.learn(member(state, m), data._replace(perturbation=jnp.zeros((B, 0)), weight=masks[:, m]),
                            jnp.array(100))
    same(member(new, m), alone, rtol=1e-6, atol=1e-7)
    params = member(state.params, m)  # first update: θ⁻ = θ
    g = data.reward + data.discount * q(params, data.next_obs)[jnp.arange(B), jnp.argmax(q(params, data.next_obs), -1)]
    losses.append(np.mean(masks[:, m] * (g - q(params, data.obs)[jnp.arange(B), data.action]) ** 2))
  np.testing.assert_allclose(metrics['td_loss'], np.mean(losses), rtol=1e-5)


def test_a_member_masked_out_of_the_whole_batch_does_not_move():
  """Its gradient is exactly zero, so on the first step (Adam's moments still zero) it stays put while
  the others learn."""
  ensemble = make_agent(MASKED, (OBS,), A)
  state = ensemble.init(jax.random.key(0))
  masks = jnp.ones((B, M)).at[:, 1].set(0.0)
  new, _ = ensemble.learn(state, batch(jax.random.key(1))._replace(perturbation=masks), jnp.array(100))
  same(member(new, 1).params, member(state, 1).params, rtol=0, atol=0)
  for m in (0, 2, 3):
    assert not np.allclose(member(new, m).params['torso/linear_0']['w'], member(state, m).params['torso/linear_0']['w'])


def test_bootstrap_masks_are_bernoulli_and_absent_by_default():
  masks = np.asarray(make_agent(MASKED, (OBS,), A).perturbation(jax.random.key(0), (20_000,)))
  assert masks.shape == (20_000, M) and set(np.unique(masks)) == {0.0, 1.0}
  np.testing.assert_allclose(masks.mean(0), 0.5, atol=0.015)  # 4.2 standard errors
  assert np.all(np.asarray(make_agent(CONFIG, (OBS,), A).perturbation(jax.random.key(0), (7,))) == 1.0)
  shared = make_agent(SHARED.replace(bootstrap_prob=0.25), (OBS,), A).perturbation(jax.random.key(1), (20_000,))
  np.testing.assert_allclose(np.asarray(shared).mean(0), 0.25, atol=0.015)


def test_bootstrap_prob_is_checked():
  with pytest.raises(ValueError, match='bootstrap_prob must be in'):
    CONFIG.replace(bootstrap_prob=0.0)
  with pytest.raises(ValueError, match="needs model='ensemble'"):
    make_config('hyperagent', 'deepsea', bootstrap_prob=0.5)


@pytest.mark.parametrize('env', ['deepsea', 'minatar'])  # independent and shared torsos alike
@pytest.mark.parametrize('field', ['perturbation_scale', 'hyper_reg_coef', 'grad_penalty_coef'])
def test_hyperagent_only_terms_are_refused_for_ensemble_plus(env, field):
  """Osband et al.'s method has none of them: the members would drop them and a shared torso would
  apply them, so a --set of one is an error naming the fields, not a silent difference."""
  with pytest.raises(ValueError, match=f"model='ensemble'.*must be 0; got {{'{field}': 0.01}}"):
    make_config('ensemble', env, **{field: 0.01})
  make_config('hyperagent_one_hot', env, **{field: 0.01})  # the one-hot hypermodel is HyperAgent's


def test_a_members_prior_head_has_weights_of_variance_one_over_h_times_a_hyperagents_one_over_m():
  """The reason the same prior_scale makes a smaller prior in Ensemble+ (README, bsuite section): a
  member's frozen head is prior_std × a unit vector over its H·A weights; HyperAgent's prior head
  generates U₀ξ̂ with unit-norm rows, so each generated weight has variance prior_std² / M."""
  member = make_agent(make_config('ensemble', 'deepsea'), (5,), 2)
  params = member.init(jax.random.key(0)).params
  heads = params['prior_hyper']['b']  # [members, H·A]
  np.testing.assert_allclose(jnp.linalg.norm(heads, axis=-1), 1.0, rtol=1e-5)  # prior_std 1
  hyper = make_agent(make_config('hyperagent', 'deepsea'), (5,), 2)
  u0 = hyper.init(jax.random.key(0)).params['prior_hyper']['U']  # [H·A, M]
  np.testing.assert_allclose(jnp.linalg.norm(u0, axis=-1), 1.0, rtol=1e-5)
  xi = hyper.network.index.network_input(hyper.network.index.sample(jax.random.key(1), (2000,)))
  generated = xi @ u0.T  # [draws, H·A]: each entry ⟨row, ξ̂⟩ with ξ̂ on the unit sphere of R^M
  assert u0.shape[1] == 4 and abs(float(generated.var()) - 1 / 4) < 0.02
  assert heads.shape[-1] == 128 and abs(float(heads.var()) - 1 / 128) < 0.002


def test_prior_spread_script_shows_the_smaller_member_prior(capsys):
  import experiment_scripts
  script = experiment_scripts.load('prior_spread')
  assert script.main(['--bits', '9', '--inits', '1', '--agents', 'hyperagent', 'ensemble']) == 0
  row = capsys.readouterr().out.splitlines()[-1]
  hyper, ensemble = (float(cell) for cell in row.strip('| ').split(' | ')[1:])
  assert hyper > 3 * ensemble > 0
  assert script.main(['--bits', '9', '--inits', '1', '--agents', 'hyperagent', '--set', 'prior_scale=0']) == 0
  assert float(capsys.readouterr().out.splitlines()[-1].strip('| ').split(' | ')[1]) < 0.1 * hyper
