"""The generic jitted loop and the bsuite engine on it: bsuite's logger rows, per-run budgets,
vmapped runs equal separate runs, resume."""
from __future__ import annotations

import contextlib
import io
import os
import time

import bsuite
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from hyperagent import checkpoint, jitloop
from hyperagent.environment import EnvStep, JaxEnv
from hyperagent.config import make_config
from hyperagent.bsuite import csv_format, engine
from hyperagent.bsuite.envs import registry

TINY = dict(batch_size=8, num_update_indices=2, warmup_steps=16, hidden_sizes=(8,))


def scripted(agent, actions):
  """The agent, acting `actions[t]` at its t-th training step (a fixed action sequence)."""
  table = jnp.asarray(actions, jnp.int32)

  def act(params, actor, obs, first, evaluation=False):
    return table[actor.step % len(table)][None], actor._replace(step=actor.step + 1)

  return agent._replace(act=act)


def run_scripted(bsuite_id, actions, budget, length=64):
  """Rows the jitted loop logs for `bsuite_id` under a fixed action sequence."""
  config = make_config('hyperagent', 'deepsea', **TINY)
  env, params = registry.make_id(bsuite_id)
  agent = scripted(jitloop.make_agent_for(config, env), actions)
  params = jitloop.stack_runs([params])
  states = jitloop.init_runs(agent, env, 256, jnp.zeros((1,), jnp.int32), params, np.array([budget]))
  step = jax.jit(lambda p, s: jitloop.run_chunk(agent, env, jitloop.LoopSpec(own_budgets=True), length, p, s))
  rows, log_episodes = [], [csv_format.bsuite_log_episodes(budget)]
  while int(states.counters.episode[0]) < budget:
    states, out = step(params, states)
    rows += engine.log_rows(out, env, log_episodes)[0]
  return rows, states


def bsuite_rows(tmp_path, bsuite_id, actions, episodes):
  """The CSV bsuite's own logger writes when the same actions are played in bsuite's env."""
  with contextlib.redirect_stdout(io.StringIO()):
    env = bsuite.load_and_record_to_csv(bsuite_id, str(tmp_path / 'bsuite'), overwrite=True)
  t = 0
  for _ in range(episodes):
    timestep = env.reset()
    while not timestep.last():
      timestep = env.step(int(actions[t % len(actions)]))
      t += 1
  return pd.read_csv(csv_format.bsuite_csv_path(str(tmp_path / 'bsuite'), bsuite_id))


@pytest.mark.parametrize('bsuite_id,episodes', [('bandit/3', 130), ('deep_sea/2', 23)])
def test_logged_rows_equal_bsuites_own_logger(tmp_path, bsuite_id, episodes):
  """A fixed action sequence: the CSV the engine writes equals the one bsuite's logger writes
  (same columns in the same order, same rows; floats to float32 precision)."""
  actions = np.random.RandomState(0).randint(2, size=997)
  rows, _ = run_scripted(bsuite_id, actions, episodes)
  ours = pd.read_csv(csv_format.write_csv(str(tmp_path), bsuite_id, pd.DataFrame(rows)))  # as run_group writes it
  theirs = bsuite_rows(tmp_path, bsuite_id, actions, episodes)
  assert list(ours.columns) == list(theirs.columns)
  assert ours['episode'].tolist() == theirs['episode'].tolist() == csv_format.bsuite_log_episodes(episodes).tolist()
  for column in theirs.columns:
    np.testing.assert_allclose(ours[column].to_numpy(float), theirs[column].to_numpy(float), rtol=1e-5,
                               atol=1e-5, err_msg=column)


def test_the_logged_total_return_is_the_float64_sum_over_a_million_steps():
  """bsuite sums rewards in float64; cartpole_swingup's ~10⁶ steps of -0.1 / 0.9 / 1 drift by ~0.07%
  in a plain float32 sum. The counters' compensated sum, jitted and vmapped as the loop runs it, stays
  within 1e-8 of the float64 sum of the same float32 rewards (the plain sum's drift is asserted too, so
  the case is a hard one). The rewards' own rounding (0.9 as 1 - float32(0.1)) is not this test's."""
  rewards = np.random.RandomState(0).choice(np.float32([-0.1, 0.9, 1.0]), size=10**6)
  streams = np.stack([rewards, rewards[::-1]])
  exact = streams.astype(np.float64).sum(1)

  @jax.jit
  @jax.vmap
  def sums(r):
    zero = jnp.float32(0)
    (total, error), _ = jax.lax.scan(lambda c, x: (jitloop.compensated_add(*c, x), None), (zero, zero), r)
    plain, _ = jax.lax.scan(lambda c, x: (c + x, None), zero, r)
    return total, error, plain

  total, error, plain = (np.asarray(x, np.float64) for x in sums(streams))
  assert np.all(np.abs(plain - exact) > 1e-4 * exact)
  np.testing.assert_allclose(total - error, exact, rtol=1e-8)


