"""The jitted DeepSea loop: determinism, vmapped seeds = separate runs, resume, solve criteria, CLI."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from hyperagent import checkpoint, jitloop
from hyperagent.config import make_config
from hyperagent.deepsea import env as deep_sea
from hyperagent.deepsea import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(batch_size=16, num_update_indices=4, warmup_steps=20)


def tiny_spec(**kw):
  return run.RunSpec(**{**dict(size=5, episodes=24, seeds=(0, 1), eval_every=40, eval_episodes=8), **kw})


def assert_results_equal(a: run.Result, b: run.Result):
  for name, x, y in zip(run.Result._fields, a, b):
    if name != 'eval_wall_s':
      np.testing.assert_array_equal(x, y, err_msg=name)


def test_seeded_runs_repeat_and_vmapped_seeds_equal_separate_runs():
  config = make_config('hyperagent', 'deepsea', **TINY)
  both = run.train_seeds(config, tiny_spec(), progress=False)
  again = run.train_seeds(config, tiny_spec(), progress=False)
  assert_results_equal(both, again)
  alone = run.train_seeds(config, tiny_spec(seeds=(1,)), progress=False)
  np.testing.assert_array_equal(both.total_bad_episodes[1], alone.total_bad_episodes[0])
  np.testing.assert_array_equal(both.denoised_return[1], alone.denoised_return[0])
  np.testing.assert_allclose(both.episode_return[1], alone.episode_return[0], atol=1e-6)
  np.testing.assert_allclose(both.td_loss[1], alone.td_loss[0], rtol=1e-4)
  # one row per episode, 24 episodes of N = 5 steps: 120 steps, evaluations at 40, 80, 120
  assert both.episode_return.shape == (2, 24)
  np.testing.assert_array_equal(both.eval_steps, [40, 80, 120])
  assert both.td_loss[0, 0] > 0  # the warm-up (20 steps) ended inside the first chunk


# Ensemble+'s run is in the slow suite; its table of reachable rows is checked against the full table in
# tests/test_hypermodel.py in the default one.
@pytest.mark.parametrize('agent', ['hyperagent', pytest.param('ensemble', marks=pytest.mark.slow)])
def test_keeping_only_reachable_rows_changes_no_number_of_a_run(agent, monkeypatch):
  """DeepSea's env tells the network which cells can be hot; a run that ignores it (the full N²-row
  input layer, as before) gives the same record: the rows left out never had a gradient and Adam never
  moved them. Every action, return and evaluation is equal; the logged losses may differ in the last
  bit (the clipping norm sums over differently shaped arrays)."""
  import dataclasses
  config = make_config(agent, 'deepsea', **TINY)
  spec = tiny_spec(size=6, episodes=30)
  table_rows = lambda: jitloop.make_agent_for(config, spec.env).network.init(
      jax.random.key(0))['torso/linear_0']['w'].shape[-2]
  assert table_rows() == 6 * 7 // 2
  kept = run.train_seeds(config, spec, progress=False)
  make_env = deep_sea.make_env
  monkeypatch.setattr(deep_sea, 'make_env', lambda *a, **k: dataclasses.replace(make_env(*a, **k), one_hot_cells=None))
  assert table_rows() == 6 * 6
  full = run.train_seeds(config, spec, progress=False)
  for name, x, y in zip(run.Result._fields, kept, full):
    if name in ('td_loss', 'q_mean'):
      np.testing.assert_allclose(x, y, rtol=1e-6, err_msg=name)
    elif name != 'eval_wall_s':
      np.testing.assert_array_equal(x, y, err_msg=name)


def test_init_all_equals_each_seed_initialised_alone():
  """The one jitted, vmapped init gives every seed the state an eager init from its own key gives."""
  config = make_config('hyperagent', 'deepsea', **TINY)
  spec = tiny_spec(seeds=(3, 2020), mapping='seed')
  agent = jitloop.make_agent_for(config, spec.env)
  env_params, states = run.initial_states(agent, spec)
  for i, seed in enumerate(spec.seeds):
    np.testing.assert_array_equal(env_params.mapping[i], deep_sea.make_mapping(spec.size, seed))
    alone = jitloop.init_run(agent, spec.env, run.run_capacity(config, spec), seed,
                             deep_sea.EnvParams(env_params.mapping[i]), spec.episodes)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[i], b), states, alone)
  k_train = jax.random.split(jax.random.PRNGKey(2020), 3)[0]
  jax.tree.map(np.testing.assert_array_equal, jax.tree.map(lambda x: x[1], states.train), agent.init(k_train))


def test_episode_accounting_matches_the_environment():
  """bsuite's DeepSea by hand: an episode earns 1 at the treasure, minus 0.01/N for each move right,
  so its return is 1 - 0.01 (treasure) or -0.01 k / N for k < N right moves; deterministic DeepSea
  counts an episode bad exactly when it misses the treasure. At N = 2 an untrained agent finds it
  in some of its episodes, so both kinds are checked."""
  config = make_config('hyperagent', 'deepsea', **TINY)
  size = 2
  result = run.train_seeds(config, tiny_spec(seeds=(3, 4), size=size), progress=False)
  for seed in range(2):
    treasure = np.diff(np.concatenate([[0], result.denoised_return[seed]]))
    bad = np.diff(np.concatenate([[0], result.total_bad_episodes[seed]]))
    returns = result.episode_return[seed]
    assert 0 < treasure.sum() < len(treasure) and set(np.unique(treasure)) <= {0, 1}
    np.testing.assert_array_equal(bad, 1 - treasure)
    np.testing.assert_allclose(returns[treasure == 1], 0.99, atol=1e-5)
    misses = returns[treasure == 0]
    right_moves = -misses * size / 0.01
    np.testing.assert_allclose(right_moves, np.round(right_moves), atol=1e-3)
    assert np.all((np.round(right_moves) >= 0) & (np.round(right_moves) < size))


def check_the_archive_keeps_a_run_still_going(tmp_path, capsys, partial: run.Result, spec: run.RunSpec):
  """A workspace, and with it a long run's checkpoint, can go between sessions (the study's Ensemble+
  N = 70 went twice): the archive writes the record so far from the checkpoint, and the study report
  lists the run as unfinished instead of counting its unsolved seeds as never solved; a run started
  again does not replace longer archived rows."""
  import experiment_scripts
  from hyperagent.deepsea import results
  written = experiment_scripts.load('archive_results').archive(str(tmp_path / 'results'), str(tmp_path / 'docs'))
  kept = tmp_path / 'docs' / 'study' / 'hyperagent-N5-seed-abc'
  assert written == [f'study/hyperagent-N5-seed-abc/{n}' for n in ('config.json', 'metrics.csv', 'summary.csv')]
  assert not (kept / 'checkpoint.npz').exists()
  rows = run.summary(partial, spec)
  pd.testing.assert_frame_equal(pd.read_csv(kept / 'summary.csv').fillna(-1), pd.DataFrame(rows).fillna(-1),
                                check_dtype=False)
  table = results.collect_runs(str(tmp_path / 'docs' / 'study'))
  assert table['episodes'].tolist() == [8, 8]  # one chunk: 40 steps of N = 5, of a 24-episode budget
  assert not any(r['eval_solve_episode'] for r in rows) and table['unfinished'].all()
  report = experiment_scripts.load('deepsea_study_report').main([str(kept.parent), '--out', str(tmp_path / 'report')])
  solved = sum(r['bsuite_solve_episode'] is not None for r in rows)
  assert report == 0 and f'| hyperagent | 5 | 2 | 0 / {solved} so far | unfinished: 2 unsolved at episode 8 |' in (
      tmp_path / 'report' / 'study.md').read_text()
  # a run started again from zero (its checkpoint lost with a workspace) leaves the longer rows archived
  # before in place, as the MinAtar archive does
  metrics = pd.read_csv(kept / 'metrics.csv')
  longer = pd.concat([metrics, metrics.assign(env_steps=metrics.env_steps + 40)], ignore_index=True)
  longer.to_csv(kept / 'metrics.csv', index=False)
  capsys.readouterr()
  assert experiment_scripts.load('archive_results').archive(str(tmp_path / 'results'), str(tmp_path / 'docs')) == []
  pd.testing.assert_frame_equal(pd.read_csv(kept / 'metrics.csv'), longer)
  assert 'which started again' in capsys.readouterr().out
  metrics.to_csv(kept / 'metrics.csv', index=False)


def test_checkpoint_resume_equals_uninterrupted_run(tmp_path, capsys):
  config = make_config('hyperagent', 'deepsea', **TINY)
  spec = tiny_spec()
  straight = run.train_seeds(config, spec, progress=False)
  folder = tmp_path / 'results' / 'study' / 'hyperagent-N5-seed-abc'
  folder.mkdir(parents=True)
  path = str(folder / 'checkpoint.npz')
  first = run.train_seeds(config, spec, progress=False, checkpoint_path=path, max_chunks=1)
  assert first.eval_steps.tolist() == [40]
  check_the_archive_keeps_a_run_still_going(tmp_path, capsys, first, spec)
  resumed = run.train_seeds(config, spec, progress=False, checkpoint_path=path)
  assert_results_equal(straight, resumed)
  with pytest.raises(ValueError, match='another run'):
    run.train_seeds(config.replace(learning_rate=0.1), spec, progress=False, checkpoint_path=path)
  # a checkpoint from a version whose state had other parameters: a clear error, not a pytree crash
  agent = jitloop.make_agent_for(config, spec.env)
  _, states = run.initial_states(agent, spec)
  meta, trees = checkpoint.load(path, dict(states=states, result=first), exact_shapes=('states',))
  params = dict(trees['states'].train.params)
  params.pop('prior_table')
  old = trees['states']._replace(train=trees['states'].train._replace(params=params))
  checkpoint.save(path, meta, dict(states=old, result=trees['result']))
  with pytest.raises(checkpoint.CheckpointError, match='another run or another version'):
    run.train_seeds(config, spec, progress=False, checkpoint_path=path)


def test_a_run_extends_to_more_episodes_as_if_run_in_one_go(tmp_path, capsys):
  """16 episodes of N = 5 (two chunks of 40 steps) into a checkpoint, then the same run asked for 24:
  the record of 24 episodes run at once. With a replay of 100 rows the 16-episode run holds its 80
  steps, grown to 100 for the extension, which then wraps it. Fewer episodes, and a saved run whose
  last chunk was cut short (15 episodes: chunks of 40 and 35 steps), are refused."""
  config = make_config('hyperagent', 'deepsea', **TINY, replay_capacity=100)
  path = str(tmp_path / 'checkpoint.npz')
  first = run.train_seeds(config, tiny_spec(episodes=16), progress=False, checkpoint_path=path)
  extended = run.train_seeds(config, tiny_spec(episodes=24), progress=False, checkpoint_path=path)
  straight = run.train_seeds(config, tiny_spec(episodes=24), progress=False)
  assert extended.eval_steps.tolist() == [40, 80, 120] and extended.episode_return.shape == (2, 24)
  np.testing.assert_array_equal(extended.eval_wall_s[:2], first.eval_wall_s)  # resumed, not played again
  assert_results_equal(extended, straight)
  with pytest.raises(checkpoint.CheckpointError, match='another run'):
    run.train_seeds(config, tiny_spec(episodes=20), progress=False, checkpoint_path=path)
  cut = str(tmp_path / 'cut.npz')
  run.train_seeds(config, tiny_spec(episodes=15), progress=False, checkpoint_path=cut)
  capsys.readouterr()
  with pytest.raises(checkpoint.CheckpointError, match='evaluated at step 75 where this run evaluates at step 80'):
    run.train_seeds(config, tiny_spec(episodes=24), progress=False, checkpoint_path=cut, announce=True)
  assert capsys.readouterr().out == ''  # refused before anything says it resumes
  run.train_seeds(config, tiny_spec(episodes=24), progress=False, checkpoint_path=path, announce=True)
  assert capsys.readouterr().out == f'this run finished already: loading it from {path}.\n'


def test_a_corrupt_checkpoint_is_one_clear_error(tmp_path):
  config = make_config('hyperagent', 'deepsea', **TINY)
  path = str(tmp_path / 'checkpoint.npz')
  run.train_seeds(config, tiny_spec(), progress=False, checkpoint_path=path, max_chunks=1)
  with open(path, 'r+b') as f:  # cut mid-file, as a full disk would
    f.truncate(os.path.getsize(path) // 2)
  with pytest.raises(checkpoint.CheckpointError, match='not a readable checkpoint') as error:
    run.train_seeds(config, tiny_spec(), progress=False, checkpoint_path=path)
  assert path in str(error.value) and '\n' not in str(error.value)


def test_solve_criteria_hand_computed():
  # bsuite: first episode e with bad[e]/e < 0.9: 10/10, then 10/11 = 0.909, 10/12 = 0.833 -> 12
  bad = np.array(list(range(1, 11)) + [10, 10, 10])
  assert run.bsuite_solve_episode(bad) == 12
  assert run.bsuite_solve_episode(np.arange(1, 6)) is None
  # read at logged episodes only: 20/20, 30/30, then 30/40 = 0.75 -> 40
  assert run.bsuite_solve_episode(np.array([20, 30, 30]), episodes=np.array([20, 30, 40])) == 40
  assert run.eval_solve_episode(np.array([0.0, 0.97, 1.0, 1.0]), np.array([1000, 2000, 3000, 4000]), 20) == 150
  assert run.eval_solve_episode(np.array([0.0, 0.99]), np.array([1000, 2000]), 20) is None


def test_evaluation_runs_whole_episodes_with_the_greedy_policy():
  """With a hand-made 'always right' network the test episodes all reach the treasure."""
  config = make_config('hyperagent', 'deepsea', **TINY)
  spec = tiny_spec()
  agent = jitloop.make_agent_for(config, spec.env)
  mapping = deep_sea.make_params(spec.size, 0).mapping
  params = agent.init(jax.random.key(0)).params
  test = lambda agent: jitloop.run_test_episodes(agent, spec.env, spec.loop, deep_sea.EnvParams(mapping),
                                                 params, jax.random.key(1))
  ret, info = test(agent)
  optimal = info['denoised_return']
  assert ret.shape == optimal.shape == (spec.loop.eval_episodes,)
  assert np.all((0.0 <= optimal) & (optimal <= 1.0)) and np.all(ret <= 0.99 + 1e-6)
  # agent.act on a network whose Q prefers the 'right' action in every cell: a treasure each episode
  right = np.asarray(mapping)
  act = lambda p, actor, pos, first, evaluation: (
      jax.numpy.asarray(right.reshape(-1))[jax.numpy.minimum(pos, spec.size ** 2 - 1)], actor)
  ret, info = test(agent._replace(act=act))
  np.testing.assert_array_equal(info['denoised_return'], 1.0)
  np.testing.assert_allclose(ret, 0.99, atol=1e-5)


def test_bad_run_spec_values_name_the_valid_ones():
  with pytest.raises(ValueError, match='bsuite, seed'):
    run.RunSpec(mapping='random')
  with pytest.raises(ValueError, match='size'):
    run.RunSpec(size=1)
  with pytest.raises(ValueError, match='distinct'):
    run.RunSpec(seeds=(1, 1))


def run_cli(*args):
  return subprocess.run([sys.executable, os.path.join(ROOT, 'experiments', 'deepsea.py'), *args],
                        capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_scaling_has_no_flag_it_would_ignore():
  proc = subprocess.run([sys.executable, os.path.join(ROOT, 'experiments', 'deepsea_scaling.py'), '--agent', 'dqn'],
                        capture_output=True, text=True, cwd=ROOT, timeout=120)
  assert proc.returncode == 2 and 'unrecognized arguments: --agent' in proc.stderr


@pytest.mark.parametrize('args,message', [
    (['--agent', 'rainbow'], 'hyperagent, ensemble, dqn'),
    (['--mapping', 'random'], "'bsuite', 'seed'"),
    (['--seeds', '5-3'], 'distinct seeds'),
    (['--seeds', '2', '--seed', str(2**31 - 1)], '0 .. 2**31 - 1'),  # the loop's seeds are int32
    (['--size', '1'], 'size'),
    (['--set', 'index_dist=uniform'], 'sphere, gaussian, one_hot, none'),
    (['--set', 'learning_rat=0.1'], 'Unknown config field'),
    (['--set', 'learning_rate=abc'], 'learning_rate must be a number'),
    (['--set', 'hidden_sizes=32'], 'hidden_sizes must be a tuple of integers'),
])
def test_cli_rejects_bad_input_before_any_work(args, message):
  proc = run_cli(*args, '--out', '/nonexistent/never-created')
  assert proc.returncode == 2 and message in proc.stderr, proc.stderr
  assert not os.path.exists('/nonexistent/never-created')


def test_cli_end_to_end_writes_results_that_bsuite_scores(tmp_path):
  out = tmp_path / 'run'
  proc = run_cli('--size', '10', '--episodes', '30', '--seeds', '2', '--eval-every', '100',
                 '--eval-episodes', '10', '--mapping', 'bsuite', '--no-progress', '--out', str(out),
                 '--set', 'batch_size=16', '--set', 'num_update_indices=2')
  assert proc.returncode == 0, proc.stderr
  assert 'solved under' in proc.stdout
  for name in ('config.json', 'metrics.csv', 'episodes.csv', 'summary.csv', 'deepsea.png', 'checkpoint.npz'):
    assert (out / name).exists(), name
  saved = json.loads((out / 'config.json').read_text())
  assert saved['config']['batch_size'] == 16 and saved['run']['size'] == 10
  metrics = pd.read_csv(out / 'metrics.csv')
  assert list(metrics.env_steps.unique()) == [100, 200, 300] and set(metrics.seed) == {0, 1}
  from hyperagent.bsuite import report as bsuite_report
  scores = bsuite_report.load_and_score({'ours': str(out / 'bsuite' / 'seed_0')})
  assert not scores.failures
  # the score the report gives is bsuite's own analysis of the CSV, read by bsuite's own loader
  from bsuite.experiments.deep_sea import analysis as deep_sea_analysis
  from bsuite.logging import csv_load
  from hyperagent.bsuite import csv_format
  raw, _ = csv_load.load_bsuite(str(out / 'bsuite' / 'seed_0'))
  (score,) = scores.by_experiment.loc[scores.by_experiment.bsuite_env == 'deep_sea', 'score']
  assert score == pytest.approx(deep_sea_analysis.score(raw))
  assert sorted(raw.episode) == sorted(set(csv_format.bsuite_log_episodes(30)) | {30})


def test_a_finished_early_stopped_run_is_returned_unchanged_on_rerun(tmp_path):
  """The scaling study's re-runs are idempotent: a run that stopped once solved trains no further chunk."""
  config = make_config('hyperagent', 'deepsea', **TINY)
  spec = tiny_spec(size=4, episodes=400, eval_every=200)
  path = str(tmp_path / 'checkpoint.npz')
  first = run.train_seeds(config, spec, progress=False, checkpoint_path=path, stop_when_solved=True)
  assert run.all_solved(first, spec) and len(first.eval_steps) < len(run.chunk_lengths(spec))
  again = run.train_seeds(config, spec, progress=False, checkpoint_path=path, stop_when_solved=True)
  assert_results_equal(first, again)
  np.testing.assert_array_equal(first.eval_wall_s, again.eval_wall_s)


