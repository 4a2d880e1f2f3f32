"""Training on any pure-JAX environment as one jitted function: act, store, learn and evaluate inside
`lax.scan`, the runs (bsuite ids x seeds) vmapped along one leading axis.

The protocol is SPEC §3's: one training env per run, `warmup_steps` uniform random actions, then one
gradient step per env step. A chunk of `length` env steps is one jitted call over all runs; it
returns fixed-shape arrays (per-step episode records, an optional evaluation, mean losses) to the
host, which keeps the progress bar, the logs and the checkpoints (`drive`, shared by the DeepSea and
MinAtar wings; the bsuite engine drives groups of ids its own way).

Episodes are counted as bsuite's logger counts them (`Counters`): a run whose episode budget is spent
stops counting and stops learning, while the runs beside it go on (bsuite's budgets are in episodes,
so runs of one experiment finish at different steps). The environment is a `JaxEnv`; its params
(one per run, stacked) are an argument of the compiled chunk, so every id of one experiment that
shares shapes shares one compilation.
"""
from __future__ import annotations

import functools
import itertools
import os
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from tqdm.auto import tqdm

from hyperagent import checkpoint, cli, replay
from hyperagent.acting import ActorState
from hyperagent.agent import Agent, TrainState, make_agent
from hyperagent.config import Config
from hyperagent.environment import JaxEnv


class LoopSpec(NamedTuple):
  """What the compiled loop depends on besides the agent's Config and the env (a jit cache key)."""
  eval_episodes: int = 0  # test episodes after each chunk, one sampled index each (0: none)
  eval_steps: int = 0     # steps each test episode may take (DeepSea: exactly N)
  # Runs end at different steps (bsuite's per-id budgets): a run past its budget keeps its parameters,
  # at the cost of a select over every parameter and optimiser moment per step. Off where the host
  # stops all runs together at their common budget (DeepSea), which never trains past it.
  own_budgets: bool = False


class Counters(NamedTuple):
  """bsuite's logger's bookkeeping (`bsuite.utils.wrappers.Logging`), per run."""
  steps: jax.Array           # int32: transitions so far
  episode: jax.Array         # int32: finished episodes
  total_return: jax.Array    # float32: all rewards so far
  episode_len: jax.Array     # int32: steps of the current episode
  episode_return: jax.Array  # float32: reward of the current episode
  # float32: what total_return's rounding has dropped so far (Kahan's compensated sum), so that
  # total_return - total_return_error is the float64 sum of the (float32) rewards to 1e-8 over 10⁶ steps
  # of cartpole_swingup's, where a plain float32 sum drifts by ~0.07% (tests/test_jitloop.py). bsuite's
  # own rewards are float64: the port's 0.9 is 1 - float32(0.1), 2.4e-8 below, so against bsuite the
  # sum is ~1.4e-8 off (relative), not 0.07%
  total_return_error: jax.Array


class RunState(NamedTuple):
  """Everything one run carries from step to step (checkpointable, vmappable)."""
  train: TrainState
  actor: ActorState
  replay: replay.ReplayState
  env: Any                 # the JaxEnv's state pytree
  observation: jax.Array   # the current observation
  first: jax.Array         # `observation` starts an episode
  counters: Counters
  budget: jax.Array        # int32: episodes to play; the run stops counting and learning after them
  key: jax.Array


class StepLog(NamedTuple):
  """Per env step; the host keeps the rows where `last` (one per counted episode)."""
  last: jax.Array          # an episode within the budget ended on this step
  counters: Counters       # as bsuite's logger would write them at that episode's end
  info: dict[str, jax.Array]  # the env's bsuite_info() after the step


class ChunkOut(NamedTuple):
  steps: StepLog                  # [L] per env step
  eval_return: jax.Array          # mean return of the test episodes (0 without evaluation)
  eval_info: dict[str, jax.Array]  # mean of each info field at the end of the test episodes
  td_loss: jax.Array              # mean over the chunk's updates (0 in warm-up)
  q_mean: jax.Array


def stack_runs(trees: list[Any]) -> Any:
  """Per-run pytrees (env params of each id or seed) stacked along the leading runs axis."""
  return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def chunk_lengths(total_steps: int, every: int) -> list[int]:
  """The steps of each chunk: `every` each (one evaluation after each), the remainder last."""
  full, rest = divmod(total_steps, every)
  return [every] * full + ([rest] if rest else [])


def make_agent_for(config: Config, env: JaxEnv) -> Agent:
  return make_agent(config, env.observation_shape, env.num_actions, one_hot_input=env.one_hot_input,
                    one_hot_cells=env.one_hot_cells)