def test_each_run_stops_counting_and_learning_at_its_budget():
  config = make_config('hyperagent', 'deepsea', **TINY)
  env, params = registry.make_id('bandit/0')
  agent = jitloop.make_agent_for(config, env)
  params = jitloop.stack_runs([params, registry.make_id('bandit/1')[1]])
  states = jitloop.init_runs(agent, env, 256, jnp.array([0, 1]), params, np.array([40, 100]))
  chunk = jitloop.make_chunk_fn(config, env, jitloop.LoopSpec(own_budgets=True))
  states, out = chunk(50, params, states)
  assert states.counters.episode.tolist() == [40, 50]
  assert out.steps.last.sum(1).tolist() == [40, 50]  # no row is logged past the budget
  # the step that ends run 0's budget still learns (as the Python runner does): both runs learned at
  # the same steps up to 40, so run 1 is ahead by its updates at steps 41..50 exactly
  assert int(states.train.step[1]) - int(states.train.step[0]) == 10
  frozen = jax.tree.map(lambda x: np.asarray(x[0]), states.train.params)
  states, out = chunk(60, params, states)
  assert states.counters.episode.tolist() == [40, 100] and states.counters.steps.tolist() == [40, 100]
  jax.tree.map(np.testing.assert_array_equal, frozen, jax.tree.map(lambda x: np.asarray(x[0]), states.train.params))
  assert int(states.train.step[1]) - int(states.train.step[0]) == 60


def test_vmapped_runs_equal_separate_runs_and_replicate_ids_differ(tmp_path):
  """catch's ids are one setting replicated (bsuite: `seed: None`): each plays its own seed, the same
  one whichever group it is in, so they are separate runs, not one run copied."""
  config = make_config('hyperagent', 'deepsea', **TINY)
  budgets = {'catch/0': 12, 'catch/1': 12}
  both = engine.groups(engine.runs(list(budgets)), config, budgets)
  assert len(both) == 1 and both[0].ids == ('catch/0', 'catch/1')
  engine.run_group(both[0], config, budgets, str(tmp_path / 'both'), chunk_steps=27)
  alone = engine.Group(both[0].env, ('catch/1',), (0,))
  engine.run_group(alone, config, budgets, str(tmp_path / 'alone'), chunk_steps=27)
  read = lambda d, i: pd.read_csv(csv_format.bsuite_csv_path(str(tmp_path / d), i))
  pd.testing.assert_frame_equal(read('both', 'catch/1'), read('alone', 'catch/1'), rtol=1e-6)
  first, second = read('both', 'catch/0'), read('both', 'catch/1')
  assert len(first) == len(second) and first.total_return.tolist() != second.total_return.tolist()
  # experiments/bsuite_values.py retrains ids to inspect their values: it must play the sweep's runs
  import experiment_scripts
  probe = experiment_scripts.load('bsuite_values')
  agent, env, params, states = probe.train(config, ['catch/0', 'catch/1'], 12, 0, chunk_steps=40)
  np.testing.assert_allclose(states.counters.total_return, [first.total_return.iloc[-1],
                                                            second.total_return.iloc[-1]], rtol=1e-6)
  values = probe.first_values(agent, env, params, states, indices=30, seed=0)
  for row in values:  # catch's 3 actions; HyperAgent's Q at s0 varies with the index
    assert row['mean'].shape == (3,) and np.all(row['sd'] > 0) and np.isclose(row['greedy'].sum(), 1)


def test_bsuite_values_rejects_ids_it_cannot_train_together(capsys):
  import experiment_scripts
  probe = experiment_scripts.load('bsuite_values')
  for argv, message in ((['catch/0', 'deep_sea/0'], 'must share one environment'),
                        (['catch/99'], "unknown bsuite id 'catch/99'"),
                        (['catch/0', '--agent', 'boot_dqn'], "Unknown agent 'boot_dqn'")):
    with pytest.raises(SystemExit):
      probe.main(argv)
    assert message in capsys.readouterr().err


def test_every_id_of_the_sweep_has_its_own_seed():
  from hyperagent.bsuite import sweep
  ids = [i for i in bsuite.sweep.SWEEP if '/' in i]
  assert sweep.id_seed(0, 'catch/7') == 7 and sweep.id_seed(2, 'catch/7') == 2007
  assert len({(i.split('/')[0], sweep.id_seed(s, i)) for s in (0, 1, 2) for i in ids}) == 3 * len(ids)
  with pytest.raises(ValueError, match='id number'):
    sweep.id_seed(0, 'catch/1000')