def test_bootstrap_statistics_over_seeds():
  from hyperagent.deepsea import results
  assert results.bootstrap_median([7, 7, 7]) == (7.0, 7.0, 7.0)
  median, low, high = results.bootstrap_median([100, 200, 300, None, 250])
  assert median == 250 and low <= median and high == np.inf  # an unsolved seed counts as never
  # NaN of any float type (a float32 column) is unsolved too, not a NaN median
  assert results.censored([3, None, float('nan'), np.float32('nan'), 5]).tolist() == [3, np.inf, np.inf, np.inf, 5]
  # exact power law N^2 with the same spread at every size: the exponent is 2 and the interval holds it
  table = pd.DataFrame(dict(size=np.repeat([10, 20, 40], 3), episodes=[90, 100, 110, 360, 400, 440, 1440, 1600, 1760]))
  k, low, high, unsolved = results.bootstrap_exponent(table, 'episodes')
  assert abs(k - 2.0) < 1e-9 and low <= 2.0 <= high and unsolved == 0
  assert results.bootstrap_exponent(table[table['size'] < 40], 'episodes') == \
      results.NoFit('only 2 sizes; 3 needed')
  assert results.bootstrap_exponent(table[:0], 'episodes') == results.NoFit('only 0 sizes; 3 needed')
  # one of N = 40's three seeds unsolved: a draw's median there is never when it takes that seed twice
  # or more, P = 3 (1/3)^2 (2/3) + (1/3)^3 = 7/27. Those draws count as k = ∞: far more than the upper
  # 2.5% tail, so the interval is unbounded above; its lower end is still that of the finite draws
  censored = table.assign(episodes=table['episodes'].where(table.index != 8))
  fit = results.bootstrap_exponent(censored, 'episodes')
  assert abs(fit.unsolved - 7 / 27) < 0.04 and abs(fit.k - 2.0) < 0.05  # sd of the share over 2,000 draws: 0.01
  assert fit.high == np.inf and np.isfinite(fit.low) and fit.low <= 2.0
  # the quantile: numpy's linear one where it meets only finite draws, ∞ once it reaches an infinite one
  values = np.array([3.0, 1.0, np.inf, 2.0, np.inf])
  assert results._quantile(values, 0.25) == 2.0  # sorted 1, 2, 3, ∞, ∞: position 1 exactly
  assert results._quantile(values, 0.4) == pytest.approx(2.6) and results._quantile(values, 0.6) == np.inf
  # the study report's cell says so, and names why a range has no fit
  import experiment_scripts
  describe = experiment_scripts.load('deepsea_study_report').describe_fit
  whole = results.bootstrap_exponent(table, 'episodes')
  assert describe(whole) == f'2.00 ({whole.low:.2f} – {whole.high:.2f})'  # nothing left out
  assert describe(fit).startswith(f'{fit.k:.2f} ({fit.low:.2f} – ∞); {fit.unsolved:.2%} of draws had an unsolved median')
  assert describe(results.NoFit('only 2 sizes; 3 needed')) == 'no fit (only 2 sizes; 3 needed)'
  never = table.assign(episodes=table['episodes'].where(table['size'] != 40))
  assert describe(results.bootstrap_exponent(never, 'episodes')) == \
      'no fit (the median is never at 1 of the 3 sizes)'


