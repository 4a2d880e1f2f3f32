"""One checkpoint format for every driver: arrays in an .npz, plain data as JSON, written atomically.

A checkpoint holds named pytrees of arrays (a loop state, a host-side record, ...) and a JSON dict
(`meta`: settings, counters). Only arrays and JSON are stored, never Python objects (np.load refuses
them by default), so loading a file from a shared results folder runs no code. The trees' structure is not stored: `load` rebuilds each tree
from a template the driver makes for the current run (its fresh state), and checks every leaf's
rank and dtype against it (and the exact shape where asked), so a file written by another run or
another version of hyperagent gives one clear error instead of a pytree mismatch inside jit.

Writes go to a temporary file that is renamed over the old one, so a kill at any instant leaves
the last complete checkpoint.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import threading
import zipfile
from typing import Any, Callable, Iterable, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from hyperagent import cli

META = '__meta__'


class CheckpointError(ValueError):
  """A checkpoint that cannot be resumed; the message names the file and what to do."""


_UNREADABLE = (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError)


def _unreadable(path: str, error: Exception) -> CheckpointError:
  return CheckpointError(f'{path} is not a readable checkpoint ({type(error).__name__}: {error}); delete it '
                         f'(or pass --fresh) to start this run again.')


def _is_key(x) -> bool:
  return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _host_leaf(x) -> np.ndarray:
  if _is_key(x):
    x = jax.random.key_data(x)  # typed PRNG keys are stored as their raw uint32 data
  return np.asarray(jax.device_get(x))


def save(path: str, meta: Mapping[str, Any], trees: Mapping[str, Any]) -> None:
  """Writes `trees` (name -> pytree of arrays) and `meta` (JSON-serialisable) to `path` atomically."""
  arrays = {META: np.frombuffer(json.dumps(meta).encode(), np.uint8)}
  for name, tree in trees.items():
    for i, leaf in enumerate(jax.tree.leaves(tree)):
      arrays[f'{name}/{i}'] = _host_leaf(leaf)
  tmp = path + '.tmp'
  with open(tmp, 'wb') as f:
    np.savez(f, **arrays)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def write_text(path: str, text: str) -> None:
  """Replaces the file at `path` with `text` as `save` does: a kill leaves the old file or the new one,
  never part of either (configs, tables and logs that a later command reads back)."""
  tmp = path + '.tmp'
  with open(tmp, 'w', newline='') as f:
    f.write(text)
  os.replace(tmp, path)


def load_meta(path: str) -> dict[str, Any]:
  """The JSON part alone (cheap: the arrays are not read)."""
  try:
    with np.load(path) as data:
      return json.loads(bytes(data[META]).decode())
  except _UNREADABLE as error:
    raise _unreadable(path, error) from None


def saved_setting(path: str | None, field: str) -> int | None:
  """The integer run setting `field` (meta['run']['spec'][field]) of the checkpoint at `path`; None
  without a checkpoint or without that field. Read before the checkpoint is checked, to rebuild an
  extended run's saved shapes: a checkpoint of another run is refused afterwards, by check_same_run."""
  if not path or not os.path.exists(path):
    return None
  value = load_meta(path).get('run', {}).get('spec', {}).get(field)
  return value if isinstance(value, int) else None


def load(path: str, templates: Mapping[str, Any], exact_shapes: Iterable[str] = ()
         ) -> tuple[dict[str, Any], dict[str, Any]]:
  """(meta, trees) from `path`, each tree rebuilt on the structure of `templates[name]`.

  Every leaf must have its template leaf's rank and dtype, and, for trees named in `exact_shapes`,
  its shape too; typed PRNG keys in a template come back as typed keys.
  """
  meta = load_meta(path)
  exact = set(exact_shapes)
  trees = {}
  try:
    with np.load(path) as data:
      for name, template in templates.items():
        like, treedef = jax.tree.flatten(template)
        stored = sum(1 for key in data.files if key.startswith(name + '/'))
        if stored != len(like):
          raise CheckpointError(f'{path} holds {stored} arrays for {name!r} where this run has {len(like)}')
        leaves = []
        for i, t in enumerate(like):
          x = data[f'{name}/{i}']
          is_key = _is_key(t)
          want = jax.random.key_data(t) if is_key else np.asarray(t)
          if x.dtype != want.dtype or x.ndim != want.ndim or (name in exact and x.shape != want.shape):
            raise CheckpointError(f'{path}: {name} array {i} is {x.dtype}{list(x.shape)} where this run has '
                                  f'{want.dtype}{list(want.shape)}')
          leaves.append(jax.random.wrap_key_data(x) if is_key else x)
        trees[name] = jax.tree.unflatten(treedef, leaves)
  except CheckpointError as error:
    raise CheckpointError(f'{error}: it was written by another run or another version of hyperagent; '
                          'use another results folder, or delete it (or pass --fresh) to start again.') from None
  except _UNREADABLE as error:
    raise _unreadable(path, error) from None
  return meta, trees


