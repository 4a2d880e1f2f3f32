"""bsuite ids through the jitted loop (`jitloop.py`) instead of bsuite's Python environments.

The ids of one experiment that share shapes, at one or more sweep seeds, form a group: one
compiled loop steps these runs together, their env params stacked along the vmapped axis, each run
counting its own episodes and stopping (counting and learning) at its id's budget; once at most half
of a group's runs still play, the finished ones leave the compiled loop (an experiment's ids differ
in episode length: umbrella_length's chains run 1 to 100 steps, and a group would otherwise pay its
longest id's steps for every id). The host writes, per run, exactly the rows bsuite's CSV logger
would (`bsuite.utils.wrappers.Logging`: its five columns, then the env's bsuite_info(), at the
log-spaced episodes), into the same file names in its seed's folder, so `bsuite-report` reads both
engines.

A group's state is checkpointed every `checkpoint_every_s` seconds (less often where a save takes
longer, `jitloop.checkpoint_period`) and on Ctrl-C: a killed sweep restarts the group from
there. Finished ids are recognised from their CSVs, as with the Python engine.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
import warnings
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from hyperagent import checkpoint, jitloop, replay
from hyperagent.config import Config
from hyperagent.environment import JaxEnv
from hyperagent.bsuite import csv_format, sweep
from hyperagent.bsuite.envs import registry

# The replay buffers of one group together. A buffer never holds more than its id can play
# (budget x the longest episode), so only the long-episode experiments reach this.
MAX_GROUP_REPLAY_BYTES = 4 << 30
# bsuite's logger's bookkeeping, in its CSV's column order
LOGGER_COLUMNS = csv_format.COLUMNS[:5]


class Group(NamedTuple):
  """Runs one compiled loop steps together: run r plays id `ids[r]` at sweep seed `seeds[r]`."""
  env: JaxEnv
  ids: tuple[str, ...]
  seeds: tuple[int, ...]


def runs(ids: Iterable[str], seeds: Sequence[int] = (0,)) -> list[tuple[str, int]]:
  """(id, sweep seed) of every id at every seed, the seeds of an id side by side (`groups` keeps
  them in one group where it can)."""
  return [(bsuite_id, seed) for bsuite_id in ids for seed in seeds]


def transition_bytes(config: Config, env: JaxEnv) -> int:
  return replay.transition_bytes(env.observation_shape, env.one_hot_input, config.index_dim)


def most_steps(bsuite_id: str, budget: int) -> int | None:
  """The most transitions `budget` episodes of the id can take (None: unbounded)."""
  longest = registry.make_id(bsuite_id)[0].max_episode_steps
  return None if longest is None else budget * longest


def capacity(config: Config, env: JaxEnv, steps: Sequence[int | None], runs: int,
             max_bytes: int = MAX_GROUP_REPLAY_BYTES) -> int:
  """Per run: config.replay_capacity, cut to what the longest run can fill (`steps` per id, from
  `most_steps`; a FIFO that never wraps behaves the same at any larger size) and to `max_bytes`
  over the `runs` buffers."""
  fill = replay.capacity(config.replay_capacity, None if None in steps else max(steps))
  return replay.memory_capped(fill, runs * transition_bytes(config, env), max_bytes, config.batch_size)


def groups(planned: Iterable[tuple[str, int]], config: Config, budgets: Mapping[str, int],
           max_bytes: int = MAX_GROUP_REPLAY_BYTES, max_runs: int | None = None) -> list[Group]:
  """The (id, sweep seed) runs (`runs`) in their order, grouped by equal JaxEnv; a group is split
  where its buffers at full size (config.replay_capacity, or what the budget fills) would pass
  `max_bytes`, or its runs `max_runs`."""
  by_env: dict[JaxEnv, list[tuple[str, int]]] = {}
  for bsuite_id, seed in planned:
    by_env.setdefault(registry.make_id(bsuite_id)[0], []).append((bsuite_id, seed))
  out = []
  for env, members in by_env.items():
    full = capacity(config, env, [most_steps(i, budgets[i]) for i, _ in members], 1, max_bytes=1 << 62)
    per_group = max(1, int(max_bytes // (full * transition_bytes(config, env))))
    per_group = min(per_group, max_runs or per_group)
    for start in range(0, len(members), per_group):
      ids, seeds = zip(*members[start:start + per_group])
      out.append(Group(env, ids, seeds))
  return out


def shard(tree: Any, devices: Sequence[jax.Device]) -> Any:
  """Every leaf split along its leading (runs) axis over `devices`; jit then runs each device's runs
  there. One device: the tree as it is. Local devices only: `run_group` reads the counters back on
  its host, which arrays spanning several hosts do not allow (README, "Devices")."""
  if len(devices) == 1:
    return tree
  mesh = jax.sharding.Mesh(np.asarray(devices), ('runs',))
  return jax.device_put(tree, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('runs')))


# ----------------------------------------------------------------------------- the logger's rows


def logged_counters(counters: jitloop.Counters) -> dict[str, np.ndarray]:
  """bsuite's logger's columns from the loop's counters (host arrays), `total_return` the compensated
  sum in float64, as bsuite's own."""
  columns = {name: np.asarray(getattr(counters, name)) for name in LOGGER_COLUMNS}
  columns['total_return'] = (np.asarray(counters.total_return, np.float64)
                             - np.asarray(counters.total_return_error, np.float64))
  return columns