def test_an_interrupted_group_resumes_to_the_uninterrupted_result(tmp_path):
  config = make_config('hyperagent', 'deepsea', **TINY)
  budgets = {'deep_sea/0': 30}
  group = engine.groups(engine.runs(list(budgets)), config, budgets)[0]
  engine.run_group(group, config, budgets, str(tmp_path / 'straight'), chunk_steps=50)
  calls, before, after = [], [], []
  with pytest.raises(checkpoint.Interrupted):
    engine.run_group(group, config, budgets, str(tmp_path / 'resumed'), chunk_steps=50,
                     interrupted=lambda: calls.append(1) or len(calls) == 2, on_chunk=before.append)
  assert (tmp_path / 'resumed' / 'jax-engine-deep_sea-0+1.npz').exists()
  (tmp_path / 'resumed' / 'jax-engine-deep_sea-0+1.npz.tmp').write_bytes(b'a save a kill cut short')
  engine.run_group(group, config, budgets, str(tmp_path / 'resumed'), chunk_steps=50, on_chunk=after.append)
  # deep_sea/0 is N = 10: 5 episodes per 50-step chunk; the resumed bar starts at the 10 played before
  assert before == [5, 5] and after == [10, 5, 5, 5, 5] and sum(after) == budgets['deep_sea/0']
  assert not list((tmp_path / 'resumed').glob('jax-engine-*'))  # the group's files, the cut save's too
  read = lambda d: pd.read_csv(csv_format.bsuite_csv_path(str(tmp_path / d), 'deep_sea/0'))
  pd.testing.assert_frame_equal(read('straight'), read('resumed'))


def test_a_finished_runs_summary_is_handed_over_before_its_csv_exists(tmp_path):
  """The sweep logs a finished run (runs.jsonl) from `on_finished`, before the CSV that makes a later
  sweep skip the run: a kill between the two then leaves no CSV, and the run plays again, instead of a
  CSV whose run has no line (and whose experiment the cost table would silently leave out)."""
  config = make_config('hyperagent', 'deepsea', **TINY)
  budgets = {'deep_sea/0': 12}
  group = engine.groups(engine.runs(list(budgets)), config, budgets)[0]
  seen = []

  def killed_after(summary):
    seen.append((summary, os.path.exists(csv_format.bsuite_csv_path(tmp_path, 'deep_sea/0'))))
    raise SystemExit(137)

  with pytest.raises(SystemExit):
    engine.run_group(group, config, budgets, str(tmp_path), on_finished=killed_after)
  assert [(s['bsuite_id'], s['episodes'], exists) for s, exists in seen] == [('deep_sea/0', 12, False)]
  assert not csv_format.bsuite_csv_files(tmp_path)
  summaries = engine.run_group(group, config, budgets, str(tmp_path), on_finished=lambda s: None)
  assert summaries[0]['episodes'] == 12 and len(csv_format.bsuite_csv_files(tmp_path)) == 1


def test_a_slow_group_checkpoint_is_written_less_often(tmp_path, monkeypatch):
  """As `jitloop.drive`: asked for a checkpoint after every chunk, a group whose checkpoint takes
  0.5 s to write saves at most CHECKPOINT_SHARE of its time (every 10 s here), not 59 times."""
  config = make_config('hyperagent', 'deepsea', **TINY)
  budgets = {'deep_sea/0': 600}
  group = engine.groups(engine.runs(list(budgets)), config, budgets)[0]
  saved, clock = [], [0.0]
  monkeypatch.setattr(engine.time, 'monotonic', lambda: clock[0])
  def slow_save(path, meta, trees):
    clock[0] += 0.5
    saved.append(clock[0])
  make_chunk_fn = jitloop.make_chunk_fn
  def chunks_of_a_second(*args, **kwargs):
    chunk = make_chunk_fn(*args, **kwargs)
    def timed(*chunk_args):
      clock[0] += 1.0
      return chunk(*chunk_args)
    return timed
  monkeypatch.setattr(engine.checkpoint, 'save', slow_save)
  monkeypatch.setattr(jitloop, 'make_chunk_fn', chunks_of_a_second)
  engine.run_group(group, config, budgets, str(tmp_path), chunk_steps=100, checkpoint_every_s=1e-3)
  # 60 chunks (N = 10: 10 steps an episode): the first one saves, then one in about every 11
  assert saved[0] == 1.5 and 4 <= len(saved) <= 6 and np.all(np.diff(saved) > 10), saved


def test_a_group_checkpoint_of_other_network_shapes_restarts_the_group(tmp_path):
  """A deep_sea checkpoint saved with the full N²-row input layer (before the env named its reachable
  cells) is not resumed into the smaller network: the group starts again, with a warning, and plays
  as a fresh run does."""
  import dataclasses
  config = make_config('hyperagent', 'deepsea', **TINY)
  budgets = {'deep_sea/0': 30}
  group = engine.groups(engine.runs(list(budgets)), config, budgets)[0]
  full = engine.Group(dataclasses.replace(group.env, one_hot_cells=None), group.ids, group.seeds)
  calls = []
  with pytest.raises(checkpoint.Interrupted):
    engine.run_group(full, config, budgets, str(tmp_path / 'resumed'), chunk_steps=50,
                     interrupted=lambda: calls.append(1) or len(calls) == 2)
  assert (tmp_path / 'resumed' / 'jax-engine-deep_sea-0+1.npz').exists()
  with pytest.warns(UserWarning, match='where this run has.*another version.*from scratch'):
    engine.run_group(group, config, budgets, str(tmp_path / 'resumed'), chunk_steps=50)
  engine.run_group(group, config, budgets, str(tmp_path / 'straight'), chunk_steps=50)
  read = lambda d: pd.read_csv(csv_format.bsuite_csv_path(str(tmp_path / d), 'deep_sea/0'))
  pd.testing.assert_frame_equal(read('straight'), read('resumed'))


