"""Where a DeepSea run's exploration stands, per seed, along the treasure path (the diagonal):

- the deepest diagonal cell the run has visited (from its replay: every transition of the run is
  there while the FIFO has not wrapped; once it has, as at N = 120 past 8,333 episodes with the
  preset's 1M rows, the first visits are gone and the front is reported as unknown);
- p(d): the fraction of sampled indices ξ whose greedy action at diagonal cell (d, d) goes right;
- reach(d): the fraction of ξ that go right at every diagonal cell up to d, i.e. the chance that an
  episode, acting greedily under one ξ as the agent does, is still on the diagonal after row d;
  reach(N - 1) is the chance per episode of collecting the treasure;
- the exploration front: the episode in which each diagonal cell was first visited (the replay holds
  the run's transitions in order, N per episode), and the last episode in which the front advanced;
  `--plot PATH` draws it per seed.

Deep exploration needs reach(frontier) well above zero, where the frontier is the first diagonal
cell not yet visited: the agent must keep arriving there to learn what lies beyond. Reads a run folder
of experiments/deepsea.py or deepsea_scaling.py (checkpoint.npz, finished or not), any agent: for
Ensemble+ an index is a member drawn uniformly; DQN has one greedy policy, so every p is 0 or 1.

  python experiments/deepsea_path_probe.py results/scaling-s18/hyperagent-N50-seed-<id> [--draws 2000] [--plot front.png]
"""
from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

from hyperagent import checkpoint, hypermodel, jitloop
from hyperagent.config import Config
from hyperagent.deepsea import run


def load_run(folder: str):
  """(config, spec, agent, env params, RunState of every seed) from a DeepSea run folder."""
  path = os.path.join(folder, 'checkpoint.npz')
  if not os.path.exists(path):
    raise checkpoint.CheckpointError(f'{folder} holds no checkpoint.npz: not a DeepSea run folder, or its '
                                     'checkpoint is gone (the archive in docs/results keeps none)')
  settings, spec, _ = run.checkpointed(path)
  config = Config.from_dict(settings)
  agent = jitloop.make_agent_for(config, spec.env)
  env_params, template = run.initial_states(agent, spec)
  _, trees = checkpoint.load(path, dict(states=template, result=run.empty_result(len(spec.seeds))),
                             exact_shapes=('states',))
  return config, spec, agent, env_params, jax.tree.map(jnp.asarray, trees['states'])


def path_probe(agent, params, mapping: np.ndarray, key: jax.Array, draws: int) -> tuple[np.ndarray, np.ndarray]:
  """(p[d], reach[d]) for d = 0 .. N-1 as described above, from `draws` sampled indices."""
  n = mapping.shape[0]
  network = agent.network
  coefficients = network.coefficients(params, jnp.arange(n, dtype=jnp.int32) * (n + 1))  # [N, A, M + 1]
  xi = network.index.network_input(network.index.sample(key, (draws,)))                  # [draws, M]
  q = hypermodel.affine(xi[:, None, None], coefficients[None])                             # [draws, N, A]
  right = np.asarray(q.argmax(-1)) == mapping[np.arange(n), np.arange(n)][None]
  return right.mean(0), np.cumprod(right, axis=1).mean(0)


def first_visits(positions: np.ndarray, size: int) -> np.ndarray:
  """[N] the episode (from 0) in which the run first stood on diagonal cell (d, d); -1 if never.
  `positions`: the observations of the run's transitions in the order they were played."""
  episodes = np.full(size, -1)
  for d in range(size):
    hits = np.flatnonzero(positions == d * (size + 1))
    if len(hits):
      episodes[d] = hits[0] // size
  return episodes


def plot_fronts(path: str, fronts: dict[int, np.ndarray], played: dict[int, int], size: int) -> None:
  """The front per seed, drawn on to the episodes the seed has played (a flat end: stuck)."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 4))
  for seed, episodes in fronts.items():
    reached = episodes >= 0
    rows = np.flatnonzero(reached)
    ax.step(np.append(episodes[reached], played[seed]), np.append(rows, rows[-1]), where='post', label=f'seed {seed}')
  ax.set(xlabel='training episode', ylabel='deepest diagonal row reached', ylim=(0, size),
         title=f'DeepSea N = {size}: the exploration front')
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   allow_abbrev=False)
  parser.add_argument('folder')
  parser.add_argument('--draws', type=int, default=2000, help='sampled indices per seed')
  parser.add_argument('--plot', help='a PNG of the exploration front per seed')
  args = parser.parse_args(argv)
  if args.draws < 1:
    parser.error(f'--draws must be >= 1, got {args.draws}')
  try:
    config, spec, agent, env_params, states = load_run(args.folder)
  except (checkpoint.CheckpointError, ValueError) as error:
    parser.error(str(error))
  n = spec.size
  print(f'DeepSea N = {n}, {config.model}, {args.draws} sampled indices per seed')
  print('| seed | episodes | treasures | frontier (first unvisited diagonal row) | p(right) at the frontier '
        '| reach the frontier | lowest p(right) before it, at row | reach(N - 1) | front last advanced in episode |')
  print('|---|---|---|---|---|---|---|---|---|')
  fronts, played = {}, {}
  for i, seed in enumerate(spec.seeds):
    one = jax.tree.map(lambda x: x[i], states)
    played[seed] = int(one.counters.episode)
    mapping = np.asarray(env_params.mapping[i])
    p, reach = path_probe(agent, one.train.params, mapping, jax.random.key(seed), args.draws)
    if played[seed] * n > one.replay.obs.shape[0]:  # the FIFO has dropped the run's first steps
      print(f'| {seed} | {played[seed]:,} | {int(one.env.denoised_return):,} | unknown: the replay has wrapped '
            f'| | | | {reach[-1]:.3f} | unknown |')
      continue
    fronts[seed] = first_visits(np.asarray(one.replay.obs[:int(one.replay.rows)]).ravel(), n)
    on_path = fronts[seed] >= 0
    frontier = int(np.argmin(on_path)) if not on_path.all() else n
    arrive = np.concatenate([[1.0], reach])  # arrive[d]: right at every row before d
    at = lambda x: f'{x[frontier]:.3f}' if frontier < n else '(all visited)'
    low = int(np.argmin(p[:frontier])) if frontier > 0 else 0
    print(f'| {seed} | {played[seed]:,} | {int(one.env.denoised_return):,} | {frontier} | {at(p)} | '
          f'{at(arrive)} | {p[low]:.3f} at {low} | {reach[-1]:.3f} | {fronts[seed].max():,} |')
  if args.plot and fronts:
    plot_fronts(args.plot, fronts, played, n)
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
