"""The bsuite adapter and the sweep runner: bsuite's envs and logger, our jitted act/learn.

Fast tests use one tiny config (TINY) everywhere, so the adapter's compile cache serves every test
that plays the same observation shape; the slow ones run every `bsuite.sweep.TESTING` id with each
agent's real preset, and the parallel (process pool) runner.
"""
from __future__ import annotations

import json
import os

import dm_env
import numpy as np
import pandas as pd
import pytest

from bsuite import sweep
from dm_env import specs

from hyperagent import cli as hyperagent_cli
from hyperagent import config as config_lib
from hyperagent.bsuite import adapter as bsuite_adapter
from hyperagent.bsuite import sweep as bsuite_sweep
from hyperagent.bsuite import csv_format as bsuite_csv
from hyperagent.bsuite import report as bsuite_report

import experiment_scripts  # tests/experiment_scripts.py

TINY = dict(hidden_sizes=(16,), num_update_indices=2, batch_size=8, warmup_steps=2, replay_capacity=500)
TINY_SET = [f'--set={name}={value!r}' for name, value in TINY.items()]
# One id per observation kind: (1, 1) vector, 10x10 one-hot grid (int positions), 28x28 image.
# (Compiling `learn` for a new shape costs seconds; the slow tests play every TESTING id.)
REPRESENTATIVE = ('bandit/0', 'deep_sea/0', 'mnist/0')




cli = experiment_scripts.load('bsuite_run')


@pytest.fixture
def fake_mnist(monkeypatch):
  """bsuite downloads MNIST on first use; this machine may be offline, and the adapter only needs
  the shapes and dtypes (28x28 int8 images, uint8 labels)."""
  from bsuite.utils import datasets
  rng = np.random.default_rng(0)

  def load_mnist(directory='/tmp/mnist'):
    del directory
    images = rng.integers(-128, 128, (64, 28, 28)).astype(np.int8)
    labels = rng.integers(0, 10, 64).astype(np.uint8)
    return (images, labels), (images[:8], labels[:8])

  monkeypatch.setattr(datasets, 'load_mnist', load_mnist)


def _rows(results_dir, bsuite_id) -> pd.DataFrame:
  return pd.read_csv(bsuite_csv.bsuite_csv_path(results_dir, bsuite_id))


# ------------------------------------------------------------------------------------ the adapter

def _play(bsuite_id, results_dir, agent='hyperagent', settings=None, episodes=3):
  settings = settings or config_lib.make_config(agent, 'deepsea', **TINY).to_dict()
  summary = bsuite_adapter.run(bsuite_id, str(results_dir), agent, settings, seed=0,
                               num_episodes=episodes)
  rows = _rows(results_dir, bsuite_id)
  # bsuite's logger wrote one row per episode (it logs every episode up to 10), none twice
  assert rows['episode'].tolist() == list(range(1, episodes + 1)), bsuite_id
  assert int(rows['steps'].iloc[-1]) == summary['steps']
  return summary


@pytest.mark.parametrize('bsuite_id', REPRESENTATIVE)
def test_adapter_plays_each_observation_kind(bsuite_id, tmp_path, fake_mnist):
  summary = _play(bsuite_id, tmp_path)
  # learning starts when warmup_steps transitions are stored, then one step per transition
  assert summary['learn_steps'] == summary['steps'] - TINY['warmup_steps'] + 1
  assert summary['replay_capacity'] == TINY['replay_capacity']
  assert summary['one_hot_input'] == bsuite_id.startswith('deep_sea')


def test_adapter_plays_ensemble_plus(tmp_path):
  """Ensemble+'s state has a member axis; the adapter and its summary still work (one count per member)."""
  settings = config_lib.make_config('ensemble', 'deepsea', index_dim=3, **TINY).to_dict()
  summary = _play('deep_sea/0', tmp_path, 'ensemble', settings)
  assert summary['learn_steps'] == summary['steps'] - TINY['warmup_steps'] + 1


@pytest.mark.slow
def test_one_hot_deep_sea_plays_like_dense(tmp_path, monkeypatch):
  """DeepSea as int positions is the dense MLP on the one-hot grid: same params, same run."""
  settings = config_lib.make_config('hyperagent', 'deepsea', **TINY).to_dict()
  _play('deep_sea/0', tmp_path / 'one_hot', settings=settings, episodes=10)
  monkeypatch.setattr(bsuite_adapter, 'ONE_HOT_EXPERIMENTS', ())
  assert not _play('deep_sea/0', tmp_path / 'dense', settings=settings, episodes=10)['one_hot_input']
  pd.testing.assert_frame_equal(_rows(tmp_path / 'one_hot', 'deep_sea/0'),
                                _rows(tmp_path / 'dense', 'deep_sea/0'))


@pytest.mark.slow
@pytest.mark.parametrize('agent', config_lib.AGENTS)
@pytest.mark.parametrize('bsuite_id', sweep.TESTING)
def test_adapter_plays_every_testing_id(bsuite_id, agent, tmp_path, fake_mnist):
  """Every bsuite.sweep.TESTING id with each agent's real preset (warm-up 128, batch 128)."""
  settings = config_lib.make_config(agent, 'deepsea').to_dict()
  summary = _play(bsuite_id, tmp_path, agent, settings, episodes=5)
  assert summary['learn_steps'] == max(summary['steps'] - 128 + 1, 0)


def test_adapter_stores_terminal_and_truncated_transitions():
  config = config_lib.make_config('hyperagent', 'deepsea', **TINY)
  agent = bsuite_adapter.BsuiteAdapter(specs.Array((1, 1), np.float32), specs.DiscreteArray(11),
                                     config, seed=0)
  first = dm_env.restart(np.full((1, 1), 0.5, np.float32))
  action = agent.select_action(first)
  assert 0 <= action < 11
  agent.update(first, action, dm_env.termination(1.5, np.zeros((1, 1), np.float32)))
  agent.update(first, 3, dm_env.truncation(-1.0, np.ones((1, 1), np.float32)))  # never from bsuite
  agent.update(first, 4, dm_env.transition(0.25, np.ones((1, 1), np.float32)))
  state = agent.replay_state
  assert int(state.rows) == 3 and int(agent.train_state.step) == 2  # warm-up 2: learns from the 2nd
  np.testing.assert_array_equal(state.action[:3, 0], [action, 3, 4])
  np.testing.assert_allclose(state.reward[:3, 0], [1.5, -1.0, 0.25])
  np.testing.assert_array_equal(state.terminated[:3, 0], [True, False, False])
  np.testing.assert_array_equal(state.truncated[:3, 0], [False, True, False])
  np.testing.assert_allclose(state.obs[:3, 0, 0, 0], [0.5] * 3)
  np.testing.assert_allclose(state.next_obs[:3, 0, 0, 0], [0.0, 1.0, 1.0])
  np.testing.assert_allclose(np.linalg.norm(state.perturbation[:3, 0], axis=-1), 1.0, rtol=1e-5)