def test_a_group_checkpoint_from_another_device_count_restarts_the_group(tmp_path):
  """A group saved on 2 devices (its runs padded and compacted for 2) is not resumed on 1, where its
  runs might not divide or match: the group starts again, with a warning naming both counts, and
  plays as a fresh run does. (Its meta is edited here to say 2: this process has one device.)"""
  import json
  config = make_config('hyperagent', 'deepsea', **TINY)
  budgets = {'deep_sea/0': 30}
  group = engine.groups(engine.runs(list(budgets)), config, budgets)[0]
  calls = []
  with pytest.raises(checkpoint.Interrupted):
    engine.run_group(group, config, budgets, str(tmp_path / 'resumed'), chunk_steps=50,
                     interrupted=lambda: calls.append(1) or len(calls) == 2)
  path = tmp_path / 'resumed' / 'jax-engine-deep_sea-0+1.npz'
  with np.load(path) as data:
    arrays = dict(data)
  meta = json.loads(bytes(arrays[checkpoint.META]).decode())
  meta['run']['devices'] = 2
  arrays[checkpoint.META] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
  np.savez(path, **arrays)
  with pytest.warns(UserWarning, match='saved on 2 device.*this process has 1.*from scratch'):
    engine.run_group(group, config, budgets, str(tmp_path / 'resumed'), chunk_steps=50)
  engine.run_group(group, config, budgets, str(tmp_path / 'straight'), chunk_steps=50)
  read = lambda d: pd.read_csv(csv_format.bsuite_csv_path(str(tmp_path / d), 'deep_sea/0'))
  pd.testing.assert_frame_equal(read('straight'), read('resumed'))


def test_still_playing_halves_the_loop():
  budget = np.array([4, 4, 4, 12, 0])
  assert engine.still_playing(np.array([2, 2, 2, 2, 0]), budget, 1) is None  # 4 of 5 play
  assert engine.still_playing(np.array([4, 4, 2, 2, 0]), budget, 1).tolist() == [2, 3]
  assert engine.still_playing(np.array([4, 4, 4, 6, 0]), budget, 1).tolist() == [3]
  # two devices: topped up with a finished run to an even count
  assert engine.still_playing(np.array([4, 4, 4, 6, 0]), budget, 2).tolist() == [0, 3]
  assert engine.still_playing(np.array([4, 4, 4, 12, 0]), budget, 1) is None  # all done: the loop ends
  assert engine.still_playing(np.array([4, 6]), np.array([4, 12]), 2) is None  # 2 -> 2 gains nothing


def test_finished_runs_leave_the_loop_and_each_id_plays_as_before(tmp_path):
  """Three of four ids finish after 4 episodes: the fourth then plays alone (one run compiled), with
  the CSVs of the uncompacted group and of the id played alone; a resume after the compaction ends
  the same."""
  config = make_config('hyperagent', 'deepsea', **TINY)
  budgets = {'catch/0': 4, 'catch/1': 4, 'catch/2': 4, 'catch/3': 12}
  group = engine.groups(engine.runs(list(budgets)), config, budgets)[0]
  played = lambda d, **kw: engine.run_group(group, config, budgets, str(tmp_path / d), chunk_steps=18, **kw)
  sizes = []
  chunk_fn = jitloop.make_chunk_fn

  def counting_chunk_fn(*args):
    chunk = chunk_fn(*args)
    return lambda length, params, states: sizes.append(states.budget.shape[0]) or chunk(length, params, states)

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(jitloop, 'make_chunk_fn', counting_chunk_fn)
    compacted = played('compacted')
  assert sizes == [4, 4, 1, 1, 1, 1]  # catch is 9 steps: 2 episodes per 18-step chunk
  full = played('full', compact=False)
  assert compacted == [dict(s, seconds=c['seconds']) for s, c in zip(full, compacted)]
  assert [s['episodes'] for s in compacted] == [4, 4, 4, 12]
  engine.run_group(engine.Group(group.env, ('catch/3',), (0,)), config, budgets, str(tmp_path / 'alone'), chunk_steps=18)
  read = lambda d, i: pd.read_csv(csv_format.bsuite_csv_path(str(tmp_path / d), i))
  for bsuite_id in budgets:
    pd.testing.assert_frame_equal(read('compacted', bsuite_id), read('full', bsuite_id), rtol=1e-6)
  pd.testing.assert_frame_equal(read('compacted', 'catch/3'), read('alone', 'catch/3'), rtol=1e-6)
  calls, bar = [], []
  with pytest.raises(checkpoint.Interrupted):
    played('resumed', interrupted=lambda: calls.append(1) or len(calls) == 3)
  saved = checkpoint.load_meta(str(tmp_path / 'resumed' / 'jax-engine-catch-0+4.npz'))
  assert saved['active'] == [3] and sorted(saved['left']) == ['0', '1', '2']
  played('resumed', on_chunk=bar.append)
  assert bar[0] == 4 + 4 + 4 + 6 and sum(bar) == sum(budgets.values())
  for bsuite_id in budgets:
    pd.testing.assert_frame_equal(read('resumed', bsuite_id), read('compacted', bsuite_id))


