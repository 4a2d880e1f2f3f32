"""MinAtar through gymnax on the jitted loop: returns under a scripted policy equal a rollout of
gymnax's own functions; vmapped seeds equal separate runs; the MinAtar preset builds."""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from hyperagent import checkpoint, jitloop
from hyperagent.config import make_config
from hyperagent.minatar import env as minatar
from hyperagent.minatar import results as minatar_results
from hyperagent.minatar import run
from test_jitloop import scripted

SMALL = dict(batch_size=8, num_update_indices=2, warmup_steps=16, cnn_feature_dim=16)


def loop_returns(game, actions, steps, seed=0):
  """Episode returns the jitted loop logs for `game` under a fixed action sequence."""
  config = make_config('hyperagent', 'minatar', **SMALL)
  env, params = minatar.make(game)
  agent = scripted(jitloop.make_agent_for(config, env), actions)
  stacked = jitloop.stack_runs([params])
  states = jitloop.init_runs(agent, env, 64, jnp.array([seed]), stacked, np.array([10**6]))
  states, out = jax.jit(lambda p, s: jitloop.run_chunk(agent, env, jitloop.LoopSpec(), steps, p, s))(stacked, states)
  last = np.asarray(out.steps.last[0])
  return np.asarray(out.steps.counters.episode_return[0])[last], float(states.counters.episode_return[0])


def gymnax_returns(game, actions, steps, seed=0):
  """The same actions through gymnax's own reset_env / step_env, with the loop's key schedule."""
  import gymnax
  game_env, params = gymnax.make(minatar.GAMES[game])
  k_loop = jax.random.split(jax.random.PRNGKey(seed), 3)[2]
  _, state = game_env.reset_env(jitloop.env_keys(k_loop)[1], params)
  step_env, reset_env = jax.jit(game_env.step_env), jax.jit(game_env.reset_env)
  key, returns, current = k_loop, [], 0.0
  for t in range(steps):
    key, k_env, _, _ = jax.random.split(key, 4)
    _, state, reward, terminated, _ = step_env(k_env, state, int(actions[t % len(actions)]), params)
    current += float(reward)
    if bool(terminated) or bool(game_env.is_truncated(state, params)):
      returns.append(current)
      current = 0.0
      _, state = reset_env(jitloop.env_keys(k_env)[1], params)
  return np.array(returns), current


@pytest.mark.parametrize('game', ['breakout', 'space_invaders'])
def test_scripted_returns_equal_gymnaxs_own_rollout(game):
  env, _ = minatar.make(game)
  actions = np.random.RandomState(0).randint(env.num_actions, size=499)
  ours, ours_running = loop_returns(game, actions, 400)
  theirs, theirs_running = gymnax_returns(game, actions, 400)
  assert len(theirs) >= 2  # several episodes ended, so resets are covered
  np.testing.assert_allclose(ours, theirs)
  assert ours_running == pytest.approx(theirs_running)


# The vmapped loop is one code path for every agent; DQN's case is in the slow suite, to keep the default short.
@pytest.mark.parametrize('agent', ['hyperagent', 'ensemble', pytest.param('dqn', marks=pytest.mark.slow)])
def test_vmapped_seeds_equal_separate_runs(agent):
  small = SMALL if agent == 'hyperagent' else {k: v for k, v in SMALL.items() if k != 'num_update_indices'}
  config = make_config(agent, 'minatar', **small)
  env, params = minatar.make('breakout')
  agent = jitloop.make_agent_for(config, env)
  chunk = jitloop.make_chunk_fn(config, env, jitloop.LoopSpec())

  def run(seeds):
    stacked = jitloop.stack_runs([params] * len(seeds))
    states = jitloop.init_runs(agent, env, 256, jnp.array(seeds), stacked, np.full(len(seeds), 10**6))
    states, out = chunk(120, stacked, states)
    return out

  both, alone = run([3, 4]), run([4])
  np.testing.assert_array_equal(both.steps.last[1], alone.steps.last[0])
  np.testing.assert_allclose(both.steps.counters.total_return[1], alone.steps.counters.total_return[0])
  np.testing.assert_allclose(both.td_loss[1], alone.td_loss[0], rtol=1e-4)
  assert float(alone.td_loss[0]) > 0  # the warm-up ended: the runs learned


