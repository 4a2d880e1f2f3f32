"""The host side of a MinAtar run: what to run (RunSpec), the run through `jitloop.drive` (progress
bar, evaluations, checkpoints, resume) and the host-side record.

Seeds are vmapped in one jitted loop (`jitloop.py`); a chunk is `eval_every` agent steps, then
`eval_episodes` test episodes per seed, each with its own sampled index (SPEC §2.2), for at most
`eval_steps` steps.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from hyperagent import checkpoint, jitloop, replay
from hyperagent.cli import check_choice, parse_seeds, setting
from hyperagent.agent import Agent
from hyperagent.config import Config, make_config
from hyperagent.minatar import env as minatar


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """The MinAtar wing's run settings (and its command line)."""
  game: str = setting('breakout', 'MinAtar game', choices=tuple(minatar.GAMES))
  steps: int = setting(1_000_000, 'agent steps per seed')
  seeds: tuple[int, ...] = setting((0, 1, 2), "seeds, run at once (vmapped): a count ('3' = 0..2), a list "
                                              "('2025,2030') or a range ('5-9')", parse=parse_seeds)
  eval_every: int = setting(50_000, 'agent steps between evaluations (one jitted chunk)')
  eval_episodes: int = setting(10, 'test episodes per evaluation, one sampled index each')
  eval_steps: int | None = setting(None, "steps a test episode may take (default: the game's own limit, gymnax's "
                                          'max_steps_in_episode: 2,500 for freeway, 1,000 for the others)')

  def __post_init__(self):
    check_choice('MinAtar game', self.game, minatar.GAMES)
    if self.eval_steps is None:  # resolved here, so config.json and the checkpoint record the number
      object.__setattr__(self, 'eval_steps', minatar.make(self.game)[0].max_episode_steps)
    for name in ('steps', 'eval_every', 'eval_episodes', 'eval_steps'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}.')
    if not self.seeds or len(set(self.seeds)) != len(self.seeds):
      raise ValueError(f'seeds must be distinct and non-empty, got {self.seeds}.')

  @property
  def loop(self) -> jitloop.LoopSpec:
    return jitloop.LoopSpec(eval_episodes=self.eval_episodes, eval_steps=self.eval_steps)


class Result(NamedTuple):
  """Per evaluation (leading axis S = seeds where two-dimensional)."""
  steps: np.ndarray         # [C] agent steps per seed at the evaluation
  train_return: np.ndarray  # [S, C] mean return of the training episodes that ended in the chunk (NaN: none)
  episodes: np.ndarray      # [S, C] training episodes finished so far
  eval_return: np.ndarray   # [S, C] mean return of the test episodes
  td_loss: np.ndarray       # [S, C]
  wall_s: np.ndarray        # [C] seconds since the start (compilation included)


def empty_result(seeds: int) -> Result:
  return Result(np.zeros(0, np.int64), *(np.zeros((seeds, 0), np.float32) for _ in range(4)), np.zeros(0))


def _append(result: Result, out: jitloop.ChunkOut, states: jitloop.RunState, steps: int, wall_s: float) -> Result:
  out = jax.device_get(out)
  last = np.asarray(out.steps.last)
  returns = np.asarray(out.steps.counters.episode_return)
  with np.errstate(invalid='ignore'):
    train = np.where(last.any(1), (returns * last).sum(1) / np.maximum(last.sum(1), 1), np.nan)
  col = lambda x: np.asarray(x, np.float32)[:, None]
  cat = lambda a, b: np.concatenate([a, b], axis=-1)
  return Result(cat(result.steps, [steps]), cat(result.train_return, col(train)),
                cat(result.episodes, col(jax.device_get(states.counters.episode))),
                cat(result.eval_return, col(out.eval_return)), cat(result.td_loss, col(out.td_loss)),
                cat(result.wall_s, [wall_s]))


def to_frame(result: Result, seeds: tuple[int, ...]) -> pd.DataFrame:
  """The record as metrics.csv's rows: one per seed and evaluation."""
  return pd.DataFrame([dict(seed=seed, steps=int(step), train_return=float(result.train_return[i, c]),
                            episodes=int(result.episodes[i, c]), eval_return=float(result.eval_return[i, c]),
                            td_loss=float(result.td_loss[i, c]), wall_s=round(float(result.wall_s[c]), 1))
                       for i, seed in enumerate(seeds) for c, step in enumerate(result.steps)])


def checkpointed_frame(path: str, seeds: tuple[int, ...]) -> pd.DataFrame:
  """metrics.csv's rows of a run still going, from its checkpoint (the record alone is read)."""
  _, trees = checkpoint.load(path, dict(result=empty_result(len(seeds))))
  return to_frame(Result(*trees['result']), seeds)


