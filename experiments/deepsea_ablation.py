"""Which ingredient of HyperAgent matters on DeepSea: one change at a time against the full agent.

  python experiments/deepsea_ablation.py --sizes 20 30 --seeds 10
  make deepsea-ablation SIZES="20 30" SEEDS=10

Each variant is HyperAgent's DeepSea preset with one change (VARIANTS below): no prior, the index
dimension M, the number of update indices K, the index law, and a non-zero perturbation σ (the DeepSea
preset has σ = 0). Every (variant, size) runs all seeds at once with the jitted loop for the official
budget, stops once every seed has solved, and keeps its own results folder (<variant>-N<size>-<mapping>[-stochastic]-<run id>,
resumed if present; Ctrl-C saves and stops). The
output folder gets `ablation.csv` (one row per variant, size and seed), `ablation.md` (solved seeds and
the median episodes to solve with a 95% bootstrap interval over seeds, unsolved seeds counted as
never) and `ablation.png`.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
# experiments/deepsea.py, the `make deepsea` script: Python puts this script's folder on sys.path
from deepsea import RunStopped, add_run_arguments, make_run, run_folder, train_in_folder

from hyperagent import checkpoint, cli, runtime
from hyperagent.deepsea import results as report

# name -> Config overrides on HyperAgent's DeepSea preset (M = 4, K = 20, sphere index, prior 10, σ = 0)
VARIANTS = {
    'hyperagent': {},
    'no prior': dict(prior_scale=0.0),
    'M=1': dict(index_dim=1),
    'M=2': dict(index_dim=2),
    'M=16': dict(index_dim=16),
    'K=1': dict(num_update_indices=1),
    'K=5': dict(num_update_indices=5),
    'gaussian index': dict(index_dist='gaussian'),
    'one-hot index (M=4)': dict(index_dist='one_hot', index_resample_prob=0.0),
    'σ=0.01': dict(perturbation_scale=0.01),
}
CRITERIA = ('eval_solve_episode', 'bsuite_solve_episode')


def folder_name(variant: str) -> str:
  return ''.join(c if c.isalnum() else '_' for c in variant).strip('_')


def table(rows: pd.DataFrame, criterion: str) -> str:
  lines = [f'| variant | N | solved | median episodes ({criterion}) | 95% CI |', '|---|---|---|---|---|']
  for (size, variant), group in rows.groupby(['size', 'variant'], sort=False):
    median, low, high = report.bootstrap_median(group[criterion].tolist())
    show = lambda v: 'never' if not np.isfinite(v) else f'{v:g}'
    lines.append(f'| {variant} | {size} | {group[criterion].notna().sum()}/{len(group)} | {show(median)} | '
                 f'{show(low)} – {show(high)} |')
  return '\n'.join(lines)


def plot(path: str, rows: pd.DataFrame, criterion: str) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  sizes = sorted(rows['size'].unique())
  variants = list(dict.fromkeys(rows['variant']))
  fig, axes = plt.subplots(1, len(sizes), figsize=(5.5 * len(sizes), 0.45 * len(variants) + 1.5), squeeze=False)
  for ax, size in zip(axes[0], sizes):
    budget = rows[rows['size'] == size]['budget_episodes'].max()
    for y, variant in enumerate(variants):
      group = rows[(rows['size'] == size) & (rows['variant'] == variant)]
      if group.empty:
        continue
      median, low, high = (min(v, budget) for v in report.bootstrap_median(group[criterion].tolist()))
      ax.plot([low, high], [y, y], color='C0', linewidth=2)
      ax.plot(median, y, 'o', color='C0')
      seeds = report.censored(group[criterion].tolist())
      ax.plot(np.minimum(seeds, budget), np.full(len(seeds), y) + 0.2, '|', color='k', alpha=0.4)
    ax.axvline(budget, color='grey', linestyle=':', linewidth=1)
    ax.set_yticks(range(len(variants)), variants)
    ax.invert_yaxis()
    ax.set(xlabel=f'episodes to solve ({criterion})',
           title=f'DeepSea N={size}: median, 95% bootstrap CI, seeds (|)\ndotted: the budget; seeds there never solved')
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   allow_abbrev=False)
  parser.add_argument('--sizes', type=int, nargs='+', default=[20, 30], help='DeepSea sizes N (default: 20 30)')
  parser.add_argument('--variants', nargs='+', default=list(VARIANTS), metavar='VARIANT',
                      help=f'a subset of: {"; ".join(VARIANTS)} (default: all; quote names with spaces, '
                           "e.g. --variants 'no prior' 'M=16')")
  parser.add_argument('--out', type=cli.folder_flag, default=os.path.join('results', 'deepsea-ablation'),
                      help='one folder per (variant, size) is made below it (default: results/deepsea-ablation)')
  add_run_arguments(parser, exclude=('size',))
  args = parser.parse_args(argv)
  args.sizes, args.variants = list(dict.fromkeys(args.sizes)), list(dict.fromkeys(args.variants))  # each run once
  unknown = [v for v in args.variants if v not in VARIANTS]
  if unknown:
    parser.error(f'unknown variant(s) {unknown}; valid: {"; ".join(VARIANTS)}')
  runs = []
  try:  # every variant and size is checked before any training starts
    for variant in args.variants:
      for size in args.sizes:
        config, spec = make_run(args, 'hyperagent', size=size)
        runs.append((variant, config.replace(**VARIANTS[variant]), spec))
  except ValueError as e:
    parser.error(str(e))

  runtime.configure()
  rows = []
  for variant, config, spec in runs:
    out = run_folder(folder_name(variant), config, spec, root=args.out)
    start = time.perf_counter()
    try:
      result = train_in_folder(out, config, spec, progress=not args.no_progress, stop_when_solved=True,
                               announce=True)
    except RunStopped as stopped:
      return stopped.code
    summary = report.write_results(out, config, spec, result, extra=dict(variant=variant))
    print(f'{variant} N={spec.size}: {time.perf_counter() - start:.0f} s', flush=True)
    rows += [dict(variant=variant, budget_episodes=spec.episodes, **r) for r in summary]

  path = os.path.join(args.out, 'ablation.csv')
  frame = pd.DataFrame(rows)
  with checkpoint.folder_lock(args.out, '.ablation.csv.lock', wait=True):  # as the scaling study's table
    if os.path.exists(path):  # earlier commands' rows join this one's, in the variants' order
      order = {v: i for i, v in enumerate(VARIANTS)}
      frame = report.with_earlier_rows(path, frame, 'variant').sort_values(
          ['variant', 'size', 'seed'], key=lambda c: c.map(order) if c.name == 'variant' else c,
          kind='stable').reset_index(drop=True)
    checkpoint.write_text(path, frame.to_csv(index=False))  # a kill mid-write must not lose earlier rows
  text = '\n\n'.join(table(frame, criterion) for criterion in CRITERIA)
  with open(os.path.join(args.out, 'ablation.md'), 'w') as f:
    f.write(text + '\n')
  plot(os.path.join(args.out, 'ablation.png'), frame, CRITERIA[0])
  print(text)
  print(f'table and plot in {args.out}/')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
