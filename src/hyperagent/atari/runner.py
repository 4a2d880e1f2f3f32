"""The host driver of the envpool Atari actor-learner: `Runner` builds the jitted functions once
and `train` runs (or resumes) a run into a folder.

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
score), checkpoint.npz.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from hyperagent import checkpoint, cli
from hyperagent.agent import make_agent
from hyperagent.atari import env as atari
from hyperagent.atari.loop import (OBS_SHAPE, LEARN_METRICS, Carry, LearnerState, RunConfig, due_updates, read_step,
                                   init_learner, make_update, reset_carry, start_segment, zero_sums)

# Files that make a folder a run's: a new run never writes over them (resume, or --fresh).
RUN_FILES = ('checkpoint.npz', 'train.csv', 'eval.csv', 'final.json')
# Evaluation keys are folded into the run's root key far from the splits the learner takes of it
# (fold_in(key, i) is split(key, n)[i]): the evaluation at step s, and the final one.
EVAL_KEY, FINAL_EVAL_KEY = 1_000_003, 2**31 + 3
# The replay's per-row arrays (leading axis: capacity rows), saved up to the rows written.
REPLAY_ROWS = ('frame', 'action', 'reward', 'terminated', 'truncated', 'perturbation', 'first')
# RunConfig fields a resumed run may change: they do not alter the training numbers.
RESUMABLE_CHANGES = ('steps', 'log_every', 'eval_every', 'final_eval_episodes', 'final_eval_envs',
                     'num_threads', 'chunk')


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
  def run_host(self, env, state: LearnerState, obs, carry: Carry, iterations: int, timer: dict, stop=None):
    """Runs `iterations` iterations, or fewer if `stop()` turns true; returns how many ran last."""
    steps, updates = int(state.env_steps), int(state.updates)
    for done in range(iterations):
      if stop is not None and stop():
        return state, obs, carry, done
      steps += self.run.num_envs
      due = int(due_updates(np.int32(steps), self.config, self.run.replay_ratio, xp=np))
      num_updates, updates = max(due - updates, 0), max(due, updates)
      t0 = time.perf_counter()
      action, actor = self.agent.act(state.train.params, state.actor, obs, carry.fresh_index)
      action = np.asarray(action)
      t1 = time.perf_counter()
      obs, reward, terminated, truncated, info = env.step(action)
      t2 = time.perf_counter()
      step, carry = read_step(carry, action, obs, reward, terminated, truncated, info)
      state = self.update(state._replace(actor=actor), step, num_updates)
      if timer.get('sync'):
        jax.block_until_ready(state.env_steps)
      t3 = time.perf_counter()
      timer['act'] = timer.get('act', 0.0) + t1 - t0
      timer['env'] = timer.get('env', 0.0) + t2 - t1
      timer['learn'] = timer.get('learn', 0.0) + t3 - t2
    return state, obs, carry, iterations

  def _xla_chunk(self, env):
    """jit(fori_loop(act → envpool XLA step → update)) over a traced number of iterations."""
    _, _, _, xla_step = env.xla()
    agent, update = self.agent, self._update_fn

    def chunk(handle, state, obs, carry, iterations):
      def body(_, loop):
        handle, state, obs, env_carry = loop
        action, actor = agent.act(state.train.params, state.actor, obs, env_carry.fresh_index)
        handle, (obs, reward, terminated, truncated, info) = xla_step(handle, action)
        step, env_carry = read_step(env_carry, action, obs, reward, terminated, truncated, info)
        return handle, update(state._replace(actor=actor), step), obs, env_carry
      return jax.lax.fori_loop(0, iterations, body, (handle, state, obs, carry))

    return jax.jit(chunk, donate_argnums=1)

  def run_xla(self, env, handle, state, obs, carry: Carry, iterations: int, timer: dict, stop=None):
    if self._xla_env is not env:  # the XLA step is bound to its env: one compiled chunk per segment
      self._xla_env, self._xla_fn = env, self._xla_chunk(env)
    chunk = self._xla_fn
    t0 = time.perf_counter()
    done = 0
    while done < iterations and not (stop is not None and stop()):
      n = min(iterations - done, self.run.chunk)
      handle, state, obs, carry = chunk(handle, state, obs, carry, n)
      done += n
    jax.block_until_ready(state.env_steps)
    timer['fused'] = timer.get('fused', 0.0) + time.perf_counter() - t0
    return handle, state, obs, carry, done

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
            timer: dict | None = None, stop_after: int | None = None, stop_on_interrupt: bool = False) -> dict:
    """Trains to run.steps (or resumes from out_dir/checkpoint.npz), then the final evaluation.

    stop_after: return after the first checkpoint at or beyond this step (an interrupted run; tests).
    stop_on_interrupt: a Ctrl-C stops within an iteration, saves a checkpoint there and raises
      `checkpoint.Interrupted` (main thread only; a second Ctrl-C interrupts at once).
    timer: filled with seconds spent per phase ('act', 'env', 'learn' in host mode, 'fused' in xla
      mode, plus 'eval'); set timer['sync'] = True to measure learn without async dispatch overlap.
    """
    run, timer = self.run, {} if timer is None else timer
    os.makedirs(out_dir, exist_ok=True)
    ckpt_path = os.path.join(out_dir, 'checkpoint.npz')
    host = dict(segment=0, best_score=-math.inf, best_params=None, best_step=-1, skipped_updates=0)
    record = dict(run=dataclasses.asdict(run), agent=self.config.to_dict(), game=self.game,
                  num_actions=self.num_actions)
    held = [name for name in RUN_FILES if os.path.exists(os.path.join(out_dir, name))]
    resuming = resume and os.path.exists(ckpt_path)
    if held and not resuming and not (resume and self._stopped_before_a_checkpoint(out_dir, held, record)):
      raise checkpoint.CheckpointError(
          f'{out_dir} holds a run ({", ".join(held)}); resume it, or start it again with --fresh (which empties '
          'the folder), or give another --out. Nothing was overwritten.')
    if resuming:
      state, host = self._restore(ckpt_path)
      final = os.path.join(out_dir, 'final.json')
      if int(state.env_steps) >= run.total_steps and os.path.exists(final):
        with open(final) as f:
          return dict(json.load(f), loaded_from=final)  # a finished run: nothing to train or evaluate
      _truncate_csvs(out_dir, int(state.env_steps))
    else:
      state = init_learner(self.agent, run, jax.random.PRNGKey(run.seed))
      for name in ('train.csv', 'eval.csv'):
        if os.path.exists(os.path.join(out_dir, name)):
          os.remove(os.path.join(out_dir, name))
    checkpoint.write_text(os.path.join(out_dir, 'config.json'), json.dumps(record, indent=1))

    total = run.total_steps
    every = {name: run.every(name) for name in ('log_every', 'eval_every', 'checkpoint_every')}
    steps = int(state.env_steps)
    if not resuming and every['eval_every']:  # a checkpoint at step 0 (a Ctrl-C there) comes after this one
      host = self._evaluate(out_dir, state, host, steps, timer)
    # tqdm's rate is steps/s; disable=None turns the bar off when stderr is not a TTY
    bar = tqdm(total=total, initial=steps, unit='step', unit_scale=True, mininterval=1.0, dynamic_ncols=True,
               disable=None if progress is None else not progress)
    env = handle = None
    log_start = (time.perf_counter(), steps)

    def stop():
      """Cuts the running games here (as a checkpoint does) unless a checkpoint just did, saves, stops."""
      nonlocal env
      if env is not None:
        env.close()
        env = None
        host['segment'] += 1
        self._save(ckpt_path, state, host)
      bar.close()
      raise checkpoint.Interrupted(f'interrupted at step {steps:,} of {total:,}: checkpoint saved in {ckpt_path}; '
                                   'the same command resumes (from this cut: a resumed run is not bit-identical '
                                   'to an uninterrupted one).')

    with checkpoint.deferred_interrupt(stop_on_interrupt) as interrupted:
      while steps < total:
        if env is None:  # a new segment: fresh envs seeded by (seed, segment)
          env = self.make_env(run.num_envs, _seed(run.seed, 0, host['segment']), evaluation=False)
          obs, info = env.reset()
          carry = reset_carry(info)
          state = self.start_segment(state, obs[:, -1])
          if run.env_mode == 'xla':
            handle = env.xla()[0]
        target = min([total] + [(steps // k + 1) * k for k in every.values() if k])
        iterations = (target - steps) // run.num_envs
        if run.env_mode == 'host':
          state, obs, carry, done = self.run_host(env, state, obs, carry, iterations, timer, interrupted)
        else:
          handle, state, obs, carry, done = self.run_xla(env, handle, state, obs, carry, iterations, timer,
                                                         interrupted)
        bar.update(done * run.num_envs)
        steps += done * run.num_envs
        if interrupted() and steps < target:
          stop()
        if (every['log_every'] and steps % every['log_every'] == 0) or steps == total:
          state, row = self._log(out_dir, state, log_start, host['skipped_updates'])
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
        if interrupted() and steps < total:  # in a chunk that reached its boundary: log and evaluate first
          stop()
      if interrupted():
        print(f'Ctrl-C in the last chunk: training is done and saved in {ckpt_path}; running the final test '
              '(Ctrl-C again stops it, and the same command runs it later).', file=sys.stderr)
    bar.close()
    return self._final(out_dir, state, host, timer)

  def _log(self, out_dir: str, state: LearnerState, log_start, skipped: int) -> tuple[LearnerState, dict]:
    ep, sums, steps = jax.device_get((state.episodes, state.sums, state.env_steps))
    count = max(float(sums['count']), 1.0)
    row = dict(env_steps=int(steps), frames=4 * int(steps), updates=int(state.updates) - skipped,
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

  def _evaluate(self, out_dir: str, state: LearnerState, host: dict, steps: int, timer: dict) -> dict:
    t0 = time.perf_counter()
    key = jax.random.fold_in(jax.random.PRNGKey(self.run.seed), EVAL_KEY + steps)
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

  def _final(self, out_dir: str, state: LearnerState, host: dict, timer: dict) -> dict:
    """SPEC §3: the best parameters (by test mean; the last ones if never evaluated) on
    final_eval_episodes games, with the eval envs and index generator seeded by the run seed."""
    use_best = host['best_params'] is not None
    # the best parameters are kept on the host: put them on the device once, not at every act of the test
    params = jax.device_put(host['best_params']) if use_best else state.train.params
    t0 = time.perf_counter()
    key = jax.random.fold_in(jax.random.PRNGKey(self.run.seed), FINAL_EVAL_KEY)
    scores = self.evaluate(params, self.run.final_eval_episodes, self.run.final_eval_envs,
                           _seed(self.run.seed, 2), key)
    timer['eval'] = timer.get('eval', 0.0) + time.perf_counter() - t0
    result = dict(game=self.game, agent=self.run.agent, protocol=self.run.protocol, seed=self.run.seed,
                  env_steps=int(state.env_steps), frames=4 * int(state.env_steps),
                  updates=int(state.updates) - host['skipped_updates'], skipped_updates=host['skipped_updates'],
                  params='best' if use_best else 'last', best_step=host['best_step'],
                  episodes=len(scores), raw_score=float(scores.mean()), raw_std=float(scores.std()),
                  hns=_hns(self.game, float(scores.mean())), scores=scores.tolist())
    checkpoint.write_text(os.path.join(out_dir, 'final.json'), json.dumps(result, indent=1))
    return result

  def _stopped_before_a_checkpoint(self, out_dir: str, held: list[str], record: dict) -> bool:
    """The folder holds this very run (its config.json, up to what a resume may change), killed before
    its first checkpoint: CSV rows but no checkpoint.npz or final.json. Such a run starts again from
    step 0, as its rows would have to anyway; any other run's files are never overwritten."""
    path = os.path.join(out_dir, 'config.json')
    if not os.path.exists(path) or set(held) - {'train.csv', 'eval.csv'}:
      return False
    with open(path) as f:
      saved = json.load(f)
    return (cli.differences(saved.get('run', {}), record['run'], RESUMABLE_CHANGES) == []
            and cli.differences({k: v for k, v in saved.items() if k != 'run'},
                                {k: v for k, v in record.items() if k != 'run'}) == [])

  def _check_extension(self, path: str, steps: int, saved: dict):
    """`steps` may change on resume (RESUMABLE_CHANGES), but not to below the steps trained, and a run
    that ended may go on only from a step on the checkpoint grid: its end cut the running games there
    (every checkpoint does), and a run trained straight to the new end cuts only on the grid."""
    total, every = self.run.total_steps, self.run.every('checkpoint_every')
    if steps > total:
      raise checkpoint.CheckpointError(
          f'{path} has trained {steps:,} steps, more than --steps {self.run.steps:,}; give --steps {steps:,} or '
          'more, or another --out.')
    ended = steps == dataclasses.replace(self.run, steps=saved['steps']).total_steps  # num_envs is the saved one
    if ended and steps < total and not (every and steps % every == 0):
      raise checkpoint.CheckpointError(
          f'{path} ended at step {steps:,}, which is not a multiple of --checkpoint-every ({every:,}): its end cut '
          f'the games there, which a run trained straight to {total:,} steps does not, so it cannot be extended '
          'to match one; give another --out, or --fresh to start again.')

  def _save(self, path: str, state: LearnerState, host: dict):
    trees = dict(state=state._replace(replay=None))
    rows = int(state.replay.rows)
    if self.run.checkpoint_replay:
      # Rows never written are zeros, as `init` made them: only the written ones are saved (a short run's
      # checkpoint is small), and `_restore` pads the rest back.
      trees['replay'] = checkpoint.written_rows(state.replay, REPLAY_ROWS, rows)
    if host['best_params'] is not None:
      trees['best_params'] = host['best_params']
    meta = dict(run=dataclasses.asdict(self.run), host={k: v for k, v in host.items() if k != 'best_params'},
                replay=self.run.checkpoint_replay, replay_rows=rows, best_params=host['best_params'] is not None)
    checkpoint.save(path, meta, trees)

  def _restore(self, path: str) -> tuple[LearnerState, dict]:
    meta = checkpoint.check_same_run(path, dataclasses.asdict(self.run), ignore=RESUMABLE_CHANGES)
    fresh = init_learner(self.agent, self.run, jax.random.PRNGKey(self.run.seed))
    templates = dict(state=fresh._replace(replay=None))
    if meta['replay']:
      templates['replay'] = fresh.replay
    if meta['best_params']:
      templates['best_params'] = fresh.train.params
    meta, trees = checkpoint.load(path, templates, exact_shapes=('state', 'best_params'))
    state = trees['state']
    self._check_extension(path, int(state.env_steps), meta['run'])
    host = {'skipped_updates': 0, **meta['host'], 'best_params': trees.get('best_params')}  # older: none skipped
    if meta['replay']:
      try:
        replay = checkpoint.restore_rows(trees['replay'], fresh.replay, REPLAY_ROWS, meta['replay_rows'])
      except checkpoint.CheckpointError as error:
        raise checkpoint.CheckpointError(f'{path}: {error}') from None
    else:  # saved without its replay: resume with an empty one (not an exact resume), see skip_refill
      replay = fresh.replay
      if int(state.env_steps) < self.run.total_steps:  # a finished run is only loaded
        state, skipped = skip_refill(state, self.config, self.run.replay_ratio)
        host['skipped_updates'] += skipped
        print(f'{path} holds no replay (--no-checkpoint-replay): learning, not acting, waits '
              f'{self.config.warmup_steps:,} agent steps for the empty replay to refill; the {skipped:,} '
              'updates owed meanwhile are skipped.')
    return jax.device_put(state._replace(replay=replay)), host


# ----------------------------------------------------------------------------- small helpers

def skip_refill(state: LearnerState, config, ratio: float) -> tuple[LearnerState, int]:
  """A resume with an empty replay waits for it to hold warmup_steps transitions again before
  learning (acting goes on with the policy): otherwise the updates the schedule owes would sample a
  replay of one transition (and λ_r/|D| would be ~|D| times too large). The updates owed until then
  are marked done without running; returns the state and how many were skipped."""
  refilled = int(state.env_steps) + config.warmup_steps
  owed = int(due_updates(np.int32(refilled), config, ratio, xp=np)) - 1  # the first update comes at `refilled`
  skipped = max(owed - int(state.updates), 0)
  return state._replace(updates=state.updates + skipped), skipped


def _hns(game: str, score: float) -> float:
  return float(atari.human_normalized(game, score)) if game in atari.HUMAN_RANDOM else float('nan')


def _append_csv(path: str, row: dict):
  new = not os.path.exists(path) or os.path.getsize(path) == 0  # empty: a kill came before the first row
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
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(r for r in rows if int(r['env_steps']) <= steps)
    checkpoint.write_text(path, text.getvalue())
