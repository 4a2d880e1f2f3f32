"""Core micro-benchmarks (issue 2): one `learn` step and one `act` with the DeepSea preset.

  make bench            # or: python experiments/bench_core.py [--repeats 200] [--json FILE]

Every figure is a median of timed calls after warm-up (compilation excluded): `--repeats` of them for
a call from Python, max(repeats // 20, 5) for the `lax.scan` chains (each chain is many updates). Two
ways of timing a learn step are reported: one jitted call per update from Python (what a host loop
pays, dispatch included) and updates chained inside one jitted `lax.scan` (what the jitted DeepSea
loop pays per update).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from hyperagent import cli, replay, runtime
from hyperagent.agent import make_agent
from hyperagent.config import make_config
from hyperagent.replay import Batch


def median_time(fn, repeats: int, warmup: int = 5) -> float:
  for _ in range(warmup):
    jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t)
  return float(np.median(times))


def deepsea_batch(key, size: int, batch_size: int, index_dim: int, one_hot_input: bool) -> Batch:
  ks = jax.random.split(key, 5)
  position = jax.random.randint(ks[0], (batch_size,), 0, size * size)
  next_position = jax.random.randint(ks[1], (batch_size,), 0, size * size + 1)
  as_obs = (lambda p: p) if one_hot_input else (
      lambda p: jax.nn.one_hot(p, size * size).reshape(-1, size, size))
  return Batch(obs=as_obs(position), action=jax.random.randint(ks[2], (batch_size,), 0, 2),
               reward=jax.random.normal(ks[3], (batch_size,)) * 0.01,
               discount=jnp.full((batch_size,), 0.99),
               next_obs=as_obs(next_position), perturbation=jax.random.normal(ks[4], (batch_size, index_dim)))


def bench_learn(size: int, one_hot_input: bool, repeats: int, agent_name: str = 'hyperagent') -> dict:
  config = make_config(agent_name, 'deepsea')
  agent = make_agent(config, (size, size), 2, one_hot_input=one_hot_input)
  state = agent.init(jax.random.key(0))
  batch = deepsea_batch(jax.random.key(1), size, config.batch_size, config.index_dim, one_hot_input)
  replay_size = jnp.array(10_000)

  holder = [state]
  def one_call():
    holder[0], metrics = agent.learn(holder[0], batch, replay_size)
    return metrics['loss']

  chain = 100
  @jax.jit
  def scanned(state):
    def body(state, _):
      state, metrics = agent.learn(state, batch, replay_size)
      return state, metrics['loss']
    return jax.lax.scan(body, state, None, length=chain)

  scan_holder = [state]
  def scan_call():
    scan_holder[0], losses = scanned(scan_holder[0])
    return losses

  per_call = median_time(one_call, repeats)
  per_scan = median_time(scan_call, max(repeats // 20, 5), warmup=2) / chain
  return dict(size=size, agent=agent_name, input='position lookup' if one_hot_input else 'dense one-hot',
              batch=config.batch_size, K=config.num_update_indices,
              learn_ms_per_call=1e3 * per_call, learn_ms_in_scan=1e3 * per_scan)


def bench_act(size: int, stored: int, repeats: int) -> dict:
  """One act (+ the replay write that follows it), one env, with `stored` transitions in replay."""
  config = make_config('hyperagent', 'deepsea')
  agent = make_agent(config, (size, size), 2, one_hot_input=True)
  state = agent.init(jax.random.key(0))
  actor = agent.init_actor(jax.random.key(1), 1)
  buffer = replay.init(stored, 1, jnp.zeros((), jnp.int32), config.index_dim)
  buffer = buffer._replace(rows=jnp.array(stored, jnp.int32))  # as if full: act must not care
  position, first = jnp.zeros((1,), jnp.int32), jnp.ones((1,), bool)

  @functools.partial(jax.jit, donate_argnums=2)
  def act_and_store(params, actor, buffer):
    action, actor = agent.act(params, actor, position, first)
    z = jnp.zeros((1, config.index_dim))
    buffer = replay.add(buffer, position, action, jnp.zeros((1,)), first, ~first, position, z)
    return action, actor, buffer

  holder = [actor, buffer]
  def call():
    action, holder[0], holder[1] = act_and_store(state.params, holder[0], holder[1])
    return action

  act_holder = [actor]
  def act_only():
    action, act_holder[0] = agent.act(state.params, act_holder[0], position, first)
    return np.asarray(action)  # the host needs the action to step a host env

  chain = 1_000
  @jax.jit
  def act_in_scan(actor):  # how the jitted DeepSea loop acts: on the device, no host round trip
    def body(actor, _):
      action, actor = agent.act(state.params, actor, position, first)
      return actor, action
    return jax.lax.scan(body, actor, None, length=chain)
  return dict(size=size, stored=stored, act_ms=1e3 * median_time(act_only, repeats),
              act_and_store_ms=1e3 * median_time(call, repeats),
              act_in_scan_ms=1e3 * median_time(lambda: act_in_scan(actor), max(repeats // 20, 5), warmup=2) / chain)



def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--repeats', type=cli.count, default=200)
  parser.add_argument('--json', type=cli.reader(cli.file_path), default=None, help='also write the figures to this JSON file')
  args = parser.parse_args()
  runtime.unroll_cpu_threefry()  # HYPERAGENT_STOCK_PRNG=1 measures JAX's own lowering
  device = jax.devices()[0]
  print(f'# device: {device.platform} ({device.device_kind}); {platform.processor() or platform.machine()}; '
        f'jax {jax.__version__}')
  rows = []
  for one_hot_input in (True, False):
    rows.append(bench_learn(20, one_hot_input, args.repeats))
  rows.append(bench_learn(20, True, args.repeats, 'ensemble'))
  rows.append(bench_learn(20, True, args.repeats, 'dqn'))
  print('\n| learn step (N=20) | agent | batch x K | ms per jitted call | ms per update inside lax.scan |')
  print('|---|---|---|---|---|')
  for r in rows:
    print(f"| {r['input']} | {r['agent']} | {r['batch']} x {r['K']} | {r['learn_ms_per_call']:.3f} | "
          f"{r['learn_ms_in_scan']:.3f} |")
  acts = [bench_act(20, stored, args.repeats) for stored in (1_000, 1_000_000)]
  print('\n| act (N=20, one env) | ms per act call, action to host | ms per act + replay write (donated) | ms per act inside lax.scan |')
  print('|---|---|---|---|')
  for r in acts:
    print(f"| {r['stored']:,} transitions stored | {r['act_ms']:.3f} | {r['act_and_store_ms']:.3f} | "
          f"{r['act_in_scan_ms']:.4f} |")
  if args.json:
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, 'w') as f:
      json.dump(dict(learn=rows, act=acts, device=str(device)), f, indent=1)


if __name__ == '__main__':
  main()