def test_replay_capacity_caps_by_memory():
  config = config_lib.make_config('hyperagent', 'deepsea')
  capacity = lambda shape, one_hot=False: bsuite_adapter.memory_capped_capacity(config, shape, one_hot)
  assert capacity((10, 5)) == capacity((50, 50), True) == config.replay_capacity == 1_000_000
  assert capacity((28, 28)) == (1 << 30) // (2 * 4 * 784 + 4 * 4 + 16)
  assert capacity((10_000, 10_000)) == config.batch_size


def test_both_engines_cap_replay_alike():
  """A capacity below one batch is the user's to choose (sampling draws with replacement); memory
  never pushes a buffer below one batch. The jitted engine also cuts to what the budget fills."""
  from hyperagent.bsuite import engine
  from hyperagent.bsuite.envs import registry
  catch = registry.make_id('catch/0')[0]
  per_transition = engine.transition_bytes(config_lib.make_config('hyperagent', 'deepsea'), catch)
  for wanted, max_bytes, expected in [(16, 1 << 30, 16), (10_000, 1 << 30, 10_000),
                                      (10_000, 3 * per_transition, 128), (100, 3 * per_transition, 100)]:
    config = config_lib.make_config('hyperagent', 'deepsea', replay_capacity=wanted)  # batch 128
    assert bsuite_adapter.memory_capped_capacity(config, (10, 5), max_bytes=max_bytes) == expected
    assert engine.capacity(config, catch, [None], 1, max_bytes=max_bytes) == expected
  assert engine.capacity(config, catch, [40], 1) == 40  # 40 steps fill 40 rows


def test_one_hot_position():
  grid = np.zeros((3, 4), np.float32)
  assert bsuite_adapter.one_hot_position(grid) == 12  # all zeros: DeepSea after its last row
  grid[1, 2] = 1
  assert bsuite_adapter.one_hot_position(grid) == 6  # row-major, as the dense MLP flattens
  grid[0, 0] = 1
  with pytest.raises(ValueError, match='one-hot'):
    bsuite_adapter.one_hot_position(grid)


# ---------------------------------------------------------------------------- choosing the work

def test_resolve_ids():
  assert bsuite_sweep.resolve_ids('deep_sea/3') == ('deep_sea/3',)
  assert bsuite_sweep.resolve_ids('deep_sea') == tuple(f'deep_sea/{i}' for i in range(21))
  assert set(bsuite_sweep.resolve_ids('exploration')) == set(sweep.TAGS['exploration'])
  assert bsuite_sweep.resolve_ids('all') == tuple(sweep.SWEEP)
  # several at once: bsuite's order, no duplicates
  assert bsuite_sweep.resolve_ids('catch/1, deep_sea/0,catch,deep_sea/0')[:2] == ('catch/0', 'catch/1')
  assert len(bsuite_sweep.resolve_ids('catch/1,catch')) == len(bsuite_sweep.resolve_ids('catch'))


@pytest.mark.parametrize('argv, expected', [
    (['--sweep', 'deep_sea/99'], ['deep_sea/0 .. deep_sea/20']),
    (['--sweep', 'deep_see'], ['deep_sea', 'catch', 'exploration', 'memory', '"all"']),
    (['--sweep', 'catch/0,nope'], ["'nope'", 'bandit_noise']),
    (['--sweep', 'catch/0', '--agent', 'rainbow'], ['hyperagent', 'ensemble', 'dqn', 'boot_dqn']),
    (['--sweep', 'catch/0', '--set', 'learning_rte=1'], ['learning_rte', 'learning_rate']),
    (['--sweep', 'catch/0', '--agent', 'boot_dqn', '--set', 'learning_rate=1'], ['num_ensemble']),
    (['--sweep', 'catch/0', '--agent', 'boot_dqn', '--set', 'num_ensemble=abc'], ["num_ensemble must be an integer >= 1, got 'abc'"]),
    (['--sweep', 'catch/0', '--agent', 'boot_dqn', '--set', 'num_ensemble=0'], ['num_ensemble must be an integer >= 1, got 0']),
    (['--sweep', 'catch/0', '--episodes', '0'], ['--episodes']),
    (['--sweep', 'catch/0', '--group-runs', '0'], ['group_runs must be >= 1']),
    (['--sweep', 'catch/0', '--checkpoint-every', '0'], ['checkpoint_every must be > 0']),
    (['--sweep', 'catch/0', '--seed', '-1'], ['seed must be in 0 .. 2,147,482']),
    (['--sweep', 'catch/0', '--seed', '2147483'], ['seed must be in 0 .. 2,147,482']),  # 1000 x seed + n: int32
    (['--sweep', 'catch/0', '--set', 'learning_rate=abc'], ['learning_rate must be a number']),  # not saved
    (['--sweep', 'catch/0', '--seeds', '0'], ['seeds must be in 1 .. 2,147,483']),
    (['--sweep', 'catch/0', '--seed', '2147482', '--seeds', '2'], ['seeds must be in 1 .. 1 ']),
    (['--sweep', 'catch/0', '--seeds', '2', '--engine', 'python'], ['python engine runs one seed a command']),
])
def test_bad_arguments_name_the_valid_choices_before_any_work(argv, expected, tmp_path, capsys):
  results = tmp_path / 'results'
  with pytest.raises(SystemExit) as exit_info:
    cli.main(argv + ['--results', str(results), '--workers', '1'])
  assert exit_info.value.code == 2
  message = capsys.readouterr().err
  for text in expected:
    assert text in message
  assert not results.exists()  # nothing was written, nothing started


def test_ensemble_groups_two_runs_by_default_and_any_agent_takes_a_cap():
  settings = lambda **kw: bsuite_sweep.SweepSettings(**kw).group_runs
  assert settings(agent='ensemble') == bsuite_sweep.ENSEMBLE_GROUP_RUNS == 2
  assert settings(agent='hyperagent') is None and settings(agent='dqn') is None
  assert settings(agent='ensemble', group_runs=20) == 20 and settings(agent='dqn', group_runs=3) == 3


def test_group_runs_splits_the_jitted_groups(tmp_path, capsys):
  """Three bandit ids capped at two a group: the runner plays groups of 2 and 1 (runs.jsonl's
  group_size), and every id is finished."""
  results = tmp_path / 'ha'
  assert _run_cli(results, 'bandit/0,bandit/1,bandit/2', '--group-runs', '2') == 0
  logged = [json.loads(l) for l in (results / 'runs.jsonl').read_text().splitlines()]
  assert [(r['bsuite_id'], r['group_size']) for r in logged] == [('bandit/0', 2), ('bandit/1', 2), ('bandit/2', 1)]
  assert all(bsuite_sweep.is_finished(str(results), i, 3) for i in ('bandit/0', 'bandit/1', 'bandit/2'))