@pytest.mark.parametrize('text', ['10-5', '0-50', 'ten-50', '10'])
def test_the_study_report_refuses_an_empty_or_unreadable_range(text):
  import argparse
  import experiment_scripts
  parse_range = experiment_scripts.load('deepsea_study_report').parse_range
  assert parse_range('10-50') == (10, 50) and parse_range('70-70') == (70, 70)
  with pytest.raises(argparse.ArgumentTypeError, match='0 < LOW <= HIGH'):
    parse_range(text)


def test_the_printed_summary_counts_unsolved_seeds_as_never():
  """The line `make deepsea` ends with: 2 of 3 seeds solved give the larger of the two as median (the
  third is never); 1 of 3 gives no median, where the median of the solved seed alone would flatter."""
  from hyperagent.deepsea import results
  row = lambda seed, bsuite, optimal: dict(seed=seed, bsuite_solve_episode=bsuite, eval_solve_episode=optimal,
                                           final_eval_optimal=1.0)
  text = results.format_summary([row(0, 100, 300), row(1, None, 500), row(2, 200, None)])
  assert "solved under bsuite's criterion: 2/3 seeds, median 200 episodes" in text
  assert 'solved under all-optimal test: 2/3 seeds, median 500 episodes' in text
  text = results.format_summary([row(0, 100, None), row(1, None, None), row(2, None, None)])
  assert "solved under bsuite's criterion: 1/3 seeds, median never" in text
  assert text.endswith('solved under all-optimal test: 0/3 seeds')