def log_rows(out: jitloop.ChunkOut, env: JaxEnv, log_episodes: Sequence[np.ndarray]) -> list[list[dict]]:
  """Per run, the rows bsuite's logger writes for the episodes this chunk ended (host side)."""
  steps = jax.device_get(out.steps)
  columns = logged_counters(steps.counters)
  rows = []
  for r, wanted in enumerate(log_episodes):
    ended = np.nonzero(steps.last[r] & np.isin(steps.counters.episode[r], wanted))[0]
    run_rows = []
    for t in ended:
      row = {name: _python(column[r, t]) for name, column in columns.items()}
      row.update({name: _python(steps.info[name][r, t]) for name in env.info_names})
      run_rows.append(row)
    rows.append(run_rows)
  return rows


def _python(x) -> int | float:
  x = np.asarray(x)
  return int(x) if np.issubdtype(x.dtype, np.integer) or x.dtype == bool else float(x)


# ----------------------------------------------------------------------------- one group


def folders_of(results: Mapping[int, str] | str, seeds: Iterable[int]) -> dict[int, str]:
  """The results folder of each sweep seed: `results` maps seeds to folders, or is the one folder of
  a single seed (two seeds in one folder would write the same CSVs)."""
  seeds = sorted(set(seeds))
  if isinstance(results, str):
    if len(seeds) > 1:
      raise ValueError(f'runs of seeds {seeds} need a results folder each, got one: {results}')
    return {seeds[0]: results}
  return {s: results[s] for s in seeds}


def _consecutive(group: Group) -> bool:
  """Whether the group's runs are ids k, k+1, ... of one experiment, each at every one of the group's
  seeds, in `runs` order: a grouping of the planned ids with none finished in between."""
  experiment, first = group.ids[0].split('/')
  seeds = sorted(set(group.seeds))
  count = len(group.ids) // len(seeds)
  expected = runs([f'{experiment}/{int(first) + k}' for k in range(count)], seeds)
  return list(zip(group.ids, group.seeds)) == expected


def checkpoint_path(results: Mapping[int, str] | str, group: Group) -> str:
  """In the folder of the group's first run, named by its first id, its number of runs and, where
  it has several, its sweep seeds (`jax-engine-catch-0+20.npz`, `jax-engine-catch-0+20-seeds0-1.npz`);
  a group of other members (ids finished in between by another process, or before a kill) adds a
  digest of them (`jax-engine-catch-0+20-m1a2b3c4d.npz`). So two groups share a name only when they
  are the same runs (a group that found another's checkpoint under its name would start afresh and
  delete it), and the planned groups of one seed keep the names they had before these rules."""
  first = group.ids[0].replace('/', '-')
  folder = folders_of(results, group.seeds)[group.seeds[0]]
  distinct = sorted(set(group.seeds))
  seeds = '' if len(distinct) == 1 else '-seeds' + '-'.join(map(str, distinct))
  members = '' if _consecutive(group) else '-m' + hashlib.sha256(
      repr(list(zip(group.ids, group.seeds))).encode()).hexdigest()[:8]
  return os.path.join(folder, f'{sweep.CHECKPOINT_PREFIX}{first}+{len(group.ids)}{seeds}{members}.npz')


