"""The agent's learn and act: frozen prior, target copies, index schedule, ε-greedy, determinism."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import rlax

from hyperagent import acting, hypermodel, losses, replay
from hyperagent.agent import make_agent
from hyperagent.config import make_config
from hyperagent.replay import Batch


def random_batch(key, batch_size, obs_dim, index_dim, num_actions=2):
  ks = jax.random.split(key, 6)
  return Batch(obs=jax.random.normal(ks[0], (batch_size, obs_dim)),
               action=jax.random.randint(ks[1], (batch_size,), 0, num_actions),
               reward=jax.random.normal(ks[2], (batch_size,)),
               discount=jnp.where(jax.random.uniform(ks[3], (batch_size,)) < 0.2, 0.0, 0.99),
               next_obs=jax.random.normal(ks[4], (batch_size,obs_dim)),
               perturbation=jax.random.normal(ks[5], (batch_size, index_dim)))


def test_prior_is_bit_identical_after_100_learn_steps():
  config = make_config('hyperagent', 'deepsea', batch_size=16, perturbation_scale=0.1,
                       hyper_reg_coef=0.1, grad_penalty_coef=0.01)
  agent = make_agent(config, (8,), 2)
  state = agent.init(jax.random.key(0))
  _, prior0 = hypermodel.split_params(state.params)
  trainable0, _ = hypermodel.split_params(state.params)
  # the frozen part by its module names, not through split_params (the function under test)
  assert sorted(prior0) == ['prior_hyper', 'prior_torso/linear_0', 'prior_torso/linear_1']
  assert sorted(trainable0) == ['hyper', 'torso/linear_0', 'torso/linear_1']

  def body(state, key):
    return agent.learn(state, random_batch(key, 16, 8, 4), jnp.array(1000))

  state, metrics = jax.lax.scan(body, state, jax.random.split(jax.random.key(1), 100))
  trainable, prior = hypermodel.split_params(state.params)
  assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), prior0, prior))
  assert not jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), trainable0, trainable))
  assert int(state.step) == 100 and np.all(np.isfinite(metrics['loss']))


def test_target_copied_every_T_steps_starting_with_the_first():
  config = make_config('hyperagent', 'deepsea', batch_size=8, target_update_period=3)
  agent = make_agent(config, (5,), 2)
  state = agent.init(jax.random.key(0))
  history = []
  for i in range(7):
    before, _ = hypermodel.split_params(state.params)
    state, _ = agent.learn(state, random_batch(jax.random.key(i), 8, 5, 4), jnp.array(100))
    history.append((before, state.target_params))
  same = lambda a, b: jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.array_equal(x, y)), a, b))
  for i, (before, target) in enumerate(history):
    copy_step = i - i % 3      # the update at which the last copy happened
    assert same(target, history[copy_step][0]), i
  assert not same(history[1][1], history[1][0])


def test_learn_is_deterministic_under_a_seed():
  config = make_config('hyperagent', 'deepsea', batch_size=8)
  agent = make_agent(config, (5,), 2)
  batch = random_batch(jax.random.key(9), 8, 5, 4)
  runs = []
  for _ in range(2):
    state = agent.init(jax.random.key(42))
    for _ in range(3):
      state, metrics = agent.learn(state, batch, jnp.array(8))
    runs.append(float(metrics['loss']))
  assert runs[0] == runs[1]


def test_learning_reduces_loss_on_a_fixed_batch():
  config = make_config('hyperagent', 'deepsea', batch_size=32, prior_scale=1.0)
  agent = make_agent(config, (5,), 2)
  batch = random_batch(jax.random.key(3), 32, 5, 4)._replace(discount=jnp.zeros(32))
  state = agent.init(jax.random.key(0))
  state, first = agent.learn(state, batch, jnp.array(32))
  for _ in range(300):
    state, metrics = agent.learn(state, batch, jnp.array(32))
  assert metrics['td_loss'] < 0.5 * first['td_loss']


def run_actor(agent, steps, num_envs, first_every=None, evaluation=False):
  state = agent.init(jax.random.key(0))
  actor = agent.init_actor(jax.random.key(1), num_envs)
  obs = jnp.ones((num_envs, 3))  # not zeros: zero features would tie every action

  def body(actor, t):
    first = jnp.zeros(num_envs, bool) if first_every is None else jnp.broadcast_to(t % first_every == 0, (num_envs,))
    action, new = agent.act(state.params, actor, obs, first, evaluation=evaluation)
    return new, (new.index, first, action)

  return jax.lax.scan(body, actor, jnp.arange(steps))[1]


def test_index_fresh_at_episode_start_and_held_for_one_over_one_minus_gamma():
  agent = make_agent(make_config('hyperagent', 'deepsea', warmup_steps=0), (3,), 2)
  index, first, _ = run_actor(agent, 4000, 16, first_every=None)
  changed = np.any(np.asarray(index[1:] != index[:-1]), axis=-1)        # [T-1, E]
  mean_hold = 1.0 / changed.mean()
  assert 85 < mean_hold < 117, mean_hold   # 1/(1-γ) = 100; 640 switches expected, ±3.5 std
  index, first, _ = run_actor(agent, 200, 8, first_every=10)
  starts = np.asarray(first)[1:, 0]
  assert np.all(np.any(np.asarray(index[1:] != index[:-1]), axis=-1)[starts])


def test_evaluation_resamples_only_at_episode_start():
  agent = make_agent(make_config('hyperagent', 'deepsea'), (3,), 2)
  index, first, _ = run_actor(agent, 300, 4, first_every=50, evaluation=True)
  changed = np.any(np.asarray(index[1:] != index[:-1]), axis=-1)
  np.testing.assert_array_equal(changed, np.broadcast_to(np.asarray(first)[1:], changed.shape))


def test_warmup_actions_are_uniform_then_greedy():
  agent = make_agent(make_config('hyperagent', 'deepsea', warmup_steps=400), (3,), 2)
  index, _, action = run_actor(agent, 200, 4)   # 800 env steps: the first 400 are warm-up
  warm = np.asarray(action[:100]).ravel()
  assert 0.4 < warm.mean() < 0.6
  params = agent.init(jax.random.key(0)).params  # run_actor's
  q = jax.vmap(jax.vmap(lambda xi: agent.network.apply(params, jnp.ones(3), xi)))(index[100:])  # [T, E, A]
  # after the warm-up every action is the argmax of Q under the index held at that step (obs = 1: no ties)
  np.testing.assert_array_equal(np.asarray(action[100:]), np.asarray(jnp.argmax(q, axis=-1)))


def test_dqn_epsilon_greedy_schedule():
  config = make_config('dqn', 'deepsea', warmup_steps=0, epsilon_start=1.0, epsilon_end=0.0,
                       epsilon_decay_steps=1000)
  agent = make_agent(config, (3,), 2)
  np.testing.assert_allclose(acting.epsilon(config, jnp.array([0, 250, 500, 1000, 2000])), [1, .75, .5, 0, 0])
  _, _, action = run_actor(agent, 500, 8)   # ε = 1 → 0 over the first 1000 of 4000 env steps (8 per row)
  late = np.asarray(action[200:])
  assert np.all(late == late[0, 0])        # greedy with constant obs and no index
  # env steps 400-600 (rows 50-74): ε from 0.6 to 0.4, so P(greedy action) = 1 - ε/2 ≈ 0.75 on 200 draws
  assert abs(np.mean(np.asarray(action[50:75]) == late[0, 0]) - 0.75) < 0.1


def test_replay_sampling_follows_env_columns_and_episode_ends():
  """Two envs writing in lockstep: n-step chains stay in their own column and stop at episode ends;
  the action and the perturbation z are the chain's first transition's."""
  state = replay.init(capacity=6, num_envs=2, obs_example=jnp.zeros((), jnp.int32), index_dim=1)
  # env 0: one long episode; env 1: episodes of length 2 (terminal on odd steps).
  for t in range(8):
    state = replay.add(state, jnp.array([t, 100 + t]), jnp.array([t % 3, (t + 1) % 3]), jnp.array([1.0, 10.0 + t]),
                       jnp.array([False, t % 2 == 1]), jnp.array([False, False]),
                       jnp.array([t + 1, 101 + t]), jnp.array([[t], [100. + t]]))
  assert int(replay.size(state)) == 12
  batch = replay.sample(state, jax.random.key(0), 500, n_step=3, discount=0.5)
  np.testing.assert_array_equal(np.asarray(batch.perturbation)[:, 0], np.asarray(batch.obs))
  np.testing.assert_array_equal(np.asarray(batch.action), (np.asarray(batch.obs) % 100 + (batch.obs >= 100)) % 3)  # t % 3, (t + 1) % 3
  for obs, ret, disc, nxt in zip(*map(np.asarray, (batch.obs, batch.reward, batch.discount, batch.next_obs))):
    assert 2 <= obs <= 7 or 102 <= obs <= 107      # the ring holds the last 6 steps
    if obs < 100:
      m = min(3, 8 - obs)                          # stops at the newest stored step
      np.testing.assert_allclose(ret, sum(0.5 ** j for j in range(m)))
      np.testing.assert_allclose(disc, 0.5 ** m)
      assert nxt == obs + m
    else:
      t = obs - 100
      expected = 10.0 + t if t % 2 else 10.0 + t + 0.5 * (11.0 + t)
      np.testing.assert_allclose(ret, expected)
      assert disc == 0.0 and nxt == (101 + t if t % 2 else 102 + t)
  # uniform over the 12 stored (step, env) cells: each count within 5 binomial sds of 500/12 (a cell
  # never drawn, e.g. the oldest row or one env's column, is 41 counts, ~7 sds, below)
  cells, counts = np.unique(np.asarray(batch.obs), return_counts=True)
  assert cells.tolist() == [*range(2, 8), *range(102, 108)]
  assert np.all(np.abs(counts - 500 / 12) < 5 * np.sqrt(500 * (1 / 12) * (11 / 12))), counts


def test_a_replay_that_never_wrapped_grows_to_the_buffer_a_larger_one_would_be():
  """6 steps into a buffer of 6, grown to 10, then 2 more steps: every field and the next row equal a
  buffer of 10 that took the same 8 steps; grown to its own size, a full buffer is unchanged. A buffer
  that overwrote rows (7 steps into 6) is refused, as is a smaller capacity."""
  def fill(state, steps):
    for t in steps:
      state = replay.add(state, jnp.array([t]), jnp.array([t % 2]), jnp.array([float(t)]), jnp.array([t == 3]),
                         jnp.array([False]), jnp.array([t + 1]), jnp.full((1, 2), float(t)))
    return state
  empty = lambda capacity: replay.init(capacity=capacity, num_envs=1, obs_example=jnp.zeros((), jnp.int32), index_dim=2)
  grown = fill(replay.grow(fill(empty(6), range(6)), 10), range(6, 8))
  straight = fill(empty(10), range(8))
  for name, a, b in zip(replay.ReplayState._fields, grown, straight):
    np.testing.assert_array_equal(a, b, err_msg=name)
  full = fill(empty(6), range(6))
  for a, b in zip(replay.grow(full, 6), full):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(ValueError, match='never overwrote'):
    replay.grow(fill(empty(6), range(7)), 10)
  with pytest.raises(ValueError, match='not 4'):
    replay.grow(fill(empty(6), range(3)), 4)


def test_perturbation_is_the_papers_law_under_the_given_key():
  """agent.perturbation(key, shape), the one draw of z every loop stores: N(0, I) normalised to the
  unit sphere (SPEC §2.7), or N(0, I) itself for perturbation_dist='gaussian'."""
  key = jax.random.key(7)
  raw = np.asarray(jax.random.normal(key, (5, 4)))
  sphere = make_agent(make_config('hyperagent', 'deepsea'), (3,), 2).perturbation(key, (5,))
  np.testing.assert_allclose(sphere, raw / np.linalg.norm(raw, axis=-1, keepdims=True), rtol=1e-6)
  gaussian = make_agent(make_config('hyperagent', 'deepsea', perturbation_dist='gaussian'), (3,), 2)
  np.testing.assert_array_equal(gaussian.perturbation(key, (5,)), raw)
  assert make_agent(make_config('dqn', 'deepsea'), (3,), 2).perturbation(key, (5,)).shape == (5, 0)


def test_one_warm_up_predicate_for_acting_and_learning():
  """Actions are random for env steps 0 .. W-1 (W transitions then stored) and the first gradient
  step comes right after the W-th transition is stored: the same predicate on both sides."""
  config = make_config('hyperagent', 'deepsea', warmup_steps=3)
  agent = make_agent(config, (3,), 2)
  assert [agent.warmed_up(n) for n in range(5)] == [False, False, False, True, True]
  np.testing.assert_array_equal(agent.warmed_up(jnp.arange(5)), [False, False, False, True, True])
  np.testing.assert_array_equal(agent.warmed_up(np.arange(5)), [False, False, False, True, True])
  from hyperagent.atari.loop import due_updates
  assert list(due_updates(np.arange(6), config, 1.0, xp=np)) == [0, 0, 0, 1, 2, 3]


def test_act_and_replay_refuse_mismatched_shapes():
  import pytest
  agent = make_agent(make_config('hyperagent', 'deepsea'), (3,), 2)
  state = agent.init(jax.random.key(0))
  actor = agent.init_actor(jax.random.key(1), 2)
  with pytest.raises(AssertionError, match=r'actor_state.index must be \[E, M\] = \[3, 4\]'):
    agent.act(state.params, actor, jnp.ones((3, 3)), jnp.zeros(3, bool))
  with pytest.raises(AssertionError, match=r'first must be \[E\] = \[2\]'):
    agent.act(state.params, actor, jnp.ones((2, 3)), jnp.zeros(3, bool))
  buffer = replay.init(8, 2, jnp.zeros((3,)), 4)
  z = jnp.zeros((2, 4))
  with pytest.raises(AssertionError, match=r'perturbation must be \[E, M\] = \[2, 4\]'):
    replay.add(buffer, jnp.ones((2, 3)), jnp.zeros(2, jnp.int32), jnp.zeros(2), jnp.zeros(2, bool),
               jnp.zeros(2, bool), jnp.ones((2, 3)), jnp.zeros((2, 3)))
  with pytest.raises(AssertionError, match=r'action, reward, terminated and truncated must be \[E\]'):
    replay.add(buffer, jnp.ones((2, 3)), jnp.zeros(1, jnp.int32), jnp.zeros(2), jnp.zeros(2, bool),
               jnp.zeros(2, bool), jnp.ones((2, 3)), z)


def test_dqn_learn_is_rlax_double_q_with_clipped_adam_written_out():
  """Four DQN (M = 0) updates against an independent reference: the gradient of rlax's double-Q TD
  loss, clipped to max_grad_norm by hand and fed to Adam written out in numpy, with θ⁻ ← θ at the
  start of every T-th update. The clip is active (checked), so a missing clip would show."""
  config = make_config('dqn', 'deepsea', batch_size=8, target_update_period=2, max_grad_norm=0.05,
                       learning_rate=1e-2)
  agent = make_agent(config, (5,), 3)
  state = agent.init(jax.random.key(0))
  theta, prior = hypermodel.split_params(state.params)
  assert not jax.tree.leaves(prior)   # DQN: no frozen part
  no_index = jnp.zeros((0,))
  q = jax.vmap(agent.network.apply, in_axes=(None, 0, None))

  def td_loss(params, target_params, batch):
    td = jax.vmap(rlax.double_q_learning)(q(params, batch.obs, no_index), batch.action, batch.reward,
                                          batch.discount, q(target_params, batch.next_obs, no_index),
                                          q(params, batch.next_obs, no_index))
    return jnp.mean(td ** 2)

  flat = lambda tree: {k: np.asarray(v, np.float64) for k, v in jax.tree_util.tree_leaves_with_path(tree)}
  ref = flat(theta)
  m = {k: np.zeros_like(v) for k, v in ref.items()}
  v = {k: np.zeros_like(x) for k, x in ref.items()}
  target = None
  unflat = lambda d: jax.tree_util.tree_unflatten(jax.tree.structure(theta), [jnp.asarray(d[k], jnp.float32) for k in ref])
  b1, b2, eps, lr = 0.9, 0.999, config.adam_eps, config.learning_rate
  for t in range(4):
    batch = random_batch(jax.random.key(10 + t), 8, 5, 0, num_actions=3)
    if t % config.target_update_period == 0:
      target = dict(ref)
    grads = flat(jax.grad(td_loss)(unflat(ref), unflat(target), batch))
    norm = np.sqrt(sum(np.sum(g ** 2) for g in grads.values()))
    assert norm > config.max_grad_norm, norm
    for k in ref:
      g = grads[k] * config.max_grad_norm / norm
      m[k] = b1 * m[k] + (1 - b1) * g
      v[k] = b2 * v[k] + (1 - b2) * g ** 2
      ref[k] = ref[k] - lr * (m[k] / (1 - b1 ** (t + 1))) / (np.sqrt(v[k] / (1 - b2 ** (t + 1))) + eps)
    state, metrics = agent.learn(state, batch, jnp.array(100))
    np.testing.assert_allclose(float(metrics['grad_norm']), norm, rtol=1e-4)
    got = flat(hypermodel.split_params(state.params)[0])
    for k in ref:
      np.testing.assert_allclose(got[k], ref[k], rtol=1e-4, atol=1e-6, err_msg=f'step {t}, {k}')
    for k, x in flat(state.target_params).items():
      np.testing.assert_allclose(x, target[k], rtol=1e-4, atol=1e-6, err_msg=f'target, step {t}, {k}')


def test_learn_draws_fresh_distinct_update_and_target_indices(monkeypatch):
  """HyperAgent's learn hands the loss K fresh update indices per transition, [B, K, M], and one
  target index per transition, [B, M], all distinct, and new ones at the next update."""
  seen = []
  real_loss = losses.loss

  def recording_loss(network, config, trainable, prior, target, batch, update_index, target_index, *rest):
    # a callback, not disable_jit: the compiled learn is what runs (and op by op took ~45 s)
    jax.debug.callback(lambda u, g: seen.append((np.asarray(u), np.asarray(g))), update_index, target_index)
    return real_loss(network, config, trainable, prior, target, batch, update_index, target_index, *rest)

  monkeypatch.setattr(losses, 'loss', recording_loss)
  config = make_config('hyperagent', 'deepsea', batch_size=6, num_update_indices=5)
  agent = make_agent(config, (5,), 2)
  state = agent.init(jax.random.key(0))
  learn = jax.jit(agent.learn)
  for t in range(2):
    state, _ = learn(state, random_batch(jax.random.key(t), 6, 5, 4), jnp.array(100))
  jax.effects_barrier()
  assert [(u.shape, g.shape) for u, g in seen] == [((6, 5, 4), (6, 4))] * 2
  rows = np.concatenate([np.concatenate([u.reshape(-1, 4), g]) for u, g in seen])
  assert len(np.unique(rows.round(6), axis=0)) == len(rows) == 2 * (6 * 5 + 6)


def test_acting_breaks_ties_uniformly():
  """SPEC §2.1: greedy with ties broken at random, not by the lowest index. DQN with every parameter 0
  has Q = 0 for all 3 actions: 3,000 envs' test actions are uniform (each count within 5 binomial sds
  of 1,000)."""
  agent = make_agent(make_config('dqn', 'deepsea'), (5,), 3)
  params = jax.tree.map(jnp.zeros_like, agent.init(jax.random.key(0)).params)
  actor = agent.init_actor(jax.random.key(1), 3000)
  action, _ = agent.act(params, actor, jnp.ones((3000, 5)), jnp.ones(3000, bool), evaluation=True)
  counts = np.bincount(np.asarray(action), minlength=3)
  assert np.all(np.abs(counts - 1000) < 5 * np.sqrt(3000 * (1 / 3) * (2 / 3))), counts


def test_evaluation_is_greedy_before_the_warm_up_and_leaves_the_step_counter():
  """The test-time policy: greedy under the index drawn at episode start even before any warm-up
  step (training would still act at random there), and the actor's step does not advance."""
  agent = make_agent(make_config('hyperagent', 'deepsea', warmup_steps=400), (3,), 4)
  params = agent.init(jax.random.key(0)).params
  obs = jax.random.normal(jax.random.key(1), (64, 3))
  actor = agent.init_actor(jax.random.key(2), 64)
  action, after = agent.act(params, actor, obs, jnp.ones(64, bool), evaluation=True)
  q = jax.vmap(agent.network.apply, in_axes=(None, 0, 0))(params, obs, after.index)
  np.testing.assert_array_equal(action, jnp.argmax(q, axis=-1))
  assert int(after.step) == int(actor.step) == 0
  assert np.any(np.asarray(after.index != actor.index))  # first=True drew fresh indices
  train_action, trained = agent.act(params, actor, obs, jnp.ones(64, bool))
  assert int(trained.step) == 64
  assert np.mean(np.asarray(train_action) == np.asarray(jnp.argmax(q, axis=-1))) < 0.6  # warm-up: uniform


def test_dqn_test_policy_is_epsilon_eval_greedy():
  """DQN's Atari test policy, ε_eval = 0.05: the greedy action with probability 1 − 0.05·(A−1)/A."""
  config = make_config('dqn', 'atari', torso='mlp', hidden_sizes=(8,))
  assert config.epsilon_eval == 0.05
  agent = make_agent(config, (3,), 4)
  params = agent.init(jax.random.key(0)).params
  obs = jnp.ones((20_000, 3))
  action, _ = agent.act(params, agent.init_actor(jax.random.key(1), 20_000), obs, jnp.ones(20_000, bool),
                        evaluation=True)
  greedy = int(jnp.argmax(agent.network.apply(params, jnp.ones(3), jnp.zeros((0,)))))
  p = 1 - 0.05 * 3 / 4
  # 5 binomial standard deviations on 20,000 draws: ±0.0067
  assert abs(np.mean(np.asarray(action) == greedy) - p) < 5 * np.sqrt(p * (1 - p) / 20_000)