def test_the_scaling_figure_counts_unsolved_seeds_as_the_table_does(tmp_path):
  """The figure's medians and fit are the table's: unsolved seeds count as never, so a size that most
  seeds failed gets no median point (DQN at N = 10 solved 2 of 5: the median of those 2 would
  flatter it), and the power law runs only through the sizes before the first such size."""
  from hyperagent.deepsea import results
  nan = float('nan')
  table = pd.DataFrame(dict(
      agent='a', size=np.repeat([10, 20, 40, 80], 3), budget_episodes=10_000,
      episodes=[100, 100, 100, 400, nan, 300, 1600, 1600, 1600, 6400, nan, nan]))
  medians = results.median_episodes(table, 'episodes')
  assert medians.to_dict() == {10: 100.0, 20: 400.0, 40: 1600.0, 80: np.inf}  # 20: max of the solved two
  fits = results.plot_scaling(str(tmp_path / 'scaling.png'), table, 'episodes')
  k, c = fits['a']
  assert abs(k - 2.0) < 1e-9 and abs(c - 1.0) < 1e-9  # 100, 400, 1600 over 10, 20, 40: exactly N^2
  assert (tmp_path / 'scaling.png').exists()
  fits = results.plot_scaling(str(tmp_path / 'few.png'), table[table['size'] != 40], 'episodes')
  assert fits == {}  # 10 and 20 finite, then 80 failed: two sizes, no power law