_CHECKPOINT_NAME = re.compile(re.escape(sweep.CHECKPOINT_PREFIX)
                              + r'(?P<first>.+)\+(?P<size>\d+)(?:-seeds(?P<seeds>\d+(?:-\d+)*))?(?:-m[0-9a-f]{8})?\.npz')


def unused_checkpoints(results_dir: str, groups: Sequence[Group], ids: Iterable[str],
                       results: Mapping[int, str] | str | None = None
                       ) -> list[tuple[str, int, tuple[int, ...] | None]]:
  """(path, runs in its group, its sweep seeds where it has several) of each checkpoint in
  `results_dir` of a group that starts at one of `ids` but is none of `groups` (whose folders are
  `results`, default `results_dir`): another grouping's (another --group-runs or --seeds), which
  these groups would leave unused while they play its ids from scratch."""
  planned = {checkpoint_path(results_dir if results is None else results, g) for g in groups}
  firsts = {i.replace('/', '-') for i in ids}
  found = []
  for name in sorted(os.listdir(results_dir)) if os.path.isdir(results_dir) else []:
    path = os.path.join(results_dir, name)
    match = _CHECKPOINT_NAME.fullmatch(name)
    if match and path not in planned and match['first'] in firsts:
      seeds = match['seeds']
      found.append((path, int(match['size']), tuple(map(int, seeds.split('-'))) if seeds else None))
  return found


# The replay's per-row arrays ([R, capacity, ...]): a checkpoint keeps the rows written only.
REPLAY_ROWS = ('obs', 'action', 'reward', 'terminated', 'truncated', 'next_obs', 'perturbation')


def _trimmed(states: jitloop.RunState) -> tuple[jitloop.RunState, int]:
  """The state with each buffer cut to the rows written (runs step in lockstep: equal counts)."""
  rows = int(np.asarray(states.replay.rows).reshape(-1)[0])
  return states._replace(replay=checkpoint.written_rows(states.replay, REPLAY_ROWS, rows, axis=1)), rows


def _untrimmed(saved: jitloop.RunState, fresh: jitloop.RunState, rows: int) -> jitloop.RunState:
  return saved._replace(replay=checkpoint.restore_rows(saved.replay, fresh.replay, REPLAY_ROWS, rows, axis=1))


def initial_runs(config: Config, env: JaxEnv, ids: Sequence[str], budget: Any, seed: int | Sequence[int],
                 size: int) -> tuple[Any, Any, jax.Array, jitloop.RunState]:
  """(agent, env params[R], seeds[R], initial states[R]) of the runs of `ids` (one per entry, repeats
  allowed), each on its own seed `sweep.id_seed(seed, id)` (`seed`: the sweep's, or one per run),
  with replay capacity `size` per run."""
  env_params = jitloop.stack_runs([registry.make_id(i)[1] for i in ids])
  agent = jitloop.make_agent_for(config, env)
  sweep_seeds = [int(seed)] * len(ids) if np.ndim(seed) == 0 else list(seed)
  seeds = jnp.asarray([sweep.id_seed(s, i) for s, i in zip(sweep_seeds, ids, strict=True)])
  return agent, env_params, seeds, jitloop.init_runs(agent, env, size, seeds, env_params, jnp.asarray(budget))


def _take(tree: Any, rows: np.ndarray) -> Any:
  """Runs `rows` of a tree whose every leaf has the runs axis first."""
  return jax.tree.map(lambda x: x[rows], tree)


