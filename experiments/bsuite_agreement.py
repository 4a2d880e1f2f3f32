"""The two bsuite engines side by side: do they learn alike, and how much faster is the jitted one?

  python experiments/bsuite_agreement.py                      # one id of each experiment, 3 seeds
  python experiments/bsuite_agreement.py --ids catch/0 deep_sea/0 --seeds 0 1 --episodes 200
  python experiments/bsuite_agreement.py --speed --ids catch/0 catch/1 catch/2 catch/3 --rounds 3

Agreement: each id is played by the same agent through ENGINE=python (bsuite's own environment
stepped from Python, its own logger) and ENGINE=jax (the pure-JAX port in the jitted loop), per
seed, on a shortened budget (default per experiment below). The table gives, per id and engine,
bsuite's own score of each seed's CSV and the mean episode return, over seeds. Both engines split the
agent's keys alike, so where the environment draws nothing of its own (bandit, deep_sea) they play the
same run until float rounding, which Adam amplifies, flips an action; elsewhere they agree in
distribution. A second table says, per id and seed, through which episode the two CSVs are equal.

Speed (--speed): the same ids through both engines, alternated for --rounds rounds in one process;
steps per second of each (the jax engine's ids of one experiment run as one vmapped group; its first
round includes compilation, later ones reuse it).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd

from hyperagent import cli

# Shortened budgets (episodes) that keep the Python engine within minutes per id and seed.
EPISODES = dict(bandit=500, bandit_noise=500, bandit_scale=500, catch=300, catch_noise=300, catch_scale=300,
                cartpole=30, cartpole_noise=30, cartpole_scale=30, cartpole_swingup=10, mountain_car=10,
                mountain_car_noise=10, mountain_car_scale=10, deep_sea=300, deep_sea_stochastic=300,
                discounting_chain=50, memory_len=300, memory_size=300, umbrella_length=100,
                umbrella_distract=100)


def play(engine_name: str, ids, agent: str, seed: int, budgets, out: str) -> dict:
  """Runs `ids` through one engine into `out`; returns {'steps', 'seconds'}."""
  from hyperagent.bsuite import adapter, engine, sweep
  from hyperagent.config import Config
  settings = sweep.resolve_agent(agent, {})
  start, steps = time.monotonic(), 0
  if engine_name == 'python':
    for bsuite_id in ids:
      steps += adapter.play_id(bsuite_id, out, agent, settings, seed, budgets[bsuite_id])['steps']
  else:
    config = Config.from_dict(settings)
    for group in engine.groups(engine.runs(ids, (seed,)), config, budgets):
      steps += sum(s['steps'] for s in engine.run_group(group, config, budgets, out))
  return dict(steps=steps, seconds=time.monotonic() - start)


def scores(folder: str, ids) -> dict[str, tuple[float, float]]:
  """Per id: (bsuite's score of the CSV, mean episode return)."""
  from hyperagent.bsuite import csv_format, report
  by_experiment = report.load_and_score({'x': folder}).by_experiment.set_index('bsuite_env')['score']
  out = {}
  for bsuite_id in ids:
    last = pd.read_csv(csv_format.bsuite_csv_path(folder, bsuite_id)).iloc[-1]
    out[bsuite_id] = (float(by_experiment.get(bsuite_id.split('/')[0], np.nan)),
                      float(last.total_return / last.episode))
  return out


def equal_through(folder_a: str, folder_b: str, bsuite_id: str) -> str:
  """The last logged episode through which two CSVs of `bsuite_id` agree (every shared column, to
  1e-5; the jax engine writes float32, the Python one float64), or 'all (to episode N)'."""
  from hyperagent.bsuite import csv_format
  a, b = (pd.read_csv(csv_format.bsuite_csv_path(f, bsuite_id)) for f in (folder_a, folder_b))
  columns = [c for c in a.columns if c in b.columns]
  rows = min(len(a), len(b))
  same = np.isclose(a[columns][:rows].to_numpy(float), b[columns][:rows].to_numpy(float), rtol=1e-5, atol=1e-6).all(1)
  if same.all() and len(a) == len(b):
    return f'all (to episode {int(a.episode.iloc[-1]):,})'
  first = int(np.argmin(same)) if not same.all() else rows
  return f'{int(a.episode.iloc[first - 1]):,}' if first else 'none'


def agreement(args, budgets, out: str) -> None:
  rows = []
  for seed in args.seeds:
    for engine_name in ('python', 'jax'):
      for bsuite_id in args.ids:  # one id per folder: bsuite scores an experiment from its ids
        folder = os.path.join(out, engine_name, f'seed_{seed}', bsuite_id.replace('/', '-'))
        timing = play(engine_name, [bsuite_id], args.agent, seed, budgets, folder)
        score, mean_return = scores(folder, [bsuite_id])[bsuite_id]
        rows.append(dict(id=bsuite_id, engine=engine_name, seed=seed, score=score, mean_return=mean_return,
                         **timing))
        print(f'{bsuite_id} {engine_name} seed {seed}: score {score:.3f}, mean return {mean_return:.3f}, '
              f"{timing['steps']} steps in {timing['seconds']:.1f} s", file=sys.stderr, flush=True)
  frame = pd.DataFrame(rows)
  print(f'\n{args.agent}, seeds {args.seeds}; CSVs in {out}\n')
  print('| id | episodes | engine | bsuite score per seed | mean | mean episode return per seed | mean | steps/s |')
  print('|---|---|---|---|---|---|---|---|')
  for (bsuite_id, engine_name), g in frame.groupby(['id', 'engine'], sort=False):
    print(f"| {bsuite_id} | {budgets[bsuite_id]} | {engine_name} | {' '.join(f'{s:.2f}' for s in g.score)} | "
          f"{g.score.mean():.2f} | {' '.join(f'{r:.3f}' for r in g.mean_return)} | {g.mean_return.mean():.3f} | "
          f"{g.steps.sum() / g.seconds.sum():,.0f} |")
  print('\n| id | seed | logged rows equal between the engines, through episode |')
  print('|---|---|---|')
  for bsuite_id in args.ids:
    for seed in args.seeds:
      folders = [os.path.join(out, e, f'seed_{seed}', bsuite_id.replace('/', '-')) for e in ('python', 'jax')]
      print(f'| {bsuite_id} | {seed} | {equal_through(*folders, bsuite_id)} |')


def _ratio(r: float) -> str:
  """'2.7x', '0.0123x' (a short, compile-dominated round can be far below 0.1x: one decimal would print
  0.0x), '1,234x'."""
  return f'{r:,.0f}x' if r >= 100 else f'{r:.3g}x'


def speed(args, budgets, out: str) -> None:
  rows = []
  for round_ in range(args.rounds):
    for engine_name in ('python', 'jax'):
      folder = os.path.join(out, 'speed', f'{engine_name}-{round_}')
      timing = play(engine_name, args.ids, args.agent, args.seeds[0], budgets, folder)
      rows.append(dict(round=round_, engine=engine_name, **timing))
      print(f"round {round_} {engine_name}: {timing['steps']} steps in {timing['seconds']:.1f} s", file=sys.stderr,
            flush=True)
  frame = pd.DataFrame(rows)
  frame['steps_per_s'] = frame.steps / frame.seconds
  print(f"\n{args.agent}, ids {' '.join(args.ids)}, episodes per id {[budgets[i] for i in args.ids]}\n")
  print('| round | python steps/s | jax steps/s | ratio |')
  print('|---|---|---|---|')
  ratios = []
  for round_, g in frame.groupby('round'):
    python, jax = (float(g[g.engine == e].steps_per_s.iloc[0]) for e in ('python', 'jax'))
    ratios.append(jax / python)
    print(f'| {round_} | {python:,.0f} | {jax:,.0f} | {_ratio(jax / python)} |')
  later = ratios[1:] or ratios
  print(f'\nratio after the first round (compiled): {_ratio(min(later))[:-1]}-{_ratio(max(later))}')


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0], epilog=__doc__.split('\n', 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
  parser.add_argument('--ids', nargs='+', default=None, help='bsuite ids (default: <experiment>/0 of each ported one)')
  parser.add_argument('--agent', default='hyperagent', choices=('hyperagent', 'ensemble', 'dqn'))
  parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
  parser.add_argument('--episodes', type=int, default=None, help='episodes per id (default: per experiment, above)')
  parser.add_argument('--speed', action='store_true', help='time the engines instead (alternating rounds)')
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--out', type=cli.folder_flag, default=None, help='folder for the CSVs (default: a temporary one)')
  args = parser.parse_args(argv)
  from hyperagent.bsuite import sweep
  ported = [e for e in sweep.experiments() if e not in sweep.NO_JAX_PORT]
  args.ids = args.ids or [f'{e}/0' for e in ported]
  try:
    args.ids = [i for spec in args.ids for i in sweep.resolve_ids(spec)]
  except ValueError as error:
    parser.error(str(error))
  unported = [i for i in args.ids if not sweep.has_jax_port(i)]
  if unported:
    parser.error(f'no pure-JAX port for {unported}; ported experiments: {", ".join(ported)}')
  if (args.episodes is not None and args.episodes < 1) or args.rounds < 1:
    parser.error(f'--episodes and --rounds must be >= 1, got {args.episodes} and {args.rounds}')
  budgets = {i: args.episodes or EPISODES[i.split('/')[0]] for i in args.ids}
  sweep.init_worker(False, 'cpu', compile_cache=True)
  out = args.out or tempfile.mkdtemp(prefix='bsuite_agreement_')
  (speed if args.speed else agreement)(args, budgets, out)
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
