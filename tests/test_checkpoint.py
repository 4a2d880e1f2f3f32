"""checkpoint.written_rows / restore_rows: a replay saved without its never-written rows comes back whole;
folder_lock: one process per results folder; differences: what a foreign checkpoint changed."""
import os
import subprocess
import sys
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pytest

from hyperagent import checkpoint, cli

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'src')


class Buffer(NamedTuple):
  obs: jnp.ndarray
  action: jnp.ndarray
  rows: jnp.ndarray


@pytest.mark.parametrize('axis', [0, 1])
def test_written_rows_round_trip(axis):
  shape = (6, 3) if axis == 0 else (2, 6)  # 6 rows along `axis`
  fresh = Buffer(jnp.zeros(shape + (4,)), jnp.zeros(shape, jnp.int32), jnp.array(0))
  written = Buffer(fresh.obs.at[(slice(None),) * axis + (slice(0, 4),)].set(1.5),
                   fresh.action.at[(slice(None),) * axis + (slice(0, 4),)].set(7), jnp.array(4))
  cut = checkpoint.written_rows(written, ('obs', 'action'), 4, axis=axis)
  assert cut.obs.shape[axis] == 4 and cut.action.shape[axis] == 4 and int(cut.rows) == 4
  assert np.all(np.asarray(cut.obs) == 1.5) and np.all(np.asarray(cut.action) == 7)
  back = checkpoint.restore_rows(cut, fresh, ('obs', 'action'), 4, axis=axis)
  for name in ('obs', 'action'):
    np.testing.assert_array_equal(getattr(back, name), getattr(written, name))
    assert getattr(back, name).dtype == getattr(written, name).dtype


def test_restore_rows_refuses_a_replay_of_another_size():
  fresh = Buffer(jnp.zeros((6, 3, 4)), jnp.zeros((6, 3), jnp.int32), jnp.array(0))
  wide = Buffer(jnp.ones((4, 3, 5)), jnp.ones((4, 3), jnp.int32), jnp.array(4))  # obs 5 wide, not 4
  with pytest.raises(checkpoint.CheckpointError, match=r'another size \(obs: \(4, 3, 5\)'):
    checkpoint.restore_rows(wide, fresh, ('obs', 'action'), 4)
  one_env = Buffer(jnp.ones((4, 1, 4)), jnp.ones((4, 1), jnp.int32), jnp.array(4))  # would broadcast
  with pytest.raises(checkpoint.CheckpointError, match='another size'):
    checkpoint.restore_rows(one_env, fresh, ('obs', 'action'), 4)
  too_long = Buffer(jnp.ones((8, 3, 4)), jnp.ones((8, 3), jnp.int32), jnp.array(8))
  with pytest.raises(checkpoint.CheckpointError, match='at most 6 rows'):
    checkpoint.restore_rows(too_long, fresh, ('obs', 'action'), 8)


def test_folder_lock_refuses_a_second_holder_until_the_first_lets_go(tmp_path):
  folder = str(tmp_path / 'run')
  with checkpoint.folder_lock(folder):
    with pytest.raises(checkpoint.FolderBusy, match=f'in use by another run \\(process {os.getpid()} on '):
      with checkpoint.folder_lock(folder):
        pass
  with checkpoint.folder_lock(folder):  # released on leaving the block
    pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
  folder = str(tmp_path / 'run')
  holder = subprocess.Popen(
      [sys.executable, '-c', 'import sys, time\nfrom hyperagent import checkpoint\n'
       f'with checkpoint.folder_lock({folder!r}):\n  print("held", flush=True)\n  time.sleep(60)'],
      stdout=subprocess.PIPE, text=True, env={**os.environ, 'PYTHONPATH': SRC})
  try:
    assert holder.stdout.readline().strip() == 'held'
    with pytest.raises(checkpoint.FolderBusy, match=f'process {holder.pid} on '):
      with checkpoint.folder_lock(folder):
        pass
  finally:
    holder.kill()  # SIGKILL: no cleanup code runs in the holder
    holder.wait()
  with checkpoint.folder_lock(folder):
    pass


def test_fresh_under_the_lock_empties_the_run_but_keeps_it_locked(tmp_path):
  folder = tmp_path / 'run'
  with checkpoint.folder_lock(str(folder)):
    (folder / 'config.json').write_text('{}')
    (folder / 'metrics.csv').write_text('steps\n1\n')
    checkpoint.empty_folder(str(folder))
    assert os.listdir(folder) == [checkpoint.LOCK_FILE]
    with pytest.raises(checkpoint.FolderBusy):  # the lock file was not removed from under its holder
      with checkpoint.folder_lock(str(folder)):
        pass
    checkpoint.empty_folder(str(folder))  # a folder holding only the lock is empty, not a stranger's folder