def test_unknown_games_and_shapes_name_the_valid_ones():
  with pytest.raises(ValueError, match='breakout, freeway'):
    minatar.make('pong')
  config = make_config('dqn', 'minatar')
  assert (config.torso, config.batch_size, config.epsilon_decay_steps) == ('minatar_cnn', 32, 100_000)
  # MinAtar's DQN's target settings for both agents; HyperAgent's own values the SPEC's Atari column's
  hyperagent = make_config('hyperagent', 'minatar')
  for agent in config, hyperagent:
    assert (agent.target_update_period, agent.n_step, agent.learning_rate) == (1_000, 1, 2.5e-4)
  atari = make_config('hyperagent', 'atari')
  assert (hyperagent.prior_std, hyperagent.prior_scale, hyperagent.posterior_scale, hyperagent.perturbation_scale) == \
         (atari.prior_std, atari.prior_scale, atari.posterior_scale, atari.perturbation_scale)
  from hyperagent import networks
  with pytest.raises(ValueError, match='channels-last'):
    networks.check_obs_shape('minatar_cnn', (4, 84))


def test_make_minatar_script_writes_a_run_folder_and_a_rerun_returns_it(tmp_path, tmp_path_factory, capsys):
  import experiment_scripts
  script = experiment_scripts.load('minatar')
  argv = ['--game', 'breakout', '--seeds', '2', '--steps', '200', '--eval-every', '100', '--eval-episodes', '2',
          '--eval-steps', '30', '--out', str(tmp_path), '--no-progress', '--set', 'warmup_steps=50',
          '--set', 'batch_size=8', '--set', 'num_update_indices=2', '--set', 'cnn_feature_dim=16']
  assert script.main(argv) == 0
  metrics = pd.read_csv(tmp_path / 'metrics.csv')
  assert metrics.steps.tolist() == [100, 200, 100, 200] and metrics.seed.tolist() == [0, 0, 1, 1]
  assert (tmp_path / 'curve.png').exists() and (tmp_path / 'checkpoint.npz').exists()
  # the report reads runs still going from their checkpoint: the same rows as metrics.csv
  pd.testing.assert_frame_equal(run.checkpointed_frame(str(tmp_path / 'checkpoint.npz'), (0, 1)), metrics,
                                check_dtype=False)
  first = capsys.readouterr().out
  assert first.startswith('starting a new run.')
  assert script.main(argv) == 0  # finished: loaded, not trained again, and said so
  again = capsys.readouterr().out
  assert again.startswith('this run finished already') and again.splitlines()[1:] == first.splitlines()[1:]
  # another run's folder: one line naming the setting that differs, and the folder's config.json kept
  saved_config = (tmp_path / 'config.json').read_text()
  assert script.main([a.replace('batch_size=8', 'batch_size=4') for a in argv]) == 2
  out, err = capsys.readouterr()
  assert 'config.batch_size=8 (now 4)' in err and 'spec.' not in err and out == ''
  assert (tmp_path / 'config.json').read_text() == saved_config
  assert experiment_scripts.load('minatar_index_spread').main([str(tmp_path), '--states', '50',
                                                               '--episodes', '2']) == 0
  spread_out = capsys.readouterr().out  # reads the folder's config and checkpoint
  assert 'seed 1: action gap' in spread_out and 'seed 1: test return over 2 episodes' in spread_out
  with pytest.raises(SystemExit):
    experiment_scripts.load('minatar_index_spread').main([str(tmp_path / 'absent')])
  assert 'checkpoint.npz not found' in capsys.readouterr().err  # one line, not a traceback
  assert minatar_results.load_run(str(tmp_path))[1] == 'finished'
  saved = json.loads((tmp_path / 'config.json').read_text())
  saved['spec']['steps'] = 300  # what `--steps 300` writes as it starts extending the run
  (tmp_path / 'config.json').write_text(json.dumps(saved))
  assert minatar_results.load_run(str(tmp_path))[1] == 'unfinished: 200 of 300 steps'  # not the finished metrics.csv
  # the archive (what git keeps of a run) holds the rows and the settings, not the checkpoint, and
  # the report reads it as the same run still going
  archived = tmp_path_factory.mktemp('archive')
  written = experiment_scripts.load('archive_results').archive(str(tmp_path), str(archived))
  assert written == ['config.json', 'metrics.csv'] and not (archived / 'checkpoint.npz').exists()
  frame, status = minatar_results.load_run(str(archived))
  pd.testing.assert_frame_equal(frame, metrics, check_dtype=False)
  assert status == 'unfinished: 200 of 300 steps'
  # a run started again from zero (its checkpoint lost) leaves the longer rows archived before
  longer = pd.concat([metrics, metrics.assign(seed=metrics.seed + 2)])
  longer.to_csv(archived / 'metrics.csv', index=False)
  assert 'metrics.csv' not in experiment_scripts.load('archive_results').archive(str(tmp_path), str(archived))
  pd.testing.assert_frame_equal(pd.read_csv(archived / 'metrics.csv'), longer.reset_index(drop=True))
  assert 'which started again' in capsys.readouterr().out
  with pytest.raises(SystemExit):
    script.main(['--game', 'pong'])
  assert 'breakout' in capsys.readouterr().err


