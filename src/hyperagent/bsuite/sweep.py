"""The bookkeeping of a bsuite sweep: which ids and agent to run, which ids are done, worker setup.

`experiments/bsuite_run.py` is the command line around these. Everything here is importable without
JAX, so a worker process can set its XLA flags (`init_worker`) before JAX is first imported.

An id is finished when its CSV has a complete row at the last logged episode of its target (bsuite's
logger writes rows at fixed, log-spaced episodes), so finished ids are found from the CSVs alone. An
unfinished one resumes half-way on the jax engine (its group's checkpoint, `engine.py`); on the python
engine the agent's state is not checkpointed, so an interrupted id restarts from scratch.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
from typing import Any, Mapping, Optional, Sequence

from bsuite import sweep

from hyperagent import checkpoint
from hyperagent import config as config_lib
from hyperagent.cli import MAX_SEED, check_choice, differences, folder, setting
from hyperagent.bsuite import csv_format as bsuite_csv

ALL = 'all'
BOOT_DQN = 'boot_dqn'  # bsuite's own bsuite.baselines.jax.boot_dqn, the report's reference row
BSUITE_AGENTS = config_lib.AGENTS + (BOOT_DQN,)
# boot_dqn.default_agent's only argument besides the seed. Everything else is fixed inside bsuite
# 0.3.6: MLP 50-50 + prior MLP (scale 5), Adam 1e-3, batch 128, replay 10k, warm-up 128,
# target period 4, γ 0.99, no ε, bootstrap mask prob 1, one SGD step per member per env step.
BOOT_DQN_DEFAULTS = {'num_ensemble': 20}
ENGINES = ('jax', 'python')
# Ensemble+ on the CPU, ms per run-step on catch/0 by runs vmapped (bench_engine.py --agent ensemble):
# 0.88 (1), 0.85 (2), 0.96 (5), 1.15 (10), 1.31 (20); HyperAgent and DQN are flat in the count.
ENSEMBLE_GROUP_RUNS = 2
RUN_INFO = 'config.json'  # resolved config + commands, per results folder
RUN_LOG = 'runs.jsonl'    # one line per id the runner finished: steps, seconds, ...
CHECKPOINT_PREFIX = 'jax-engine-'  # `<results>/jax-engine-<first id>+<n>.npz` while a jax-engine group runs
# Datasets bsuite downloads when an env is built; a sweep checks them before starting any work.
_NEEDS_MNIST = ('mnist', 'mnist_noise', 'mnist_scale')
# Experiments the jax engine cannot play: MNIST needs bsuite's dataset and is not ported.
NO_JAX_PORT = _NEEDS_MNIST


@dataclasses.dataclass(frozen=True)
class SweepSettings:
  """The bsuite wing's run settings (and the command line of experiments/bsuite_run.py)."""
  engine: str | None = setting(None, "'jax': the pure-JAX ports in one jitted loop, ids of an experiment vmapped "
                                     "(default for our agents); 'python': bsuite's own environments stepped "
                                     "from Python, the reference (default, and the only engine, for boot_dqn; "
                                     "the only one for mnist)", choices=ENGINES)
  sweep: str = setting('deep_sea/0', 'bsuite id (deep_sea/3), experiment (deep_sea), tag (exploration) or '
                                     '"all"; several joined by commas')
  agent: str = setting('hyperagent', "our agents, or bsuite's own boot_dqn (the reference row)", choices=BSUITE_AGENTS)
  results: str | None = setting(None, 'CSV folder (default: results/bsuite/<agent>)', parse=folder)
  workers: int = setting(os.cpu_count() or 1, 'parallel processes over ids; 1 runs in this process')
  episodes: int | None = setting(None, "cap on episodes per id (quick runs); default: bsuite's count per id")
  seed: int = setting(0, "the sweep's seed: id <experiment>/<n> plays seed 1000 x seed + n (id_seed)")
  seeds: int = setting(1, "how many sweep seeds, from seed on (seed, seed+1, ...): the jax engine vmaps them beside the ids, each "
                          "seed into its own folder (results_dirs: <results> for the first, <results>-seed<s> "
                          "for the others, as --seed s --results <results>-seed<s> would write)")
  overwrite: bool = setting(False, 'rerun every id, even finished ones, and replace config.json')
  group_runs: int | None = setting(
      None, "most ids of an experiment vmapped in one jitted loop (jax engine). Default: all that fit the "
            "replay memory cap; for ensemble, ENSEMBLE_GROUP_RUNS, since ten full networks per run outgrow "
            "the CPU's caches when many runs are vmapped (BENCHMARKS.md). Results move by float rounding "
            "only, as with any other grouping")
  checkpoint_every: float = setting(60.0, "seconds between a group's checkpoints (jax engine; Ctrl-C also saves)")
  platform: str = setting('cpu', "JAX platform: 'cpu' (bsuite steps a small net one transition at a time, so "
                                 "call overhead, not FLOPs, dominates) or '' to let JAX choose")

  def __post_init__(self):
    most = MAX_SEED // ID_SEED_STRIDE - 1  # so that every id seed, up to 1000 x seed + 999, is a valid seed
    if not 0 <= self.seed <= most:
      raise ValueError(f'seed must be in 0 .. {most:,} (id seeds are 1000 x seed + n, int32), got {self.seed}.')
    if not 1 <= self.seeds <= most + 1 - self.seed:
      raise ValueError(f'seeds must be in 1 .. {most + 1 - self.seed:,} (the last sweep seed, seed + seeds - 1, '
                       f'at most {most:,}), got {self.seeds}.')
    if self.workers < 1:
      raise ValueError(f'workers must be >= 1, got {self.workers}.')
    if self.episodes is not None and self.episodes < 1:
      raise ValueError(f'episodes must be >= 1 (or unset: bsuite\'s count per id), got {self.episodes}.')
    if not self.checkpoint_every > 0:
      raise ValueError(f'checkpoint_every must be > 0 seconds, got {self.checkpoint_every}.')
    if self.group_runs is not None and self.group_runs < 1:
      raise ValueError(f'group_runs must be >= 1 (or unset: as many as fit), got {self.group_runs}.')
    if self.group_runs is None and self.agent == 'ensemble':
      object.__setattr__(self, 'group_runs', ENSEMBLE_GROUP_RUNS)
    if self.engine is None:
      object.__setattr__(self, 'engine', 'python' if self.agent == BOOT_DQN else 'jax')
    check_choice('engine', self.engine, ENGINES)
    if self.engine == 'jax' and self.agent == BOOT_DQN:
      raise ValueError("boot_dqn is bsuite's own agent and runs on bsuite's environments: use --engine python")
    if self.engine == 'python' and self.seeds > 1:
      raise ValueError('--seeds > 1 vmaps seeds in the jax engine; the python engine runs one seed a command: '
                       'run it once per seed with --seed s --results <folder of seed s>')

  @property
  def results_dir(self) -> str:
    return self.results or os.path.join('results', 'bsuite', self.agent)

  @property
  def results_dirs(self) -> dict[int, str]:
    """The folder of each sweep seed; the first seed's is `results_dir`, so adding seeds to a sweep
    keeps the ids it has finished."""
    return {s: self.results_dir if s == self.seed else f'{os.path.normpath(self.results_dir)}-seed{s}'
            for s in range(self.seed, self.seed + self.seeds)}


