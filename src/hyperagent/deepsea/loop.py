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

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from hyperagent import replay
from hyperagent.acting import ActorState
from hyperagent.agent import Agent, TrainState, make_agent
from hyperagent.config import Config
from hyperagent.deepsea import env as deep_sea

class LoopSpec(NamedTuple):
  """What the compiled loop depends on besides the agent's Config (a jit cache key)."""
  size: int
  deterministic: bool = True
  eval_episodes: int = 100


class SeedState(NamedTuple):
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


def make_agent_for(config: Config, size: int) -> Agent:
  return make_agent(config, (size, size), 2, one_hot_input=True)


def init_seed(agent: Agent, spec: LoopSpec, capacity: int, seed: jax.Array, mapping: jax.Array) -> SeedState:
  """One seed's initial state, with a replay of `capacity` transitions (traceable: `init_all` vmaps
  it over seeds inside one jit)."""
  key = jax.random.PRNGKey(seed)
  k_train, k_actor, k_loop = jax.random.split(key, 3)
  env_state, position = deep_sea.reset(env_params_for(spec, mapping))
  buffer = replay.init(capacity, 1, position, agent.config.index_dim)
  return SeedState(agent.init(k_train), agent.init_actor(k_actor, 1), buffer, env_state, position,
                   jnp.ones((), bool), k_loop)


def env_params_for(spec: LoopSpec, mapping: jax.Array) -> deep_sea.DeepSeaParams:
  """The env of one seed inside the jitted loop, where its mapping is a (vmapped) argument."""
  return deep_sea.DeepSeaParams(spec.size, mapping, spec.deterministic)


def interact(agent: Agent, spec: LoopSpec, mapping: jax.Array, state: SeedState
             ) -> tuple[SeedState, StepLog, jax.Array]:
  """One env step of one seed: act, step, store, restart a finished episode.

  Returns the state, the step's log and the key for this step's replay sample.
  """
  env_params = env_params_for(spec, mapping)
  key, k_env, k_z, k_sample = jax.random.split(state.key, 4)
  action, actor = agent.act(state.train.params, state.actor, state.position[None], state.first[None])
  env, next_position, reward, terminated = deep_sea.step(env_params, state.env, action[0], k_env)
  z = agent.perturbation(k_z, (1,))
  buffer = replay.add(state.replay, state.position[None], action, reward[None], terminated[None],
                      jnp.zeros((1,), bool), next_position[None], z)
  log = StepLog(terminated, env.episode_return, env.total_bad_episodes, env.denoised_return)
  restart_env, restart_position = deep_sea.reset_episode(env_params, env)
  env = jax.tree.map(lambda a, b: jnp.where(terminated, a, b), restart_env, env)
  position = jnp.where(terminated, restart_position, next_position)
  return SeedState(state.train, actor, buffer, env, position, terminated, key), log, k_sample


def train_step(agent: Agent, spec: LoopSpec, mappings: jax.Array, states: SeedState, _=None
               ) -> tuple[SeedState, tuple[StepLog, dict[str, jax.Array]]]:
  """One env step of every seed (leading axis S), then (after the warm-up) one gradient step each."""
  config = agent.config
  states, log, k_sample = jax.vmap(functools.partial(interact, agent, spec))(mappings, states)

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
  learned = agent.warmed_up(states.actor.step[0])
  train, (td_loss, q_mean) = jax.lax.cond(learned, learn, skip, states.train)
  return states._replace(train=train), (log, dict(td_loss=td_loss, q_mean=q_mean, learned=learned))


def run_test_episodes(agent: Agent, spec: LoopSpec, mapping: jax.Array, params, key: jax.Array
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


def run_chunk(agent: Agent, spec: LoopSpec, length: int, mappings: jax.Array, states: SeedState
              ) -> tuple[SeedState, ChunkOut]:
  """`length` training steps then one evaluation, for every seed (leading axis S)."""
  step = functools.partial(train_step, agent, spec, mappings)
  states, (log, metrics) = jax.lax.scan(step, states, None, length=length)
  key, k_eval = jnp.moveaxis(jax.vmap(jax.random.split)(states.key), 1, 0)
  eval_return, eval_optimal = jax.vmap(functools.partial(run_test_episodes, agent, spec))(
      mappings, states.train.params, k_eval)
  updates = jnp.maximum(metrics['learned'].sum(), 1)
  per_seed = lambda x: jnp.moveaxis(x, 0, 1)  # scan stacks steps first: [L, S] -> [S, L]
  out = ChunkOut(jax.tree.map(per_seed, log), eval_return, eval_optimal,
                 metrics['td_loss'].sum(0) / updates, metrics['q_mean'].sum(0) / updates)
  return states._replace(key=key), out


@functools.lru_cache(maxsize=16)
def make_chunk_fn(config: Config, spec: LoopSpec
                  ) -> Callable[[int, jax.Array, SeedState], tuple[SeedState, ChunkOut]]:
  """(length, mappings[S, N, N], states[S]) -> (states, outs[S]): all seeds in one jitted call.

  Cached on what the compiled loop depends on, so runs that differ only in seeds, budget or
  mapping reuse one compilation.
  """
  agent = make_agent_for(config, spec.size)

  @functools.partial(jax.jit, static_argnums=0, donate_argnums=2)
  def chunk(length, mappings, states):
    return run_chunk(agent, spec, length, mappings, states)

  return chunk


def init_all(agent: Agent, spec: LoopSpec, capacity: int, seeds: jax.Array, mappings: jax.Array) -> SeedState:
  """Every seed's initial state (leading axis S) for seeds[S] and their mappings[S, N, N].

  One jitted call for all seeds: built op by op, the state cost ~30 small compilations (~2 s,
  a tenth of the official DeepSea-20 run).
  """
  init = jax.jit(jax.vmap(functools.partial(init_seed, agent, spec, capacity)))
  return init(jnp.asarray(seeds), jnp.asarray(mappings))