def test_ctrl_c_before_the_first_chunk_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
  import experiment_scripts
  script = experiment_scripts.load('minatar')

  def compiling(*args, **kwargs):
    raise KeyboardInterrupt
  monkeypatch.setattr(run, 'train_seeds', compiling)
  argv = ['--game', 'breakout', '--steps', '100', '--set', 'warmup_steps=10', '--out', str(tmp_path), '--no-progress']
  assert script.main(argv) == 130  # (past the warm-up: no note about it on stderr)
  assert capsys.readouterr().err == f'interrupted before the first evaluation of {tmp_path}: nothing saved for it.\n'
  (tmp_path / 'checkpoint.npz').write_bytes(b'')  # a run resumed, then interrupted while it compiles
  monkeypatch.setattr(checkpoint, 'check_same_run', lambda *args, **kwargs: None)
  assert script.main(argv) == 130
  assert capsys.readouterr().err == (f'interrupted: the last checkpoint in {tmp_path} is kept; the same command '
                                     'resumes from it.\n')


def test_an_extension_off_the_saved_chunks_is_refused_and_the_folder_keeps_its_config(tmp_path, capsys):
  """150 steps evaluated every 100 end their chunks at 100 and 150; 200 steps would end them at 100
  and 200, so the 150-step run cannot be extended to 200: refused, and config.json still says 150."""
  import experiment_scripts
  script = experiment_scripts.load('minatar')
  argv = lambda steps: ['--game', 'breakout', '--seeds', '1', '--steps', str(steps), '--eval-every', '100',
                        '--eval-episodes', '2', '--eval-steps', '20', '--out', str(tmp_path), '--no-progress',
                        '--set', 'warmup_steps=50', '--set', 'batch_size=8', '--set', 'num_update_indices=2',
                        '--set', 'cnn_feature_dim=16']
  assert script.main(argv(150)) == 0
  saved = (tmp_path / 'config.json').read_text()
  assert script.main(argv(200)) == 2
  out, err = capsys.readouterr()
  assert 'evaluated at step 150 where this run evaluates at step 200' in err
  assert 'finished already' not in out and 'resuming' not in out  # refused before any announcement
  assert (tmp_path / 'config.json').read_text() == saved


