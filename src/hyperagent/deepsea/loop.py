"""DeepSea training as one jitted function: act, store, learn and evaluate inside `lax.scan`, seeds vmapped.

The protocol is the official code's (SPEC §3, §5.1): one training env per seed, `warmup_steps`
uniform random actions, then one gradient step per env step; every `eval_every` env steps,
`eval_episodes` test episodes with a sampled index per episode. A chunk of `eval_every` steps is one
jitted call over all seeds; it returns fixed-shape arrays (per-step episode statistics, the
evaluation, mean losses) to the host, which keeps the progress bar, the logs and the checkpoints.

Observations stay compact everywhere (the int cell position): the replay stores positions and the
network's first layer is a row lookup equal to the dense layer on bsuite's one-hot grid
(`networks.OneHotLinear`), so neither memory nor compute grows with N² through the input.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import pickle
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from hyperagent import indices, replay
from hyperagent.acting import ActorState
from hyperagent.agent import Agent, TrainState, make_agent
from hyperagent.config import Config
from hyperagent.deepsea import env as deep_sea

MAPPINGS = ('bsuite', 'seed')
BSUITE_MAPPING_SEED = 42  # bsuite's deep_sea sweep uses this mapping for every size


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """What to run, beside the agent's Config."""
  size: int = 20
  num_episodes: int = 1_000
  seeds: tuple[int, ...] = (0,)
  mapping: str = 'seed'          # 'seed': mapping_seed = run seed (official code); 'bsuite': 42
  deterministic: bool = True
  eval_every: int = 1_000        # env steps between evaluations (one jitted chunk)
  eval_episodes: int = 100

  def __post_init__(self):
    if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)) or self.size < 2:
      raise ValueError(f'size must be an integer >= 2, got {self.size!r}.')
    if self.mapping not in MAPPINGS:
      raise ValueError(f'Unknown mapping {self.mapping!r}; valid values: {", ".join(MAPPINGS)}.')
    for name in ('num_episodes', 'eval_every', 'eval_episodes'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}.')
    if not self.seeds or len(set(self.seeds)) != len(self.seeds):
      raise ValueError(f'seeds must be distinct and non-empty, got {self.seeds}.')

  @property
  def total_steps(self) -> int:
    return self.num_episodes * self.size

  def mapping_seed(self, seed: int) -> int:
    return BSUITE_MAPPING_SEED if self.mapping == 'bsuite' else seed


class LoopState(NamedTuple):
  """Everything one seed's run carries from step to step (checkpointable, vmappable)."""
  train: TrainState
  actor: ActorState
  replay: replay.ReplayState
  env: deep_sea.DeepSeaState
  position: jax.Array  # the current observation, compact
  first: jax.Array     # position starts an episode
  key: jax.Array


class StepLog(NamedTuple):
  """Per env step; the host keeps the rows where `terminated` (one per episode)."""
  terminated: jax.Array
  episode_return: jax.Array
  total_bad_episodes: jax.Array
  denoised_return: jax.Array


class ChunkOut(NamedTuple):
  steps: StepLog              # [L] per env step
  eval_return: jax.Array      # mean return of the test episodes
  eval_optimal: jax.Array     # fraction of test episodes that reached the treasure
  td_loss: jax.Array          # mean over the chunk's updates (0 in warm-up)
  q_mean: jax.Array


def replay_capacity(config: Config, spec: RunSpec) -> int:
  """A FIFO that never wraps within the run behaves the same at any larger capacity."""
  return min(config.replay_capacity, spec.total_steps)


def make_agent_for(config: Config, size: int) -> Agent:
  return make_agent(config, (size, size), 2, one_hot_input=True)


def init_state(agent: Agent, spec: RunSpec, seed: jax.Array, mapping: jax.Array) -> LoopState:
  """One seed's initial state (traceable: `init_all` vmaps it over seeds inside one jit)."""
  key = jax.random.PRNGKey(seed)
  k_train, k_actor, k_loop = jax.random.split(key, 3)
  env_state, position = deep_sea.reset(env_params_for(spec, mapping))
  buffer = replay.init(replay_capacity(agent.config, spec), 1, position, agent.config.index_dim)
  return LoopState(agent.init(k_train), agent.init_actor(k_actor, 1), buffer, env_state, position,
                   jnp.ones((), bool), k_loop)