def example_observation(env: JaxEnv) -> jax.Array:
  """One observation's shape and dtype as the replay stores it."""
  if env.one_hot_input:
    return jnp.zeros((), jnp.int32)
  return jnp.zeros(env.observation_shape, env.observation_dtype)


# fold_in(key, i) is split(key, n)[i] for every n > i (JAX's partitionable threefry), so the init and
# reset keys are folded in far beyond any split the loop or an environment takes of the same key.
INIT_KEY, RESET_KEY = 2**31 + 1, 2**31 + 2


def step_keys(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """(next key, env step, perturbation z, replay sample) for one env step of a run. The bsuite
  adapter splits its keys here too, so both bsuite engines draw the same z and batches."""
  key, k_env, k_z, k_sample = jax.random.split(key, 4)
  return key, k_env, k_z, k_sample


def env_keys(key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(init, reset) keys derived from `key` apart from its splits. Environments that draw nothing at
  init and reset (DeepSea) see exactly the step draws they saw before the loop was generic."""
  return jax.random.fold_in(key, INIT_KEY), jax.random.fold_in(key, RESET_KEY)


def init_run(agent: Agent, env: JaxEnv, capacity: int, seed: jax.Array, env_params: Any,
             budget: jax.Array) -> RunState:
  """One run's initial state, with a replay of `capacity` transitions (traceable: `init_runs` vmaps
  it over runs inside one jit)."""
  key = jax.random.PRNGKey(seed)
  k_train, k_actor, k_loop = jax.random.split(key, 3)
  k_init, k_reset = env_keys(k_loop)
  env_state = env.init(env_params, k_init)
  env_state, observation = env.reset(env_params, env_state, k_reset)
  buffer = replay.init(capacity, 1, example_observation(env), agent.config.index_dim)
  zero_i, zero_f = jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32)
  counters = Counters(zero_i, zero_i, zero_f, zero_i, zero_f, zero_f)
  state = RunState(agent.init(k_train), agent.init_actor(k_actor, 1), buffer, env_state, observation,
                   jnp.ones((), bool), counters, jnp.asarray(budget, jnp.int32), k_loop)
  # Leaves built from Python numbers (gymnax's MinAtar counters) are weak-typed here and strong once a
  # chunk returns them; the changed input types would compile the chunk a second time.
  return jax.tree.map(lambda x: jnp.asarray(x, jnp.result_type(x)), state)


def compensated_add(total: jax.Array, error: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Kahan's step: (total + x, the new error), where `error` is what `total` has lost to rounding
  (the exact sum is total - error). XLA keeps the order of float operations, so nothing cancels."""
  y = x - error
  new_total = total + y
  return new_total, (new_total - total) - y


def active(state: RunState) -> jax.Array:
  """The run has episodes of its budget left to play."""
  return state.counters.episode < state.budget


def interact(agent: Agent, env: JaxEnv, env_params: Any, state: RunState
             ) -> tuple[RunState, StepLog, jax.Array]:
  """One env step of one run: act, step, store, count, restart a finished episode.

  Returns the state, the step's log and the key for this step's replay sample.
  """
  key, k_env, k_z, k_sample = step_keys(state.key)
  action, actor = agent.act(state.train.params, state.actor, state.observation[None], state.first[None])
  env_state, out = env.step(env_params, state.env, action[0], k_env)
  terminated = out.last & (out.discount == 0)
  z = agent.perturbation(k_z, (1,))
  buffer = replay.add(state.replay, state.observation[None], action, out.reward[None], terminated[None],
                      (out.last & ~terminated)[None], out.observation[None], z)

  counting = active(state)
  c = state.counters
  total_return, total_return_error = compensated_add(c.total_return, c.total_return_error, out.reward)
  ended = Counters(c.steps + 1, c.episode + out.last.astype(jnp.int32), total_return,
                   c.episode_len + 1, c.episode_return + out.reward, total_return_error)
  log = StepLog(out.last & counting, ended, env.info(env_params, env_state))
  counters = jax.tree.map(lambda new, old: jnp.where(counting, new, old), ended, c)
  counters = counters._replace(  # a new episode starts from zero
      episode_len=jnp.where(out.last, 0, counters.episode_len),
      episode_return=jnp.where(out.last, 0.0, counters.episode_return))

  _, k_reset = env_keys(k_env)
  restart_env, restart_observation = env.reset(env_params, env_state, k_reset)
  env_state = jax.tree.map(lambda a, b: jnp.where(out.last, a, b), restart_env, env_state)
  observation = jnp.where(out.last, restart_observation, out.observation)
  state = state._replace(actor=actor, replay=buffer, env=env_state, observation=observation,
                         first=out.last, counters=counters, key=key)
  return state, log, k_sample


def train_step(agent: Agent, env: JaxEnv, spec: LoopSpec, env_params: Any, states: RunState, _=None
               ) -> tuple[RunState, tuple[StepLog, dict[str, jax.Array]]]:
  """One env step of every run (leading axis R), then (after the warm-up) one gradient step each."""
  config = agent.config
  learning = active(states)  # before the step: the step that ends the budget still learns
  states, log, k_sample = jax.vmap(functools.partial(interact, agent, env))(env_params, states)

  def learn_one(train, buffer, key):
    batch = replay.sample(buffer, key, config.batch_size, config.n_step, config.discount)
    train, metrics = agent.learn(train, batch, replay.size(buffer))
    return train, (metrics['td_loss'], metrics['q_mean'])

  def learn(train):
    new, metrics = jax.vmap(learn_one)(train, states.replay, k_sample)
    if spec.own_budgets:  # runs past their budget keep their parameters
      new = jax.tree.map(lambda n, o: jnp.where(_expand(learning, n), n, o), new, train)
    return new, metrics

  def skip(train):
    return train, (jnp.zeros(k_sample.shape[:1]), jnp.zeros(k_sample.shape[:1]))

  # The first update comes once warmup_steps transitions are stored (SPEC §3). Runs step in
  # lockstep, so one predicate serves them all and the cond stays a real branch: under vmap it
  # would become a select that runs learn during the warm-up and copies every parameter each step.
  learned = agent.warmed_up(states.actor.step[0])
  train, (td_loss, q_mean) = jax.lax.cond(learned, learn, skip, states.train)
  metrics = dict(td_loss=td_loss, q_mean=q_mean, learned=learned & learning)
  return states._replace(train=train), (log, metrics)


def run_test_episodes(agent: Agent, env: JaxEnv, spec: LoopSpec, env_params: Any, params, key: jax.Array
                      ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """`spec.eval_episodes` test episodes in parallel, one sampled index each (SPEC §2.2), each in a
  fresh env for at most `spec.eval_steps` steps.

  Returns (returns[episodes], each info field at the episodes' ends [episodes]).
  """
  num = spec.eval_episodes
  k_actor, k_env = jax.random.split(key)
  actor = agent.init_actor(k_actor, num)
  k_init, k_reset = env_keys(k_env)

  def fresh(k_init, k_reset):
    return env.reset(env_params, env.init(env_params, k_init), k_reset)

  env_state, observation = jax.vmap(fresh)(jax.random.split(k_init, num), jax.random.split(k_reset, num))

  def body(carry, inputs):
    env_state, observation, actor, returns, done = carry
    t, k = inputs
    action, actor = agent.act(params, actor, observation, jnp.full((num,), t == 0), evaluation=True)
    new_env, out = jax.vmap(env.step, in_axes=(None, 0, 0, 0))(
        env_params, env_state, action, jax.random.split(k, num))
    # A finished test episode stays as it ended: its env is not stepped again.
    env_state = jax.tree.map(lambda n, o: jnp.where(_expand(done, n), o, n), new_env, env_state)
    returns = returns + jnp.where(done, 0.0, out.reward)
    return (env_state, out.observation, actor, returns, done | out.last), None

  steps = (jnp.arange(spec.eval_steps), jax.random.split(k_env, spec.eval_steps))
  carry = (env_state, observation, actor, jnp.zeros((num,), jnp.float32), jnp.zeros((num,), bool))
  (env_state, _, _, returns, _), _ = jax.lax.scan(body, carry, steps)
  info = jax.vmap(env.info, in_axes=(None, 0))(env_params, env_state)
  return returns, info


def _expand(mask: jax.Array, like: jax.Array) -> jax.Array:
  return mask.reshape(mask.shape + (1,) * (like.ndim - mask.ndim))


def run_chunk(agent: Agent, env: JaxEnv, spec: LoopSpec, length: int, env_params: Any, states: RunState
              ) -> tuple[RunState, ChunkOut]:
  """`length` training steps then (if spec.eval_episodes) one evaluation, for every run (axis R)."""
  step = functools.partial(train_step, agent, env, spec, env_params)
  states, (log, metrics) = jax.lax.scan(step, states, None, length=length)
  runs = states.counters.episode.shape[0]
  if spec.eval_episodes:
    key, k_eval = jnp.moveaxis(jax.vmap(jax.random.split)(states.key), 1, 0)
    eval_return, eval_info = jax.tree.map(lambda x: x.mean(-1), jax.vmap(
        functools.partial(run_test_episodes, agent, env, spec))(env_params, states.train.params, k_eval))
    states = states._replace(key=key)
  else:
    eval_return, eval_info = jnp.zeros((runs,)), {}
  learned = metrics['learned']  # [L, R]: warmed up and within the budget
  updates = jnp.maximum(learned.sum(0), 1)
  mean = lambda x: jnp.where(learned, x, 0.0).sum(0) / updates
  per_run = lambda x: jnp.moveaxis(x, 0, 1)  # scan stacks steps first: [L, R] -> [R, L]
  out = ChunkOut(jax.tree.map(per_run, log), eval_return, eval_info, mean(metrics['td_loss']),
                 mean(metrics['q_mean']))
  return states, out


@functools.lru_cache(maxsize=32)
def make_chunk_fn(config: Config, env: JaxEnv, spec: LoopSpec
                  ) -> Callable[[int, Any, RunState], tuple[RunState, ChunkOut]]:
  """(length, env_params[R], states[R]) -> (states, outs[R]): all runs in one jitted call.

  Cached on what the compiled loop depends on, so runs that differ only in seeds, budgets or env
  params reuse one compilation.
  """
  agent = make_agent_for(config, env)

  @functools.partial(jax.jit, static_argnums=0, donate_argnums=2)
  def chunk(length, env_params, states):
    return run_chunk(agent, env, spec, length, env_params, states)

  return chunk


def init_runs(agent: Agent, env: JaxEnv, capacity: int, seeds: jax.Array, env_params: Any,
              budgets: jax.Array) -> RunState:
  """Every run's initial state (leading axis R) for seeds[R], env_params[R] and budgets[R], in one
  jitted call (built op by op, the state cost ~30 small compilations, ~2 s)."""
  return _init_fn(agent.config, env, capacity)(jnp.asarray(seeds), env_params, jnp.asarray(budgets))


@functools.lru_cache(maxsize=32)
def _init_fn(config: Config, env: JaxEnv, capacity: int) -> Callable[..., RunState]:
  """Compiled once per (config, env, capacity): a sweep starts many groups of one shape. The state
  depends on the agent only through its config (init, init_actor), so any agent of it may call."""
  return jax.jit(jax.vmap(functools.partial(init_run, make_agent_for(config, env), env, capacity)))


# ----------------------------------------------------------------------------- host driver


class Driver(NamedTuple):
  """How a wing's host side plays a run's chunks: everything `drive` needs besides the state."""
  chunk: Callable[..., tuple[RunState, ChunkOut]]  # make_chunk_fn's
  env_params: Any
  lengths: list[int]                               # steps of every chunk of the run
  append: Callable[..., Any]                       # (record, out, states, steps done, wall s) -> record
  postfix: Callable[[Any], dict[str, str]]         # record -> progress-bar fields
  finished: Callable[[Any], bool]                  # record -> stop before the last chunk (all seeds solved)
  position: Callable[[int], str]                   # steps done -> 'episode 16 of 24', for the Ctrl-C message
  checkpoint_path: str | None
  checkpoint_every_s: float
  run_meta: dict[str, Any]                         # what a checkpoint must match to be resumed
  may_grow: tuple[tuple[str, str], ...] = ()       # run_meta fields that may be larger on resuming


CHECKPOINT_SHARE = 0.05  # the most of a run's time that periodic checkpoints may take


def checkpoint_period(every_s: float, save_seconds: float) -> float:
  """Seconds between periodic checkpoints: `every_s`, or longer where the last save took more than
  CHECKPOINT_SHARE of that (Ensemble+'s three seeds at DeepSea N = 100 are ~390 MB, ~2 s to write,
  which every 15 s would cost a tenth of the run; a bsuite cartpole group's replay ~1.5 GB)."""
  return max(every_s, save_seconds / CHECKPOINT_SHARE)


def resume(driver: Driver, states: RunState, record: Any) -> tuple[RunState, Any, int, float]:
  """(states, record, chunks done, wall seconds already spent) from a matching checkpoint; the fresh
  ones if there is none. A checkpoint of another run is refused with a one-line error."""
  path = driver.checkpoint_path
  if not path or not os.path.exists(path):
    return states, record, 0, 0.0
  checkpoint.check_same_run(path, driver.run_meta, may_grow=driver.may_grow)
  meta, trees = checkpoint.load(path, dict(states=states, result=record), exact_shapes=('states',))
  return jax.tree.map(jnp.asarray, trees['states']), trees['result'], meta['chunks_done'], meta['wall_s']


def announce(driver: Driver, record: Any, done: int) -> None:
  """Prints whether the run starts, resumes (where) or is finished: once its checkpoint is accepted
  (`resume`, then `continue_from`), so a refused one never reads as resumed."""
  path = driver.checkpoint_path
  if not done:
    print('starting a new run.', flush=True)
  elif done >= len(driver.lengths) or driver.finished(record):
    print(f'this run finished already: loading it from {path}.', flush=True)
  else:
    print(f'resuming from {path} at {driver.position(sum(driver.lengths[:done]))}.', flush=True)


def continue_from(driver: Driver, states: RunState, evaluated_at: Any, done: int, capacity: int) -> RunState:
  """`resume`'s states, checked to continue this run's chunks, with replays of `capacity` rows. A run
  resumed with a larger budget (`Driver.may_grow`, finished or not) is extended: it must have
  evaluated where this run evaluates, else its last chunk was cut short elsewhere and going on from
  it would not give this run; where its replay is smaller, it held every step of the shorter run
  (`replay.capacity`), never wrapped, and grows as a buffer of this size from the start would have."""
  ends = list(itertools.accumulate(driver.lengths))[:done]
  saved = [int(step) for step in evaluated_at]
  if saved != ends:
    i = next((i for i, (a, b) in enumerate(zip(saved, ends)) if a != b), min(len(saved), len(ends)))
    got = f'at step {saved[i]:,}' if i < len(saved) else f'{len(saved)} times'
    want = f'at step {ends[i]:,}' if i < len(ends) else f'{len(ends)} times'
    raise checkpoint.CheckpointError(
        f'{driver.checkpoint_path} evaluated {got} where this run evaluates {want} (chunks of '
        f'{driver.lengths[0]:,} steps up to {sum(driver.lengths):,}), so going on from it would not give this '
        'run; use another results folder, or --fresh to start again.')
  if states.replay.action.shape[1] < capacity:
    states = states._replace(replay=replay.grow(states.replay, capacity, axis=1))
  return states


def drive(driver: Driver, states: RunState, record: Any, chunks_done: int, end: int, *, wall_before: float,
          desc: str, progress: bool, stop_on_interrupt: bool, log_every_s: float = cli.LOG_EVERY_S) -> Any:
  """Plays chunks `chunks_done` .. `end - 1` with a progress bar, a checkpoint every `checkpoint_every_s`
  seconds (or less often, where writing one takes more than `CHECKPOINT_SHARE` of that) and at the
  end; returns the record. Without the bar (`progress=False`: runs logged to a
  file), one line every `log_every_s` says where the run is. With `stop_on_interrupt`, a Ctrl-C ends
  the current chunk, saves and raises `checkpoint.Interrupted` (main thread only; a second Ctrl-C
  interrupts at once)."""
  path, lengths = driver.checkpoint_path, driver.lengths
  ends = list(itertools.accumulate(lengths))  # steps done after each chunk
  start, last_save = time.perf_counter() - wall_before, time.perf_counter()
  last_log, save_seconds = time.perf_counter(), 0.0
  bar = tqdm(total=sum(lengths), initial=ends[chunks_done - 1] if chunks_done else 0, unit='step', unit_scale=True,
             disable=not progress, desc=desc)
  with checkpoint.deferred_interrupt(stop_on_interrupt) as interrupted:
    for i in range(chunks_done, end):
      states, out = driver.chunk(lengths[i], driver.env_params, states)
      jax.block_until_ready(out)  # else the clock reads the chunk's (asynchronous) dispatch, not its end
      steps = ends[i]
      record = driver.append(record, out, states, steps, time.perf_counter() - start)
      bar.update(lengths[i])
      bar.set_postfix(driver.postfix(record))
      if not progress and time.perf_counter() - last_log >= log_every_s:
        fields = ''.join(f', {name} {value}' for name, value in driver.postfix(record).items())
        print(f'{desc}: {driver.position(steps)}, {time.perf_counter() - start:,.0f} s{fields}', flush=True)
        last_log = time.perf_counter()
      done, stop = driver.finished(record), interrupted()
      every = checkpoint_period(driver.checkpoint_every_s, save_seconds)
      if path and (i == end - 1 or done or stop or time.perf_counter() - last_save > every):
        began = time.perf_counter()
        checkpoint.save(path, dict(run=driver.run_meta, chunks_done=i + 1, wall_s=began - start),
                        dict(states=states, result=record))
        last_save = time.perf_counter()
        save_seconds = last_save - began
      if stop:
        bar.close()
        where = (f'checkpoint saved in {path}; run the same command to resume' if path
                 else 'no checkpoint path was given, so nothing was saved')
        raise checkpoint.Interrupted(f'interrupted at {driver.position(steps)}: {where}.')
      if done:
        break
  bar.close()
  return record