def test_a_checkpoint_of_another_grouping_is_named_before_its_ids_restart(tmp_path, capsys):
  from hyperagent.bsuite import engine
  results = tmp_path / 'ens'
  results.mkdir()
  (results / 'jax-engine-bandit-0+20.npz').write_bytes(b'')  # as left by groups of 20
  (results / 'jax-engine-catch-0+20.npz').write_bytes(b'')  # ids not asked for here
  config = config_lib.make_config('ensemble', 'deepsea', **TINY)
  ids = ['bandit/0', 'bandit/1', 'bandit/2']
  groups = engine.groups(engine.runs(ids), config, {i: 3 for i in ids}, max_runs=2)
  assert engine.unused_checkpoints(str(results), groups, ids) == [(str(results / 'jax-engine-bandit-0+20.npz'), 20, None)]
  (results / 'jax-engine-bandit-0+2.npz').write_bytes(b'')  # this grouping's own: resumed, not reported
  assert len(engine.unused_checkpoints(str(results), groups, ids)) == 1
  assert engine.unused_checkpoints(str(tmp_path / 'none'), groups, ids) == []
  (results / 'jax-engine-bandit-0+2.npz').unlink()
  assert _run_cli(results, 'bandit/0,bandit/1,bandit/2', '--agent', 'ensemble') == 0
  assert '--group-runs 20 to resume it' in capsys.readouterr().out


def test_groups_of_one_seed_and_of_several_never_share_a_checkpoint(tmp_path, capsys):
  """A group of 2 ids at seed 0 and a group of one id at seeds 0 and 1 both start at bandit/0 with 2
  runs: their checkpoints are named apart, so neither run deletes the other's as a stale one, and
  each names the other's with what resumes it."""
  from hyperagent.bsuite import engine
  results = tmp_path / 'ha'
  folders = {0: str(results), 1: f'{results}-seed1'}
  config = config_lib.make_config('hyperagent', 'deepsea', **TINY)
  ids = ['bandit/0', 'bandit/1']
  one = engine.groups(engine.runs(ids), config, {i: 3 for i in ids}, max_runs=2)
  both = engine.groups(engine.runs(ids, (0, 1)), config, {i: 3 for i in ids}, max_runs=2)
  assert engine.checkpoint_path(str(results), one[0]) == str(results / 'jax-engine-bandit-0+2.npz')
  assert engine.checkpoint_path(folders, both[0]) == str(results / 'jax-engine-bandit-0+2-seeds0-1.npz')
  results.mkdir()
  (results / 'jax-engine-bandit-0+2.npz').write_bytes(b'')  # as left by an interrupted one-seed sweep
  assert _run_cli(results, 'bandit/0,bandit/1', '--group-runs', '2', '--seeds', '2') == 0
  assert ('jax-engine-bandit-0+2.npz holds a group of 2 runs' in capsys.readouterr().out
          and (results / 'jax-engine-bandit-0+2.npz').exists())
  (results / 'jax-engine-bandit-0+2-seeds0-1.npz').write_bytes(b'')  # and the other way round
  assert engine.unused_checkpoints(str(results), one, ids) == [
      (str(results / 'jax-engine-bandit-0+2-seeds0-1.npz'), 2, (0, 1))]
  assert _run_cli(tmp_path / 'fresh', 'bandit/0,bandit/1', '--group-runs', '2') == 0  # a new folder: no note
  assert 'note:' not in capsys.readouterr().out
  (tmp_path / 'fresh' / 'jax-engine-bandit-0+2-seeds0-1.npz').write_bytes(b'')
  (tmp_path / 'fresh' / 'bsuite_id_-_bandit-0.csv').unlink()
  assert _run_cli(tmp_path / 'fresh', 'bandit/0,bandit/1', '--group-runs', '2') == 0
  assert '--group-runs 2 and the seeds 0, 1 (--seed, --seeds) to resume it' in capsys.readouterr().out


def test_groups_of_other_members_never_share_a_checkpoint():
  """bandit/0+2 after bandit/1 finished elsewhere is bandit/0 and bandit/2: its own name, so it never
  takes the planned group's checkpoint for a stale one and deletes it; the planned groups keep theirs."""
  from hyperagent.bsuite import engine
  config = config_lib.make_config('hyperagent', 'deepsea', **TINY)
  budgets = {f'bandit/{k}': 3 for k in range(4)}
  planned = engine.groups(engine.runs(['bandit/0', 'bandit/1']), config, budgets)[0]
  gap = engine.groups(engine.runs(['bandit/0', 'bandit/2']), config, budgets)[0]
  later = engine.groups(engine.runs(['bandit/1', 'bandit/2']), config, budgets)[0]
  two_seeds = engine.groups(engine.runs(['bandit/0', 'bandit/1'], (0, 1)), config, budgets)[0]
  # seed 1 of bandit/0 finished: (bandit/0, 0), (bandit/1, 0), (bandit/1, 1)
  partial = engine.Group(two_seeds.env, ('bandit/0', 'bandit/1', 'bandit/1'), (0, 0, 1))
  folders = {0: 'r', 1: 'r-seed1'}
  names = [os.path.basename(engine.checkpoint_path(folders, g)) for g in (planned, gap, later, two_seeds, partial)]
  assert names[0] == 'jax-engine-bandit-0+2.npz' and names[2] == 'jax-engine-bandit-1+2.npz'
  assert names[3] == 'jax-engine-bandit-0+4-seeds0-1.npz'
  # the digest is the first 8 hex digits of sha256 of the members' repr (hashlib, by hand below), the
  # same in every process, so a rerun finds the checkpoint (Python's own hash() is salted per process)
  assert names[1] == 'jax-engine-bandit-0+2-md26f1c8e.npz'  # sha256(b"[('bandit/0', 0), ('bandit/2', 0)]")
  assert names[4] == 'jax-engine-bandit-0+3-seeds0-1-m2da7c545.npz'
  assert len(set(names)) == 5


def test_unused_checkpoints_reads_names_with_a_member_digest(tmp_path):
  from hyperagent.bsuite import engine
  config = config_lib.make_config('hyperagent', 'deepsea', **TINY)
  budgets = {f'bandit/{k}': 3 for k in range(4)}
  gap = engine.groups(engine.runs(['bandit/0', 'bandit/2']), config, budgets)[0]
  planned = engine.groups(engine.runs(['bandit/0', 'bandit/1']), config, budgets)
  left = engine.checkpoint_path(str(tmp_path), gap)
  open(left, 'wb').close()
  (tmp_path / 'jax-engine-bandit-0+3-seeds0-1-m0123abcd.npz').write_bytes(b'')
  (tmp_path / 'jax-engine-bandit-0+2-mnothex.npz').write_bytes(b'')  # not a name this engine writes
  assert engine.unused_checkpoints(str(tmp_path), planned, ['bandit/0', 'bandit/1']) == [
      (left, 2, None), (str(tmp_path / 'jax-engine-bandit-0+3-seeds0-1-m0123abcd.npz'), 3, (0, 1))]
  assert engine.unused_checkpoints(str(tmp_path), [gap], ['bandit/0']) == [
      (str(tmp_path / 'jax-engine-bandit-0+3-seeds0-1-m0123abcd.npz'), 3, (0, 1))]