def env_params_for(spec: RunSpec, mapping: jax.Array) -> deep_sea.DeepSeaParams:
  """The env of one seed inside the jitted loop, where its mapping is a (vmapped) argument."""
  return deep_sea.DeepSeaParams(spec.size, mapping, spec.deterministic)


def env_step(agent: Agent, spec: RunSpec, mapping: jax.Array, state: LoopState
             ) -> tuple[LoopState, StepLog, jax.Array]:
  """One env step of one seed: act, step, store, restart a finished episode.

  Returns the state, the step's log and the key for this step's replay sample.
  """
  config = agent.config
  env_params = env_params_for(spec, mapping)
  key, k_env, k_z, k_sample = jax.random.split(state.key, 4)
  action, actor = agent.act(state.train.params, state.actor, state.position[None], state.first[None])
  env, next_position, reward, terminated = deep_sea.step(env_params, state.env, action[0], k_env)
  z = indices.sample_perturbation(k_z, config.perturbation_dist, config.index_dim, (1,))
  buffer = replay.add(state.replay, state.position[None], action, reward[None], terminated[None],
                      jnp.zeros((1,), bool), next_position[None], z)
  log = StepLog(terminated, env.episode_return, env.total_bad_episodes, env.denoised_return)
  restart_env, restart_position = deep_sea.reset_episode(env_params, env)
  env = jax.tree.map(lambda a, b: jnp.where(terminated, a, b), restart_env, env)
  position = jnp.where(terminated, restart_position, next_position)
  return LoopState(state.train, actor, buffer, env, position, terminated, key), log, k_sample


def train_step(agent: Agent, spec: RunSpec, mappings: jax.Array, states: LoopState, _=None
               ) -> tuple[LoopState, tuple[StepLog, dict[str, jax.Array]]]:
  """One env step of every seed (leading axis S), then (after the warm-up) one gradient step each."""
  config = agent.config
  states, log, k_sample = jax.vmap(functools.partial(env_step, agent, spec))(mappings, states)

  def learn_one(train, buffer, key):
    batch = replay.sample(buffer, key, config.batch_size, config.n_step, config.discount)
    train, metrics = agent.learn(train, batch, replay.size(buffer))
    return train, (metrics['td_loss'], metrics['q_mean'])

  def learn(train):
    return jax.vmap(learn_one)(train, states.replay, k_sample)

  def skip(train):
    return train, (jnp.zeros(k_sample.shape[:1]), jnp.zeros(k_sample.shape[:1]))

  # The first update comes once warmup_steps transitions are stored (SPEC §3). Seeds step in
  # lockstep, so one predicate serves them all and the cond stays a real branch: under vmap it
  # would become a select that runs learn during the warm-up and copies every parameter each step.
  learned = states.actor.step[0] >= config.warmup_steps
  train, (td_loss, q_mean) = jax.lax.cond(learned, learn, skip, states.train)
  return states._replace(train=train), (log, dict(td_loss=td_loss, q_mean=q_mean, learned=learned))


def evaluate(agent: Agent, spec: RunSpec, mapping: jax.Array, params, key: jax.Array
             ) -> tuple[jax.Array, jax.Array]:
  """`eval_episodes` test episodes in parallel, one sampled index each (SPEC §2.2).

  Returns (mean return, fraction of episodes that collected the treasure).
  """
  env_params = env_params_for(spec, mapping)
  num = spec.eval_episodes
  k_actor, k_env = jax.random.split(key)
  actor = agent.init_actor(k_actor, num)
  env, position = jax.vmap(lambda _: deep_sea.reset(env_params))(jnp.arange(num))

  def body(carry, inputs):
    env, position, actor = carry
    t, k = inputs
    action, actor = agent.act(params, actor, position, jnp.full((num,), t == 0), evaluation=True)
    env, position, _, _ = jax.vmap(deep_sea.step, in_axes=(None, 0, 0, 0))(
        env_params, env, action, jax.random.split(k, num))
    return (env, position, actor), None

  steps = (jnp.arange(spec.size), jax.random.split(k_env, spec.size))
  (env, _, _), _ = jax.lax.scan(body, (env, position, actor), steps)
  return env.episode_return.mean(), (env.denoised_return > 0).mean()