def written_rows(buffer: Any, names: Iterable[str], rows: int, axis: int = 0) -> Any:
  """A replay NamedTuple with the fields `names` cut to their first `rows` rows along `axis`: the rows
  never written are zeros, as the buffer's `init` made them, so a checkpoint need not keep them."""
  return buffer._replace(**{name: jax.lax.slice_in_dim(getattr(buffer, name), 0, rows, axis=axis) for name in names})


def restore_rows(saved: Any, fresh: Any, names: Iterable[str], rows: int, axis: int = 0) -> Any:
  """The inverse of `written_rows`: `saved` with each field of `names` padded back to `fresh`'s shape
  (the fresh buffer's zeros beyond the first `rows` rows). A saved field of another shape, beyond its
  `rows` rows along `axis`, is refused (padding would broadcast it or fail with a bare shape error)."""
  for name in names:
    have, full = tuple(jnp.shape(getattr(saved, name))), tuple(jnp.shape(getattr(fresh, name)))
    want = full[:axis] + (rows,) + full[axis + 1:]
    if have != want or rows > full[axis]:
      raise CheckpointError(f'the checkpoint holds a replay of another size ({name}: {have}, this run expects '
                            f'{want} with at most {full[axis]} rows); use another --out or --fresh.')
  where = (slice(None),) * axis + (slice(0, rows),)
  return saved._replace(**{name: jnp.asarray(getattr(fresh, name)).at[where].set(getattr(saved, name))
                           for name in names})