def initial_states(config: Config, spec: RunSpec):
  """(env, env_params stacked per seed, agent, RunState of every seed before its first step): a run's
  start, and the template its checkpoint is read into."""
  env, params = minatar.make(spec.game)
  agent = jitloop.make_agent_for(config, env)
  seeds = len(spec.seeds)
  env_params = jitloop.stack_runs([params] * seeds)
  capacity = replay.capacity(config.replay_capacity, spec.steps)
  states = jitloop.init_runs(agent, env, capacity, jnp.asarray(spec.seeds), env_params, np.full(seeds, 2**31 - 1))
  return env, env_params, agent, states


MAY_GROW = (('spec', 'steps'),)  # a finished run resumes with more steps: it is extended


def run_meta(config: Config, spec: RunSpec) -> dict:
  """What a checkpoint must match to be resumed by this run (up to MAY_GROW)."""
  return dict(config=config.to_dict(), spec=dataclasses.asdict(spec))


def train_seeds(config: Config, spec: RunSpec, *, progress: bool = True, checkpoint_path: str | None = None,
                checkpoint_every_s: float = 300.0, stop_on_interrupt: bool = False,
                announce: bool = False, on_accepted: Callable[[], None] = lambda: None) -> Result:
  """Runs every seed of `spec` to `spec.steps`; returns the host-side record. A matching checkpoint at
  `checkpoint_path` is resumed (saved every `checkpoint_every_s` seconds, at the end and on Ctrl-C
  when `stop_on_interrupt`, which then raises `checkpoint.Interrupted`); a finished run's checkpoint
  also resumes with more `steps`, which extends it. `announce`: print whether the run starts, resumes
  (where) or is finished, once its checkpoint matches. `on_accepted` is called once the checkpoint (if
  any) is accepted, before the first chunk: a refused one raises before it."""
  env, env_params, agent, states = initial_states(config, spec)
  seeds = len(spec.seeds)
  saved_steps = checkpoint.saved_setting(checkpoint_path, 'steps')
  template = states
  if saved_steps is not None and saved_steps < spec.steps:  # an extension: read at the saved run's shapes
    template = initial_states(config, dataclasses.replace(spec, steps=saved_steps))[3]
  driver = jitloop.Driver(
      chunk=jitloop.make_chunk_fn(config, env, spec.loop), env_params=env_params,
      lengths=jitloop.chunk_lengths(spec.steps, spec.eval_every), append=_append,
      postfix=lambda result: dict(eval_return=f'{np.nanmean(result.eval_return[:, -1]):.1f}'),
      finished=lambda result: False, position=lambda steps: f'step {steps:,} of {spec.steps:,}',
      checkpoint_path=checkpoint_path, checkpoint_every_s=checkpoint_every_s,
      run_meta=run_meta(config, spec), may_grow=MAY_GROW)
  states, result, done, wall_before = jitloop.resume(driver, template, empty_result(seeds))
  states = jitloop.continue_from(driver, states, result.steps, done,
                                 replay.capacity(config.replay_capacity, spec.steps))
  if announce:
    jitloop.announce(driver, result, done)
  on_accepted()
  return jitloop.drive(driver, states, result, done, len(driver.lengths), wall_before=wall_before,
                       desc=f'MinAtar {spec.game} x{seeds} seeds', progress=progress,
                       stop_on_interrupt=stop_on_interrupt)


def evaluation_returns(agent: Agent, game: str, params, key: jax.Array, episodes: int,
                 max_steps: int | None = None) -> np.ndarray:
  """[episodes] returns of `agent`'s test episodes (`jitloop.run_test_episodes`: fresh games, at most
  `max_steps` steps each, by default the game's own limit) with network parameters `params`."""
  env, env_params = minatar.make(game)
  spec = jitloop.LoopSpec(eval_episodes=episodes, eval_steps=max_steps or env.max_episode_steps)
  play = jax.jit(lambda params, key: jitloop.run_test_episodes(agent, env, spec, env_params, params, key)[0])
  return np.asarray(play(params, key))


def random_returns(game: str, episodes: int, seed: int = 0, max_steps: int | None = None) -> np.ndarray:
  """[episodes] returns of the uniform random policy, the baseline of the results table: the test
  episodes of a run (`evaluation_returns`) with each action drawn uniformly from the actor's key."""
  env, _ = minatar.make(game)
  agent = jitloop.make_agent_for(make_config('dqn', 'minatar'), env)  # its network is never applied

  def uniform(_params, actor, observation, first, evaluation=False):
    key, k = jax.random.split(actor.key)
    return jax.random.randint(k, (episodes,), 0, env.num_actions), actor._replace(key=key)

  return evaluation_returns(agent._replace(act=uniform), game, None, jax.random.PRNGKey(seed), episodes, max_steps)