def still_playing(counted: np.ndarray, budget: np.ndarray, devices: int) -> np.ndarray | None:
  """The positions the compiled loop should keep once at most half of its runs are still short of
  their budget (topped up with finished runs to a multiple of `devices`); None while more play.
  A finished run costs a playing one's compute in the vmapped loop (it steps, but neither counts nor
  learns): dropping them halves the work each time, for at most log2(runs) recompilations."""
  playing = np.nonzero(counted < budget)[0]
  keep = len(playing) + (-len(playing)) % devices
  if len(playing) == 0 or keep > len(counted) // 2:
    return None
  finished = np.nonzero(counted >= budget)[0]
  return np.sort(np.concatenate([playing, finished[:keep - len(playing)]]))


def run_group(group: Group, config: Config, budgets: Mapping[str, int], results: Mapping[int, str] | str, *,
              chunk_steps: int = 1_000, checkpoint_every_s: float = 60.0, compact: bool = True,
              on_chunk: Callable[[int], None] | None = None,
              interrupted: Callable[[], bool] = lambda: False,
              on_finished: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
  """Plays every run of `group` to its id's budget; writes their CSVs, each into the folder of its
  sweep seed (`results`: seed -> folder, or the one folder when the group has one seed); returns one
  summary per run. Run r plays its own seed, `sweep.id_seed(group.seeds[r], group.ids[r])`.

  compact: once at most half of the runs still play, the finished ones leave the compiled loop
    (`still_playing`). The runs left are the same runs; only the vmapped batch changes, which moves
    results by float rounding, as grouping ids differently does.
  on_chunk: called with the episodes counted in each chunk (progress bars), and first, when the group
    resumes from its checkpoint, with those counted before.
  interrupted: polled after each chunk; when true, the group is saved and `checkpoint.Interrupted`
    is raised.
  on_finished: called with each run's summary before any CSV is written (runs.jsonl): a run whose CSV
    exists, and which a later sweep therefore skips, has its line. A kill in between repeats the line
    when the group runs again, and the last one counts (`sweep.experiment_costs`).
  """
  start = time.monotonic()
  env, ids = group.env, group.ids
  # The runs axis is sharded over the local devices; padding runs (budget 0: they never count or
  # learn) make it divide evenly.
  devices = jax.local_devices()
  folders = folders_of(results, group.seeds)
  what = 'ids' if len(folders) == 1 else 'runs'
  padded = list(ids) + [ids[-1]] * ((-len(ids)) % len(devices))
  padded_seeds = list(group.seeds) + [group.seeds[-1]] * (len(padded) - len(ids))
  budget = np.array([budgets[i] for i in ids] + [0] * (len(padded) - len(ids)), np.int32)
  size = capacity(config, env, [most_steps(i, budgets[i]) for i in ids], len(padded))
  agent, all_params, seeds, states = initial_runs(config, env, padded, budget, padded_seeds, size)
  chunk = jitloop.make_chunk_fn(config, env, jitloop.LoopSpec(own_budgets=True))
  log_episodes = [csv_format.bsuite_log_episodes(int(b)) for b in budget]
  rows: list[list[dict]] = [[] for _ in padded]
  active = np.arange(len(padded))  # the runs in the compiled loop, as positions in `padded`
  left: dict[int, dict[str, Any]] = {}  # the final counters of the runs that left it
  # `seeds` (the runs' own) tell the runs of several sweep seeds apart; `seed`, the first run's, keeps a
  # one-seed group's record as it was, so checkpoints written before groups had several seeds resume
  run_meta = dict(ids=list(ids), budgets=budget.tolist(), seed=group.seeds[0], seeds=seeds.tolist(), config=config.to_dict(),
                  capacity=size)
  if len(devices) > 1:  # the padding and the runs left after compaction follow it (one device: as before)
    run_meta['devices'] = len(devices)
  path = checkpoint_path(folders, group)
  if os.path.exists(path):
    try:
      saved_devices = checkpoint.load_meta(path).get('run', {}).get('devices', 1)
      if saved_devices != len(devices):  # its runs may not divide over these devices: another run
        raise checkpoint.CheckpointError(f'{path} was saved on {saved_devices} device(s) and this process has '
                                         f'{len(devices)}')
      meta = checkpoint.check_same_run(path, run_meta)
      saved_active = np.asarray(meta.get('active', active), np.int64)
      taken = _take(states, saved_active)  # the template at the saved rows, so every shape must match
      saved = taken._replace(replay=checkpoint.written_rows(taken.replay, REPLAY_ROWS, meta['replay_rows'], axis=1))
      _, trees = checkpoint.load(path, dict(states=saved), exact_shapes=('states',))
    except checkpoint.CheckpointError as error:  # another grouping or version: this group starts again
      warnings.warn(f'{error}; starting {ids[0]} (+{len(ids) - 1} {what}) from scratch')
      os.remove(path)
    else:
      active, left = saved_active, {int(r): c for r, c in meta.get('left', {}).items()}
      states = _untrimmed(jax.tree.map(jnp.asarray, trees['states']), _take(states, active), meta['replay_rows'])
      rows, start = meta['rows'], start - meta['wall_s']
  env_params, states = shard(_take(all_params, active), devices), shard(states, devices)

  def save():
    trimmed, replay_rows = _trimmed(states)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    checkpoint.save(path, dict(run=run_meta, rows=rows, replay_rows=replay_rows, active=active.tolist(),
                               left={str(r): c for r, c in left.items()}, wall_s=time.monotonic() - start),
                    dict(states=trimmed))

  def final_counters(columns: Mapping[str, np.ndarray], r: int) -> dict[str, Any]:
    return dict(episodes=int(columns['episode'][r]), steps=int(columns['steps'][r]),
                total_return=float(columns['total_return'][r]))

  last_save, save_seconds = time.monotonic(), 0.0
  counted = np.asarray(states.counters.episode)
  played = int(counted.sum()) + sum(c['episodes'] for c in left.values())
  if on_chunk is not None and played:  # resumed: the bars start where the group is
    on_chunk(played)
  while np.any(counted < budget[active]):
    states, out = chunk(chunk_steps, env_params, states)
    for r, new in zip(active, log_rows(out, env, [log_episodes[r] for r in active])):
      rows[r].extend(new)
    now_counted = np.asarray(states.counters.episode)
    if on_chunk is not None:
      on_chunk(int((now_counted - counted).sum()))
    counted = now_counted
    finished = not np.any(counted < budget[active])
    keep = None if finished or not compact else still_playing(counted, budget[active], len(devices))
    if keep is not None:
      host = logged_counters(jax.device_get(states.counters))
      left.update({int(active[r]): final_counters(host, r) for r in np.setdiff1d(np.arange(len(active)), keep)})
      states, env_params = shard(_take(states, keep), devices), shard(_take(all_params, active[keep]), devices)
      active, counted = active[keep], counted[keep]
    if interrupted():
      save()
      raise checkpoint.Interrupted(f'interrupted in {ids[0]} (+{len(ids) - 1} {what}); saved in {path}')
    if not finished and time.monotonic() - last_save > jitloop.checkpoint_period(checkpoint_every_s, save_seconds):
      began = time.monotonic()
      save()
      last_save = time.monotonic()
      save_seconds = last_save - began

  seconds = time.monotonic() - start
  host = logged_counters(jax.device_get(states.counters))
  left.update({int(r): final_counters(host, i) for i, r in enumerate(active)})
  summaries = [dict(bsuite_id=bsuite_id, seed=seed, engine='jax', **left[r], replay_capacity=size,
                    group_size=len(ids), seconds=round(seconds, 3))
               for r, (bsuite_id, seed) in enumerate(zip(ids, group.seeds))]
  if on_finished is not None:
    for summary in summaries:
      on_finished(summary)
  csv_format.write_csvs([(folders[seed], bsuite_id, pd.DataFrame(list(rows[r])))
                         for r, (bsuite_id, seed) in enumerate(zip(ids, group.seeds))])
  for stale in (path, path + '.tmp'):  # the .tmp of a save that a kill cut short
    if os.path.exists(stale):
      os.remove(stale)
  return summaries
