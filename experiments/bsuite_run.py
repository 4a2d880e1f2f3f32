"""Run an agent on bsuite ids into bsuite CSVs (resumable): the jitted engine, or bsuite's own
environments in parallel processes (`--engine python`, where --workers applies).

  python experiments/bsuite_run.py --sweep deep_sea/3
  python experiments/bsuite_run.py --sweep deep_sea --agent ensemble --engine python --workers 8
  python experiments/bsuite_run.py --sweep exploration,catch --episodes 100 --set learning_rate=3e-4
  python experiments/bsuite_run.py --sweep deep_sea/0,deep_sea/5 --agent boot_dqn
  python experiments/bsuite_run.py --sweep catch --seeds 3
  make bsuite SWEEP=deep_sea AGENT=dqn [EPISODES=1000] [ENGINE=jax|python] [RESULTS=results/bsuite/dqn] [SEEDS=3]

SWEEP is a bsuite id (deep_sea/3), an experiment (deep_sea), a tag (exploration) or "all", or several
joined by commas. AGENT is hyperagent, ensemble, dqn or hyperagent_one_hot (our agents, the 'deepsea' preset: MLP 64-64,
on every id; --set overrides any config field), or boot_dqn: bsuite's own
bsuite.baselines.jax.boot_dqn.default_agent, the reference row (--set num_ensemble=N only).
ENGINE=jax (the default for our agents) plays the pure-JAX ports of bsuite's environments in one
jitted loop, the ids of an experiment vmapped together, and writes the rows bsuite's logger would;
it checkpoints each group of ids, so a killed sweep resumes where it stopped. MNIST has no port:
those ids are skipped there (run them with ENGINE=python). ENGINE=python steps bsuite's own
environments from Python through its own logger, one process per id (--workers), the reference.
--seeds S (jax engine) plays sweep seeds seed .. seed+S-1 vmapped beside the ids, the first seed into
<results> and seed s into <results>-seed<s>, one bsuite run per folder.
Each id writes `<results>/bsuite_id_-_<experiment>-<i>.csv`; ids whose CSV already ends at the last
logged episode are skipped, others restart (from their group's checkpoint with ENGINE=jax).
`<results>/config.json` holds the resolved config and every command run into the folder, and
`<results>/runs.jsonl` one line per finished id (steps, wall-clock seconds).
Score the folder with experiments/bsuite_report.py (make bsuite-report).
"""
from __future__ import annotations

import signal
if __name__ == '__main__':  # Ctrl-C while JAX loads: end at once, no traceback (nothing is written yet)
  signal.signal(signal.SIGINT, signal.SIG_DFL)

import argparse
import contextlib
import concurrent.futures as futures
import multiprocessing
import os
import queue as queue_lib
import shlex
import sys
import time

from hyperagent import cli
from hyperagent.config import Config, parse_overrides
from hyperagent.bsuite import sweep as bsuite_sweep


def make_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n\n', 1)[0], formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog=__doc__.split('\n\n', 1)[1], allow_abbrev=False)
  cli.add_settings(parser, bsuite_sweep.SweepSettings, group='run settings (SweepSettings)')
  parser.add_argument('--set', dest='overrides', action='append', default=[], metavar='FIELD=VALUE',
                      help='override a config field (repeatable)')
  return parser


