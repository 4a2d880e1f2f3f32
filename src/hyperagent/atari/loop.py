"""The envpool Atari actor-learner loop: E training envs, one jitted `act`, one jitted fused
replay-add + sample + learn call, periodic sampled-index evaluation, resumable checkpoints.

Per iteration (E agent steps):  action = act(params, obs)  →  env.step(action)  →  update(state, step).
`update` stores the step in the frame-deduplicated device replay and runs as many gradient steps as
the replay ratio owes (`due_updates`), all inside one jitted call; it donates the loop state, so the
buffer is updated in place.

Two ways to step the envs, with the same `act` and `update`:
- 'host': envpool's ordinary `step` on the host, between the two jitted calls. Works everywhere.
- 'xla': envpool's XLA interface (`env.xla()`), so `act → step → update` runs as one jitted
  `fori_loop` over many iterations (verified on CPU with envpool 1.2.5 / jax 0.10.2; on GPU it needs
  an envpool build with the GPU target, else use 'host').

Checkpoints and resumption. An emulator's state cannot be saved, so training is cut into *segments*
at every checkpoint: a segment starts from freshly made envs seeded by (seed, segment number) and
ends at a checkpoint, where the running episodes are cut (in the replay they end as truncations: the
next rows are episode starts, so stacks and n-step chains stop there and bootstrap). An uninterrupted
run makes exactly the same cuts, so resuming from a checkpoint (with its replay) reproduces the
uninterrupted run's metrics exactly. Evaluation uses its own envs and keys, derived from the seed and
the step, and never touches the training state.

Outputs in the run directory: config.json (run + agent config), train.csv (one row per log
interval), eval.csv (one row per evaluation), final.json (final evaluation: raw and human-normalised
score), checkpoint.pkl.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import pickle
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from hyperagent import indices
from hyperagent.atari import replay as atari_replay
from hyperagent.acting import ActorState
from hyperagent.agent import Agent, TrainState, make_agent
from hyperagent.config import Config, make_config
from hyperagent.atari import env as atari

ENV_MODES = ('host', 'xla')
OBS_SHAPE = (atari_replay.STACK, 84, 84)
LEARN_METRICS = ('loss', 'td_loss', 'hyper_reg', 'grad_penalty', 'q_mean', 'target_mean', 'grad_norm')


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """One training run. Steps are agent steps summed over the training envs (frames = 4 × steps)."""
  game: str = 'Breakout'
  protocol: str = 'paper'              # atari.PROTOCOLS
  agent: str = 'hyperagent'            # hyperagent | ensemble | dqn
  seed: int = 0
  steps: int = 2_000_000               # SPEC §4: 2M agent steps = 8M frames
  num_envs: int = 1                    # E training envs (the paper uses 1)
  replay_ratio: float = 1.0            # gradient updates per agent step (paper: 1; CleanRL DQN: 0.25)
  env_mode: str = 'host'               # ENV_MODES
  num_threads: int = 0                 # envpool threads; 0 = one per env
  chunk: int = 256                     # iterations per jitted call in 'xla' mode
  clip_rewards: bool = True            # learn from sign(r); scores always use the raw reward
  eval_every: int = 20_000             # agent steps between evaluations (0: none); one also at step 0
  eval_episodes: int = 10              # one per eval env (SPEC §3)
  final_eval_episodes: int = 200       # on the best parameters (SPEC §3)
  final_eval_envs: int = 20
  eval_max_episode_steps: int = atari.MAX_EPISODE_STEPS  # cap of eval episodes (27k steps = 108k frames)
  log_every: int = 10_000
  checkpoint_every: int = 0            # agent steps between checkpoints (0: only at the end)
  checkpoint_replay: bool = True       # needed for an exact resume; the replay is ~0.7 GB at 1e5
  overrides: tuple[tuple[str, Any], ...] = ()  # agent Config fields, e.g. (('warmup_steps', 500),)

  def __post_init__(self):
    if self.env_mode not in ENV_MODES:
      raise ValueError(f'Unknown env_mode {self.env_mode!r}; valid values: {", ".join(ENV_MODES)}.')
    if self.protocol not in atari.PROTOCOLS:
      raise ValueError(f'Unknown Atari protocol {self.protocol!r}; valid protocols: {", ".join(atari.PROTOCOLS)}.')
    if self.num_envs < 1 or self.steps < 1 or self.replay_ratio < 0 or self.chunk < 1:
      raise ValueError('num_envs, steps and chunk must be >= 1 and replay_ratio >= 0.')

  def agent_config(self) -> Config:
    return make_config(self.agent, 'atari', **dict(self.overrides))

  def every(self, name: str) -> int:
    """An interval rounded up to whole iterations (multiples of num_envs); 0 stays 0."""
    value = getattr(self, name)
    return -(-value // self.num_envs) * self.num_envs if value > 0 else 0

  @property
  def total_steps(self) -> int:
    return -(-self.steps // self.num_envs) * self.num_envs


class EpisodeStats(NamedTuple):
  """Raw game scores of the training envs (a game ends at game over or truncation, not a life loss)."""
  running_return: jax.Array  # [E]
  running_length: jax.Array  # [E] agent steps
  return_sum: jax.Array      # over games finished since the last log
  length_sum: jax.Array
  count: jax.Array


class LoopState(NamedTuple):
  train: TrainState
  actor: ActorState
  replay: atari_replay.AtariReplayState
  key: jax.Array              # z draws and replay sampling
  env_steps: jax.Array        # agent steps taken, all envs together
  updates: jax.Array          # gradient steps taken
  episodes: EpisodeStats
  sums: dict[str, jax.Array]  # learner metrics summed since the last log


class Step(NamedTuple):
  """What one env step returned, as the learner needs it ([E] each; frame [E, 84, 84])."""
  action: Any
  reward: Any         # as the env gave it (clipped by the 'paper' training env)
  raw_reward: Any     # the game's reward, for scores
  terminated: Any     # terminal for learning (a life loss under episodic life)
  truncated: Any
  frame: Any          # newest frame of the returned observation
  first: Any          # the returned observation starts a game: the step was envpool's auto-reset
  game_over: Any


def env_step(action, obs, reward, terminated, truncated, info) -> tuple[Step, Any]:
  """(Step, act_first): act_first marks where the next action needs a fresh index (SPEC §2.1:
  after every end of a training episode, life losses included, and at a game's first observation)."""
  first = atari.is_first(info)
  step = Step(action, reward, atari.raw_reward(info), terminated, truncated, obs[:, -1], first,
              atari.game_over(terminated, truncated, info))
  return step, terminated | truncated | first


# ----------------------------------------------------------------------------- pure functions

def due_updates(env_steps, warmup: int, ratio: float, xp=jnp):
  """Gradient steps owed after `env_steps` agent steps: the first one at the end of the warm-up, then
  `ratio` per agent step (SPEC §3: `if env_step >= learning_start: update`). `xp` is np on the host
  or jnp on the device; both compute in float32, so the two agree exactly."""
  if ratio <= 0:
    return xp.zeros_like(env_steps)
  steps = xp.asarray(env_steps)
  owed = xp.floor(xp.float32(ratio) * (steps - warmup).astype(xp.float32)).astype(xp.int32) + 1
  return xp.where(steps >= warmup, owed, 0)


def track_episodes(stats: EpisodeStats, step: Step) -> EpisodeStats:
  ret = stats.running_return + step.raw_reward
  length = stats.running_length + 1
  done = jnp.asarray(step.game_over, bool)
  restart = done | jnp.asarray(step.first, bool)
  return EpisodeStats(
      jnp.where(restart, 0.0, ret), jnp.where(restart, 0, length),
      stats.return_sum + jnp.sum(jnp.where(done, ret, 0.0)),
      stats.length_sum + jnp.sum(jnp.where(done, length, 0)), stats.count + jnp.sum(done))


def zero_sums() -> dict[str, jax.Array]:
  return {name: jnp.zeros((), jnp.float32) for name in LEARN_METRICS + ('count',)}


def make_update(agent: Agent, run: RunConfig) -> Callable[..., LoopState]:
  """update(state, step, num_updates=None): store one env step of every env, then learn (pure).

  num_updates: a Python int (host mode; static under jit) runs exactly that many gradient steps,
  unrolled; None (xla mode) runs what `due_updates` owes, in a `fori_loop` under a `cond`. The host
  form exists because XLA:CPU runs the learner 4-10x slower inside control flow (measured with
  jax 0.10.2: 190 ms plain, 830 ms in a 1-trip fori_loop, 2,500 ms under a cond).
  """
  config = agent.config
  num_envs = run.num_envs

  def learn_once(replay, counts, carry):
    train, key, sums = carry
    key, k_sample = jax.random.split(key)
    batch = atari_replay.sample(replay, k_sample, config.batch_size, config.n_step, config.discount,
                                counts=counts)
    train, metrics = agent.learn(train, batch, counts[-1])
    sums = {name: sums[name] + (1.0 if name == 'count' else metrics[name]) for name in sums}
    return train, key, sums

  def update(state: LoopState, step: Step, num_updates: int | None = None) -> LoopState:
    key, k_z, k_learn = jax.random.split(state.key, 3)
    z = indices.sample_perturbation(k_z, config.perturbation_dist, config.index_dim, (num_envs,))
    reward = jnp.asarray(step.reward, jnp.float32)
    reward = jnp.sign(reward) if run.clip_rewards else reward
    replay = atari_replay.add(state.replay, step.action, reward, step.terminated, step.truncated,
                              step.frame, z, step.first)
    env_steps = state.env_steps + num_envs
    carry = (state.train, k_learn, state.sums)
    if num_updates is None:
      num_updates = jnp.maximum(due_updates(env_steps, config.warmup_steps, run.replay_ratio) - state.updates, 0)

      def learn_many():
        counts = atari_replay.valid_counts(replay)  # built once: the buffer is fixed during the call
        return jax.lax.fori_loop(0, num_updates, lambda _, c: learn_once(replay, counts, c), carry)

      # cond: most iterations of a fractional ratio learn nothing, and need not build the sampler.
      carry = jax.lax.cond(num_updates > 0, learn_many, lambda: carry)
    elif num_updates > 0:
      counts = atari_replay.valid_counts(replay)
      for _ in range(num_updates):
        carry = learn_once(replay, counts, carry)
    train, _, sums = carry
    return LoopState(train, state.actor, replay, key, env_steps, state.updates + num_updates,
                     track_episodes(state.episodes, step), sums)

  return update


def init_state(agent: Agent, run: RunConfig, key: jax.Array) -> LoopState:
  k_train, k_actor, k_loop = jax.random.split(key, 3)
  capacity_rows = -(-agent.config.replay_capacity // run.num_envs)  # replay_capacity transitions
  zeros_e = jnp.zeros((run.num_envs,))
  return LoopState(
      train=agent.init(k_train), actor=agent.init_actor(k_actor, run.num_envs),
      replay=atari_replay.init(capacity_rows, run.num_envs, agent.config.index_dim),
      key=k_loop, env_steps=jnp.zeros((), jnp.int32), updates=jnp.zeros((), jnp.int32),
      episodes=EpisodeStats(zeros_e, zeros_e.astype(jnp.int32), jnp.zeros(()), jnp.zeros((), jnp.int32),
                            jnp.zeros((), jnp.int32)),
      sums=zero_sums())


def start_segment(state: LoopState, frame) -> LoopState:
  """New envs were just reset: their first frames start episodes; unfinished games are dropped."""
  zeros = jnp.zeros_like(state.episodes.running_return)
  episodes = state.episodes._replace(running_return=zeros, running_length=zeros.astype(jnp.int32))
  return state._replace(replay=atari_replay.add_reset(state.replay, frame), episodes=episodes)


# ----------------------------------------------------------------------------- the driver

def _seed(*parts: int) -> int:
  """An envpool seed for (run seed, purpose, number); envpool seeds env i with seed + i."""
  return int(np.random.SeedSequence([p & 0xFFFFFFFF for p in parts]).generate_state(1)[0] % (2 ** 30))


class Runner:
  """Builds the jitted functions once; `train` runs (or resumes) a run into `out_dir`."""

  def __init__(self, run: RunConfig):
    self.run = run
    self.game = atari.canonical_game(run.game)
    self.config = run.agent_config()
    probe = self.make_env(num_envs=1, seed=0, evaluation=False)
    self.num_actions = int(probe.action_space.n)
    probe.close()
    self.agent = make_agent(self.config, OBS_SHAPE, self.num_actions)
    update = make_update(self.agent, run)
    self.update = jax.jit(update, donate_argnums=0, static_argnums=2)
    self.start_segment = jax.jit(start_segment, donate_argnums=0)
    self._update_fn = update
    self._xla_env = self._xla_fn = None

  def reseed(self, seed: int) -> 'Runner':
    """The same compiled functions for another seed (the seed is data, not structure)."""
    self.run = dataclasses.replace(self.run, seed=seed)
    return self

  def make_env(self, num_envs: int, seed: int, evaluation: bool, **overrides):
    return atari.make_env(self.game, self.run.protocol, num_envs=num_envs, seed=seed, evaluation=evaluation,
                          num_threads=self.run.num_threads, **overrides)

  # --- training envs -------------------------------------------------------------------------
  def _run_host(self, env, state: LoopState, obs, act_first, iterations: int, timer: dict):
    steps, updates = int(state.env_steps), int(state.updates)
    for _ in range(iterations):
      steps += self.run.num_envs
      due = int(due_updates(np.int32(steps), self.config.warmup_steps, self.run.replay_ratio, xp=np))
      num_updates, updates = max(due - updates, 0), max(due, updates)
      t0 = time.perf_counter()
      action, actor = self.agent.act(state.train.params, state.actor, obs, act_first)
      action = np.asarray(action)
      t1 = time.perf_counter()
      obs, reward, terminated, truncated, info = env.step(action)
      t2 = time.perf_counter()
      step, act_first = env_step(action, obs, reward, terminated, truncated, info)
      state = self.update(state._replace(actor=actor), step, num_updates)
      if timer.get('sync'):
        jax.block_until_ready(state.env_steps)
      t3 = time.perf_counter()
      timer['act'] = timer.get('act', 0.0) + t1 - t0
      timer['env'] = timer.get('env', 0.0) + t2 - t1
      timer['learn'] = timer.get('learn', 0.0) + t3 - t2
    return state, obs, act_first

  def _xla_chunk(self, env):
    """jit(fori_loop(act → envpool XLA step → update)) over a traced number of iterations."""
    _, _, _, xla_step = env.xla()
    agent, update = self.agent, self._update_fn

    def chunk(handle, state, obs, act_first, iterations):
      def body(_, carry):
        handle, state, obs, act_first = carry
        action, actor = agent.act(state.train.params, state.actor, obs, act_first)
        handle, (obs, reward, terminated, truncated, info) = xla_step(handle, action)
        step, act_first = env_step(action, obs, reward, terminated, truncated, info)
        return handle, update(state._replace(actor=actor), step), obs, act_first
      return jax.lax.fori_loop(0, iterations, body, (handle, state, obs, act_first))

    return jax.jit(chunk, donate_argnums=1)

  def _run_xla(self, env, handle, state, obs, act_first, iterations: int, timer: dict):
    if self._xla_env is not env:  # the XLA step is bound to its env: one compiled chunk per segment
      self._xla_env, self._xla_fn = env, self._xla_chunk(env)
    chunk = self._xla_fn
    t0 = time.perf_counter()
    while iterations > 0:
      n = min(iterations, self.run.chunk)
      handle, state, obs, act_first = chunk(handle, state, obs, act_first, n)
      iterations -= n
    jax.block_until_ready(state.env_steps)
    timer['fused'] = timer.get('fused', 0.0) + time.perf_counter() - t0
    return handle, state, obs, act_first

  # --- evaluation ----------------------------------------------------------------------------
  def evaluate(self, params, num_episodes: int, num_envs: int, seed: int, key: jax.Array) -> np.ndarray:
    """Raw scores of `num_episodes` games on eval envs (no life loss, no clipping), with a sampled
    index per game held for the whole game (SPEC §2.2); deterministic given (seed, key)."""
    num_envs = max(1, min(num_envs, num_episodes))
    per_env = -(-num_episodes // num_envs)
    env = self.make_env(num_envs, seed, evaluation=True, max_episode_steps=self.run.eval_max_episode_steps)
    obs, info = env.reset()
    actor = self.agent.init_actor(key, num_envs)
    first = np.ones(num_envs, bool)
    running = np.zeros(num_envs)
    scores: list[list[float]] = [[] for _ in range(num_envs)]
    while min(len(s) for s in scores) < per_env:
      action, actor = self.agent.act(params, actor, obs, first, evaluation=True)
      obs, reward, terminated, truncated, info = env.step(np.asarray(action))
      running += atari.raw_reward(info)
      over = atari.game_over(terminated, truncated, info)
      for e in np.flatnonzero(over):
        if len(scores[e]) < per_env:
          scores[e].append(float(running[e]))
      running[over] = 0.0
      first = atari.is_first(info)
    env.close()
    return np.array([s for env_scores in scores for s in env_scores][:num_episodes])

  # --- the run -------------------------------------------------------------------------------
  def train(self, out_dir: str, resume: bool = False, progress: bool | None = None,
            timer: dict | None = None, stop_after: int | None = None) -> dict:
    """Trains to run.steps (or resumes from out_dir/checkpoint.pkl), then the final evaluation.

    stop_after: return after the first checkpoint at or beyond this step (an interrupted run; tests).
    timer: filled with seconds spent per phase ('act', 'env', 'learn' in host mode, 'fused' in xla
      mode, plus 'eval'); set timer['sync'] = True to measure learn without async dispatch overlap.
    """
    run, timer = self.run, {} if timer is None else timer
    os.makedirs(out_dir, exist_ok=True)
    ckpt_path = os.path.join(out_dir, 'checkpoint.pkl')
    host = dict(segment=0, best_score=-math.inf, best_params=None, best_step=-1)
    if resume and os.path.exists(ckpt_path):
      state, host = self._restore(ckpt_path)
      _truncate_csvs(out_dir, int(state.env_steps))
    else:
      state = init_state(self.agent, run, jax.random.PRNGKey(run.seed))
      for name in ('train.csv', 'eval.csv'):
        if os.path.exists(os.path.join(out_dir, name)):
          os.remove(os.path.join(out_dir, name))
    with open(os.path.join(out_dir, 'config.json'), 'w') as f:
      json.dump(dict(run=dataclasses.asdict(run), agent=self.config.to_dict(),
                     game=self.game, num_actions=self.num_actions), f, indent=1)

    total = run.total_steps
    every = {name: run.every(name) for name in ('log_every', 'eval_every', 'checkpoint_every')}
    steps = int(state.env_steps)
    if steps == 0 and every['eval_every']:
      host = self._evaluate(out_dir, state, host, steps, timer)
    # tqdm's rate is steps/s; disable=None turns the bar off when stderr is not a TTY
    bar = tqdm(total=total, initial=steps, unit='step', unit_scale=True, mininterval=1.0, dynamic_ncols=True,
               disable=None if progress is None else not progress)
    env = handle = None
    log_start = (time.perf_counter(), steps)
    while steps < total:
      if env is None:  # a new segment: fresh envs seeded by (seed, segment)
        env = self.make_env(run.num_envs, _seed(run.seed, 0, host['segment']), evaluation=False)
        obs, _ = env.reset()
        act_first = np.ones(run.num_envs, bool)
        state = self.start_segment(state, obs[:, -1])
        if run.env_mode == 'xla':
          handle = env.xla()[0]
      target = min([total] + [(steps // k + 1) * k for k in every.values() if k])
      iterations = (target - steps) // run.num_envs
      if run.env_mode == 'host':
        state, obs, act_first = self._run_host(env, state, obs, act_first, iterations, timer)
      else:
        handle, state, obs, act_first = self._run_xla(env, handle, state, obs, act_first, iterations, timer)
      bar.update(target - steps)
      steps = target
      if (every['log_every'] and steps % every['log_every'] == 0) or steps == total:
        state, row = self._log(out_dir, state, log_start)
        log_start = (time.perf_counter(), steps)
        bar.set_postfix(sps=f'{row["sps"]:.0f}', train_return=f'{row["train_return"]:.1f}')
      if every['eval_every'] and steps % every['eval_every'] == 0:
        host = self._evaluate(out_dir, state, host, steps, timer)
        bar.set_postfix(eval=f'{host["last_eval"]:.1f}')
      if (every['checkpoint_every'] and steps % every['checkpoint_every'] == 0) or steps == total:
        env.close()
        env = None
        host['segment'] += 1
        self._save(ckpt_path, state, host)
        if stop_after is not None and steps >= stop_after and steps < total:
          bar.close()
          return dict(interrupted_at=steps)
    bar.close()
    return self._final(out_dir, state, host, timer)

  def _log(self, out_dir: str, state: LoopState, log_start) -> tuple[LoopState, dict]:
    ep, sums, steps = jax.device_get((state.episodes, state.sums, state.env_steps))
    count = max(float(sums['count']), 1.0)
    row = dict(env_steps=int(steps), frames=4 * int(steps), updates=int(state.updates),
               train_episodes=int(ep.count),
               train_return=float(ep.return_sum / ep.count) if ep.count else float('nan'),
               train_length=float(ep.length_sum / ep.count) if ep.count else float('nan'),
               **{name: float(sums[name]) / count if sums['count'] else float('nan') for name in LEARN_METRICS},
               sps=(int(steps) - log_start[1]) / max(time.perf_counter() - log_start[0], 1e-9))
    _append_csv(os.path.join(out_dir, 'train.csv'), row)
    # distinct arrays: the donated state may not hold one buffer twice
    episodes = state.episodes._replace(return_sum=jnp.zeros(()), length_sum=jnp.zeros((), jnp.int32),
                                       count=jnp.zeros((), jnp.int32))
    return state._replace(episodes=episodes, sums=zero_sums()), row

  def _evaluate(self, out_dir: str, state: LoopState, host: dict, steps: int, timer: dict) -> dict:
    t0 = time.perf_counter()
    key = jax.random.fold_in(jax.random.PRNGKey(self.run.seed), 1_000_003 + steps)
    scores = self.evaluate(state.train.params, self.run.eval_episodes, self.run.eval_episodes,
                           _seed(self.run.seed, 1, steps), key)
    timer['eval'] = timer.get('eval', 0.0) + time.perf_counter() - t0
    mean = float(scores.mean())
    _append_csv(os.path.join(out_dir, 'eval.csv'), dict(
        env_steps=steps, frames=4 * steps, episodes=len(scores), eval_return=mean,
        eval_std=float(scores.std()), eval_min=float(scores.min()), eval_max=float(scores.max()),
        eval_hns=_hns(self.game, mean)))
    host = dict(host, last_eval=mean)
    if mean > host['best_score']:  # SPEC §3: the best test mean's parameters are kept for the final test
      host.update(best_score=mean, best_step=steps, best_params=jax.device_get(state.train.params))
    return host

  def _final(self, out_dir: str, state: LoopState, host: dict, timer: dict) -> dict:
    """SPEC §3: the best parameters (by test mean; the last ones if never evaluated) on
    final_eval_episodes games, with the eval envs and index generator seeded by the run seed."""
    use_best = host['best_params'] is not None
    params = host['best_params'] if use_best else state.train.params
    t0 = time.perf_counter()
    scores = self.evaluate(params, self.run.final_eval_episodes, self.run.final_eval_envs,
                           _seed(self.run.seed, 2), jax.random.PRNGKey(self.run.seed))
    timer['eval'] = timer.get('eval', 0.0) + time.perf_counter() - t0
    result = dict(game=self.game, agent=self.run.agent, protocol=self.run.protocol, seed=self.run.seed,
                  env_steps=int(state.env_steps), frames=4 * int(state.env_steps), updates=int(state.updates),
                  params='best' if use_best else 'last', best_step=host['best_step'],
                  episodes=len(scores), raw_score=float(scores.mean()), raw_std=float(scores.std()),
                  hns=_hns(self.game, float(scores.mean())), scores=scores.tolist())
    with open(os.path.join(out_dir, 'final.json'), 'w') as f:
      json.dump(result, f, indent=1)
    return result

  def _save(self, path: str, state: LoopState, host: dict):
    state = jax.device_get(state if self.run.checkpoint_replay else state._replace(replay=None))
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
      pickle.dump(dict(state=state, host=host, run=dataclasses.asdict(self.run)), f, protocol=5)
    os.replace(tmp, path)  # atomic: a crash mid-write leaves the previous checkpoint

  def _restore(self, path: str) -> tuple[LoopState, dict]:
    with open(path, 'rb') as f:
      saved = pickle.load(f)
    mine, theirs = dataclasses.asdict(self.run), saved['run']
    differ = [k for k in mine if k not in ('steps', 'log_every', 'eval_every', 'final_eval_episodes',
                                           'final_eval_envs', 'num_threads', 'chunk') and mine[k] != theirs.get(k)]
    if differ:
      raise ValueError(f'Checkpoint {path} was written by a different run; differing fields: '
                       + ', '.join(f'{k}={theirs.get(k)!r} (now {mine[k]!r})' for k in differ))
    state = saved['state']
    if state.replay is None:  # saved without replay: resume with an empty one (not an exact resume)
      fresh = init_state(self.agent, self.run, jax.random.PRNGKey(self.run.seed))
      state = state._replace(replay=fresh.replay)
    return jax.device_put(state), saved['host']


# ----------------------------------------------------------------------------- small helpers

def _hns(game: str, score: float) -> float:
  return float(atari.human_normalized(game, score)) if game in atari.HUMAN_RANDOM else float('nan')


def _append_csv(path: str, row: dict):
  new = not os.path.exists(path)
  with open(path, 'a', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(row))
    if new:
      writer.writeheader()
    writer.writerow(row)


def _truncate_csvs(out_dir: str, steps: int):
  """Drops rows written after the checkpoint (an interrupted run may have logged beyond it)."""
  for name in ('train.csv', 'eval.csv'):
    path = os.path.join(out_dir, name)
    if not os.path.exists(path):
      continue
    with open(path, newline='') as f:
      rows = list(csv.DictReader(f))
    if not rows:
      continue
    with open(path, 'w', newline='') as f:
      writer = csv.DictWriter(f, fieldnames=list(rows[0]))
      writer.writeheader()
      writer.writerows(r for r in rows if int(r['env_steps']) <= steps)