@pytest.mark.parametrize('removals', [0, 1, 2])
def test_a_fresh_killed_part_way_leaves_a_folder_fresh_still_empties(tmp_path, monkeypatch, removals):
  """--fresh removes the files that mark a results folder last: killed after any removal, the folder
  is still one, and --fresh again empties it (removing them first left a folder refused as a stranger's).
  The folder is listed marks first, the worst order, whatever the file system's."""
  folder = tmp_path / 'run'
  folder.mkdir()
  for name in ('config.json', 'checkpoint.npz', 'metrics.csv', 'curve.png'):
    (folder / name).write_text('x')
  listdir, remove, removed = os.listdir, os.remove, []
  monkeypatch.setattr(os, 'listdir', lambda p: sorted(listdir(p), key=lambda n: n not in checkpoint.RUN_FILES))

  def killed_after(path):
    if len(removed) == removals:
      raise KeyboardInterrupt
    removed.append(os.path.basename(path))
    remove(path)

  monkeypatch.setattr(os, 'remove', killed_after)
  with pytest.raises(KeyboardInterrupt):
    checkpoint.empty_folder(str(folder))
  monkeypatch.setattr(os, 'remove', remove)
  assert len(removed) == removals and all((folder / name).exists() for name in checkpoint.RUN_FILES)
  checkpoint.empty_folder(str(folder))
  assert listdir(folder) == []


def test_write_text_killed_before_the_rename_leaves_the_old_file_whole(tmp_path, monkeypatch):
  path = tmp_path / 'scaling.csv'
  checkpoint.write_text(str(path), 'size,seed\n10,0\n')
  assert path.read_text() == 'size,seed\n10,0\n'

  def killed(*args):
    raise KeyboardInterrupt

  monkeypatch.setattr(os, 'replace', killed)
  with pytest.raises(KeyboardInterrupt):
    checkpoint.write_text(str(path), 'size,seed\n10,0\n20,0\n')
  assert path.read_text() == 'size,seed\n10,0\n'


def test_a_run_refuses_a_folder_of_other_results_without_its_checkpoint(tmp_path):
  """A bsuite folder or an archive holds a config.json a run started there would overwrite."""
  folder = tmp_path / 'bsuite'
  path = str(folder / 'checkpoint.npz')
  checkpoint.check_run_folder(str(folder), path)  # no folder yet: a new run
  with checkpoint.folder_lock(str(folder)):
    checkpoint.check_run_folder(str(folder), path)  # only its lock: a run stopped before its first save
    (folder / 'config.json').write_text('{}')
    checkpoint.check_run_folder(str(folder), path, own=('config.json',))  # written by the run at its start
    (folder / 'bsuite_id_-_catch-0.csv').write_text('episode\n1\n')
    for own in ((), ('config.json',)):
      with pytest.raises(ValueError, match='holds bsuite_id_-_catch-0.csv.* but no checkpoint.npz'):
        checkpoint.check_run_folder(str(folder), path, own=own)
    (folder / 'checkpoint.npz').write_text('')
    checkpoint.check_run_folder(str(folder), path)  # its own run: resumed (or refused) by the checkpoint