def test_a_study_read_from_several_folders_counts_each_seed_once(tmp_path):
  """A study grows across sessions (session 17 re-ran the small sizes in one folder while a long run
  went on in another): the report reads both, and a seed found in two folders is refused, not counted
  twice in a median."""
  from hyperagent.deepsea import results

  def fake_run(study, agent, size, seeds, budget, mapping='seed'):
    folder = tmp_path / study / f'{agent}-N{size}-{mapping}-abc'
    folder.mkdir(parents=True)
    (folder / 'config.json').write_text(json.dumps({'run': {'episodes': budget, 'seeds': seeds, 'mapping': mapping}}))
    pd.DataFrame(dict(seed=seeds, size=size, episodes=budget, eval_solve_episode=[100.0 * size] * len(seeds),
                      bsuite_solve_episode=[90.0 * size] * len(seeds))).to_csv(folder / 'summary.csv', index=False)

  fake_run('small', 'hyperagent', 10, [0, 1, 2], 2500)
  fake_run('small', 'hyperagent', 20, [0, 1, 2], 2500)
  fake_run('long', 'hyperagent', 70, [0, 1, 2], 5000)
  (tmp_path / 'long' / 'notes').mkdir()  # a folder that is not a run is passed over
  table = results.collect_runs(str(tmp_path / 'small'), str(tmp_path / 'long'))
  assert sorted(table.groupby('size').size().items()) == [(10, 3), (20, 3), (70, 3)]
  assert table.set_index('size')['budget_episodes'].to_dict() == {10: 2500, 20: 2500, 70: 5000}
  k = results.bootstrap_exponent(table, 'eval_solve_episode').k
  assert abs(k - 1.0) < 1e-9  # 100 N episodes at every size
  fake_run('again', 'hyperagent', 20, [2, 3], 2500)
  with pytest.raises(ValueError, match='N = 20 seed 2 is in more than one run folder'):
    results.collect_runs(str(tmp_path / 'small'), str(tmp_path / 'again'))
  # other seeds of N = 70 from the same setting join the sample; from another mapping they are refused
  fake_run('more', 'hyperagent', 70, [3, 4], 5000)
  assert len(results.collect_runs(str(tmp_path / 'long'), str(tmp_path / 'more'))) == 5
  fake_run('bsuite', 'hyperagent', 70, [3, 4], 5000, mapping='bsuite')
  with pytest.raises(ValueError, match='hyperagent N = 70: the run folders .* hold different settings'):
    results.collect_runs(str(tmp_path / 'long'), str(tmp_path / 'bsuite'))
  assert len(results.collect_runs(str(tmp_path / 'long'), str(tmp_path / 'bsuite'), labels=['', 'bsuite'])) == 5
  bad = subprocess.run([sys.executable, os.path.join(ROOT, 'experiments', 'deepsea_study_report.py'),
                        str(tmp_path / 'small'), str(tmp_path / 'nowhere')], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
  assert bad.returncode == 2 and 'no such study folder' in bad.stderr and 'nowhere' in bad.stderr
  twice = subprocess.run([sys.executable, os.path.join(ROOT, 'experiments', 'deepsea_study_report.py'),
                          str(tmp_path / 'small'), f'again={tmp_path / "small"}/'], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
  assert twice.returncode == 2 and 'a study folder given more than once' in twice.stderr


@pytest.mark.slow  # 2-3 min on the 2-core CI machine: two scripts in subprocesses, each compiling its loops
def test_ablation_and_study_report_end_to_end(tmp_path):
  out = tmp_path / 'ablation'
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'experiments', 'deepsea_ablation.py'), '--sizes', '4', '5', '--seeds', '2',
       '--episodes', '40', '--eval-every', '40', '--eval-episodes', '4', '--variants', 'hyperagent', 'K=1',
       '--out', str(out), '--no-progress', '--set', 'batch_size=16', '--set', 'warmup_steps=20'],
      capture_output=True, text=True, cwd=ROOT, timeout=600)
  assert proc.returncode == 0, proc.stderr
  rows = pd.read_csv(out / 'ablation.csv')
  assert sorted(rows['variant'].unique()) == ['K=1', 'hyperagent'] and len(rows) == 8
  (k1,) = out.glob('K_1-N4-seed-*')
  assert json.loads((k1 / 'config.json').read_text())['config']['num_update_indices'] == 1
  assert (out / 'ablation.png').exists() and '| K=1 | 4 |' in (out / 'ablation.md').read_text()
  # a second command for one variant and size (finished: loaded) keeps the other rows of the table
  again = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'experiments', 'deepsea_ablation.py'), '--sizes', '4', '--seeds', '2',
       '--episodes', '40', '--eval-every', '40', '--eval-episodes', '4', '--variants', 'K=1',
       '--out', str(out), '--no-progress', '--set', 'batch_size=16', '--set', 'warmup_steps=20'],
      capture_output=True, text=True, cwd=ROOT, timeout=600)
  assert again.returncode == 0, again.stderr
  pd.testing.assert_frame_equal(pd.read_csv(out / 'ablation.csv'), rows)
  bad = subprocess.run([sys.executable, os.path.join(ROOT, 'experiments', 'deepsea_ablation.py'), '--variants', 'M=3'],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
  assert bad.returncode == 2 and 'no prior' in bad.stderr
  # the study report reads the same kind of folders (agent-N<size>-<mapping>) and makes its tables
  study = tmp_path / 'study'
  for size in (4, 5, 6):
    spec = tiny_spec(size=size, episodes=20, eval_every=40)
    config = make_config('hyperagent', 'deepsea', **TINY)
    from hyperagent.deepsea import results
    results.write_results(str(study / f'hyperagent-N{size}-seed'), config, spec, run.train_seeds(config, spec, progress=False))
  report = subprocess.run([sys.executable, os.path.join(ROOT, 'experiments', 'deepsea_study_report.py'), str(study),
                           '--out', str(tmp_path / 'report')], capture_output=True, text=True, cwd=ROOT, timeout=120)
  assert report.returncode == 0, report.stderr
  written = tmp_path / 'report'
  assert '| hyperagent | 4 | 2 |' in (written / 'study.md').read_text() and (written / 'study_eval_solve_episode.png').exists()


def test_run_folders_follow_the_settings_and_fresh_empties_them(tmp_path, monkeypatch, capsys):
  """The default folder carries a hash of every setting: a changed setting gets its own folder instead of
  a clash, the same command finds its finished run, and --fresh leaves nothing of the old run behind.
  The script's `main` is called in this process (its commands as processes: the tests above and below)."""
  import types
  import experiment_scripts
  driver = experiment_scripts.load('deepsea')
  base = ['--size', '10', '--episodes', '20', '--eval-every', '100', '--eval-episodes', '4', '--no-progress',
          '--set', 'batch_size=16', '--set', 'warmup_steps=10']
  monkeypatch.chdir(tmp_path)  # the default folder is results/deepsea/... under the working directory

  def cli(*args):
    try:
      code = driver.main([*base, *args])
    except SystemExit as e:  # argparse's errors
      code = e.code
    out = capsys.readouterr()
    return types.SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)
  first = cli('--seeds', '3')
  assert first.returncode == 0 and 'starting a new run' in first.stdout, first.stderr
  again = cli('--seeds', '3')
  assert again.returncode == 0 and 'finished already' in again.stdout
  other = cli('--seeds', '2')
  assert other.returncode == 0 and 'starting a new run' in other.stdout, other.stderr
  folders = sorted(p.name for p in (tmp_path / 'results' / 'deepsea').iterdir())
  assert len(folders) == 2 and all(f.startswith('hyperagent-N10-seed-') for f in folders)
  # an explicit folder holding another run: one line naming what differs and the way out
  out = tmp_path / 'mine'
  assert cli('--seeds', '3', '--out', str(out)).returncode == 0
  clash = cli('--seeds', '2', '--out', str(out))
  assert clash.returncode == 2 and '--fresh' in clash.stderr and len(clash.stderr.strip().splitlines()) == 1
  assert 'spec.seeds=[0, 1, 2] (now [0, 1])' in clash.stderr and 'spec.size' not in clash.stderr
  assert 'resuming' not in clash.stdout  # nothing said about a run that is not this command's
  assert 'Traceback' not in clash.stderr
  fresh = cli('--seeds', '2', '--out', str(out), '--fresh')
  assert fresh.returncode == 0, fresh.stderr
  assert sorted(p.name for p in (out / 'bsuite').iterdir()) == ['seed_0', 'seed_1']  # no stale seed_2
  # --fresh never empties a folder that is not a results folder
  stranger = tmp_path / 'notes'
  stranger.mkdir()
  (stranger / 'thesis.tex').write_text('x')
  refused = cli('--out', str(stranger), '--fresh')
  assert refused.returncode == 2 and (stranger / 'thesis.tex').exists()