def test_a_group_writes_none_of_its_csvs_if_one_fails(tmp_path, monkeypatch):
  """A kill while a finished group writes its CSVs must not leave some ids finished and others not
  (the rest would restart from scratch in another grouping): all are written, then all renamed."""
  frame = pd.DataFrame({'episode': [1], 'total_return': [0.5]})
  calls = []
  real = pd.DataFrame.to_csv

  def fails_second(self, *args, **kwargs):
    calls.append(args[0])
    if len(calls) == 2:
      raise KeyboardInterrupt
    return real(self, *args, **kwargs)

  monkeypatch.setattr(pd.DataFrame, 'to_csv', fails_second)
  with pytest.raises(KeyboardInterrupt):
    bsuite_csv.write_csvs([(tmp_path, 'bandit/0', frame), (tmp_path / 's1', 'bandit/1', frame)])
  assert not list(tmp_path.rglob('*.csv'))
  monkeypatch.setattr(pd.DataFrame, 'to_csv', real)
  paths = bsuite_csv.write_csvs([(tmp_path, 'bandit/0', frame), (tmp_path / 's1', 'bandit/1', frame)])
  assert [os.path.basename(p) for p in paths] == ['bsuite_id_-_bandit-0.csv', 'bsuite_id_-_bandit-1.csv']
  assert pd.read_csv(paths[1]).equals(frame) and not list(tmp_path.rglob('*.tmp'))


def test_mnist_needs_its_data_before_any_work(tmp_path, monkeypatch, capsys):
  from bsuite.utils import datasets

  def offline(directory='/tmp/mnist'):
    raise OSError('no network')

  monkeypatch.setattr(datasets, 'load_mnist', offline)
  with pytest.raises(SystemExit):
    cli.main(['--sweep', 'catch/0,mnist/0', '--results', str(tmp_path / 'r'), '--workers', '1', '--engine', 'python'])
  assert '/tmp/mnist' in capsys.readouterr().err and not (tmp_path / 'r').exists()
  # the jax engine skips mnist, so an offline machine can run SWEEP=all there
  assert _run_cli(tmp_path / 'j', 'catch/0,mnist/0') == 0
  assert 'skipping 1 ids without a pure-JAX port (mnist)' in capsys.readouterr().out
  # ... but a sweep of nothing else is a mistake, not a success with nothing run
  with pytest.raises(SystemExit) as exit_:
    cli.main(['--sweep', 'mnist', '--results', str(tmp_path / 'm'), '--workers', '1'])
  assert exit_.value.code == 2 and not (tmp_path / 'm').exists()
  assert 'mnist/0, mnist/1, mnist/2 ...: no pure-JAX port (mnist); run them with --engine python' in capsys.readouterr().err


# ------------------------------------------------------------------------------------ the runner

def _run_cli(results, sweep_spec, *extra, engine='jax'):
  return cli.main(['--sweep', sweep_spec, '--results', str(results), '--workers', '1',
                   '--episodes', '3', '--engine', engine, *TINY_SET, *extra])


def test_two_sweeps_into_one_folder_share_its_ids(tmp_path, capsys):
  """The jax engine locks each id it plays: ids another process holds are left to it (exit 75), the
  rest run, and the holder's ids are neither played nor written here."""
  from hyperagent import checkpoint
  results = tmp_path / 'ha'
  with checkpoint.folder_lock(str(results / '.locks'), 'catch-0'):
    assert _run_cli(results, 'bandit/0,catch/0') == checkpoint.BUSY_EXIT
  out = capsys.readouterr().out
  assert '1 ids run' in out and '1 ids left to the other process running them (catch/0)' in out
  assert os.path.exists(bsuite_csv.bsuite_csv_path(str(results), 'bandit/0'))
  assert not os.path.exists(bsuite_csv.bsuite_csv_path(str(results), 'catch/0'))


def test_a_group_another_sweep_finished_after_this_one_made_its_list_is_not_played_again(tmp_path, capsys,
                                                                                       monkeypatch):
  """Two sweeps list the same unfinished ids; one plays a group and lets go of its locks before the
  other reaches it. The other must not play it again (session 34's two sweeps each played some
  mountain_car groups twice): here the list is made before bandit/0 is finished, by a plan that
  ignores the CSVs."""
  from hyperagent import checkpoint
  results = tmp_path / 'ha'
  assert _run_cli(results, 'bandit/0') == 0
  capsys.readouterr()
  before = (results / 'runs.jsonl').read_text()
  monkeypatch.setattr(bsuite_sweep, 'plan', lambda ids, *args: (list(ids), []))
  assert _run_cli(results, 'bandit/0') == checkpoint.BUSY_EXIT
  assert 'bandit/0: finished by another process; left to it' in capsys.readouterr().out
  assert (results / 'runs.jsonl').read_text() == before


# The jax variant compiles three group shapes (2, 1 and 18 ids: ~2 min on the CI machine); which ids to
# skip and which to restart is engine-independent (bsuite_sweep.plan), and the jax engine's resume is
# in the default suite through test_ctrl_c_saves_the_jax_engines_group_and_the_same_command_resumes_it.
@pytest.mark.parametrize('engine', [pytest.param('jax', marks=pytest.mark.slow), 'python'])
def test_runner_resumes_finished_skipped_unfinished_restarted(tmp_path, capsys, engine):
  results = tmp_path / 'ha'
  run = lambda ids: _run_cli(results, ids, engine=engine)
  assert run('bandit/0,bandit/1') == 0
  assert '2 ids, 0 finished already, 2 to run' in capsys.readouterr().out
  info = json.loads((results / 'config.json').read_text())
  assert info['agent'] == 'hyperagent' and info['seed'] == 0
  assert info['config'] == json.loads(json.dumps(
      config_lib.make_config('hyperagent', 'deepsea', **TINY).to_dict()))
  assert [json.loads(l)['bsuite_id'] for l in (results / 'runs.jsonl').read_text().splitlines()] == [
      'bandit/0', 'bandit/1']

  finished = bsuite_csv.bsuite_csv_path(results, 'bandit/0')
  unfinished = bsuite_csv.bsuite_csv_path(results, 'bandit/1')
  before = (os.stat(finished).st_mtime_ns, open(finished).read())
  _rows(results, 'bandit/1').iloc[:2].to_csv(unfinished, index=False)  # as if killed at episode 2
  assert run('bandit/0,bandit/1') == 0
  assert '2 ids, 1 finished already, 1 to run' in capsys.readouterr().out
  assert (os.stat(finished).st_mtime_ns, open(finished).read()) == before
  assert _rows(results, 'bandit/1')['episode'].tolist() == [1, 2, 3]  # restarted, not appended

  count = len(bsuite_sweep.resolve_ids('bandit'))
  assert run('bandit') == 0  # the whole experiment: only the new ids run
  assert f'{count} ids, 2 finished already, {count - 2} to run' in capsys.readouterr().out
  info = json.loads((results / 'config.json').read_text())
  assert len(info['commands']) == 3
  assert run('bandit/0') == 0  # nothing to run: checked against the folder, not recorded
  assert '1 ids, 1 finished already, 0 to run' in capsys.readouterr().out
  assert json.loads((results / 'config.json').read_text())['commands'] == info['commands']