def test_a_group_of_two_seeds_resumes_into_each_seeds_folder(tmp_path):
  config = make_config('hyperagent', 'deepsea', **TINY)
  budgets = {'deep_sea/0': 30}
  group, = engine.groups(engine.runs(list(budgets), (0, 3)), config, budgets)
  assert group.ids == ('deep_sea/0', 'deep_sea/0') and group.seeds == (0, 3)
  folders = lambda name: {0: str(tmp_path / name), 3: str(tmp_path / f'{name}-3')}
  with pytest.raises(ValueError, match='a results folder each'):
    engine.run_group(group, config, budgets, str(tmp_path / 'one'))
  engine.run_group(group, config, budgets, folders('straight'), chunk_steps=50)
  calls = []
  with pytest.raises(checkpoint.Interrupted):
    engine.run_group(group, config, budgets, folders('resumed'), chunk_steps=50,
                     interrupted=lambda: calls.append(1) or len(calls) == 2)
  assert (tmp_path / 'resumed' / 'jax-engine-deep_sea-0+2-seeds0-3.npz').exists()
  summaries = engine.run_group(group, config, budgets, folders('resumed'), chunk_steps=50)
  assert [(s['seed'], s['episodes']) for s in summaries] == [(0, 30), (3, 30)]
  read = lambda d: pd.read_csv(csv_format.bsuite_csv_path(str(tmp_path / d), 'deep_sea/0'))
  for name in ('', '-3'):
    pd.testing.assert_frame_equal(read('straight' + name), read('resumed' + name))
  assert read('straight').total_return.tolist() != read('straight-3').total_return.tolist()


def test_groups_share_shapes_and_respect_the_memory_cap():
  config = make_config('hyperagent', 'deepsea')
  ids = ['bandit/0', 'bandit/1', 'deep_sea/0', 'deep_sea/1', 'bandit/2']
  budgets = {i: 10_000 for i in ids}
  found = engine.groups(engine.runs(ids), config, budgets)
  assert [g.ids for g in found] == [('bandit/0', 'bandit/1', 'bandit/2'), ('deep_sea/0',), ('deep_sea/1',)]
  per_run = engine.capacity(config, found[0].env, [10_000], 1) * engine.transition_bytes(config, found[0].env)
  assert engine.capacity(config, found[0].env, [engine.most_steps('bandit/0', 10_000)], 1) == 10_000
  split = engine.groups(engine.runs(ids), config, budgets, max_bytes=2 * per_run)
  assert [g.ids for g in split][:2] == [('bandit/0', 'bandit/1'), ('bandit/2',)]
  capped = engine.groups(engine.runs(ids), config, budgets, max_runs=2)
  assert [g.ids for g in capped] == [('bandit/0', 'bandit/1'), ('bandit/2',), ('deep_sea/0',), ('deep_sea/1',)]
  assert [g.ids for g in engine.groups(engine.runs(ids), config, budgets, max_runs=1)][:3] == [('bandit/0',), ('bandit/1',),
                                                                                 ('bandit/2',)]
  seeded = engine.groups(engine.runs(ids, (0, 1)), config, budgets, max_runs=2)  # an id's seeds side by side
  assert [(g.ids, g.seeds) for g in seeded][:2] == [(('bandit/0',) * 2, (0, 1)), (('bandit/1',) * 2, (0, 1))]
  with pytest.raises(ValueError, match='ENGINE=python'):
    registry.make_id('mnist/0')


def test_runs_sharded_over_two_devices_give_the_one_device_numbers(tmp_path):
  """3 ids over 2 (forced host) devices, padded to 4 runs: the same CSVs as on one device."""
  import os
  import subprocess
  import sys
  ids, budgets = ('bandit/0', 'bandit/1', 'bandit/2'), {'bandit/0': 50, 'bandit/1': 70, 'bandit/2': 60}
  code = f'''
import jax
assert len(jax.local_devices()) == 2
from hyperagent.config import make_config
from hyperagent.bsuite import engine
config = make_config('hyperagent', 'deepsea', **{TINY!r})
group = engine.groups(engine.runs({ids!r}), config, {budgets!r})[0]
engine.run_group(group, config, {budgets!r}, {str(tmp_path / 'two')!r}, chunk_steps=32)
'''
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=2', JAX_PLATFORMS='cpu')
  done = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr
  config = make_config('hyperagent', 'deepsea', **TINY)
  engine.run_group(engine.groups(engine.runs(ids), config, budgets)[0], config, budgets, str(tmp_path / 'one'), chunk_steps=32)
  for bsuite_id in ids:
    read = lambda d: pd.read_csv(csv_format.bsuite_csv_path(str(tmp_path / d), bsuite_id))
    pd.testing.assert_frame_equal(read('two'), read('one'))
    assert read('one')['episode'].iloc[-1] == budgets[bsuite_id]


