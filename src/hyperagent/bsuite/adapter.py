"""bsuite's two-method agent contract on top of the shared jitted `act` and `learn`.

bsuite drives its agents one transition at a time (`select_action`, then `update`), so this adapter
is the one place where a Python loop steps a single env (E = 1). Per env step it makes three jitted
calls: `act` (whose action must come back to the host for the env), `store` (donating the replay,
so the write is in place) and sample + `learn` (donating the train state); the host does not wait
for the last two.

Every bsuite observation (a (1, d) vector, a 10x5 grid, a 28x28 MNIST image) goes through the
config's torso; the 'deepsea' preset's MLP flattens it, and none of bsuite's images is big enough
for the Nature CNN (36 px minimum). Observations are stored as float32 in bsuite's shape, except
DeepSea's one-hot N x N grids: those travel as the int position of their 1 (`one_hot_input`, the
same network and params as the dense MLP, as in the jitted DeepSea loop), so the replay holds
SPEC's 1e6 transitions at any N instead of 2·N² floats each; the network holds rows for the
N(N+1)/2 reachable cells only, as the jitted engine's does.
dm_env ends an episode with discount 0 on termination; a last step with a non-zero discount would be
a truncation (bootstrapped), which bsuite never produces.

`run` also plays bsuite's own `bsuite.baselines.jax.boot_dqn` (agent 'boot_dqn'), the reference row
of the report, through the same loop and logger.
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
import time
from typing import Any, Callable, Mapping, Optional

import bsuite
import dm_env
import jax
import jax.numpy as jnp
import numpy as np
from bsuite.baselines import base
from dm_env import specs

from hyperagent import cli, jitloop, replay
from hyperagent.agent import make_agent
from hyperagent.config import AGENTS, Config
from hyperagent.bsuite import csv_format, sweep
from hyperagent.bsuite.sweep import BOOT_DQN
from hyperagent.deepsea import env as deepsea_env

# The replay buffer of one id, per worker process. Every bsuite id but mnist* fits SPEC's 1e6
# transitions in it (catch: 0.4 GiB); mnist's 28x28 floats get ~170k, more than its 10k steps.
MAX_REPLAY_BYTES = 1 << 30
# Experiments whose observations are one-hot arrays (or all zeros after the last row).
ONE_HOT_EXPERIMENTS = ('deep_sea', 'deep_sea_stochastic')


def memory_capped_capacity(config: Config, obs_shape, one_hot_input: bool = False,
                           max_bytes: int = MAX_REPLAY_BYTES) -> int:
  """config.replay_capacity, or what fits in max_bytes when that is smaller (at least one batch)."""
  return replay.memory_capped(config.replay_capacity, replay.transition_bytes(obs_shape, one_hot_input, config.index_dim),
                              max_bytes, config.batch_size)


def one_hot_position(observation: np.ndarray) -> int:
  """The flat (row-major) index of the single 1, or observation.size for all zeros."""
  hot = np.flatnonzero(observation)
  if hot.size == 0:
    return int(observation.size)
  if hot.size == 1 and observation.flat[hot[0]] == 1:
    return int(hot[0])
  raise ValueError(f'one_hot_input needs one-hot (or all-zero) observations; got {hot.size} '
                   f'non-zero entries')


class BsuiteAdapter(base.Agent):
  """HyperAgent / Ensemble+ / DQN (whatever `config` says) as a bsuite agent.

  Learning starts once `config.warmup_steps` transitions are stored (the acting side takes uniform
  random actions until then), with one gradient step per env step after that, as in SPEC §3.
  A perturbation z is drawn for every stored transition, warm-up included.
  """

  def __init__(self, obs_spec: specs.Array, action_spec: specs.DiscreteArray, config: Config,
               seed: int = 0, capacity: Optional[int] = None, one_hot_input: bool = False,
               one_hot_cells: Optional[tuple[int, ...]] = None):
    if not isinstance(action_spec, specs.DiscreteArray):
      raise ValueError(f'bsuite agents need a DiscreteArray action spec, got {action_spec!r}')
    self.config = config
    self.obs_shape = tuple(obs_spec.shape)
    self.one_hot_input = one_hot_input
    self.capacity = capacity or memory_capped_capacity(config, self.obs_shape, one_hot_input)
    self.agent, init_states, self._store, self._learn = _compiled(
        config, self.obs_shape, int(action_spec.num_values), self.capacity, one_hot_input, one_hot_cells)
    k_train, k_actor, self._key = jax.random.split(jax.random.key(seed), 3)
    self.train_state, self.replay_state = init_states(k_train)
    self.actor_state = self.agent.init_actor(k_actor, 1)
    self.stored = 0          # transitions stored so far (host-side, so warm-up needs no device sync)
    self.metrics: dict[str, Any] = {}  # last learn step's metrics (device arrays; reading them syncs)

  def _obs(self, observation) -> np.ndarray:
    """One observation as the network and replay take it, with a leading env axis of 1."""
    if self.one_hot_input:
      return np.array([one_hot_position(np.asarray(observation))], np.int32)
    return np.asarray(observation, np.float32)[None]

  def select_action(self, timestep: dm_env.TimeStep) -> int:
    action, self.actor_state = self.agent.act(
        self.train_state.params, self.actor_state, self._obs(timestep.observation),
        np.array([timestep.first()]))
    return int(action[0])

  def update(self, timestep: dm_env.TimeStep, action: int, new_timestep: dm_env.TimeStep) -> None:
    last = new_timestep.last()
    terminated = last and new_timestep.discount == 0.0
    transition = (self._obs(timestep.observation), np.array([action], np.int32),
                  np.array([new_timestep.reward or 0.0], np.float32), np.array([terminated]),
                  np.array([last and not terminated]), self._obs(new_timestep.observation))
    self.stored += 1
    self.replay_state, self._key, k_sample = self._store(self.replay_state, self._key, transition)
    if self.agent.warmed_up(self.stored):
      self.train_state, self.metrics = self._learn(self.train_state, self.replay_state, k_sample)


@functools.lru_cache(maxsize=8)
def _compiled(config: Config, obs_shape: tuple[int, ...], num_actions: int, capacity: int,
              one_hot_input: bool, one_hot_cells: Optional[tuple[int, ...]]):
  """(agent, init_states, store, learn) for one (config, spec, capacity), made once.

  Compiling `learn` takes seconds; a sweep process playing several ids of one shape (bandit/0..19,
  the tests) reuses the compiled functions instead of making new closures that JAX would compile
  again. Everything cached is a pure function; the states live in each BsuiteAdapter.
  """
  agent = make_agent(config, obs_shape, num_actions, one_hot_input, one_hot_cells)

  @jax.jit  # one compile, instead of one per eager op (seconds per id)
  def init_states(key):
    example_obs = jnp.zeros((), jnp.int32) if one_hot_input else jnp.zeros(obs_shape, jnp.float32)
    return agent.init(key), replay.init(capacity, 1, example_obs, config.index_dim)

  # The jitted loop's key schedule, its env key unused (bsuite's environment draws from its own RNG):
  # on a deterministic id the two engines draw the same perturbations and replay batches.
  def store(replay_state, key, transition):
    key, _, k_z, k_sample = jitloop.step_keys(key)
    z = agent.perturbation(k_z, (1,))
    return replay.add(replay_state, *transition, z), key, k_sample

  # Not fused with `store`: fused, a step took 2.4 instead of 1.0 ms at 1e6 transitions and grew
  # with the capacity (measured on CPU), as if the donated buffer were copied rather than updated.
  def learn(train_state, replay_state, k_sample):
    batch = replay.sample(replay_state, k_sample, config.batch_size, config.n_step, config.discount)
    return agent.learn(train_state, batch, replay.size(replay_state))

  return (agent, init_states, jax.jit(store, donate_argnums=(0, 1)),
          jax.jit(learn, donate_argnums=(0,)))


def make_bsuite_agent(agent_name: str, settings: Mapping[str, Any], obs_spec: specs.Array,
                      action_spec: specs.DiscreteArray, seed: int = 0,
                      one_hot_input: bool = False, one_hot_cells: Optional[tuple[int, ...]] = None
                      ) -> base.Agent:
  """Ours (config.AGENTS, settings = Config.to_dict()) or bsuite's boot_dqn (settings =
  sweep.BOOT_DQN_DEFAULTS, possibly overridden; it always takes dense input). one_hot_cells: see
  hypermodel.make_network."""
  if agent_name == BOOT_DQN:
    from bsuite.baselines.jax import boot_dqn
    np.random.seed(seed)  # boot_dqn draws actions, heads and masks from numpy's global RNG
    return boot_dqn.default_agent(obs_spec, action_spec, seed=seed, **settings)
  cli.check_choice('agent', agent_name, AGENTS + (BOOT_DQN,))
  return BsuiteAdapter(obs_spec, action_spec, Config.from_dict(settings), seed,
                     one_hot_input=one_hot_input, one_hot_cells=one_hot_cells)


def run(bsuite_id: str, results_dir: str, agent_name: str, settings: Mapping[str, Any], seed: int = 0,
        num_episodes: Optional[int] = None, overwrite: bool = False,
        on_episode: Optional[Callable[[int], None]] = None) -> dict[str, Any]:
  """Plays `bsuite_id` through bsuite's CSV logger into `results_dir`; returns a short summary.

  The loop is bsuite.baselines.experiment.run's, plus a per-episode callback.

  Args:
    agent_name, settings: see `make_bsuite_agent`.
    num_episodes: stop early (quick runs); default bsuite's own count for the id.
    overwrite: replace an existing CSV (bsuite refuses otherwise).
    on_episode: called with the number of finished episodes after each one (progress bars).
  """
  with contextlib.redirect_stdout(io.StringIO()):  # bsuite prints coloured banners on load
    env = bsuite.load_and_record_to_csv(bsuite_id, results_dir, overwrite=overwrite)
  episodes = int(num_episodes or env.bsuite_num_episodes)
  one_hot = bsuite_id.split('/')[0] in ONE_HOT_EXPERIMENTS
  cells = deepsea_env.reachable_positions(env.observation_spec().shape[0]) if one_hot else None
  player = make_bsuite_agent(agent_name, settings, env.observation_spec(), env.action_spec(), seed, one_hot,
                             cells)
  steps, total_return = 0, 0.0
  for episode in range(1, episodes + 1):
    timestep = env.reset()
    while not timestep.last():
      action = player.select_action(timestep)
      new_timestep = env.step(action)
      player.update(timestep, action, new_timestep)
      steps += 1
      total_return += float(new_timestep.reward or 0.0)
      timestep = new_timestep
    if on_episode is not None:
      on_episode(episode)
  summary = dict(bsuite_id=bsuite_id, agent=agent_name, episodes=episodes, steps=steps,
                 total_return=total_return)
  if isinstance(player, BsuiteAdapter):
    # Ensemble+ keeps one (equal) step count per member
    summary.update(learn_steps=int(np.ravel(player.train_state.step)[0]), replay_capacity=player.capacity,
                   one_hot_input=one_hot)
  return summary


def play_id(bsuite_id: str, results_dir: str, agent_name: str, settings: Mapping[str, Any], seed: int,
           episodes: int, progress_every_s: float = 0.5) -> dict[str, Any]:
  """Runs one id from scratch (any old CSV is replaced) under its own seed, `sweep.id_seed(seed, id)`;
  the pool's task. Reports progress to the queue and returns the adapter's summary plus wall-clock
  seconds (agent construction included)."""
  path = csv_format.bsuite_csv_path(results_dir, bsuite_id)
  if os.path.exists(path):
    os.remove(path)
  last_report = [time.monotonic(), 0]

  def on_episode(episode: int):
    now = time.monotonic()
    if sweep.progress_queue() is not None and (now - last_report[0] >= progress_every_s or episode == episodes):
      sweep.progress_queue().put((bsuite_id, episode - last_report[1]))
      last_report[:] = [now, episode]

  start = time.monotonic()
  summary = run(bsuite_id, results_dir, agent_name, settings, sweep.id_seed(seed, bsuite_id), episodes,
                overwrite=True, on_episode=on_episode)
  summary['seconds'] = round(time.monotonic() - start, 3)
  return summary