def experiments() -> tuple[str, ...]:
  """bsuite's experiment names, in sweep order."""
  return tuple(dict.fromkeys(bsuite_id.split('/')[0] for bsuite_id in sweep.SWEEP))


def resolve_ids(spec: str) -> tuple[str, ...]:
  """'deep_sea/3' | 'deep_sea' | 'exploration' (a tag) | 'all', or several joined by commas.

  Returns the ids in bsuite's sweep order without duplicates; anything unknown is a ValueError that
  lists what is valid, so a typo fails before any work starts.
  """
  names = [name.strip() for name in spec.split(',') if name.strip()]
  if not names:
    raise ValueError('empty sweep; give a bsuite id (deep_sea/3), an experiment, a tag or "all"')
  wanted: set[str] = set()
  for name in names:
    wanted.update(_resolve_one(name))
  return tuple(bsuite_id for bsuite_id in sweep.SWEEP if bsuite_id in wanted)


def _resolve_one(name: str) -> tuple[str, ...]:
  if name == ALL:
    return tuple(sweep.SWEEP)
  if name in sweep.TAGS:
    return tuple(sweep.TAGS[name])
  experiment, slash, _ = name.partition('/')
  if experiment in experiments():
    ids = tuple(i for i in sweep.SWEEP if i.split('/')[0] == experiment)
    if not slash:
      return ids
    if name in sweep.SETTINGS:
      return (name,)
    raise ValueError(f'unknown bsuite id {name!r}; {experiment} has ids {experiment}/0 .. '
                     f'{experiment}/{len(ids) - 1}')
  raise ValueError(
      f'unknown bsuite id, experiment or tag {name!r}. Valid: a bsuite id such as deep_sea/3, '
      f'"{ALL}", an experiment ({", ".join(experiments())}) or a tag ({", ".join(sweep.TAGS)})')