def test_ctrl_c_finishes_the_chunk_saves_and_resumes_exactly(tmp_path, monkeypatch):
  import signal
  config = make_config('hyperagent', 'deepsea', **TINY)
  spec = tiny_spec()
  straight = run.train_seeds(config, spec, progress=False)
  path = str(tmp_path / 'checkpoint.npz')
  append, calls = run._append, []

  def append_then_ctrl_c(*args):
    calls.append(1)
    if len(calls) == 2:
      os.kill(os.getpid(), signal.SIGINT)  # arrives while the second chunk's results are being read
    return append(*args)

  monkeypatch.setattr(run, '_append', append_then_ctrl_c)
  with pytest.raises(checkpoint.Interrupted, match='interrupted at episode 16 of 24.*resume'):
    run.train_seeds(config, spec, progress=False, checkpoint_path=path, stop_on_interrupt=True)
  assert checkpoint.load_meta(path)['chunks_done'] == 2
  monkeypatch.setattr(run, '_append', append)
  assert_results_equal(straight, run.train_seeds(config, spec, progress=False, checkpoint_path=path))


def test_ctrl_c_on_the_command_line_prints_one_line(tmp_path):
  import signal
  import time
  proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'experiments', 'deepsea.py'), '--size', '10',
                           '--episodes', '100000', '--eval-every', '500', '--no-progress', '--out', str(tmp_path / 'r')],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
  while 'starting a new run' not in proc.stdout.readline():  # printed before compiling
    assert proc.poll() is None, proc.stderr.read()
  time.sleep(8.0)  # usually inside the loop by now; before it, the one line says nothing was saved
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 130, err
  assert 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
  assert 'interrupted' in err