def test_drive_records_the_wall_clock_at_each_chunks_end(capsys):
  """JAX dispatches a jitted chunk asynchronously: the record must carry the time the chunk ended.
  A compiled chunk that takes T seconds to run must show a good part of T at its first entry (a fifth:
  other jobs on the machine change T from run to run; the dispatch alone takes microseconds)."""
  work = jax.jit(lambda x: jax.lax.fori_loop(0, 40, lambda _, y: jnp.tanh(y @ y), x))
  x = jnp.full((400, 400), 1e-3)
  jax.block_until_ready(work(x))  # compiled here, so the runs below are execution alone

  def timed():
    begin = time.perf_counter()
    jax.block_until_ready(work(x))
    return time.perf_counter() - begin
  seconds = min(timed() for _ in range(3))  # the least disturbed of three
  driver = jitloop.Driver(
      chunk=lambda length, params, states: (states, work(states)), env_params=None, lengths=[1, 1],
      append=lambda record, out, states, steps, wall: record + [wall],
      postfix=lambda record: dict(chunks=str(len(record))), finished=lambda record: False,
      position=lambda steps: f'step {steps} of 2', checkpoint_path=None, checkpoint_every_s=1e9, run_meta={})
  walls = jitloop.drive(driver, x, [], 0, 2, wall_before=0.0, desc='toy', progress=False, stop_on_interrupt=False,
                        log_every_s=0.0)
  assert walls[0] > 0.2 * seconds and walls[1] > walls[0] + 0.2 * seconds
  # without a progress bar (a run logged to a file) it says where it is, here after every chunk
  lines = capsys.readouterr().out.splitlines()
  assert [line.split(',')[0] for line in lines] == ['toy: step 1 of 2', 'toy: step 2 of 2']
  assert lines[1].endswith('s, chunks 2')


def test_a_slow_checkpoint_is_written_less_often_and_always_at_the_end(tmp_path, monkeypatch):
  """Asked for a checkpoint after every chunk, a run whose checkpoint takes 50 ms to write saves at
  most CHECKPOINT_SHARE of its time (every 1 s here), and still saves after its last chunk."""
  saved = []
  def slow_save(path, meta, trees):
    time.sleep(0.05)
    saved.append(meta['chunks_done'])
  monkeypatch.setattr(jitloop.checkpoint, 'save', slow_save)
  def chunk(length, params, states):
    time.sleep(0.01)
    return states, states
  driver = jitloop.Driver(
      chunk=chunk, env_params=None, lengths=[1] * 40, append=lambda record, out, states, steps, wall: record + [wall],
      postfix=lambda record: {}, finished=lambda record: False, position=lambda steps: f'step {steps}',
      checkpoint_path=str(tmp_path / 'checkpoint.npz'), checkpoint_every_s=0.0, run_meta={})
  jitloop.drive(driver, jnp.zeros(()), [], 0, 40, wall_before=0.0, desc='toy', progress=False,
                stop_on_interrupt=False, log_every_s=1e9)
  assert saved[0] == 1 and saved[-1] == 40 and len(saved) <= 3  # 40 chunks of 10 ms: ~0.5 s in all


@pytest.mark.optimized
def test_the_custom_environment_example_learns_its_corridor(tmp_path, monkeypatch, capsys):
  """experiments/custom_env.py, the README's example of a new JaxEnv, learns: over the last three of
  8 chunks of 1k steps, the seeds' test episodes reach the corridor's end at least 60% of the time (a
  uniform random policy gets there within the 12 steps allowed 24% of the time, by hand: the walk's
  distribution over the 6 cells, step by step; 90 test episodes at 0.24 reach 0.6 with odds of
  4e-13, binomial), every seed gets there in all 10 test episodes of some chunk, and every seed plays over 800
  episodes (the random walk's 11.2 steps an episode, by the same hand count, give ~715 in 8k steps).
  Not "every seed at 1.0 after chunk 8": one seed's greedy policy under a sampled index can flip for
  a chunk (here seed 0 scored 0.0 at 3k), and another CPU's rounding gives another trajectory: the
  bar leaves room for three seed-chunks of the last nine to flip."""
  import experiment_scripts
  example = experiment_scripts.load('custom_env')
  record = example.train('hyperagent', chunks=8, checkpoint_path=str(tmp_path / 'checkpoint.npz'))
  returns = record.test_return.T  # (chunk, seed)
  assert returns.shape == (8, 3)
  assert returns[-3:].mean() >= 0.6 and (returns.max(axis=0) == 1.0).all() and (record.episodes[:, -1] > 800).all()
  def no_chunk(*args, **kwargs):
    raise AssertionError('a finished run was played again instead of loaded')
  monkeypatch.setattr(jitloop, 'make_chunk_fn', lambda *args: no_chunk)
  again = example.train('hyperagent', chunks=8, checkpoint_path=str(tmp_path / 'checkpoint.npz'))
  for ours, saved in zip(record, again):  # the finished run, loaded from its checkpoint
    np.testing.assert_array_equal(ours, saved)
  # another run's checkpoint (4 chunks, not 8) is one line naming what differs, not a traceback
  assert example.main(['--chunks', '4', '--checkpoint', str(tmp_path / 'checkpoint.npz')]) == 2
  assert 'spec.chunks=8 (now 4)' in capsys.readouterr().err


