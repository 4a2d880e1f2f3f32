"""Your own environment in the jitted loop: a short example to copy.

  python experiments/custom_env.py [--chunks 8] [--agent hyperagent|ensemble|dqn] [--checkpoint PATH]

A corridor of SIZE cells: action 1 moves right, 0 left (the left wall holds); reaching the right end
pays 1 and ends the episode, and after LIMIT steps an episode is cut short. An environment is a
`JaxEnv` (see `hyperagent/environment.py`): pure `init`, `reset` and `step` functions of a state pytree,
its params and a key. `jitloop` then plays any number of seeds of it at once, each chunk of steps in
one jitted call, with a test phase after each chunk; its Driver adds the progress bar, checkpoints and
resume (a checkpoint resumes exactly: the whole run state, replay and keys included, is saved).

γ = 0.9 here, not the preset's 0.99: with 0.99 a step left costs only 2% of the value, and greedy
policies under a sampled index flip between left and right from one chunk to the next.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hyperagent import checkpoint, cli, jitloop
from hyperagent.config import AGENTS, make_config
from hyperagent.environment import EnvStep, JaxEnv

SIZE, LIMIT = 6, 12


def init(params, key):
  return jnp.zeros(2, jnp.int32)  # (position, steps into the episode)


def reset(params, state, key):
  return jnp.zeros(2, jnp.int32), jax.nn.one_hot(0, SIZE)


def step(params, state, action, key):
  position, t = jnp.clip(state[0] + 2 * action - 1, 0, SIZE - 1), state[1] + 1
  arrived = position == SIZE - 1
  # discount 0 ends the episode (a termination); the time limit is a truncation (discount 1: bootstrapped)
  return jnp.stack([position, t]), EnvStep(jax.nn.one_hot(position, SIZE), arrived.astype(jnp.float32),
                                           jnp.where(arrived, 0.0, 1.0), arrived | (t == LIMIT))


CORRIDOR = JaxEnv(name='corridor', static=(), num_actions=2, observation_shape=(SIZE,),
                  observation_dtype=jnp.float32, info_names=(), init=init, reset=reset, step=step,
                  info=lambda params, state: {}, max_episode_steps=LIMIT)


class Record(NamedTuple):
  """What the host keeps after each chunk, per seed (axis 0) and chunk (axis 1)."""
  test_return: np.ndarray  # mean return of the chunk's 10 test episodes
  episodes: np.ndarray     # training episodes finished so far


def append(record: Record, out: jitloop.ChunkOut, states: jitloop.RunState, steps: int, wall_s: float) -> Record:
  column = lambda x: np.asarray(x)[:, None]
  return Record(np.concatenate([record.test_return, column(out.eval_return)], axis=1),
                np.concatenate([record.episodes, column(states.counters.episode)], axis=1))


def train(agent_name: str = 'hyperagent', chunks: int = 8, seeds: int = 3, chunk_steps: int = 1_000,
          checkpoint_path: str | None = None, progress: bool = False) -> Record:
  """Plays `chunks` chunks of `chunk_steps` steps on every seed, with a progress bar (`progress`) and,
  given `checkpoint_path`, a checkpoint every minute and at the end, which the same call resumes."""
  config = make_config(agent_name, 'deepsea', discount=0.9, warmup_steps=128)
  agent = jitloop.make_agent_for(config, CORRIDOR)
  params = jitloop.stack_runs([{}] * seeds)  # the corridor has no params; bsuite's ids stack theirs here
  states = jitloop.init_runs(agent, CORRIDOR, chunks * chunk_steps, jnp.arange(seeds), params,
                             np.full(seeds, 2**31 - 1))  # no episode budget
  driver = jitloop.Driver(
      # each chunk: chunk_steps steps of every seed, then 10 test episodes
      chunk=jitloop.make_chunk_fn(config, CORRIDOR, jitloop.LoopSpec(eval_episodes=10, eval_steps=LIMIT)),
      env_params=params, lengths=[chunk_steps] * chunks, append=append,
      postfix=lambda record: dict(test_return=f'{record.test_return[:, -1].mean():.2f}'),
      finished=lambda record: False, position=lambda steps: f'step {steps:,} of {chunks * chunk_steps:,}',
      checkpoint_path=checkpoint_path, checkpoint_every_s=60.0,
      # a checkpoint is resumed only by the run that wrote it
      run_meta=dict(config=config.to_dict(), spec=dict(chunks=chunks, seeds=seeds, chunk_steps=chunk_steps)))
  empty = np.zeros((seeds, 0))
  states, record, done, wall_s = jitloop.resume(driver, states, Record(empty, empty))
  return jitloop.drive(driver, states, record, done, chunks, wall_before=wall_s, desc='corridor',
                       progress=progress, stop_on_interrupt=False)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0], epilog=__doc__.split('\n', 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
  parser.add_argument('--agent', default='hyperagent', choices=AGENTS)
  parser.add_argument('--chunks', type=cli.count, default=8, help='chunks of 1,000 steps per seed')
  parser.add_argument('--checkpoint', type=cli.reader(cli.file_path), default=None, metavar='PATH',
                      help='save the run there (e.g. results/corridor/checkpoint.npz); run again to resume')
  parser.add_argument('--fresh', action='store_true', help='delete the checkpoint first and start again')
  args = parser.parse_args(argv)
  if args.checkpoint:
    os.makedirs(os.path.dirname(os.path.abspath(args.checkpoint)), exist_ok=True)
    if args.fresh and os.path.exists(args.checkpoint):
      os.remove(args.checkpoint)
  try:
    record = train(args.agent, args.chunks, checkpoint_path=args.checkpoint, progress=True)
  except checkpoint.CheckpointError as error:  # another run's checkpoint (other --chunks or --agent)
    print(f'error: {error}', file=sys.stderr)
    return 2
  for i in range(record.test_return.shape[1]):
    print(f'after {i + 1:,}k steps: test return per seed {[round(float(r), 2) for r in record.test_return[:, i]]}, '
          f'episodes {record.episodes[:, i].astype(int).tolist()}')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