def test_seeds_run_beside_the_ids_each_into_its_own_folder(tmp_path, capsys):
  """--seeds 2: the runs of both seeds in one group, seed 1's CSVs in <results>-seed1 exactly as a
  lone --seed 1 run writes them there; adding a seed later runs that seed only."""
  results = tmp_path / 'ha'
  assert _run_cli(results, 'bandit/0,bandit/1', '--seeds', '2') == 0
  assert '2 ids x 2 seeds, 0 finished already, 4 to run' in capsys.readouterr().out
  logged = [json.loads(l) for l in (tmp_path / 'ha-seed1' / 'runs.jsonl').read_text().splitlines()]
  assert [(r['bsuite_id'], r['seed'], r['group_size']) for r in logged] == [('bandit/0', 1, 4), ('bandit/1', 1, 4)]
  assert [json.loads((tmp_path / d / 'config.json').read_text())['seed'] for d in ('ha', 'ha-seed1')] == [0, 1]
  alone = tmp_path / 'alone'
  assert _run_cli(alone, 'bandit/0,bandit/1', '--seed', '1') == 0
  for bsuite_id in ('bandit/0', 'bandit/1'):
    pd.testing.assert_frame_equal(_rows(tmp_path / 'ha-seed1', bsuite_id), _rows(alone, bsuite_id), rtol=1e-6)
    assert _rows(results, bsuite_id).total_return.tolist() != _rows(alone, bsuite_id).total_return.tolist()
  capsys.readouterr()
  assert _run_cli(results, 'bandit/0,bandit/1', '--seeds', '3') == 0
  out = capsys.readouterr().out
  assert '2 ids x 3 seeds, 4 finished already, 2 to run' in out and 'bandit/0 seed 2:' in out
  assert all(bsuite_sweep.is_finished(str(tmp_path / 'ha-seed2'), i, 3) for i in ('bandit/0', 'bandit/1'))
  # the folders keep one seed each: a lone seed-1 command into seed 1's folder finds its ids done
  assert _run_cli(tmp_path / 'ha-seed1', 'bandit/0,bandit/1', '--seed', '1') == 0
  assert '2 ids, 2 finished already, 0 to run' in capsys.readouterr().out


def test_is_finished(tmp_path):
  path = bsuite_csv.bsuite_csv_path(tmp_path, 'catch/0')
  assert not bsuite_sweep.is_finished(str(tmp_path), 'catch/0', 3)  # no file
  rows = pd.DataFrame(dict(steps=[9, 18, 27], episode=[1, 2, 3], total_return=[1., 0., 1.],
                           episode_len=[9, 9, 9], episode_return=[1., -1., 1.]))
  rows.to_csv(path, index=False)
  assert bsuite_sweep.is_finished(str(tmp_path), 'catch/0', 3)
  assert not bsuite_sweep.is_finished(str(tmp_path), 'catch/0', 4)  # a longer run is wanted
  assert bsuite_sweep.is_finished(str(tmp_path), 'catch/0', 2)
  # bsuite's logger rewrites the file at each row; a kill mid-write leaves a cut last row
  text = open(path).read().rstrip('\n')
  open(path, 'w').write(text[:text.rindex(',')])
  assert not bsuite_sweep.is_finished(str(tmp_path), 'catch/0', 3)
  open(path, 'w').write('')
  assert not bsuite_sweep.is_finished(str(tmp_path), 'catch/0', 3)
  todo, done = bsuite_sweep.plan(['catch/0', 'catch/1'], str(tmp_path), cap=3)
  assert (todo, done) == (['catch/0', 'catch/1'], [])


def test_runner_refuses_a_folder_holding_another_config(tmp_path):
  settings = bsuite_sweep.resolve_agent('hyperagent', TINY)
  bsuite_sweep.write_run_info(str(tmp_path), 'hyperagent', settings, 0, 'first')
  with pytest.raises(ValueError, match='config.learning_rate'):
    bsuite_sweep.write_run_info(str(tmp_path), 'hyperagent', {**settings, 'learning_rate': 1.0}, 0, 'x')
  with pytest.raises(ValueError, match="agent='hyperagent' \\(now 'dqn'\\)"):
    bsuite_sweep.write_run_info(str(tmp_path), 'dqn', bsuite_sweep.resolve_agent('dqn', {}), 0, 'x')
  bsuite_sweep.write_run_info(str(tmp_path), 'hyperagent', settings, 0, 'again')
  assert json.load(open(tmp_path / 'config.json'))['commands'] == ['first', 'again']
  with pytest.raises(ValueError, match='config.learning_rate'):  # a command with nothing to run is checked too
    bsuite_sweep.write_run_info(str(tmp_path), 'hyperagent', {**settings, 'learning_rate': 1.0}, 0, None)
  bsuite_sweep.write_run_info(str(tmp_path), 'hyperagent', settings, 0, None)
  assert json.load(open(tmp_path / 'config.json'))['commands'] == ['first', 'again']


def test_overwrite_removes_the_other_runs_results(tmp_path, capsys):
  """--overwrite on a folder of another agent starts it again: none of the old run's CSVs, run log
  or group checkpoints stays to be scored as the new run's; other files are left alone."""
  settings = bsuite_sweep.resolve_agent('hyperagent', TINY)
  bsuite_sweep.write_run_info(str(tmp_path), 'hyperagent', settings, 0, 'first')
  for name in ('bsuite_id_-_deep_sea-0.csv', 'runs.jsonl', 'jax-engine-catch-0+2.npz', 'notes.txt'):
    (tmp_path / name).write_text('x')
  bsuite_sweep.write_run_info(str(tmp_path), 'hyperagent', settings, 0, 'same run', overwrite=True)
  assert len(list(tmp_path.iterdir())) == 6  # the same run's files stay (its sweep reruns its own ids)
  bsuite_sweep.write_run_info(str(tmp_path), 'dqn', bsuite_sweep.resolve_agent('dqn', {}), 0, 'dqn', overwrite=True)
  assert "removed the 3 result files of the run" in capsys.readouterr().out
  assert sorted(p.name for p in tmp_path.iterdir()) == ['.locks', 'config.json', 'notes.txt']
  info = json.load(open(tmp_path / 'config.json'))
  assert info['agent'] == 'dqn' and info['commands'] == ['dqn']