def run_chunk(agent: Agent, spec: RunSpec, length: int, mappings: jax.Array, states: LoopState
              ) -> tuple[LoopState, ChunkOut]:
  """`length` training steps then one evaluation, for every seed (leading axis S)."""
  step = functools.partial(train_step, agent, spec, mappings)
  states, (log, metrics) = jax.lax.scan(step, states, None, length=length)
  key, k_eval = jnp.moveaxis(jax.vmap(jax.random.split)(states.key), 1, 0)
  eval_return, eval_optimal = jax.vmap(functools.partial(evaluate, agent, spec))(
      mappings, states.train.params, k_eval)
  updates = jnp.maximum(metrics['learned'].sum(), 1)
  per_seed = lambda x: jnp.moveaxis(x, 0, 1)  # scan stacks steps first: [L, S] -> [S, L]
  out = ChunkOut(jax.tree.map(per_seed, log), eval_return, eval_optimal,
                 metrics['td_loss'].sum(0) / updates, metrics['q_mean'].sum(0) / updates)
  return states._replace(key=key), out


@functools.lru_cache(maxsize=16)
def make_chunk_fn(config: Config, size: int, deterministic: bool, eval_episodes: int
                  ) -> Callable[[int, jax.Array, LoopState], tuple[LoopState, ChunkOut]]:
  """(length, mappings[S, N, N], states[S]) -> (states, outs[S]): all seeds in one jitted call.

  Cached on what the compiled loop depends on, so runs that differ only in seeds, budget or
  mapping reuse one compilation.
  """
  agent = make_agent_for(config, size)
  spec = RunSpec(size=size, deterministic=deterministic, eval_episodes=eval_episodes)

  @functools.partial(jax.jit, static_argnums=0, donate_argnums=2)
  def chunk(length, mappings, states):
    return run_chunk(agent, spec, length, mappings, states)

  return chunk


def init_all(agent: Agent, spec: RunSpec) -> tuple[jax.Array, LoopState]:
  """(mappings[S, N, N], states[S]) for every seed of `spec`.

  One jitted call for all seeds: built op by op, the state cost ~30 small compilations (~2 s,
  a tenth of the official DeepSea-20 run).
  """
  mappings = jnp.asarray(np.stack([deep_sea.make_mapping(spec.size, spec.mapping_seed(s)) for s in spec.seeds]))
  init = jax.jit(jax.vmap(functools.partial(init_state, agent, spec)))
  return mappings, init(jnp.asarray(spec.seeds), mappings)


def chunk_lengths(spec: RunSpec) -> list[int]:
  full, rest = divmod(spec.total_steps, spec.eval_every)
  return [spec.eval_every] * full + ([rest] if rest else [])


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


def _empty_result(num_seeds: int) -> Result:
  empty = lambda: np.zeros((num_seeds, 0), np.float32)
  return Result(empty(), np.zeros((num_seeds, 0), np.int64), empty(), np.zeros((0,), np.int64), empty(),
                empty(), empty(), empty(), np.zeros((0,), np.float64))


def _append(result: Result, out: ChunkOut, steps_done: int, wall_s: float) -> Result:
  out = jax.device_get(out)
  ended = np.asarray(out.steps.terminated[0])  # every seed ends its episodes on the same steps
  pick = lambda x: np.asarray(x)[:, ended]
  col = lambda x: np.asarray(x)[:, None]
  cat = lambda a, b: np.concatenate([a, b], axis=-1)
  return Result(
      cat(result.episode_return, pick(out.steps.episode_return)),
      cat(result.total_bad_episodes, pick(out.steps.total_bad_episodes)),
      cat(result.denoised_return, pick(out.steps.denoised_return)),
      cat(result.eval_steps, np.array([steps_done])),
      cat(result.eval_return, col(out.eval_return)), cat(result.eval_optimal, col(out.eval_optimal)),
      cat(result.td_loss, col(out.td_loss)), cat(result.q_mean, col(out.q_mean)),
      cat(result.eval_wall_s, np.array([wall_s])))