def test_no_entry_point_empties_or_writes_into_another_kinds_run_folder(tmp_path, capsys):
  """A mistyped --out: DeepSea, MinAtar, bsuite and Atari each refuse a folder that holds another
  one's run, with --fresh or --overwrite too, and leave it as it was. The kinds are read from the
  archived runs' own config.json files (and an Atari one written as its runner writes it)."""
  import json
  import shutil
  import experiment_scripts
  from hyperagent.bsuite import sweep
  root = os.path.dirname(SRC)
  archived = dict(deepsea='docs/results/scaling-s35/ensemble-N120-seed-fc0687ea',
                  minatar='docs/results/minatar/asterix/dqn', bsuite='docs/results/bsuite/dqn')
  folders = {}
  for kind, folder in archived.items():
    folders[kind] = tmp_path / kind
    folders[kind].mkdir()
    shutil.copy(os.path.join(root, folder, 'config.json'), folders[kind])
    (folders[kind] / 'results.csv').write_text('x\n1\n')
  folders['atari'] = tmp_path / 'atari'
  folders['atari'].mkdir()
  (folders['atari'] / 'config.json').write_text(json.dumps(dict(run=dict(game='pong', steps=64), agent={},
                                                                 game='Pong', num_actions=6)))
  assert {kind: checkpoint.run_kind(str(f)) for kind, f in folders.items()} == {k: k for k in folders}
  assert checkpoint.run_kind(str(tmp_path)) is None and checkpoint.run_kind(str(tmp_path / 'none')) is None
  held = {kind: sorted(os.listdir(f)) for kind, f in folders.items()}
  with pytest.raises(ValueError, match=r'holds a MinAtar run \(its config.json\), not a DeepSea run; give another '
                                       r'--out \(neither --fresh nor --overwrite'):
    checkpoint.check_kind(str(folders['minatar']), 'deepsea')
  checkpoint.check_kind(str(folders['deepsea']), 'deepsea')
  checkpoint.check_kind(str(tmp_path / 'none'), 'deepsea')  # a new folder
  deepsea = experiment_scripts.load('deepsea')
  minatar = experiment_scripts.load('minatar')
  tiny = ['--set', 'batch_size=8', '--set', 'hidden_sizes=(8,)']
  assert deepsea.main(['--size', '4', '--episodes', '10', '--out', str(folders['bsuite']), '--fresh', *tiny]) == 2
  assert 'holds a bsuite run' in capsys.readouterr().err
  assert minatar.main(['--game', 'breakout', '--steps', '1000', '--out', str(folders['deepsea']), '--fresh']) == 2
  assert 'holds a DeepSea run' in capsys.readouterr().err
  with pytest.raises(ValueError, match='holds a MinAtar run'):
    sweep.write_run_info(str(folders['minatar']), 'hyperagent', {}, 0, 'cmd', overwrite=True)
  # as they were, but for the empty lock file a refusing entry point held while it looked
  assert {kind: sorted(set(os.listdir(f)) - {checkpoint.LOCK_FILE}) for kind, f in folders.items()} == held


def test_atari_refuses_a_seed_folder_that_holds_another_kinds_run(tmp_path, monkeypatch, capsys):
  """`atari.py --fresh` whose seed folder holds a DeepSea run (a mistyped --out): exit 2 naming it, the
  folder as it was, nothing trained (the runner is never built)."""
  import shutil
  import experiment_scripts
  from hyperagent.atari import runner
  atari = experiment_scripts.load('atari')
  folder = tmp_path / 'Pong' / 'run'
  (folder / 'seed0').mkdir(parents=True)
  shutil.copy(os.path.join(os.path.dirname(SRC), 'docs/results/scaling-s35/ensemble-N120-seed-fc0687ea/config.json'),
              folder / 'seed0')
  monkeypatch.setattr(atari, 'run_folder', lambda out, run: str(folder))

  def never(*args, **kwargs):
    raise AssertionError('a run was built in another kind of folder')

  monkeypatch.setattr(runner, 'Runner', never)
  assert atari.main(['--game', 'pong', '--steps', '64', '--out', str(tmp_path), '--fresh', '--no-progress']) == 2
  assert 'holds a DeepSea run' in capsys.readouterr().err
  assert os.listdir(folder / 'seed0') == ['config.json']


def test_differences_name_the_nested_leaf_that_differs():
  saved = dict(config=dict(batch_size=8, hidden_sizes=[64, 64]), spec=dict(size=10, seeds=[0, 1]), tag='a')
  now = dict(config=dict(batch_size=8, hidden_sizes=(64, 32)), spec=dict(size=10, seeds=(0, 1)), tag='a')
  assert cli.differences(saved, now) == ['config.hidden_sizes=[64, 64] (now [64, 32])']
  assert cli.differences(saved, dict(now, extra=dict(x=1)), ignore=('config',)) == ['extra.x=None (now 1)']
  assert cli.differences(saved, saved) == []


def test_a_first_ctrl_c_is_a_request_a_second_interrupts_and_the_handler_is_restored():
  """deferred_interrupt: inside the block the first SIGINT only sets the flag the driver polls, the
  second raises KeyboardInterrupt at once; on leaving, the previous SIGINT handler is back."""
  import signal
  before = signal.getsignal(signal.SIGINT)
  with checkpoint.deferred_interrupt() as requested:
    assert not requested()
    os.kill(os.getpid(), signal.SIGINT)
    assert requested()
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
  assert signal.getsignal(signal.SIGINT) is before
  with checkpoint.deferred_interrupt(enabled=False) as requested:
    assert not requested() and signal.getsignal(signal.SIGINT) is before