@pytest.mark.parametrize('replay_capacity', [64, 256])
def test_a_finished_run_extends_to_more_steps_as_if_run_in_one_go(tmp_path, replay_capacity):
  """200 steps into a checkpoint, then the same run asked for 300: the record of 300 steps run at once.
  Fewer steps, or another evaluation period, are another run and refused. With a replay of 256 the
  200-step run keeps 200 rows (all it can fill), and the extension grows them to the 300-step run's 256."""
  config = make_config('hyperagent', 'minatar', **SMALL, replay_capacity=replay_capacity)
  spec = lambda steps, every=100: run.RunSpec(game='breakout', steps=steps, seeds=(0, 1), eval_every=every,
                                              eval_episodes=2, eval_steps=30)
  path = str(tmp_path / 'checkpoint.npz')
  first = run.train_seeds(config, spec(200), progress=False, checkpoint_path=path)
  extended = run.train_seeds(config, spec(300), progress=False, checkpoint_path=path)
  straight = run.train_seeds(config, spec(300), progress=False)
  assert extended.steps.tolist() == straight.steps.tolist() == [100, 200, 300]
  np.testing.assert_array_equal(extended.wall_s[:2], first.wall_s)  # resumed, not played again
  for field in ('train_return', 'episodes', 'eval_return', 'td_loss'):
    np.testing.assert_array_equal(getattr(extended, field), getattr(straight, field))
  for shorter_or_other in (spec(200), spec(400, every=50)):
    with pytest.raises(checkpoint.CheckpointError):
      run.train_seeds(config, shorter_or_other, progress=False, checkpoint_path=path)


def test_index_spread_reads_the_gap_off_the_mean_and_the_spread_off_the_index_part():
  """Hand-made coefficients: posterior means (1, 3, 2) and (0, 0, 5) have gaps 1 and 5 (median 3); no
  index part means no spread and no changed action; a large one on action 0 changes some."""
  import experiment_scripts
  script = experiment_scripts.load('minatar_index_spread')
  config = make_config('hyperagent', 'minatar', **SMALL)
  env, _ = minatar.make('breakout')
  agent = jitloop.make_agent_for(config, env)
  m = config.index_dim
  mean = jnp.array([[1.0, 3.0, 2.0], [0.0, 0.0, 5.0]])
  with_index = lambda part: agent._replace(network=agent.network._replace(
      coefficients=lambda params, obs: jnp.concatenate([part, mean[..., None]], axis=-1)))
  still = script.spread(with_index(jnp.zeros((2, 3, m))), None, None, jax.random.PRNGKey(0))
  assert still == pytest.approx(dict(gap=3.0, spread=0.0, changed=0.0), abs=1e-6)
  moving = script.spread(with_index(jnp.zeros((2, 3, m)).at[:, 0, :].set(100.0)), None, None, jax.random.PRNGKey(0))
  # Q of action 0 is 100·s + (1 or 0), s = Σ ξ̂ for ξ̂ uniform on the unit sphere, the other two fixed:
  # the spread is std(100·s)/3 (one action of three moves); the greedy action changes where
  # 100·s + 1 > 3 (first observation) or 100·s > 5 (second). Their values from a million numpy draws of
  # the law; the script's 200 draws are within 4 standard errors (~5% and ~0.035).
  unit = np.random.default_rng(0).normal(size=(1_000_000, m))
  total = (unit / np.linalg.norm(unit, axis=1, keepdims=True)).sum(axis=1)
  assert moving['gap'] == 3.0
  assert moving['spread'] == pytest.approx(100 * total.std() / 3, rel=0.2)
  assert moving['changed'] == pytest.approx(((100 * total > 2).mean() + (100 * total > 5).mean()) / 2, abs=0.15)