def main(argv: list[str] | None = None) -> int:
  """Progress bars show on a terminal only; every finished id also prints one line."""
  parser = make_parser()
  args = parser.parse_args(argv)
  # Everything that can be wrong is checked before a file is written or an id is started.
  try:
    run = cli.settings_from(bsuite_sweep.SweepSettings, args)
    ids = bsuite_sweep.resolve_ids(args.sweep)
    settings = bsuite_sweep.resolve_agent(args.agent, parse_overrides(args.overrides))
    unported = [i for i in ids if run.engine == 'jax' and not bsuite_sweep.has_jax_port(i)]
    ids = tuple(i for i in ids if i not in unported)
    if not ids:
      raise ValueError(f'{", ".join(unported[:3])}{" ..." if len(unported) > 3 else ""}: no pure-JAX port '
                       f'({", ".join(sorted({i.split("/")[0] for i in unported}))}); run them with --engine python')
    bsuite_sweep.check_data(ids)  # after the jax engine dropped mnist: it needs no download there
  except ValueError as error:
    parser.error(str(error))
  folders = run.results_dirs  # sweep seed -> its folder
  results = run.results_dir
  command = shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(['bsuite_run.py', *argv])
  notes = {} if args.agent == bsuite_sweep.BOOT_DQN else {
      'preset': 'deepsea',
      'replay': 'per id: config.replay_capacity, cut on the python engine to what fits in 1 GiB '
                '(hyperagent.bsuite.adapter.memory_capped_capacity) and on the jax engine to what the '
                'longest run of its group can fill, within a cap per group (hyperagent.bsuite.engine.capacity); '
                'runs.jsonl has the value used',
      'deep_sea': 'one-hot grids enter as int positions (one_hot_input), same network',
      'seeds': 'id <experiment>/<n> plays seed 1000 x seed + n (bsuite.sweep.id_seed)'}
  plans = {s: bsuite_sweep.plan(ids, folder, args.episodes, args.overwrite) for s, folder in folders.items()}
  done = sum(len(skipped) for _, skipped in plans.values())
  # the jax engine's runs are (id, sweep seed), the seeds of an id side by side; the python engine's, ids
  todo = [(i, s) for i in ids for s in folders if i in plans[s][0]]
  if run.engine == 'python':
    todo = [i for i, _ in todo]
  workers = min(args.workers, len(todo))
  runner = _run_jax if run.engine == 'jax' else _run_in_process if workers <= 1 else _run_in_pool
  if runner is not _run_in_pool:  # this process computes: its JAX settings first
    try:
      bsuite_sweep.init_worker(False, run.platform or None, compile_cache=True)
    except ValueError as error:
      parser.error(str(error))
  try:
    for s, folder in folders.items():
      bsuite_sweep.write_run_info(folder, args.agent, settings, s, command if plans[s][0] else None,
                                  args.overwrite, notes)
  except ValueError as error:
    parser.error(str(error))
  if unported:
    print(f'skipping {len(unported)} ids without a pure-JAX port ({", ".join(sorted({i.split("/")[0] for i in unported}))}); '
          'run them with --engine python', flush=True)
  what = 'ids' if run.seeds == 1 else 'runs'
  print(f'{args.agent} ({run.engine} engine): {len(ids)} ids' + (f' x {run.seeds} seeds' if run.seeds > 1 else '') +
        f', {done} finished already, {len(todo)} to run -> {", ".join(folders.values())}', flush=True)
  episodes = {i: bsuite_sweep.target_episodes(i, args.episodes) for i in dict.fromkeys(_id(r) for r in todo)}
  start = time.monotonic()
  finished = []
  try:
    failures = runner(todo, episodes, results if run.engine == 'python' else folders, args.agent, settings, run,
                      workers, finished)
  except KeyboardInterrupt:
    print(f'interrupted: {done + len(finished)} of {len(ids) * run.seeds} {what} are finished and kept in '
          f'{", ".join(folders.values())}; the same command resumes (finished {what} are skipped, unfinished ones '
          'start again' + (' from their group\'s checkpoint).' if run.engine == 'jax' else ').'), file=sys.stderr)
    return 130
  print(f'{len(finished)} {what} run in {time.monotonic() - start:.1f} s', flush=True)
  for r, error in failures.items():
    print(f'FAILED {_label(r, run.seeds)}: {error}', file=sys.stderr)
  elsewhere = [_label(r, run.seeds) for r in todo if r not in finished and r not in failures]
  if elsewhere:
    print(f'{len(elsewhere)} {what} left to the other process running them ({", ".join(elsewhere[:3])}'
          f'{", ..." if len(elsewhere) > 3 else ""}); run this again once it ends to check they finished.', flush=True)
    from hyperagent import checkpoint  # imports JAX, which the runner has set up by now
    return 1 if failures else checkpoint.BUSY_EXIT
  return 1 if failures else 0