def test_two_processes_recording_commands_at_once_lose_none(tmp_path):
  """The sweep's two processes rewrite config.json at each experiment's start; unlocked, a reader
  caught the other's emptied file (JSONDecodeError, the experiment skipped) and commands were lost."""
  import subprocess
  import sys
  script = ('import sys\n'
            'from hyperagent.bsuite import sweep\n'
            'settings = sweep.resolve_agent("hyperagent", {})\n'
            'for i in range(150):\n'
            '  sweep.write_run_info(sys.argv[1], "hyperagent", settings, 0, f"{sys.argv[2]} {i}")\n')
  env = {**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [os.path.join(os.path.dirname(__file__), '..', 'src'),
                                                                   os.environ.get('PYTHONPATH')]))}
  runs = [subprocess.Popen([sys.executable, '-c', script, str(tmp_path), name], env=env, stderr=subprocess.PIPE, text=True)
          for name in ('a', 'b')]
  for run in runs:
    assert run.wait(timeout=300) == 0, run.stderr.read()
  commands = json.load(open(tmp_path / 'config.json'))['commands']
  assert sorted(commands) == sorted(f'{name} {i}' for name in 'ab' for i in range(150))
  assert [c for c in commands if c[0] == 'a'] == [f'a {i}' for i in range(150)]  # each process's in order


@pytest.mark.parametrize('engine', ['jax', 'python'])
def test_runner_csvs_score_with_bsuite_analysis(tmp_path, engine, monkeypatch, capsys):
  """What the runner writes is what bsuite's loader and scorer read (through our report module)."""
  ours, boot = tmp_path / 'hyperagent', tmp_path / 'boot_dqn'
  monkeypatch.setattr(hyperagent_cli, 'LOG_EVERY_S', 0.0)
  assert _run_cli(ours, 'bandit/0,deep_sea/0', engine=engine) == 0
  if engine == 'jax':  # no progress bars under pytest: the engine logs where its groups are instead
    out = capsys.readouterr().out
    assert 'bandit/0: 3 of 3 episodes' in out and 'deep_sea/0: 3 of 3 episodes' in out
  # bsuite's boot_dqn, the reference row: 13 DeepSea episodes pass its 128-transition warm-up
  assert cli.main(['--sweep', 'deep_sea/0', '--agent', 'boot_dqn', '--results', str(boot),
                   '--workers', '1', '--episodes', '13', '--set', 'num_ensemble=2']) == 0
  assert json.loads((boot / 'config.json').read_text())['config'] == {'num_ensemble': 2}
  assert bsuite_sweep.is_finished(str(boot), 'deep_sea/0', 13)

  scores = bsuite_report.load_and_score({'hyperagent': str(ours), 'boot_dqn': str(boot)})
  assert not scores.failures
  table = scores.by_experiment.set_index(['agent_name', 'bsuite_env'])
  assert set(table.index) == {('hyperagent', 'bandit'), ('hyperagent', 'deep_sea'),
                              ('boot_dqn', 'deep_sea')}
  assert table['score'].between(0, 1).all() and not table['finished'].any()
  # 3 episodes are far too few to solve deep_sea/0
  assert table.loc[('hyperagent', 'deep_sea'), 'score'] == 0.0


@pytest.mark.slow
def test_runner_parallel_workers(tmp_path, capsys):
  results = tmp_path / 'dqn'
  assert cli.main(['--sweep', 'bandit/0,catch/0,deep_sea/0', '--agent', 'dqn', '--results', str(results),
                   '--engine', 'python', '--workers', '2', '--episodes', '12', *TINY_SET]) == 0
  assert '3 ids run' in capsys.readouterr().out
  for bsuite_id in ('bandit/0', 'catch/0', 'deep_sea/0'):
    assert bsuite_sweep.is_finished(str(results), bsuite_id, 12)
  lines = [json.loads(l) for l in (results / 'runs.jsonl').read_text().splitlines()]
  assert sorted(l['bsuite_id'] for l in lines) == ['bandit/0', 'catch/0', 'deep_sea/0']
  assert _run_cli(results, 'bandit/0', '--agent', 'dqn', '--episodes', '12', engine='python') == 0  # all finished


def test_agreement_script_runs_both_engines(tmp_path, capsys):
  """experiments/bsuite_agreement.py end to end on 5 episodes: both engines write scorable CSVs.
  On deep_sea/0 both act uniformly at random during the 128-step warm-up, so neither reaches the
  treasure (odds 2^-10 per episode): mean return -0.01 x (right moves) / 10 < 0 for both. bandit/0
  is deterministic and both engines draw the agent's keys alike, so its first steps are the same
  actions: score and returns equal."""
  agreement = experiment_scripts.load('bsuite_agreement')
  assert agreement.main(['--ids', 'deep_sea/0', 'bandit/0', '--seeds', '0', '--episodes', '5',
                         '--out', str(tmp_path)]) == 0
  out = capsys.readouterr().out
  for engine in ('python', 'jax'):
    assert f'| deep_sea/0 | 5 | {engine} | 0.00 | 0.00 |' in out
    assert os.path.exists(bsuite_csv.bsuite_csv_path(str(tmp_path / engine / 'seed_0' / 'deep_sea-0'), 'deep_sea/0'))
  bandit = {row.split(' | ')[2]: row.split(' | ')[3:7] for row in out.splitlines() if row.startswith('| bandit/0 | 5 |')}
  assert set(bandit) == {'python', 'jax'} and bandit['python'] == bandit['jax']  # all but steps/s
  # ... and so are their CSVs, row for row (deep_sea/0 too: its environment draws nothing)
  assert '| bandit/0 | 0 | all (to episode 5) |' in out and '| deep_sea/0 | 0 | all (to episode 5) |' in out
  assert agreement.main(['--speed', '--ids', 'bandit/0', '--rounds', '1', '--episodes', '5',
                         '--out', str(tmp_path)]) == 0
  captured = capsys.readouterr()
  # each engine timed the steps it played: bandit's 5 episodes are one step each
  timed = [line.split(' steps in ')[0] for line in captured.err.splitlines() if line.startswith('round 0 ')]
  assert timed == ['round 0 python: 5', 'round 0 jax: 5']
  (row,) = [line for line in captured.out.splitlines() if line.startswith('| 0 |')]
  # steps/s are printed rounded (a few, on 5 one-step episodes with compiling); the ratio, from the
  # unrounded rates, is positive
  assert float(row.strip('| ').split(' | ')[3].rstrip('x').replace(',', '')) > 0


def test_agreement_speed_table_is_jax_over_python(tmp_path, monkeypatch, capsys):
  """The ratio column is the jitted engine's steps per second over the Python runner's, by hand:
  python 10 steps in 2 s (5/s), jax 10 steps in 0.5 s (20/s): 4x in both rounds."""
  agreement = experiment_scripts.load('bsuite_agreement')
  seconds = {'python': 2.0, 'jax': 0.5}
  monkeypatch.setattr(agreement, 'play', lambda engine, *args: dict(steps=10, seconds=seconds[engine]))
  assert agreement.main(['--speed', '--ids', 'bandit/0', '--rounds', '2', '--episodes', '10',
                         '--out', str(tmp_path)]) == 0
  out = capsys.readouterr().out
  assert '| 0 | 5 | 20 | 4x |' in out and '| 1 | 5 | 20 | 4x |' in out
  assert 'ratio after the first round (compiled): 4-4x' in out