@pytest.mark.parametrize('agent_name', ['ensemble', 'hyperagent_one_hot', 'hyperagent'])
def test_index_spread_averages_q_over_the_index_law(agent_name):
  """The posterior mean is Q averaged over ξ: for one-hot laws (Ensemble+) the mean of the members' Q,
  computed here member by member; for the sphere law, the mean over many sampled indices."""
  import experiment_scripts
  script = experiment_scripts.load('minatar_index_spread')
  config = make_config(agent_name, 'minatar', **SMALL)
  env, _ = minatar.make('breakout')
  agent = jitloop.make_agent_for(config, env)
  params = agent.init(jax.random.PRNGKey(0)).params
  obs = jax.random.bernoulli(jax.random.PRNGKey(1), 0.3, (4,) + env.observation_shape)
  m = config.index_dim
  if agent_name == 'hyperagent':
    xi = agent.network.index.network_input(agent.network.index.sample(jax.random.PRNGKey(2), (20_000,)))
  else:
    xi = jnp.eye(m)
  members = jax.vmap(lambda x: jnp.stack([agent.network.apply(params, o, x) for o in obs]))(xi)  # [draws, B, A]
  tolerance = 0.05 * float(members.std()) if agent_name == 'hyperagent' else 1e-5
  np.testing.assert_allclose(script.mean_q(agent, params, obs), members.mean(0), atol=tolerance)


@pytest.mark.parametrize('agent_name', ['ensemble', 'hyperagent'])
def test_index_spread_splits_q_into_the_prior_and_the_trained_part(agent_name):
  """Q minus the trained part (the network read without its prior) is the prior's part: equal, index by
  index, to what a network built with posterior_scale 0 (the prior alone) gives from the same params,
  and so is its spread over the same draws. Checked after a few updates, so both parts are nonzero."""
  import experiment_scripts
  script = experiment_scripts.load('minatar_index_spread')
  config = make_config(agent_name, 'minatar', **SMALL)
  env, _ = minatar.make('breakout')
  agent = jitloop.make_agent_for(config, env)
  params = agent.init(jax.random.PRNGKey(0)).params
  params = jax.tree.map(lambda x: x + 0.01 * jnp.sign(x), params)  # away from init: the trained part moves
  obs = jax.random.bernoulli(jax.random.PRNGKey(1), 0.3, (4,) + env.observation_shape)
  trained = script.without_prior(config, env)
  prior_only = jitloop.make_agent_for(config.replace(posterior_scale=0.0), env)
  for xi in jnp.eye(config.index_dim)[:3]:
    q, q_trained, q_prior = (jnp.stack([a.network.apply(params, o, xi) for o in obs]) for a in (agent, trained, prior_only))
    assert float(jnp.abs(q_prior).max()) > 1e-4 and float(jnp.abs(q_trained).max()) > 1e-4
    np.testing.assert_allclose(q - q_trained, q_prior, atol=1e-6)
  key = jax.random.PRNGKey(2)
  figures = script.spread(agent, params, obs, key, trained=trained)
  assert figures['prior_spread'] == pytest.approx(script.spread(prior_only, params, obs, key)['spread'], rel=1e-4)
  assert figures['trained_spread'] == pytest.approx(script.spread(trained, params, obs, key)['spread'], rel=1e-4)


def test_the_posterior_mean_policy_plays_the_argmax_of_the_mean_coefficients():
  """Hand-made coefficients whose mean part favours action 3 everywhere and whose index part is
  zero: the posterior mean's test episodes are those of a policy that always plays 3, on the same
  games. On space_invaders that policy scores and always playing 0 does not, so a wrong argmax shows."""
  import experiment_scripts
  script = experiment_scripts.load('minatar_index_spread')
  config = make_config('hyperagent', 'minatar', **SMALL)
  env, _ = minatar.make('space_invaders')
  agent = jitloop.make_agent_for(config, env)
  m = config.index_dim
  coefficients = lambda _, obs: jnp.zeros((obs.shape[0], env.num_actions, m + 1)).at[:, 3, m].set(1.0)
  fixed = agent._replace(network=agent.network._replace(coefficients=coefficients))
  key = jax.random.PRNGKey(3)
  mean = script.evaluation_returns(fixed, 'space_invaders', None, key, 4, mean_index=True)
  always = lambda a: run.evaluation_returns(
      agent._replace(act=lambda _, actor, obs, first, evaluation=False: (jnp.full(obs.shape[0], a), actor)),
      'space_invaders', None, key, 4)
  np.testing.assert_array_equal(mean, always(3))
  assert mean.sum() > 0 and not np.array_equal(mean, always(0))