def test_a_kill_during_a_checkpoint_write_leaves_the_last_good_one(tmp_path):
  """SIGKILL at an arbitrary instant of a stream of saves: the file on disk is always a whole checkpoint."""
  import signal
  import time
  path = tmp_path / 'checkpoint.npz'
  writer = ('import sys, numpy as np\nfrom hyperagent import checkpoint\n'
            'big = np.arange(4_000_000, dtype=np.float32)\n'
            'for i in range(10**6):\n'
            '  checkpoint.save(sys.argv[1], dict(count=i), dict(state=dict(big=big + i)))\n')
  proc = subprocess.Popen([sys.executable, '-c', writer, str(path)], cwd=ROOT)
  deadline = time.time() + 120
  while not path.exists() and time.time() < deadline:
    time.sleep(0.05)
  time.sleep(1.3)
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=30)
  meta, trees = checkpoint.load(str(path), dict(state=dict(big=np.zeros(4_000_000, np.float32))), exact_shapes=['state'])
  assert trees['state']['big'][0] == meta['count'] and trees['state']['big'][-1] == 3_999_999 + meta['count']


def test_a_checkpoint_holding_python_objects_is_refused(tmp_path):
  """np.load refuses object arrays: a crafted checkpoint cannot run code when it is loaded."""
  path = str(tmp_path / 'checkpoint.npz')
  checkpoint.save(path, dict(run={}), dict(state=dict(x=np.zeros(3))))
  np.savez(path, __meta__=np.frombuffer(b'{}', np.uint8), **{'state/0': np.array([object()], dtype=object)})
  with pytest.raises(checkpoint.CheckpointError, match='not a readable checkpoint'):
    checkpoint.load(path, dict(state=dict(x=np.zeros(3))))


def test_the_path_probe_equals_greedy_episodes_under_each_sampled_index():
  """deepsea_path_probe's p(d) and reach(N - 1), from the hypermodel's coefficients at the diagonal, equal
  what the network's own forward pass and the environment give index by index: the greedy action at
  each diagonal cell, and whether an episode played greedily under that index collects the treasure."""
  import experiment_scripts
  probe = experiment_scripts.load('deepsea_path_probe')
  size, draws = 4, 256
  config = make_config('hyperagent', 'deepsea', **TINY)
  spec = tiny_spec(size=size, seeds=(3,))
  agent = jitloop.make_agent_for(config, spec.env)
  env_params, states = run.initial_states(agent, spec)
  params = jax.tree.map(lambda x: x[0], states.train.params)
  mapping = np.asarray(env_params.mapping[0])
  p, reach = probe.path_probe(agent, params, mapping, jax.random.key(7), draws)
  network = agent.network
  indices = network.index.sample(jax.random.key(7), (draws,))
  greedy = jax.jit(jax.vmap(lambda position, xi: jnp.argmax(network.apply(params, position, xi))))  # over ξ
  diagonal = [np.asarray(greedy(jnp.full(draws, d * (size + 1), jnp.int32), indices)) == mapping[d, d]
              for d in range(size)]
  np.testing.assert_allclose(p, np.mean(diagonal, axis=1))
  full = deep_sea.DeepSeaParams(size, jnp.asarray(mapping))
  state, position = jax.vmap(lambda _: deep_sea.reset(full))(jnp.arange(draws))
  for _ in range(size):  # each index plays one episode greedily, as the agent acts
    state, position, _, _ = jax.vmap(deep_sea.step, in_axes=(None, 0, 0, None))(
        full, state, greedy(position, indices), jax.random.key(0))
  treasures = int(state.denoised_return.sum())
  assert reach[-1] == treasures / draws and 0 < p.min() < 1  # indices disagree somewhere: a real check
  # the exploration front, N = 3 (diagonal cells 0, 4, 8): episode 0 goes left at once, episode 1 stays on it
  np.testing.assert_array_equal(probe.first_visits(np.array([0, 3, 6, 0, 4, 8]), 3), [0, 1, 1])
  np.testing.assert_array_equal(probe.first_visits(np.array([0, 3, 6]), 3), [0, -1, -1])