def test_agreement_script_finds_where_two_csvs_part(tmp_path):
  agreement = experiment_scripts.load('bsuite_agreement')
  rows = pd.DataFrame(dict(episode=[1, 2, 3, 10], steps=[1, 2, 3, 10], total_return=[0.1, 0.2, 0.30000001, 1.0]))

  def write(name, frame):
    path = bsuite_csv.bsuite_csv_path(str(tmp_path / name), 'bandit/0')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    frame.to_csv(path, index=False)
    return str(tmp_path / name)
  a = write('a', rows)
  assert agreement.equal_through(a, write('same', rows.assign(total_return=[0.1, 0.2, 0.3, 1.0])), 'bandit/0') == \
      'all (to episode 10)'  # float32 against float64 rounding is equal
  assert agreement.equal_through(a, write('parts', rows.assign(total_return=[0.1, 0.2, 0.4, 1.0])), 'bandit/0') == '2'
  assert agreement.equal_through(a, write('never', rows.assign(steps=[2, 2, 3, 10])), 'bandit/0') == 'none'


def test_agreement_script_rejects_bad_ids_and_budgets(capsys):
  agreement = experiment_scripts.load('bsuite_agreement')
  for argv, says in ((['--ids', 'mnist/0'], 'no pure-JAX port for'), (['--ids', 'catch/99'], 'catch has ids catch/0 .. catch/19'),
                     (['--episodes', '0'], '--episodes and --rounds must be >= 1'),
                     (['--rounds', '0'], '--episodes and --rounds must be >= 1')):
    with pytest.raises(SystemExit) as exit_:
      agreement.main(argv)
    assert exit_.value.code == 2 and says in capsys.readouterr().err, argv


def _children(pid: int) -> list[int]:
  found = []
  for entry in os.listdir('/proc'):
    if entry.isdigit():
      try:
        with open(f'/proc/{entry}/stat') as f:
          if int(f.read().rsplit(')', 1)[1].split()[1]) == pid:
            found.append(int(entry))
      except (OSError, IndexError, ValueError):
        pass
  return found


def _alive(pid: int) -> bool:
  try:
    with open(f'/proc/{pid}/stat') as f:
      return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
  except OSError:
    return False