def _run_in_process(todo, episodes, results, agent, settings, run, workers, finished) -> dict[str, str]:
  del workers
  from tqdm import tqdm
  from hyperagent.bsuite import adapter  # imports JAX: only after the flags above
  failures = {}
  for bsuite_id in tqdm(todo, desc='ids', unit='id', disable=None):
    with tqdm(total=episodes[bsuite_id], desc=bsuite_id, unit='ep', leave=False, disable=None) as bar:
      bsuite_sweep.set_progress(_BarQueue(bar))
      try:
        summary = adapter.play_id(bsuite_id, results, agent, settings, run.seed,
                                      episodes[bsuite_id])
        _finished(results, summary)
        finished.append(bsuite_id)
      except Exception as error:  # noqa: BLE001 - one broken id must not stop the sweep
        failures[bsuite_id] = repr(error)
      finally:
        bsuite_sweep.set_progress(None)
  return failures


def _id(run) -> str:
  """The id of a run: (id, sweep seed) on the jax engine, the id itself on the python one."""
  return run if isinstance(run, str) else run[0]


def _label(run, seeds: int) -> str:
  return run if isinstance(run, str) else run[0] if seeds == 1 else f'{run[0]} seed {run[1]}'


def _run_jax(todo, episodes, folders, agent, settings, run, workers, finished) -> dict[str, str]:
  """Every group of runs in this process, one jitted loop each; Ctrl-C saves the group it is in."""
  del workers
  from tqdm import tqdm
  from hyperagent import checkpoint
  from hyperagent.bsuite import engine  # import JAX: only after the flags above
  config = Config.from_dict(settings)
  groups = engine.groups(todo, config, episodes, max_runs=run.group_runs)
  ids = list(dict.fromkeys(_id(r) for r in todo))
  for folder in folders.values():
    for path, size, seeds in engine.unused_checkpoints(folder, groups, ids, folders):
      again = f'--group-runs {size}' + ('' if seeds is None else
                                        f' and the seeds {", ".join(map(str, seeds))} (--seed, --seeds)')
      print(f'note: {path} holds a group of {size} runs that this grouping does not resume, so its ids start '
            f'from scratch; stop now and add {again} to resume it', flush=True)
  with tqdm(total=len(todo), desc=('ids' if run.seeds == 1 else 'runs'), unit='run', position=0, disable=None) as id_bar, \
      tqdm(total=sum(episodes[i] for i, _ in todo), desc='episodes', unit='ep', position=1, disable=None) as episode_bar, \
      checkpoint.deferred_interrupt(True) as interrupted:
    for group in groups:
      label = _label((group.ids[0], group.seeds[0]), run.seeds) + (f' +{len(group.ids) - 1}' if len(group.ids) > 1 else '')
      episode_bar.set_description(label)
      total = sum(episodes[i] for i in group.ids)
      try:
        with _held(folders, group):
          if all(bsuite_sweep.is_finished(folders[s], i, episodes[i]) for i, s in zip(group.ids, group.seeds)):
            # another process played the group after this one made its list, and let go of it
            tqdm.write(f'{label}: finished by another process; left to it')
            episode_bar.update(total)
            id_bar.update(len(group.ids))
            continue
          # runs.jsonl gets each run's line before its CSV, which marks the run finished
          summaries = engine.run_group(
              group, config, episodes, folders, checkpoint_every_s=run.checkpoint_every,
              on_chunk=_counted(episode_bar, label, total), interrupted=interrupted,
              on_finished=lambda s: _finished(folders[s['seed']], dict(s, agent=agent), run.seeds))
      except checkpoint.FolderBusy:
        tqdm.write(f'{label}: another process is running ids of this group; left to it')
        episode_bar.update(total)
        id_bar.update(len(group.ids))
        continue
      except checkpoint.Interrupted:
        raise KeyboardInterrupt from None
      finished.extend((summary['bsuite_id'], summary['seed']) for summary in summaries)
      id_bar.update(len(group.ids))
  return {}