def test_a_run_another_process_holds_stops_its_driver_and_the_study_goes_on(tmp_path, monkeypatch):
  """deepsea.py on a run folder another process holds exits 75 and writes nothing there; the scaling
  study skips that run and trains the others (two study processes share one list of runs this way)."""
  import argparse
  monkeypatch.syspath_prepend(os.path.join(ROOT, 'experiments'))
  import deepsea as driver
  settings = ['--episodes', '20', '--eval-every', '40', '--eval-episodes', '4', '--seeds', '2', '--no-progress',
              '--set', 'batch_size=16', '--set', 'warmup_steps=10']
  parser = argparse.ArgumentParser()
  driver.add_run_arguments(parser, exclude=('size',))
  config, spec = driver.make_run(parser.parse_args(settings), 'hyperagent', size=4)
  study = tmp_path / 'study'
  held = driver.run_folder('hyperagent', config, spec, root=str(study))
  script = lambda name, *args: subprocess.run([sys.executable, os.path.join(ROOT, 'experiments', name), *args,
                                               *settings], capture_output=True, text=True, cwd=ROOT, timeout=600)
  with checkpoint.folder_lock(held):
    busy = script('deepsea.py', '--size', '4', '--out', held)
    assert busy.returncode == checkpoint.BUSY_EXIT and 'in use by another run' in busy.stderr, busy.stderr
    assert 'starting a new run' not in busy.stdout  # nothing said about a run that is not ours to start
    alone = script('deepsea_scaling.py', '--sizes', '4', '4', '--agents', 'hyperagent', '--out', str(study))
    assert alone.returncode == 0 and 'nothing to tabulate yet' in alone.stdout, alone.stderr
    assert not (study / 'scaling.csv').exists()
    both = script('deepsea_scaling.py', '--sizes', '4', '5', '--agents', 'hyperagent', '--out', str(study))
  assert both.returncode == 0, both.stderr
  assert set(pd.read_csv(study / 'scaling.csv')['size']) == {5}
  assert os.listdir(held) == [checkpoint.LOCK_FILE]
  assert both.stdout.count('starting a new run') == 1  # the N = 5 run says what it does; N = 4 was skipped
  again = script('deepsea_scaling.py', '--sizes', '5', '--agents', 'hyperagent', '--out', str(study))
  assert again.returncode == 0 and 'this run finished already' in again.stdout, again.stderr
  # once free, the skipped N = 4 run trains, and scaling.csv keeps the N = 5 rows it did not rerun
  five = pd.read_csv(study / 'scaling.csv')
  four = script('deepsea_scaling.py', '--sizes', '4', '--agents', 'hyperagent', '--out', str(study))
  assert four.returncode == 0 and four.stdout.count('starting a new run') == 1, four.stderr
  table = pd.read_csv(study / 'scaling.csv')
  assert set(table['size']) == {4, 5}
  pd.testing.assert_frame_equal(table[table['size'] == 5].reset_index(drop=True), five)


def test_a_labelled_study_folder_is_a_variant_of_its_agent(tmp_path, capsys):
  """The same agent, size and seed in two study folders is refused (a median must not count a seed
  twice) unless one folder is labelled: its runs are then a series of their own, '<agent> (<label>)'."""
  from hyperagent.deepsea import results
  import experiment_scripts
  for study, solve in (('preset', 300.0), ('prior', 200.0)):
    for size in (10, 20, 30):
      folder = tmp_path / study / f'ensemble-N{size}-seed-0000000{size // 10}'
      folder.mkdir(parents=True)
      (folder / 'config.json').write_text(json.dumps({'run': {'episodes': 2500}}))
      pd.DataFrame({'seed': [0, 1], 'size': size, 'episodes': 1000, 'eval_solve_episode': solve * size / 10,
                    'bsuite_solve_episode': solve * size / 10}).to_csv(folder / 'summary.csv', index=False)
  with pytest.raises(ValueError, match='more than one run folder'):
    results.collect_runs(str(tmp_path / 'preset'), str(tmp_path / 'prior'))
  table = results.collect_runs(str(tmp_path / 'preset'), str(tmp_path / 'prior'), labels=('', 'prior 50'))
  assert sorted(table['agent'].unique()) == ['ensemble', 'ensemble (prior 50)'] and len(table) == 12
  report = experiment_scripts.load('deepsea_study_report')
  assert report.main([str(tmp_path / 'preset'), f'prior 50={tmp_path / "prior"}', '--ranges', '10-30',
                      '--out', str(tmp_path / 'report')]) == 0
  text = (tmp_path / 'report' / 'study.md').read_text()
  # episodes ∝ N exactly in both series: exponent 1.00 for each, medians 200 and 300 at N = 10
  assert '| ensemble (prior 50) | 10 | 2 | 2 / 2 | 200 (200 – 200)' in text and '| ensemble | 10 | 2 | 2 / 2 | 300' in text
  assert text.count('| 10–30 | 10, 20, 30 | 1.00 (1.00 – 1.00) |') == 4