def test_ctrl_c_stops_a_parallel_sweep_and_every_worker(tmp_path):
  """Ctrl-C as a terminal sends it (SIGINT to the whole process group): the runner and both workers
  are gone within seconds, with one line saying what is kept and how to resume."""
  import signal
  import subprocess
  import sys
  import time
  script = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'experiments', 'bsuite_run.py')
  proc = subprocess.Popen(
      [sys.executable, script, '--sweep', 'catch/0,catch/1,catch/2,catch/3', '--engine', 'python', '--workers', '2',
       '--episodes', '5000',
       '--results', str(tmp_path / 'r'), '--set', 'batch_size=8', '--set', 'hidden_sizes=(8,)'],
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
  deadline = time.time() + 300  # generous: two workers import JAX and compile on a loaded 2-core machine
  while len(_children(proc.pid)) < 2 and time.time() < deadline:
    time.sleep(0.2)
  workers = _children(proc.pid)
  # Ctrl-C once both workers play (bsuite's logger has written a CSV for each): a fixed sleep raced the
  # JAX import on a loaded machine
  while len(list((tmp_path / 'r').rglob('*.csv'))) < 2 and time.time() < deadline:
    time.sleep(0.2)
  assert len(list((tmp_path / 'r').rglob('*.csv'))) >= 2, 'the workers never started playing'
  os.killpg(proc.pid, signal.SIGINT)
  start = time.time()
  _, err = proc.communicate(timeout=90)
  assert time.time() - start < 45
  assert proc.returncode == 130, err
  assert 'Traceback' not in err and 'the same command resumes' in err, err
  time.sleep(2)
  assert workers and not [pid for pid in workers if _alive(pid)]


@pytest.mark.optimized
def test_ctrl_c_saves_the_jax_engines_group_and_the_same_command_resumes_it(tmp_path):
  """The jax engine ends the chunk it is in, saves its group's checkpoint and exits 130; the same
  command then finishes from there (the checkpoint is gone once the group's CSVs are written)."""
  import signal
  import subprocess
  import sys
  import time
  script = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'experiments', 'bsuite_run.py')
  command = [sys.executable, script, '--sweep', 'deep_sea/20', '--episodes', '3000', '--results',
             str(tmp_path / 'r'), '--set', 'batch_size=8', '--set', 'hidden_sizes=(8,)',
             '--checkpoint-every', '0.5']
  proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True)
  # Ctrl-C once the group has compiled and saved its first checkpoint: a fixed sleep let a fast machine
  # with a warm compilation cache finish all 150,000 steps first
  saved = tmp_path / 'r' / 'jax-engine-deep_sea-20+1.npz'
  deadline = time.time() + 300
  while not saved.exists() and proc.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  assert saved.exists(), 'the group never saved a checkpoint'
  os.killpg(proc.pid, signal.SIGINT)
  _, err = proc.communicate(timeout=60)
  assert proc.returncode == 130, err
  assert 'Traceback' not in err and "from their group's checkpoint" in err, err
  saved = list((tmp_path / 'r').glob('jax-engine-*.npz'))
  assert [p.name for p in saved] == ['jax-engine-deep_sea-20+1.npz']
  done = subprocess.run(command, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr
  assert not list((tmp_path / 'r').glob('jax-engine-*.npz'))
  assert bsuite_sweep.is_finished(str(tmp_path / 'r'), 'deep_sea/20', 3000)


def test_a_runs_log_line_cut_short_is_left_out_and_the_next_gets_a_line_of_its_own(tmp_path):
  """A full disk can cut runs.jsonl's last line; the next id's summary then starts a new line (not
  glued onto the cut one), and reading the log leaves the cut line out instead of failing."""
  folder = str(tmp_path)
  bsuite_sweep.record_finished(folder, dict(bsuite_id='catch/0', seconds=1.5))
  with open(tmp_path / bsuite_sweep.RUN_LOG, 'a') as f:
    f.write('{"bsuite_id": "catch/1", "sec')
  bsuite_sweep.record_finished(folder, dict(bsuite_id='catch/2', seconds=2.5))
  assert bsuite_sweep.read_finished(folder) == [dict(bsuite_id='catch/0', seconds=1.5),
                                                dict(bsuite_id='catch/2', seconds=2.5)]
  assert (tmp_path / bsuite_sweep.RUN_LOG).read_text().count('\n') == 3


def test_the_archive_keeps_the_logs_of_earlier_workspaces(tmp_path):
  """A new workspace's results folder logs only its own runs; archiving it must add to the archived
  runs.jsonl and commands, not replace them, and archiving twice must add nothing more."""
  settings = dict(config_lib.make_config('hyperagent', 'deepsea').to_dict())
  old, new, docs = (str(tmp_path / n / 'bsuite' / 'hyperagent') for n in ('old', 'new', 'docs'))
  for folder, commands, ids in ((old, ['run bandit', 'run catch', 'run catch'], ['bandit/0', 'catch/0']),
                                (new, ['run deep_sea', 'run catch'], ['deep_sea/0'])):
    for command in commands:
      bsuite_sweep.write_run_info(folder, 'hyperagent', settings, 0, command)
    for bsuite_id in ids:
      bsuite_sweep.record_finished(folder, dict(bsuite_id=bsuite_id, seconds=1.5))
  archive = experiment_scripts.load('archive_results').archive
  archive(str(tmp_path / 'old'), str(tmp_path / 'docs'))
  for _ in range(2):
    archive(str(tmp_path / 'new'), str(tmp_path / 'docs'))
  with open(os.path.join(docs, 'runs.jsonl')) as f:
    assert [json.loads(line)['bsuite_id'] for line in f] == ['bandit/0', 'catch/0', 'deep_sea/0']
  with open(os.path.join(docs, 'config.json')) as f:
    info = json.load(f)
  assert info['commands'] == ['run bandit', 'run catch', 'run catch', 'run deep_sea']
  assert info['config'] == json.loads(json.dumps(settings)) and info['agent'] == 'hyperagent'


def test_experiment_costs_count_each_group_once_and_only_complete_experiments(tmp_path, capsys):
  def rows(experiment, seconds_by_group, episodes=None, **extra):
    ids = bsuite_sweep.resolve_ids(experiment)
    size = len(ids) // len(seconds_by_group)
    return [dict(bsuite_id=i, engine='jax', episodes=episodes or bsuite_sweep.target_episodes(i), steps=1_000,
                 seconds=seconds_by_group[n // size], group_size=size, **extra) for n, i in enumerate(ids)]

  python_rows = [dict(r, engine='python', seconds=5.0) for r in rows('bandit_scale', [0.0])]
  for r in python_rows:
    del r['group_size']
  summaries = (rows('bandit', [7.0], episodes=30)  # a short pipeline check, then the full run
               + rows('bandit', [100.0]) + rows('catch', [30.0, 50.0]) + python_rows
               + rows('catch_noise', [10.0])[:-1])  # one id missing: not complete
  costs = {c['experiment']: c for c in bsuite_sweep.experiment_costs(summaries)}
  assert list(costs) == ['bandit', 'bandit_scale', 'catch']  # sweep order; catch_noise left out
  assert (costs['bandit']['groups'], costs['bandit']['seconds'], costs['bandit']['run_steps']) == (1, 100.0, 20_000)
  assert costs['bandit']['ms_per_run_step'] == pytest.approx(5.0)
  assert (costs['catch']['groups'], costs['catch']['seconds']) == (2, 80.0)
  assert (costs['bandit_scale']['groups'], costs['bandit_scale']['seconds'], costs['bandit_scale']['engines']) == (
      20, 100.0, ['python'])

  # a group of 4 runs with 2 of them here (the others: another seed's folder) charges half its clock
  shared = [dict(r, seconds=40.0, group_size=4) for r in rows('bandit', [0.0])[:2]]
  assert bsuite_sweep.experiment_costs(shared + rows('bandit', [0.0])[2:])[0]['seconds'] == 20.0

  old, new = tmp_path / 'old', tmp_path / 'new'
  for folder, summaries in ((old, rows('bandit', [100.0]) + rows('catch', [30.0, 50.0])), (new, rows('catch', [20.0]))):
    folder.mkdir()
    for s in summaries:
      bsuite_sweep.record_finished(str(folder), s)
  script = experiment_scripts.load('bsuite_costs')
  assert script.main([str(old), f'retimed={new}']) == 0
  out = capsys.readouterr().out
  assert '| catch | 20 | 0.02 M | 1 | 20 s | 1.000 | retimed |' in out  # the folder listed last wins
  assert f'| bandit | 20 | 0.02 M | 1 | 100 s | 5.000 | {old} |' in out
  assert '2 of 20 non-MNIST experiments complete: 0.0 M run-steps, 0.03 h in turn on one core' in out
  with pytest.raises(SystemExit) as stopped:
    script.main([str(tmp_path / 'none')])
  assert stopped.value.code == 2 and 'runs.jsonl: nothing finished there' in capsys.readouterr().err


@pytest.mark.parametrize('agent', [pytest.param(a, marks=pytest.mark.slow) if a == 'hyperagent_one_hot' else a
                                   for a in config_lib.AGENTS])  # one-hot: hyperagent's keys, another law
def test_both_engines_learn_alike_past_the_warm_up(agent):
  """deep_sea/0 is deterministic and both engines split the agent's keys alike (jitloop.interact), so
  300 steps (299 updates after TINY's warm-up of 2) through bsuite's environment and the adapter, and through the jitted loop,
  store the same actions and perturbations and end on the same parameters. Only rounding parts them:
  two different compiled programs, measured 6e-8 after 200 steps of the preset, 5e-7 after 500; past
  that Adam amplifies it, and the runs part after ~1,000 updates."""
  import bsuite
  import jax
  from hyperagent import jitloop
  from hyperagent.bsuite import engine
  from hyperagent.bsuite.envs import registry
  from hyperagent.deepsea import env as deepsea_env
  bsuite_id, steps = 'deep_sea/0', 300
  config = config_lib.make_config(agent, 'deepsea', **TINY)
  seed = bsuite_sweep.id_seed(0, bsuite_id)
  env = bsuite.load_from_id(bsuite_id)
  player = bsuite_adapter.make_bsuite_agent(agent, config.to_dict(), env.observation_spec(), env.action_spec(),
                                            seed, True, deepsea_env.reachable_positions(10))
  timestep = env.reset()
  for _ in range(steps):
    action = player.select_action(timestep)
    new_timestep = env.step(action)
    player.update(timestep, action, new_timestep)
    timestep = env.reset() if new_timestep.last() else new_timestep

  jax_env = registry.make_id(bsuite_id)[0]
  _, env_params, _, states = engine.initial_runs(config, jax_env, [bsuite_id], [10**6], 0, TINY['replay_capacity'])
  states, _ = jitloop.make_chunk_fn(config, jax_env, jitloop.LoopSpec(own_budgets=True))(steps, env_params, states)
  ours = jax.tree.map(lambda x: np.asarray(x[0]), states)
  assert int(player.train_state.step if agent != 'ensemble' else player.train_state.step[0]) == steps - 1
  for field in ('action', 'reward', 'obs'):
    np.testing.assert_array_equal(getattr(player.replay_state, field), getattr(ours.replay, field))
  # the sphere's normalisation rounds differently in different compiled programs (seen: 1.8e-7)
  np.testing.assert_allclose(player.replay_state.perturbation, ours.replay.perturbation, atol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5),
               jax.device_get(player.train_state.params), ours.train.params)