def _avals(tree):
  return [(x.shape, x.dtype, x.weak_type) for x in jax.tree.leaves(tree)]


@pytest.mark.parametrize('where', ['deep_sea/0', 'cartpole_swingup/0', 'memory_len/0', 'minatar/freeway',
                                   *(pytest.param(w, marks=pytest.mark.slow) for w in (
                                       'bandit_noise/0', 'catch_scale/0', 'mountain_car/0', 'discounting_chain/0',
                                       'umbrella_distract/0', 'minatar/asterix', 'minatar/breakout',
                                       'minatar/seaquest', 'minatar/space_invaders'))])
def test_a_chunk_returns_the_types_it_takes_so_it_compiles_once(where):
  # A state leaf that goes in weak-typed and comes out strong makes the second call compile the chunk
  # again (~14 s for MinAtar here). Traced, not compiled: the output types are the next call's input.
  if where.startswith('minatar/'):
    from hyperagent.minatar import env as minatar
    env, params = minatar.make(where.split('/')[1])
  else:
    env, params = registry.make_id(where)
  config = make_config('dqn', 'minatar' if where.startswith('minatar/') else 'deepsea', warmup_steps=4)
  agent = jitloop.make_agent_for(config, env)
  params = jitloop.stack_runs([params] * 2)
  states = jitloop.init_runs(agent, env, 64, jnp.arange(2), params, np.full(2, 10))
  chunk = jitloop.make_chunk_fn(config, env, jitloop.LoopSpec(own_budgets=True))
  after, _ = jax.eval_shape(chunk, 8, params, states)
  assert _avals(after) == _avals(states)


def key_recording_env() -> JaxEnv:
  """Episodes of three steps whose info reports 32 bits of the keys its init, last reset and last step
  were given: equal bits mean a key was handed out twice."""
  bits = lambda key: jax.random.bits(key, dtype=jnp.uint32)
  zero = jnp.zeros((), jnp.uint32)

  def init(params, key):
    return dict(t=jnp.zeros((), jnp.int32), init=bits(key), reset=zero, step=zero)

  def reset(params, state, key):
    return dict(state, t=jnp.zeros((), jnp.int32), reset=bits(key)), jnp.zeros(2)

  def step(params, state, action, key):
    t = state['t'] + 1
    last = t >= 3
    out = EnvStep(jnp.full(2, t, jnp.float32), jnp.zeros(()), jnp.where(last, 0.0, 1.0), last)
    return dict(state, t=t, step=bits(key)), out

  info = lambda params, state: {name: state[name] for name in ('init', 'reset', 'step')}
  return JaxEnv(name='key_recording', static=(), num_actions=2, observation_shape=(2,),
                observation_dtype=jnp.float32, info_names=('init', 'reset', 'step'), init=init,
                reset=reset, step=step, info=info, max_episode_steps=3)


def alternating_ends_env() -> JaxEnv:
  """Episodes of three steps from one constant observation; episodes 0, 2, 4, ... end in a truncation
  (discount 1), 1, 3, 5, ... in a termination. Its info says whether an episode's actions changed."""
  def init(params, key):
    return dict(t=jnp.zeros((), jnp.int32), episode=jnp.zeros((), jnp.int32), first_action=jnp.zeros((), jnp.int32),
                switched=jnp.zeros((), jnp.int32))

  def reset(params, state, key):
    return dict(state, t=jnp.zeros((), jnp.int32), switched=jnp.zeros((), jnp.int32)), jnp.ones(2)

  def step(params, state, action, key):
    t = state['t'] + 1
    last = t >= 3
    first_action = jnp.where(t == 1, action, state['first_action'])
    switched = state['switched'] | (action != first_action).astype(jnp.int32)
    discount = jnp.where(last & (state['episode'] % 2 == 1), 0.0, 1.0)
    out = EnvStep(jnp.ones(2), jnp.zeros(()), discount, last)
    return dict(t=t, episode=state['episode'] + last, first_action=first_action, switched=switched), out

  info = lambda params, state: {name: state[name] for name in ('first_action', 'switched')}
  return JaxEnv(name='alternating_ends', static=(), num_actions=2, observation_shape=(2,),
                observation_dtype=jnp.float32, info_names=('first_action', 'switched'), init=init,
                reset=reset, step=step, info=info, max_episode_steps=3)


