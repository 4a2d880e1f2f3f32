"""The pure parts of the envpool Atari actor-learner: run settings, the loop state, and `update`, which
stores one env step of every env in the frame-deduplicated device replay and runs the gradient steps
the replay ratio owes (`due_updates`), all inside one jitted call that donates the state.

Per iteration (E agent steps):  action = act(params, obs)  →  env.step(action)  →  update(state, step).
The host driver around these (env segments, evaluation, logs, checkpoints) is `atari.runner`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hyperagent.acting import ActorState
from hyperagent.agent import Agent, TrainState
from hyperagent.atari import env as atari
from hyperagent.atari import replay as atari_replay
from hyperagent.cli import check_choice, setting
from hyperagent.config import AGENTS, Config, make_config, parse_overrides

ENV_MODES = ('host', 'xla')
OBS_SHAPE = (atari_replay.STACK, 84, 84)
LEARN_METRICS = ('loss', 'td_loss', 'hyper_reg', 'grad_penalty', 'q_mean', 'target_mean', 'grad_norm')


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """One training run. Steps are agent steps summed over the training envs (frames = 4 × steps)."""
  game: str = setting('Breakout', 'any envpool Atari game, in any case (breakout, Pong, ms_pacman)',
                      parse=atari.canonical_game)
  protocol: str = setting('paper', "the env protocol: the paper's wrappers or Machado et al. (2018)",
                          choices=atari.PROTOCOLS)
  agent: str = setting('hyperagent', 'the agent preset', choices=AGENTS)
  seed: int = setting(0, 'the run seed (network, indices, envs, replay sampling)')
  steps: int = setting(2_000_000, 'agent steps over all training envs (frames = 4x; SPEC §4: 2M = 8M frames)')
  num_envs: int = setting(1, 'E training envs (the paper uses 1)')
  replay_ratio: float = setting(1.0, 'gradient updates per agent step (paper: 1; CleanRL DQN: 0.25)')
  env_mode: str = setting('host', "step envpool on the host between jitted calls, or inside jit ('xla')",
                          choices=ENV_MODES)
  num_threads: int = setting(0, 'envpool threads; 0 = one per env')
  chunk: int = setting(256, "iterations per jitted call in 'xla' mode")
  clip_rewards: bool = setting(True, 'learn from sign(r); scores always use the raw reward')
  eval_every: int = setting(20_000, 'agent steps between evaluations (0: none); one also at step 0')
  eval_episodes: int = setting(10, 'games per evaluation, one per eval env (SPEC §3)')
  final_eval_episodes: int = setting(200, 'games of the final evaluation, on the best parameters (SPEC §3)')
  final_eval_envs: int = setting(20, 'envs of the final evaluation')
  eval_max_episode_steps: int = setting(atari.MAX_EPISODE_STEPS, 'cap of eval games in agent steps (27k = 108k frames)')
  log_every: int = setting(10_000, 'agent steps between rows of train.csv')
  checkpoint_every: int = setting(100_000, 'agent steps between checkpoints (0: only at the end); each one cuts '
                                           'the running games, and a resumed run makes the same cuts')
  checkpoint_replay: bool = setting(True, 'save the replay in checkpoints: needed for an exact resume '
                                          '(~0.7 GB at 1e5 transitions)')
  overrides: tuple[tuple[str, Any], ...] = setting((), "agent Config fields, e.g. (('warmup_steps', 500),)",
                                                   parse=lambda text: tuple(parse_overrides([text]).items()))

  def __post_init__(self):
    check_choice('env_mode', self.env_mode, ENV_MODES)
    check_choice('Atari protocol', self.protocol, atari.PROTOCOLS)
    at_least = dict(num_envs=1, steps=1, chunk=1, eval_episodes=1, final_eval_episodes=1, final_eval_envs=1,
                    eval_max_episode_steps=1, log_every=1, num_threads=0, eval_every=0, checkpoint_every=0,
                    replay_ratio=0)
    for name, low in at_least.items():
      if getattr(self, name) < low:
        raise ValueError(f'{name} must be >= {low}, got {getattr(self, name)}.')

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


class LearnerState(NamedTuple):
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
  first: Any          # the returned observation starts a game: the step was envpool's auto-reset (`is_first`)
  game_over: Any


class Carry(NamedTuple):
  """What the next env step needs from the last one ([E] each)."""
  fresh_index: Any  # the next action draws a new index (SPEC §2.1: a training episode, life or game ended or began)
  lost_life: Any    # the last step lost a life (not the game): the next one is envpool's life reset
  lives: Any        # lives left after the last step


def reset_carry(info) -> Carry:
  """The carry after `env.reset()` (host arrays): every env starts a game."""
  lives = np.asarray(info['lives'])
  return Carry(np.ones(lives.shape, bool), np.zeros(lives.shape, bool), lives)


def read_step(carry: Carry, action, obs, reward, terminated, truncated, info) -> tuple[Step, Carry]:
  """(Step, the next step's Carry)."""
  first = atari.is_first(info, carry.lost_life, carry.lives)
  over = atari.game_over(terminated, truncated, info)
  step = Step(action, reward, atari.raw_reward(info), terminated, truncated, obs[:, -1], first, over)
  return step, Carry(terminated | truncated | first, terminated & ~over, info['lives'])


# ----------------------------------------------------------------------------- pure functions

def due_updates(env_steps, config: Config, ratio: float, xp=jnp):
  """Gradient steps owed after `env_steps` agent steps: the first one at the end of the warm-up, then
  `ratio` per agent step (SPEC §3: `if env_step >= learning_start: update`). `xp` is np on the host
  or jnp on the device; both compute in float32, so the two agree exactly."""
  if ratio <= 0:
    return xp.zeros_like(env_steps)
  steps = xp.asarray(env_steps)
  owed = xp.floor(xp.float32(ratio) * (steps - config.warmup_steps).astype(xp.float32)).astype(xp.int32) + 1
  return xp.where(config.warmed_up(steps), owed, 0)


def track_episodes(stats: EpisodeStats, step: Step) -> EpisodeStats:
  over = jnp.asarray(step.game_over, bool)
  first = jnp.asarray(step.first, bool)
  # a game still running at a first observation ended unseen (in a life reset, `atari.is_first`): it
  # is scored as it stood, and the step that started the next one is not counted in it
  unseen = first & (stats.running_length > 0) & ~over
  ret = jnp.where(unseen, stats.running_return, stats.running_return + step.raw_reward)
  length = jnp.where(unseen, stats.running_length, stats.running_length + 1)
  done = over | unseen
  restart = done | first
  return EpisodeStats(
      jnp.where(restart, 0.0, ret), jnp.where(restart, 0, length),
      stats.return_sum + jnp.sum(jnp.where(done, ret, 0.0)),
      stats.length_sum + jnp.sum(jnp.where(done, length, 0)), stats.count + jnp.sum(done))


def zero_sums() -> dict[str, jax.Array]:
  return {name: jnp.zeros((), jnp.float32) for name in LEARN_METRICS + ('count',)}


def make_update(agent: Agent, run: RunConfig) -> Callable[..., LearnerState]:
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

  def update(state: LearnerState, step: Step, num_updates: int | None = None) -> LearnerState:
    key, k_z, k_learn = jax.random.split(state.key, 3)
    z = agent.perturbation(k_z, (num_envs,))
    reward = jnp.asarray(step.reward, jnp.float32)
    reward = jnp.sign(reward) if run.clip_rewards else reward
    replay = atari_replay.add(state.replay, step.action, reward, step.terminated, step.truncated,
                              step.frame, z, step.first)
    env_steps = state.env_steps + num_envs
    carry = (state.train, k_learn, state.sums)
    if num_updates is None:
      num_updates = jnp.maximum(due_updates(env_steps, config, run.replay_ratio) - state.updates, 0)

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
    return LearnerState(train, state.actor, replay, key, env_steps, state.updates + num_updates,
                     track_episodes(state.episodes, step), sums)

  return update


def init_learner(agent: Agent, run: RunConfig, key: jax.Array) -> LearnerState:
  k_train, k_actor, k_loop = jax.random.split(key, 3)
  capacity_rows = -(-agent.config.replay_capacity // run.num_envs)  # replay_capacity transitions
  zeros_e = jnp.zeros((run.num_envs,))
  return LearnerState(
      train=agent.init(k_train), actor=agent.init_actor(k_actor, run.num_envs),
      replay=atari_replay.init(capacity_rows, run.num_envs, agent.config.index_dim),
      key=k_loop, env_steps=jnp.zeros((), jnp.int32), updates=jnp.zeros((), jnp.int32),
      episodes=EpisodeStats(zeros_e, zeros_e.astype(jnp.int32), jnp.zeros(()), jnp.zeros((), jnp.int32),
                            jnp.zeros((), jnp.int32)),
      sums=zero_sums())


def start_segment(state: LearnerState, frame) -> LearnerState:
  """New envs were just reset: their first frames start episodes; unfinished games are dropped."""
  zeros = jnp.zeros_like(state.episodes.running_return)
  episodes = state.episodes._replace(running_return=zeros, running_length=zeros.astype(jnp.int32))
  return state._replace(replay=atari_replay.add_reset(state.replay, frame), episodes=episodes)