# bsuite's replicate ids (catch's 20 `seed: None` settings, the 4 per scale of the noise and scale
# variants, discounting_chain's mapping seeds equal mod 5) differ only in their random draws. With one
# seed for every id the jitted engine, whose environment draws come from the run's key, played them as
# copies of one run, and an experiment's score rested on 1-5 runs instead of 20. Ids of a sweep number
# fewer than 1,000 per experiment, so this is one distinct seed per (sweep seed, id).
ID_SEED_STRIDE = 1_000


def id_seed(seed: int, bsuite_id: str) -> int:
  """The seed id `<experiment>/<n>` plays in a sweep with seed `seed`: 1000 * seed + n (both engines)."""
  number = int(bsuite_id.rsplit('/', 1)[1])
  if not 0 <= number < ID_SEED_STRIDE:
    raise ValueError(f'bsuite id number must be in [0, {ID_SEED_STRIDE}), got {bsuite_id!r}')
  return ID_SEED_STRIDE * seed + number


def resolve_agent(agent_name: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
  """The agent's resolved settings: `Config.to_dict()` of its 'deepsea' preset with `overrides`,
  or boot_dqn's arguments. Unknown agents or fields are a ValueError listing the valid ones."""
  if agent_name == BOOT_DQN:
    unknown = sorted(set(overrides) - set(BOOT_DQN_DEFAULTS))
    if unknown:
      raise ValueError(f'boot_dqn has no setting(s) {unknown}; valid: {sorted(BOOT_DQN_DEFAULTS)} '
                       f'(the rest is fixed in bsuite.baselines.jax.boot_dqn.default_agent)')
    settings = {**BOOT_DQN_DEFAULTS, **overrides}
    members = settings['num_ensemble']
    if isinstance(members, bool) or not isinstance(members, int) or members < 1:
      raise ValueError(f'boot_dqn: num_ensemble must be an integer >= 1, got {members!r}')
    return settings
  check_choice('agent', agent_name, BSUITE_AGENTS)
  return config_lib.make_config(agent_name, 'deepsea', **overrides).to_dict()


def check_data(ids: Sequence[str]) -> None:
  """Fetches the datasets some envs need (MNIST, into bsuite's /tmp/mnist) once, up front.

  Otherwise every mnist worker would download the same files at once, and an offline machine
  would fail only after the other ids had run.
  """
  if any(i.split('/')[0] in _NEEDS_MNIST for i in ids):
    from bsuite.utils import datasets
    try:
      datasets.load_mnist()
    except OSError as error:  # URLError is an OSError
      raise ValueError(f'the mnist ids need MNIST, which bsuite downloads into /tmp/mnist and '
                       f'could not ({error}); put the four MNIST .gz files there or leave mnist '
                       f'out of the sweep') from error


def has_jax_port(bsuite_id: str) -> bool:
  return bsuite_id.split('/')[0] not in NO_JAX_PORT


def target_episodes(bsuite_id: str, cap: Optional[int] = None) -> int:
  """bsuite's episode count for the id, or `cap` when that is smaller (quick runs)."""
  episodes = int(sweep.EPISODES[bsuite_id])
  return min(episodes, int(cap)) if cap else episodes


def is_finished(results_dir: str, bsuite_id: str, episodes: int) -> bool:
  """The id's CSV ends with a complete row at the last episode bsuite logs within `episodes`.

  bsuite's logger rewrites the whole file at every row, so a run killed mid-write can leave a cut
  last row; such a file counts as unfinished.
  """
  import pandas as pd
  path = bsuite_csv.bsuite_csv_path(results_dir, bsuite_id)
  if not os.path.exists(path):
    return False
  try:
    df = pd.read_csv(path)
  except (ValueError, pd.errors.EmptyDataError, pd.errors.ParserError):
    return False
  log_episodes = bsuite_csv.bsuite_log_episodes(episodes)
  if df.empty or 'episode' not in df.columns or not len(log_episodes):
    return False
  last = df.iloc[-1]
  return bool(last.notna().all()) and int(last['episode']) >= int(log_episodes[-1])


def plan(ids: Sequence[str], results_dir: str, cap: Optional[int] = None,
         overwrite: bool = False) -> tuple[list[str], list[str]]:
  """(ids to run, ids skipped as finished). `overwrite` reruns everything."""
  if overwrite:
    return list(ids), []
  done = [i for i in ids if is_finished(results_dir, i, target_episodes(i, cap))]
  return [i for i in ids if i not in done], done


def _jsonable(value):
  return json.loads(json.dumps(value))


def write_run_info(results_dir: str, agent_name: str, settings: Mapping[str, Any], seed: int,
                   command: Optional[str], overwrite: bool = False,
                   notes: Optional[Mapping[str, Any]] = None) -> str:
  """Writes `<results_dir>/config.json`: agent, seed, resolved settings, every command that ran ids there.

  A folder already holding a different agent, config or seed is an error unless `overwrite`: mixing
  two configs in one set of bsuite CSVs would make its score meaningless. With `overwrite`, that
  other run's CSVs, run log and group checkpoints are removed, so none of its ids is scored as this
  run's. command=None checks the folder and records nothing (a command whose ids had all finished:
  a resumed sweep passes every experiment again, and the list would fill with commands that played
  nothing).
  """
  path = os.path.join(results_dir, RUN_INFO)
  info = dict(agent=agent_name, seed=seed, config=_jsonable(dict(settings)), notes=_jsonable(notes or {}),
              commands=[])
  checkpoint.check_kind(results_dir, 'bsuite')
  # the sweep's two processes read and rewrite it at each experiment's start: one at a time, and
  # replaced whole, so neither reads it half-written and a kill mid-write leaves the old one
  with checkpoint.folder_lock(os.path.join(results_dir, '.locks'), RUN_INFO + '.lock', wait=True):
    if os.path.exists(path):
      with open(path) as f:
        old = json.load(f)
      kept = ('agent', 'seed', 'config')
      differ = differences({k: old.get(k) for k in kept}, {k: info[k] for k in kept})
      if differ and not overwrite:
        raise ValueError(f'{results_dir} holds another run ({"; ".join(differ)}); use another '
                         f'results folder, or --overwrite to start it again')
      if differ:
        removed = remove_results(results_dir)
        print(f'--overwrite: removed the {removed} result files of the run {results_dir} held '
              f'({"; ".join(differ)})', flush=True)
      elif not overwrite:
        info['commands'] = list(old.get('commands', []))
        if command is None:
          return path
    if command is not None:
      info['commands'].append(command)
    with open(path + '.tmp', 'w') as f:
      json.dump(info, f, indent=2)
    os.replace(path + '.tmp', path)
  return path


def remove_results(results_dir: str) -> int:
  """Removes a run's results from its folder (bsuite CSVs, the run log, jax-engine group
  checkpoints; config.json is rewritten by the caller); returns how many files went."""
  paths = list(bsuite_csv.bsuite_csv_files(results_dir)) + [
      os.path.join(results_dir, n) for n in os.listdir(results_dir)
      if n == RUN_LOG or (n.startswith(CHECKPOINT_PREFIX) and n.endswith('.npz'))]
  for path in paths:
    os.remove(path)
  return len(paths)


def record_finished(results_dir: str, summary: Mapping[str, Any]) -> None:
  """Appends one finished id's summary (steps, seconds, ...) to `<results_dir>/runs.jsonl`, on a line
  of its own even after a line that a full disk cut short."""
  path = os.path.join(results_dir, RUN_LOG)
  with open(path, 'a+b') as f:  # opened at its end; writes append wherever it was read
    cut = False
    if f.tell() > 0:
      f.seek(-1, os.SEEK_END)
      cut = f.read(1) != b'\n'
    f.write((('\n' if cut else '') + json.dumps(_jsonable(dict(summary))) + '\n').encode())


def read_finished(results_dir: str) -> list[dict[str, Any]]:
  """Every summary in `<results_dir>/runs.jsonl`, in the order written (none if there is no log); a
  line cut short (a full disk) is left out."""
  path = os.path.join(results_dir, RUN_LOG)
  if not os.path.exists(path):
    return []
  summaries = []
  with open(path) as f:
    for line in filter(str.strip, f):
      try:
        summaries.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return summaries


def experiment_costs(summaries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
  """What each complete experiment cost, in sweep order: ids, run-steps (summed over ids), groups,
  wall-clock seconds (a jitted group's once, or its share where some of its runs are elsewhere: other
  seeds' folders, other experiments; a Python-engine id is its own group) and ms per run-step. The
  last summary of an id counts; an experiment with an id missing or short of bsuite's budget is
  left out."""
  last = {s['bsuite_id']: s for s in summaries}
  costs = []
  for name in experiments():
    ids = resolve_ids(name)
    rows = [last.get(i) for i in ids]
    if any(r is None or r['episodes'] < target_episodes(i) for i, r in zip(ids, rows)):
      continue
    groups: dict[tuple, float] = {}
    for r in rows:  # a group's runs share its clock: each run here takes its part of it
      key = (r['seconds'], r['group_size']) if r.get('group_size') else (r['bsuite_id'],)
      groups[key] = groups.get(key, 0.0) + r['seconds'] / (r.get('group_size') or 1)
    steps, seconds = sum(r['steps'] for r in rows), sum(groups.values())
    costs.append(dict(experiment=name, ids=len(ids), run_steps=steps, groups=len(groups), seconds=seconds,
                      ms_per_run_step=1e3 * seconds / steps, engines=sorted({r['engine'] for r in rows})))
  return costs


# ------------------------------------------------------------------------------ worker processes

_progress_queue = None


def set_progress(queue) -> None:
  """Where `adapter.play_id` reports (bsuite_id, episodes since last report); anything with `put`, or None."""
  global _progress_queue
  _progress_queue = queue


def progress_queue():
  return _progress_queue


def init_worker(single_thread: bool, platform: Optional[str], progress_queue=None,
                compile_cache: bool = False, pool_worker: bool = False) -> None:
  """Runs first in each worker process (and in the runner itself), before JAX is imported there.

  Many JAX processes on one machine each start a thread pool as wide as the machine; with one
  worker per core, single-threaded XLA avoids the oversubscription. On a GPU machine the workers
  should not each preallocate most of the accelerator's memory. The on-disk compilation cache lets
  a worker load what another (or an earlier run) compiled for the same shapes.
  A pool worker ignores Ctrl-C: a terminal sends it to every process of the group, and the runner,
  which owns the pool, stops the workers itself.
  """
  if pool_worker:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
  set_progress(progress_queue)
  if single_thread:
    flags = os.environ.get('XLA_FLAGS', '')
    if '--xla_cpu_multi_thread_eigen' not in flags:
      os.environ['XLA_FLAGS'] = (flags + ' --xla_cpu_multi_thread_eigen=false').strip()
    for name in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
      os.environ[name] = '1'
  if platform:
    os.environ['JAX_PLATFORMS'] = platform
    if 'jax' in sys.modules:  # the runner itself imported JAX already, which read JAX_PLATFORMS then
      import jax
      jax.config.update('jax_platforms', platform)
      try:
        jax.devices()
      except RuntimeError as error:
        raise ValueError(f'--platform {platform!r}: {str(error).split(" (set JAX_PLATFORMS")[0]}') from None
  os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'] = 'false'
  if compile_cache:
    from hyperagent import runtime  # imports JAX: only after the flags above
    runtime.configure()