@contextlib.contextmanager
def _held(folders, group):
  """A lock on each run of `group` in its seed's folder (FolderBusy, holding none, if another process
  has one), so two sweeps into one folder, one per core, share its ids instead of both running them."""
  from hyperagent import checkpoint
  with contextlib.ExitStack() as stack:
    for bsuite_id, seed in zip(group.ids, group.seeds):
      stack.enter_context(checkpoint.folder_lock(os.path.join(folders[seed], '.locks'), bsuite_id.replace('/', '-')))
    yield


def _counted(bar, label: str, total: int):
  """on_chunk for a group: advances the bar; without one, prints a line every cli.LOG_EVERY_S seconds."""
  start = last = time.monotonic()
  played = 0

  def on_chunk(episodes: int) -> None:
    nonlocal last, played
    bar.update(episodes)
    played += episodes
    if bar.disable and time.monotonic() - last >= cli.LOG_EVERY_S:
      print(f'{label}: {played:,} of {total:,} episodes, {time.monotonic() - start:,.0f} s since this process '
            'started the group', flush=True)
      last = time.monotonic()
  return on_chunk


def _finished(results, summary, seeds: int = 1) -> None:
  from tqdm import tqdm
  bsuite_sweep.record_finished(results, summary)
  tqdm.write(f"{_label((summary['bsuite_id'], summary.get('seed')), seeds)}: {summary['episodes']} episodes, "
             f"{summary['steps']} steps, {summary['seconds']:.1f} s")


class _BarQueue:
  """The progress queue's `put`, straight onto a tqdm bar (no processes)."""

  def __init__(self, bar):
    self.bar = bar

  def put(self, item):
    self.bar.update(item[1])


def _run_in_pool(todo, episodes, results, agent, settings, run, workers, finished) -> dict[str, str]:
  from tqdm import tqdm
  from hyperagent.bsuite import adapter  # the workers import it after init_worker has set their flags
  # 'spawn': a forked child would inherit the parent's threads and locks; spawned ones import JAX
  # only after init_worker has set their flags.
  context = multiprocessing.get_context('spawn')
  queue = context.Queue()
  single_thread = workers >= (os.cpu_count() or 1)
  failures = {}
  pool = futures.ProcessPoolExecutor(workers, mp_context=context, initializer=bsuite_sweep.init_worker,
                                     initargs=(single_thread, run.platform or None, queue, True, True))
  try:
    with tqdm(total=len(todo), desc='ids', unit='id', position=0, disable=None) as id_bar, \
        tqdm(total=sum(episodes.values()), desc='episodes', unit='ep', position=1, disable=None) as episode_bar:
      pending = {pool.submit(adapter.play_id, i, results, agent, settings, run.seed, episodes[i]): i for i in todo}
      while pending:
        done, _ = futures.wait(pending, timeout=0.5, return_when=futures.FIRST_COMPLETED)
        episode_bar.update(_drain(queue))
        for future in done:
          bsuite_id = pending.pop(future)
          if future.exception() is not None:
            failures[bsuite_id] = repr(future.exception())
          else:
            _finished(results, future.result())
            finished.append(bsuite_id)
          id_bar.update(1)
      episode_bar.update(_drain(queue))
  except KeyboardInterrupt:
    # The workers ignore Ctrl-C (init_worker): stop them here, or they would run the queued ids on.
    for process in list(getattr(pool, '_processes', {}).values()):
      process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    raise
  pool.shutdown(wait=True)
  return failures


def _drain(queue) -> int:
  total = 0
  try:
    while True:
      total += queue.get_nowait()[1]
  except queue_lib.Empty:
    return total


if __name__ == '__main__':
  signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on a run saves and says how to resume
  sys.exit(main())
