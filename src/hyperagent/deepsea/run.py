"""The host side of a DeepSea run: what to run (RunSpec, the official budgets), the run through
`jitloop.drive` (progress bar, checkpoints, resume), the host-side record and the solve criteria.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hyperagent import checkpoint, jitloop, replay
from hyperagent.cli import check_choice, from_record, parse_seeds, setting
from hyperagent.agent import Agent
from hyperagent.config import Config
from hyperagent.deepsea import env
from hyperagent.environment import JaxEnv

MAPPINGS = ('bsuite', 'seed')
BSUITE_MAPPING_SEED = 42  # bsuite's deep_sea sweep uses this mapping for every size
# Training budgets of the official scripts (SPEC §5.1), in episodes; sizes in between use the next one.
OFFICIAL_EPISODES = {20: 2_500, 30: 3_333, 40: 3_000, 50: 4_000, 60: 5_000, 70: 5_000, 80: 6_250,
                     90: 10_000, 100: 10_000, 120: 12_500}


def official_episodes(size: int) -> int:
  for n in sorted(OFFICIAL_EPISODES):
    if size <= n:
      return OFFICIAL_EPISODES[n]
  raise ValueError(f'no official budget for size {size} > 120; give the number of episodes (--episodes).')


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """What to run, beside the agent's Config: the DeepSea wing's run settings (and its command line)."""
  size: int = setting(20, 'DeepSea size N (>= 2)')
  episodes: int | None = setting(None, 'training episodes per seed; default: the official budget for the size '
                                       '(SPEC §5.1: 2,500 up to N = 20 ... 12,500 at N = 120)')
  seeds: tuple[int, ...] = setting((0,), "seeds, run at once (vmapped): a count ('5' = 0..4), a list "
                                         "('2025,2030') or a range ('5-9')", parse=parse_seeds,
                                         shown="'1': seed 0")
  mapping: str = setting('seed', 'action mapping: drawn from the run seed (the official code) or bsuite\'s '
                                 f'mapping seed {BSUITE_MAPPING_SEED}', choices=MAPPINGS)
  stochastic: bool = setting(False, "bsuite's deep_sea_stochastic dynamics")
  eval_every: int = setting(1_000, 'env steps between evaluations (one jitted chunk)')
  eval_episodes: int = setting(100, 'test episodes per evaluation, one sampled index each')

  def __post_init__(self):
    if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)) or self.size < 2:
      raise ValueError(f'size must be an integer >= 2, got {self.size!r}.')
    if self.episodes is None:
      object.__setattr__(self, 'episodes', official_episodes(self.size))
    check_choice('mapping', self.mapping, MAPPINGS)
    for name in ('episodes', 'eval_every', 'eval_episodes'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}.')
    if not self.seeds or len(set(self.seeds)) != len(self.seeds):
      raise ValueError(f'seeds must be distinct and non-empty, got {self.seeds}.')

  @property
  def total_steps(self) -> int:
    return self.episodes * self.size

  @property
  def deterministic(self) -> bool:
    return not self.stochastic

  @property
  def env(self) -> JaxEnv:
    return env.make_env(self.size, self.deterministic)

  @property
  def loop(self) -> jitloop.LoopSpec:
    """What the compiled loop depends on beside the env: every test episode lasts exactly N steps."""
    return jitloop.LoopSpec(eval_episodes=self.eval_episodes, eval_steps=self.size)

  def mapping_seed(self, seed: int) -> int:
    return BSUITE_MAPPING_SEED if self.mapping == 'bsuite' else seed


MAY_GROW = (('spec', 'episodes'),)  # a finished run resumes with more episodes: it is extended


def run_capacity(config: Config, spec: RunSpec) -> int:
  return replay.capacity(config.replay_capacity, spec.total_steps)


def initial_states(agent: Agent, spec: RunSpec) -> tuple[env.EnvParams, jitloop.RunState]:
  """(env params with mappings[S, N, N], states[S]) for every seed of `spec`."""
  mappings = np.stack([env.make_mapping(spec.size, spec.mapping_seed(s)) for s in spec.seeds])
  env_params = env.EnvParams(jnp.asarray(mappings))
  capacity = run_capacity(agent.config, spec)
  budgets = np.full(len(spec.seeds), spec.episodes)
  return env_params, jitloop.init_runs(agent, spec.env, capacity, jnp.asarray(spec.seeds), env_params, budgets)


def chunk_lengths(spec: RunSpec) -> list[int]:
  return jitloop.chunk_lengths(spec.total_steps, spec.eval_every)


# ----------------------------------------------------------------------------- solve criteria


def bsuite_solve_episode(total_bad_episodes: np.ndarray, threshold: float = 0.9,
                         episodes: np.ndarray | None = None) -> int | None:
  """bsuite's deep_sea criterion: the first episode e with total_bad_episodes / e < threshold; None
  if never. The counts are per episode (1, 2, ...) unless `episodes` gives the episode numbers they
  were read at (e.g. the rows bsuite's logger wrote)."""
  if episodes is None:
    episodes = np.arange(1, len(total_bad_episodes) + 1)
  below = np.nonzero(np.asarray(total_bad_episodes) / episodes < threshold)[0]
  return int(episodes[below[0]]) if len(below) else None


def eval_solve_episode(eval_optimal: np.ndarray, eval_steps: np.ndarray, size: int) -> float | None:
  """The official code's criterion: env steps / N at the first evaluation whose test episodes all
  reached the treasure; None if none did."""
  hit = np.nonzero(np.asarray(eval_optimal) >= 1.0)[0]
  return float(eval_steps[hit[0]] / size) if len(hit) else None


# ----------------------------------------------------------------------------- host driver


class Result(NamedTuple):
  """Host-side record of a run, per seed (leading axis S)."""
  episode_return: np.ndarray      # [S, episodes]
  total_bad_episodes: np.ndarray  # [S, episodes]
  denoised_return: np.ndarray     # [S, episodes]
  eval_steps: np.ndarray          # [evals] env steps at each evaluation
  eval_return: np.ndarray         # [S, evals]
  eval_optimal: np.ndarray        # [S, evals]
  td_loss: np.ndarray             # [S, evals]
  q_mean: np.ndarray              # [S, evals]
  eval_wall_s: np.ndarray         # [evals] wall-clock seconds since the start (compiles included)


def empty_result(num_seeds: int) -> Result:
  empty = lambda: np.zeros((num_seeds, 0), np.float32)
  return Result(empty(), np.zeros((num_seeds, 0), np.int64), empty(), np.zeros((0,), np.int64), empty(),
                empty(), empty(), empty(), np.zeros((0,), np.float64))


def _append(result: Result, out: jitloop.ChunkOut, states: jitloop.RunState, steps_done: int,
            wall_s: float) -> Result:
  del states  # the episode records are in `out`
  out = jax.device_get(out)
  ended = np.asarray(out.steps.last[0])  # every seed ends its episodes on the same steps
  pick = lambda x: np.asarray(x)[:, ended]
  col = lambda x: np.asarray(x)[:, None]
  cat = lambda a, b: np.concatenate([a, b], axis=-1)
  return Result(
      cat(result.episode_return, pick(out.steps.counters.episode_return)),
      cat(result.total_bad_episodes, pick(out.steps.info['total_bad_episodes'])),
      cat(result.denoised_return, pick(out.steps.info['denoised_return'])),
      cat(result.eval_steps, np.array([steps_done])),
      # A test episode collects the treasure at most once: the mean count is the fraction that did.
      cat(result.eval_return, col(out.eval_return)), cat(result.eval_optimal, col(out.eval_info['denoised_return'])),
      cat(result.td_loss, col(out.td_loss)), cat(result.q_mean, col(out.q_mean)),
      cat(result.eval_wall_s, np.array([wall_s])))


def all_solved(result: Result, spec: RunSpec) -> bool:
  """Every seed has solved under both criteria (what stops a scaling-study run)."""
  return all(eval_solve_episode(o, result.eval_steps, spec.size) is not None for o in result.eval_optimal) and all(
      bsuite_solve_episode(bad) is not None for bad in result.total_bad_episodes)


def train_seeds(config: Config, spec: RunSpec, *, progress: bool = True, checkpoint_path: str | None = None,
                checkpoint_every_s: float = 15.0, resume: bool = True, max_chunks: int | None = None,
                stop_when_solved: bool = False, stop_on_interrupt: bool = False, announce: bool = False) -> Result:
  """Runs every seed of `spec` to the end; returns the host-side record.

  With `checkpoint_path`, the full state (agent, optimiser, replay, env, keys, logs) is saved every
  `checkpoint_every_s` seconds and when this call returns, and a matching checkpoint there is
  resumed, which continues exactly as the uninterrupted run would have.
  max_chunks: return after this many chunks (evaluations) in this call, e.g. to split a long run.
  stop_when_solved: stop once every seed has solved under both criteria (the scaling study).
  stop_on_interrupt: a Ctrl-C ends the current chunk, saves the checkpoint and raises
    `checkpoint.Interrupted` (main thread only; a second Ctrl-C interrupts at once).
  announce: print whether the run starts, resumes (where) or is finished, once its checkpoint matches.
  A checkpoint of the same run with fewer `episodes` (finished or not) also resumes, which extends it,
  where its evaluations fall on this run's grid (every `eval_every` steps): the record is then the
  longer run's, as if run to the new budget at once.
  """
  agent = jitloop.make_agent_for(config, spec.env)
  env_params, states = initial_states(agent, spec)
  saved_episodes = checkpoint.saved_setting(checkpoint_path, 'episodes') if resume else None
  template = states
  if saved_episodes is not None and saved_episodes < spec.episodes:  # an extension: read at the saved shapes
    template = initial_states(agent, dataclasses.replace(spec, episodes=saved_episodes))[1]

  def postfix(result: Result) -> dict[str, str]:
    solved = sum(eval_solve_episode(o, result.eval_steps, spec.size) is not None for o in result.eval_optimal)
    return dict(eval_optimal=f'{result.eval_optimal[:, -1].mean():.2f}', solved=f'{solved}/{len(spec.seeds)}')

  driver = jitloop.Driver(
      chunk=jitloop.make_chunk_fn(config, spec.env, spec.loop), env_params=env_params, lengths=chunk_lengths(spec),
      append=_append, postfix=postfix,
      finished=(lambda result: all_solved(result, spec)) if stop_when_solved else (lambda result: False),
      position=lambda steps: f'episode {steps // spec.size:,} of {spec.episodes:,}',
      checkpoint_path=checkpoint_path, checkpoint_every_s=checkpoint_every_s,
      run_meta=dict(config=config.to_dict(), spec=dataclasses.asdict(spec)), may_grow=MAY_GROW)
  result, chunks_done, wall_before = empty_result(len(spec.seeds)), 0, 0.0
  if resume:
    states, result, chunks_done, wall_before = jitloop.resume(driver, template, result)
    states = jitloop.continue_from(driver, states, result.eval_steps, chunks_done, run_capacity(config, spec))
    states = states._replace(budget=jnp.full_like(states.budget, spec.episodes))  # an extension's new budget
  if announce:
    jitloop.announce(driver, result, chunks_done)
  end = len(driver.lengths) if max_chunks is None else min(len(driver.lengths), chunks_done + max_chunks)
  if stop_when_solved and chunks_done and all_solved(result, spec):
    end = chunks_done  # a finished early-stopped run: a re-run returns it as it was
  return jitloop.drive(driver, states, result, chunks_done, end, wall_before=wall_before,
                       desc=f'DeepSea N={spec.size} x{len(spec.seeds)} seeds', progress=progress,
                       stop_on_interrupt=stop_on_interrupt)


def checkpointed(path: str) -> tuple[dict[str, Any], RunSpec, Result]:
  """(config settings, spec, record so far) of the run whose checkpoint is `path`, the record alone
  read (not the agent or the replay): what the archive keeps of a run still going."""
  settings = checkpoint.load_meta(path)['run']
  try:
    spec = from_record(RunSpec, settings['spec'])
  except ValueError as error:
    raise checkpoint.CheckpointError(f'{path} is not a DeepSea run\'s checkpoint ({error})') from None
  _, trees = checkpoint.load(path, dict(result=empty_result(len(spec.seeds))))
  return settings['config'], spec, Result(*trees['result'])


def summary(result: Result, spec: RunSpec) -> list[dict[str, Any]]:
  """Per seed: both solve episodes and the final evaluation."""
  rows = []
  for i, seed in enumerate(spec.seeds):
    rows.append(dict(
        seed=seed, mapping_seed=spec.mapping_seed(seed), size=spec.size,
        episodes=int(result.total_bad_episodes.shape[1]),
        bsuite_solve_episode=bsuite_solve_episode(result.total_bad_episodes[i]),
        eval_solve_episode=eval_solve_episode(result.eval_optimal[i], result.eval_steps, spec.size),
        final_eval_return=float(result.eval_return[i, -1]),
        final_eval_optimal=float(result.eval_optimal[i, -1]),
        treasures=int(result.denoised_return[i, -1])))
  return rows