def test_the_minatar_torso_is_a_3x3_valid_convolution():
  """The im2col form equals lax's convolution with the same weights (HWIO = the patch order)."""
  import haiku as hk
  from hyperagent import networks
  net = hk.without_apply_rng(hk.transform(lambda obs: networks.MinAtarCNN(32, name='torso')(obs)))
  obs = (jax.random.uniform(jax.random.PRNGKey(0), (10, 10, 6)) > 0.7).astype(jnp.float32)
  params = net.init(jax.random.PRNGKey(1), obs)
  kernel = params['torso/conv']['w'].reshape(3, 3, 6, 16)
  conv = jax.lax.conv_general_dilated(obs[None], kernel, (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  hidden = jax.nn.relu(conv[0] + params['torso/conv']['b'])
  expected = jax.nn.relu(jnp.ravel(hidden) @ params['torso/linear']['w'] + params['torso/linear']['b'])
  np.testing.assert_allclose(net.apply(params, obs), expected, rtol=1e-5, atol=1e-5)


def test_the_minatar_torso_starts_as_hk_conv2d_starts():
  """Its weights are the ones hk.Conv2D draws from the same key (Xavier over a 3x3xCx16 kernel: fans
  9C and 144), not a dense layer's (fans 9C and 16, whose std would be ~1.9x larger at C = 4)."""
  import haiku as hk
  from hyperagent import networks
  obs = jnp.zeros((10, 10, 4))
  ours = hk.transform(lambda o: networks.MinAtarCNN(32, name='torso')(o)).init(jax.random.PRNGKey(3), obs)
  conv = hk.transform(lambda o: hk.Conv2D(16, 3, padding='VALID', w_init=networks.XAVIER_NORMAL,
                                          name='conv')(o)).init(jax.random.PRNGKey(3), obs)
  np.testing.assert_array_equal(ours['torso/conv']['w'], conv['conv']['w'].reshape(36, 16))
  assert abs(float(np.std(ours['torso/conv']['w'])) - np.sqrt(2 / (36 + 144))) < 0.02


def test_eval_steps_default_to_the_games_own_limit():
  assert run.RunSpec(game='freeway').eval_steps == 2500
  assert run.RunSpec(game='breakout').eval_steps == 1000  # the value the first runs were started with
  assert run.RunSpec(game='freeway', eval_steps=30).eval_steps == 30


def test_random_returns_equal_a_python_rollout_of_the_same_draws():
  """The random-policy baseline against gymnax's own functions, episode by episode in Python, with
  the keys of `jitloop.run_test_episodes` (actor key -> uniform actions, env keys per step)."""
  import gymnax
  game_env, params = gymnax.make(minatar.GAMES['breakout'])
  num, steps = 3, 300
  returns = run.random_returns('breakout', num, seed=5, max_steps=steps)
  k_actor, k_env = jax.random.split(jax.random.PRNGKey(5))
  key, actions = jax.random.split(k_actor)[0], []
  for _ in range(steps):
    key, k = jax.random.split(key)
    actions.append(np.asarray(jax.random.randint(k, (num,), 0, game_env.num_actions)))
  reset_keys = jax.random.split(jitloop.env_keys(k_env)[1], num)
  step_keys = [jax.random.split(k, num) for k in jax.random.split(k_env, steps)]
  step_env = jax.jit(game_env.step_env)
  for i, ours in enumerate(returns):
    _, state = game_env.reset_env(reset_keys[i], params)
    total = 0.0
    for t in range(steps):
      _, state, reward, terminated, _ = step_env(step_keys[t][i], state, int(actions[t][i]), params)
      total += float(reward)
      if bool(terminated) or bool(game_env.is_truncated(state, params)):
        break
    assert ours == pytest.approx(total)
  assert returns.min() >= 0 and len(set(returns.tolist())) > 1  # distinct episodes, not one repeated


def test_the_report_tables_final_returns_with_a_t_interval_over_seeds(tmp_path, capsys, monkeypatch):
  """Hand-made metrics: last evaluation's returns 1, 2, 3 over three seeds -> mean 2, sd 1, and the
  95% t interval 2 ± 4.3027 / sqrt(3) = (-0.48, 4.48); an earlier evaluation does not count, but
  does in the mean over the last two."""
  import experiment_scripts
  report = experiment_scripts.load('minatar_report')
  folder = tmp_path / 'breakout' / 'hyperagent'
  folder.mkdir(parents=True)
  rows = [dict(seed=s, steps=t, train_return=0.0, episodes=1, eval_return=r, td_loss=0.0, wall_s=1.0)
          for s, early, late in ((0, 9.0, 1.0), (1, 9.0, 2.0), (2, 9.0, 3.0)) for t, r in ((100, early), (200, late))]
  pd.DataFrame(rows).to_csv(folder / 'metrics.csv', index=False)
  assert minatar_results.mean_ci([1.0, 2.0, 3.0]) == pytest.approx((2.0, 2 - 2.48414, 2 + 2.48414), abs=1e-4)
  assert minatar_results.mean_ci([5.0]) == (5.0, 5.0, 5.0)
  out = tmp_path / 'report'
  assert report.main([str(tmp_path), '--out', str(out), '--games', 'breakout', '--random-episodes', '4',
                      '--last', '2']) == 0
  text = (out / 'minatar.md').read_text()
  row = next(line for line in text.splitlines() if line.startswith('| breakout'))
  assert '2.00 (-0.48–4.48); seeds 1.0, 2.0, 3.0' in row and '[unfinished' not in row
  # over the last 2 evaluations the seeds average 5, 5.5, 6: 5.5 ± 4.3027 * 0.5 / sqrt(3)
  assert '| 5.50 (4.26–6.74) |' in row
  assert (out / 'minatar_curves.png').exists()
  # a second folder with a label is a second series (a variant of the same agent)
  assert report.main([str(tmp_path), f'paper scales={tmp_path}', '--out', str(out), '--games', 'breakout',
                      '--random-episodes', '4', '--agents', 'hyperagent']) == 0
  head = (out / 'minatar.md').read_text().splitlines()[2]
  assert ('| game | hyperagent: final test return (95% CI) | hyperagent (paper scales): final test return '
          '(95% CI) |') in head
  # the random policy's test episodes are cut where the runs' were (their config.json)
  (folder / 'config.json').write_text(json.dumps(dict(agent='hyperagent', spec=dict(steps=200, eval_steps=20))))
  caps = []
  real = minatar_results.run.random_returns
  def recording(game, episodes, seed=0, max_steps=None):
    caps.append(max_steps)
    return real(game, episodes, seed, max_steps)
  monkeypatch.setattr(minatar_results.run, 'random_returns', recording)
  assert report.main([str(tmp_path), '--out', str(out), '--games', 'breakout', '--random-episodes', '4']) == 0
  assert caps == [20]
  with pytest.raises(SystemExit):
    report.main([str(tmp_path / 'missing')])
  assert 'is not a folder' in capsys.readouterr().err
  with pytest.raises(SystemExit):  # one episode has no spread: the random interval needs two
    report.main([str(tmp_path), '--random-episodes', '1'])
  assert '--random-episodes must be at least 2' in capsys.readouterr().err


def test_the_report_calls_a_game_above_random_only_when_the_intervals_are_apart():
  """Seeds 5, 5.5, 6 have the t interval (4.26, 6.74); against random returns 0, 0, 0, 0 (interval 0-0)
  it is above, against 4, 5, 4, 5 (4.5 ± 0.92) it is not. Running games are listed, not judged."""
  frame = lambda late: pd.DataFrame([dict(seed=s, steps=t, eval_return=r) for s, v in enumerate(late)
                                     for t, r in ((100, 0.0), (200, v))])
  high = frame([5.0, 5.5, 6.0])
  assert minatar_results.above_random(minatar_results.final(high), np.zeros(4))
  assert not minatar_results.above_random(minatar_results.final(high), np.array([4.0, 5.0, 4.0, 5.0]))
  runs = {('breakout', 'dqn'): (high, 'finished'), ('freeway', 'dqn'): (high, 'finished'),
          ('asterix', 'dqn'): (high, 'unfinished: 200 of 300 steps')}
  random = {'breakout': np.zeros(4), 'freeway': np.array([4.0, 5.0, 4.0, 5.0]), 'asterix': np.zeros(4)}
  # a finished run shorter than the others says so in its cell
  trained = high.assign(train_return=0.0)
  runs_of_lengths = {('breakout', 'dqn'): (trained, 'finished'), ('freeway', 'dqn'): (trained, 'finished'),
                     ('asterix', 'dqn'): (trained[trained.steps == 100], 'finished')}
  cells = minatar_results.table(runs_of_lengths, random, ['dqn'], ['breakout', 'asterix'])
  assert '[at 100 steps]' in cells.splitlines()[3] and '[' not in cells.splitlines()[2].split('|')[2]
  text = minatar_results.verdicts(runs, random, ['dqn'], ['breakout', 'freeway', 'asterix'])
  assert ('- dqn: above a random policy on 1 of 2 finished games (breakout); not on freeway; '
          'unfinished: asterix') in text


def test_report_roots_read_label_then_folder_like_bsuite_report(tmp_path):
  odd = tmp_path / 'a=b'  # an existing folder is taken whole, '=' and all
  odd.mkdir()
  assert minatar_results.parse_root('results/minatar') == ('results/minatar', '')
  assert minatar_results.parse_root('paper scales=results/x') == ('results/x', 'paper scales')
  assert minatar_results.parse_root(str(odd)) == (str(odd), '')


def test_the_report_takes_the_newest_run_folder_and_names_the_others(tmp_path):
  """Several `make minatar` runs of one game and agent (a quick try beside a long run): the newest is
  reported and the others are returned for the report to name; <game>/<agent> (an archive) wins."""
  import os
  game = tmp_path / 'breakout'
  modified = {'hyperagent-aaaa1111': 300, 'hyperagent-bbbb2222': 200, 'hyperagent-cccc3333': 100, 'dqn-dddd4444': 100}
  for name, mtime in modified.items():
    (game / name).mkdir(parents=True)
    os.utime(game / name, (1e9, 1e9 + mtime))
  assert minatar_results.find_run(str(tmp_path), 'breakout', 'hyperagent') == (
      str(game / 'hyperagent-aaaa1111'), [str(game / 'hyperagent-cccc3333'), str(game / 'hyperagent-bbbb2222')])
  assert minatar_results.find_run(str(tmp_path), 'breakout', 'dqn') == (str(game / 'dqn-dddd4444'), [])
  assert minatar_results.find_run(str(tmp_path), 'freeway', 'dqn') == (None, [])
  (game / 'hyperagent').mkdir()
  folder, others = minatar_results.find_run(str(tmp_path), 'breakout', 'hyperagent')
  assert folder == str(game / 'hyperagent') and len(others) == 3


def test_short_runs_within_the_warm_up_are_told_they_will_not_learn(tmp_path, capsys):
  import experiment_scripts
  script = experiment_scripts.load('minatar')
  with checkpoint.folder_lock(str(tmp_path)):  # stops right after the settings are checked
    assert script.main(['--game', 'breakout', '--steps', '1500', '--out', str(tmp_path)]) == checkpoint.BUSY_EXIT
  err = capsys.readouterr().err
  assert 'note: --steps 1,500 ends within the warm-up (warmup_steps 5,000)' in err


def test_cli_on_a_run_folder_another_process_holds_stops_at_once(tmp_path, capsys):
  """A second `make minatar` on a run being trained exits 75 and writes nothing there (the study's chains
  skip such a game and go on with the next)."""
  import os
  import experiment_scripts
  script = experiment_scripts.load('minatar')
  with checkpoint.folder_lock(str(tmp_path)):
    assert script.main(['--game', 'breakout', '--steps', '100', '--out', str(tmp_path)]) == checkpoint.BUSY_EXIT
  assert 'is in use by another run' in capsys.readouterr().err
  assert os.listdir(tmp_path) == [checkpoint.LOCK_FILE]