def test_learn_is_told_how_many_transitions_each_run_has_stored():
  """|D| scales the index regulariser (λ_r / |D|, SPEC §2.6): from the warm-up's end on, the loop hands
  each run's learn the transitions that run has stored, t + 1 after its (t + 1)-th step, capped by its
  replay's capacity (24 here)."""
  env, params = registry.make_id('catch/0')
  config = make_config('hyperagent', 'deepsea', **TINY)
  agent = jitloop.make_agent_for(config, env)
  seen = []
  real_learn = agent.learn

  def learn(state, batch, replay_size):
    jax.debug.callback(lambda d: seen.append(int(d)), replay_size)
    return real_learn(state, batch, replay_size)

  agent = agent._replace(learn=learn)
  params = jitloop.stack_runs([params, params])
  states = jitloop.init_runs(agent, env, 24, jnp.array([0, 1]), params, np.array([10**6, 10**6]))
  jax.jit(lambda p, s: jitloop.run_chunk(agent, env, jitloop.LoopSpec(), 32, p, s))(params, states)
  jax.effects_barrier()
  warmup = config.warmup_steps  # 16: the first update follows the 16th step
  assert sorted(seen) == sorted([min(t, 24) for t in range(warmup, 33)] * 2)


def test_truncations_and_terminations_are_stored_apart_and_the_index_is_drawn_per_episode():
  """The loop stores a last step with discount 1 as a truncation (bootstrapped) and one with discount 0
  as a termination, and the actor draws a new index exactly at each episode's first step (no per-step
  switch here)."""
  env = alternating_ends_env()
  config = make_config('hyperagent', 'deepsea', warmup_steps=10**6, batch_size=4, index_resample_prob=0.0)
  agent = jitloop.make_agent_for(config, env)
  params = jitloop.stack_runs([jnp.zeros(())])
  states = jitloop.init_runs(agent, env, 64, jnp.array([0]), params, np.array([10**6]))
  one_step = jax.jit(lambda p, s: jitloop.run_chunk(agent, env, jitloop.LoopSpec(), 1, p, s)[0])
  indices = []
  for _ in range(12):
    states = one_step(params, states)
    indices.append(np.asarray(states.actor.index[0]))
  t = np.arange(12)
  last = t % 3 == 2
  np.testing.assert_array_equal(np.asarray(states.replay.truncated[0, :12, 0]), last & (t // 3 % 2 == 0))
  np.testing.assert_array_equal(np.asarray(states.replay.terminated[0, :12, 0]), last & (t // 3 % 2 == 1))
  changed = [not np.array_equal(indices[i], indices[i - 1]) for i in range(1, 12)]
  assert changed == [i % 3 == 0 for i in range(1, 12)]


def test_a_test_episode_keeps_its_index():
  """Greedy test episodes under one sampled index each (SPEC §2.2): from a constant observation every
  episode repeats its first action, while the first actions differ between episodes (the policy does
  depend on the index, so a per-step redraw would show)."""
  env = alternating_ends_env()
  agent = jitloop.make_agent_for(make_config('hyperagent', 'deepsea'), env)
  train = agent.init(jax.random.key(0))
  _, info = jitloop.run_test_episodes(agent, env, jitloop.LoopSpec(eval_episodes=64, eval_steps=3), jnp.zeros(()),
                                      train.params, jax.random.key(1))
  assert np.all(np.asarray(info['switched']) == 0)
  assert 8 <= np.asarray(info['first_action']).sum() <= 56


def test_no_environment_key_is_handed_out_twice():
  """A run's init, every reset and every step get keys of their own, and so do the test episodes':
  fold_in(key, i) equals split(key, n)[i], so keys folded in at small i collided with split ones
  (a test episode's second step used its init key and its third its reset key; a run's first step
  its init key)."""
  env = key_recording_env()
  agent = jitloop.make_agent_for(make_config('hyperagent', 'deepsea', warmup_steps=4, batch_size=4), env)
  params = jitloop.stack_runs([jnp.zeros(())])
  states = jitloop.init_runs(agent, env, 64, jnp.array([0]), params, np.array([10**6]))
  init_bits = int(states.env['init'][0])
  first_reset = int(states.env['reset'][0])
  _, out = jax.jit(lambda p, s: jitloop.run_chunk(agent, env, jitloop.LoopSpec(), 21, p, s))(params, states)
  info = {k: np.asarray(v[0]) for k, v in out.steps.info.items()}
  assert (info['init'] == init_bits).all()
  resets = np.unique(info['reset'])  # the first episode's, then one per restart
  run_keys = np.concatenate([[init_bits], info['step'], resets])
  assert first_reset in resets and len(resets) == 7
  assert len(np.unique(run_keys)) == len(run_keys) == 1 + 21 + 7

  num = 6
  spec = jitloop.LoopSpec(eval_episodes=num, eval_steps=3)  # the last step of each is its third
  train = agent.init(jax.random.key(0))
  _, test_info = jitloop.run_test_episodes(agent, env, spec, jnp.zeros(()), train.params, jax.random.key(1))
  test_keys = np.concatenate([np.asarray(test_info[k]) for k in ('init', 'reset', 'step')])
  assert len(np.unique(test_keys)) == len(test_keys) == 3 * num