def check_same_run(path: str, run: Mapping[str, Any], ignore: Iterable[str] = (),
                   may_grow: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
  """The checkpoint's meta, after checking that its meta['run'] is `run` (up to `ignore`); a checkpoint
  of another run is a one-line error naming the fields that differ. `may_grow`: (section, field) pairs,
  e.g. ('spec', 'steps'), that may be larger now than when saved (a run extended)."""
  meta = load_meta(path)
  saved, run = meta.get('run', {}), dict(run)
  for section, field in may_grow:
    old, new = saved.get(section, {}).get(field), run.get(section, {}).get(field)
    if isinstance(old, int) and isinstance(new, int) and old <= new:
      run[section] = {**run[section], field: old}
  differ = cli.differences(saved, run, ignore)
  if differ:
    raise CheckpointError(f'{path} belongs to another run ({"; ".join(differ)}); use another results folder, '
                          'or --fresh to empty this one and start again.')
  return meta


def run_id(*settings: Mapping[str, Any]) -> str:
  """8 hex digits that change with anything in `settings` (resolved config and run settings): the
  suffix of a run's default folder, so a changed setting never lands in an old run's folder and the
  same settings always find their own."""
  text = json.dumps([json.loads(json.dumps(dict(s))) for s in settings], sort_keys=True)
  return hashlib.sha1(text.encode()).hexdigest()[:8]


RUN_FILES = ('config.json', 'checkpoint.npz')
LOCK_FILE = '.lock'
BUSY_EXIT = 75  # EX_TEMPFAIL: a chain of runs moves on to its next run and leaves this one to its holder


class FolderBusy(CheckpointError):
  """Another live process holds the results folder's lock."""


@contextlib.contextmanager
def folder_lock(path: str, name: str = LOCK_FILE, wait: bool = False) -> Iterator[None]:
  """Holds the results folder `path` (created if need be) for the block, so a second run started on
  the same folder stops at once with FolderBusy instead of overwriting the first one's checkpoint (both
  would write the same temporary file). It is an flock on `path`/`name`: the OS drops it when the
  process ends, a kill -9 included, so a stale lock never blocks a resume. Another `name` locks a
  part of a folder (a bsuite id of a sweep's folder). `wait`: block until the lock is free instead (for
  a moment's read-modify-write of a shared file)."""
  os.makedirs(path, exist_ok=True)
  fd = os.open(os.path.join(path, name), os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
  except BlockingIOError:
    holder = os.pread(fd, 200, 0).decode(errors='replace').strip() or 'unknown'
    os.close(fd)
    raise FolderBusy(f'{path} is in use by another run (process {holder}); wait for it to end, or give '
                     'another --out.') from None
  try:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'{os.getpid()} on {socket.gethostname()}'.encode(), 0)
    yield
  finally:
    os.close(fd)  # releases the lock


KINDS = dict(deepsea='DeepSea', minatar='MinAtar', bsuite='bsuite', atari='Atari')


def run_kind(folder: str) -> str | None:
  """Which entry point's run `folder` holds (a key of KINDS), read from the layout of its config.json:
  DeepSea's has run.size, MinAtar's spec.game, Atari's num_actions, bsuite's agent and seed at the
  top. None without a readable config.json of one of these layouts."""
  try:
    with open(os.path.join(folder, 'config.json')) as f:
      saved = json.load(f)
  except (OSError, ValueError):
    return None
  if not isinstance(saved, dict):
    return None
  if 'num_actions' in saved:
    return 'atari'
  if isinstance(saved.get('run'), dict) and 'size' in saved['run']:
    return 'deepsea'
  if isinstance(saved.get('spec'), dict) and 'game' in saved['spec']:
    return 'minatar'
  if {'agent', 'seed', 'config'} <= set(saved):
    return 'bsuite'
  return None


def check_kind(folder: str, kind: str) -> None:
  """Refuses (ValueError) a folder that holds another entry point's run, before --fresh or --overwrite
  could empty it: a mistyped --out must not cost another kind of run its results."""
  other = run_kind(folder)
  if other is not None and other != kind:
    raise ValueError(f'{folder} holds a {KINDS[other]} run (its config.json), not a {KINDS[kind]} run; give another '
                     '--out (neither --fresh nor --overwrite empties another kind of run\'s folder)')


def check_run_folder(out: str, path: str, own: Iterable[str] = ()) -> None:
  """Refuses (ValueError) a folder that holds files but not the run's checkpoint `path`: another kind
  of run's results (a bsuite folder) or an archive, whose config.json and CSVs a run started there
  would overwrite or sit beside. `own`: the files the run writes before its first checkpoint."""
  if os.path.exists(path) or not os.path.isdir(out):
    return
  others = sorted(set(os.listdir(out)) - {LOCK_FILE, *own})
  if others:
    shown = ', '.join(others[:3]) + (f' and {len(others) - 3} more' if len(others) > 3 else '')
    raise ValueError(f'{out} holds {shown} but no {os.path.basename(path)}: not a folder of this run '
                     '(another run\'s results, or an archive); give another --out')


def empty_folder(path: str, run_files: Iterable[str] = RUN_FILES) -> None:
  """Removes everything in a results folder (`--fresh`) but its lock file (the caller may hold it).
  Refuses a non-empty folder that holds none of `run_files`: it is not a results folder, and emptying
  it could delete someone's work."""
  names = [name for name in os.listdir(path) if name != LOCK_FILE] if os.path.isdir(path) else []
  if not names:
    return
  run_files = tuple(run_files)
  if not any(os.path.exists(os.path.join(path, name)) for name in run_files):
    raise ValueError(f'--fresh would empty {path}, which holds no {" or ".join(run_files)}: not a results folder; '
                     'give another --out.')
  for name in sorted(names, key=lambda name: name in run_files):  # the marks last: a killed --fresh can be rerun
    target = os.path.join(path, name)
    shutil.rmtree(target) if os.path.isdir(target) and not os.path.islink(target) else os.remove(target)


class Interrupted(Exception):
  """A run stopped by Ctrl-C after saving its checkpoint; the message says where and how to resume."""


def interrupted_message(out: str, path: str) -> str:
  """What a Ctrl-C outside a chunk (building, compiling, writing results, or a second Ctrl-C) leaves
  of the run in folder `out`: its last checkpoint at `path`, or nothing yet."""
  if os.path.exists(path):
    return f'interrupted: the last checkpoint in {out} is kept; the same command resumes from it.'
  return f'interrupted before the first evaluation of {out}: nothing saved for it.'


@contextlib.contextmanager
def deferred_interrupt(enabled: bool = True) -> Iterator[Callable[[], bool]]:
  """Within the block, a first Ctrl-C only sets a flag (the returned function reads it), so a driver can
  finish its chunk, save and stop; a second Ctrl-C interrupts at once as usual. Off the main thread,
  or when not enabled, Ctrl-C is left alone."""
  if not enabled or threading.current_thread() is not threading.main_thread():
    yield lambda: False
    return
  requested = []

  def handler(signum, frame):
    if requested:
      raise KeyboardInterrupt
    requested.append(True)

  previous = signal.signal(signal.SIGINT, handler)
  try:
    yield lambda: bool(requested)
  finally:
    signal.signal(signal.SIGINT, previous)