class Checkpoint(NamedTuple):
  config: dict
  spec: dict
  chunks_done: int
  states: Any     # LoopState with a leading seed axis, as numpy
  result: Result
  wall_s: float


def save_checkpoint(path: str, checkpoint: Checkpoint) -> None:
  tmp = path + '.tmp'
  with open(tmp, 'wb') as f:
    pickle.dump(checkpoint._replace(states=jax.device_get(checkpoint.states)), f)
  os.replace(tmp, path)  # atomic: an interrupted save never leaves a broken checkpoint


def load_checkpoint(path: str) -> Checkpoint:
  with open(path, 'rb') as f:
    return pickle.load(f)


def train(config: Config, spec: RunSpec, *, progress: bool = True, checkpoint_path: str | None = None,
          checkpoint_every_s: float = 60.0, resume: bool = True, max_chunks: int | None = None,
          stop_when_solved: bool = False) -> Result:
  """Runs every seed of `spec` to the end; returns the host-side record.

  With `checkpoint_path`, the full state (agent, optimiser, replay, env, keys, logs) is saved every
  `checkpoint_every_s` seconds and when this call returns, and a matching checkpoint there is
  resumed, which continues exactly as the uninterrupted run would have.
  max_chunks: return after this many chunks (evaluations) in this call, e.g. to split a long run.
  stop_when_solved: stop once every seed has solved under both criteria (the scaling study).
  """
  saved = None
  if checkpoint_path and resume and os.path.exists(checkpoint_path):
    saved = load_checkpoint(checkpoint_path)
    if saved.config != config.to_dict() or saved.spec != dataclasses.asdict(spec):
      raise ValueError(f'{checkpoint_path} belongs to another run (config or spec differ); '
                       'use a fresh output folder or delete it.')
  agent = make_agent_for(config, spec.size)
  chunk = make_chunk_fn(config, spec.size, spec.deterministic, spec.eval_episodes)
  mappings, states = init_all(agent, spec)
  result, chunks_done, wall_before = _empty_result(len(spec.seeds)), 0, 0.0
  if saved is not None:
    shapes = lambda tree: jax.tree.map(lambda x: (x.shape, x.dtype), tree)
    if shapes(saved.states) != shapes(states):
      raise ValueError(f'{checkpoint_path} holds a state of another layout (written by another version of '
                       'hyperagent); use a fresh output folder or delete it.')
    states = jax.tree.map(jnp.asarray, saved.states)
    result, chunks_done, wall_before = saved.result, saved.chunks_done, saved.wall_s

  lengths = chunk_lengths(spec)
  start, last_save = time.perf_counter() - wall_before, time.perf_counter()
  bar = tqdm(total=spec.total_steps, initial=sum(lengths[:chunks_done]), unit='step', unit_scale=True,
             disable=not progress, desc=f'DeepSea N={spec.size} x{len(spec.seeds)} seeds')
  end = len(lengths) if max_chunks is None else min(len(lengths), chunks_done + max_chunks)
  for i in range(chunks_done, end):
    states, out = chunk(lengths[i], mappings, states)
    result = _append(result, out, sum(lengths[:i + 1]), time.perf_counter() - start)
    bar.update(lengths[i])
    solved = [eval_solve_episode(o, result.eval_steps, spec.size) is not None for o in result.eval_optimal]
    bar.set_postfix(eval_optimal=f'{result.eval_optimal[:, -1].mean():.2f}',
                    solved=f'{sum(solved)}/{len(spec.seeds)}')
    done = stop_when_solved and all(solved) and all(
        bsuite_solve_episode(bad) is not None for bad in result.total_bad_episodes)
    last = i == end - 1 or done
    if checkpoint_path and (last or time.perf_counter() - last_save > checkpoint_every_s):
      save_checkpoint(checkpoint_path, Checkpoint(config.to_dict(), dataclasses.asdict(spec), i + 1,
                                                  states, result, time.perf_counter() - start))
      last_save = time.perf_counter()
    if done:
      break
  bar.close()
  return result


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
