"""The DeepSea scaling study's report: exponents with bootstrap intervals, per-size medians, the figure.

  python experiments/deepsea_study_report.py results/scaling-s5 --ranges 10-50 10-120
  python experiments/deepsea_study_report.py results/scaling-s17 results/scaling-s16 --out reports/scaling

Reads every run folder (`<agent>-N<size>-<mapping>-<run id>`, as deepsea_scaling.py writes them, any
number of invocations and seed counts) under the study folders (one seed of an agent and size in one folder
only). For each agent, criterion and range of N it fits episodes ∝ N^k to the per-size medians over
seeds, with a 95% bootstrap interval that resamples seeds within each size (unsolved seeds count as
never; a fit needs three sizes with a finite median). A run still going (as `make archive` keeps
it) is listed with its seeds solved so far and left out of the fits and the figure.
Writes `study.md` (the tables) and `study_<criterion>.png` (medians, per-seed points, unsolved seeds
as x at their budget) into --out (default: the first study folder).
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from hyperagent import cli
from hyperagent.deepsea import results

CRITERIA = ('eval_solve_episode', 'bsuite_solve_episode')


def parse_range(text: str) -> tuple[int, int]:
  low, _, high = text.partition('-')
  try:
    low, high = int(low), int(high)
  except ValueError:
    low = high = -1
  if not 0 < low <= high:
    raise argparse.ArgumentTypeError(f'a range of N is LOW-HIGH with 0 < LOW <= HIGH, e.g. 10-50; got {text!r}')
  return low, high


def describe_fit(fit: results.ExponentFit | results.NoFit) -> str:
  """The exponent cell: k (95% CI), with the share of bootstrap draws that had an unsolved median
  (counted as k = ∞), or why there is no fit."""
  if isinstance(fit, results.NoFit):
    return f'no fit ({fit.reason})'
  high = '∞' if np.isinf(fit.high) else f'{fit.high:.2f}'
  cell = f'{fit.k:.2f} ({fit.low:.2f} – {high})'
  return cell + (f'; {fit.unsolved:.2%} of draws had an unsolved median (k = ∞ there)' if fit.unsolved > 0 else '')


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   allow_abbrev=False)
  parser.add_argument('study', nargs='+', metavar='[LABEL=]FOLDER',
                      help='folders deepsea_scaling.py wrote into (its --out); a label makes the runs of its '
                           'folder a variant of their agent, e.g. "prior 50=results/ens-prior50"')
  parser.add_argument('--out', type=cli.folder_flag, help='where study.md and the figures go (default: the first study folder)')
  parser.add_argument('--ranges', type=parse_range, nargs='+', default=[(10, 50), (10, 120)],
                      help='size ranges LOW-HIGH over which each exponent is fitted (default: 10-50 10-120)')
  args = parser.parse_args(argv)
  try:
    labels, folders = zip(*map(cli.labelled_folder, args.study))
  except ValueError as e:
    parser.error(str(e))
  missing = [d for d in folders if not os.path.isdir(d)]
  if missing:
    parser.error(f'no such study folder: {", ".join(missing)}')
  real = [os.path.realpath(d) for d in folders]
  twice = sorted({d for d, r in zip(folders, real) if real.count(r) > 1})
  if twice:
    parser.error(f'a study folder given more than once: {", ".join(twice)}')
  try:
    table = results.collect_runs(*folders, labels=labels)
  except ValueError as e:
    parser.error(str(e))
  if table.empty:
    parser.error(f'no finished runs (a folder <agent>-N<size>-<mapping>-<run id> with summary.csv) under {" ".join(folders)}')
  out = args.out or folders[0]
  os.makedirs(out, exist_ok=True)

  show = lambda v: 'never' if not np.isfinite(v) else f'{v:,.0f}'  # episodes: medians of 3 rows may be x.5
  lines = ['| agent | N | seeds | solved (all-optimal / bsuite) | median all-optimal (95% CI) | '
           'median bsuite (95% CI) | budget |', '|---|---|---|---|---|---|---|']
  for (agent, size), group in table.groupby(['agent', 'size']):
    if group['unfinished'].any():  # going, or stopped: its unsolved seeds' episodes are only bounded
      going = group.loc[group['unfinished'], 'episodes']
      lines.append(f'| {agent} | {size} | {len(group)} | {group[CRITERIA[0]].notna().sum()} / '
                   f'{group[CRITERIA[1]].notna().sum()} so far | unfinished: {len(going)} unsolved at episode '
                   f'{going.min():,} | (left out of the fits) | {group["budget_episodes"].max():,} |')
      continue
    cells = []
    for criterion in CRITERIA:
      median, low, high = results.bootstrap_median(group[criterion].tolist())
      cells.append(f'{show(median)} ({show(low)} – {show(high)})')
    lines.append(f'| {agent} | {size} | {len(group)} | {group[CRITERIA[0]].notna().sum()} / '
                 f'{group[CRITERIA[1]].notna().sum()} | {cells[0]} | {cells[1]} | {group["budget_episodes"].max():,} |')
  running = table.groupby(['agent', 'size'])['unfinished'].transform('any')
  table = table[~running]
  lines += ['', '| agent | criterion | N range | sizes | exponent k (95% CI) |', '|---|---|---|---|---|']
  for agent, group in table.groupby('agent'):
    for criterion in CRITERIA:
      for low, high in args.ranges:
        part = group[(group['size'] >= low) & (group['size'] <= high)]
        sizes = ', '.join(str(s) for s in sorted(part['size'].unique()))
        lines.append(f'| {agent} | {criterion} | {low}–{high} | {sizes} | {describe_fit(results.bootstrap_exponent(part, criterion))} |')
  text = '\n'.join(lines)
  with open(os.path.join(out, 'study.md'), 'w') as f:
    f.write(text + '\n')
  for criterion in CRITERIA if not table.empty else ():
    results.plot_scaling(os.path.join(out, f'study_{criterion}.png'), table, criterion)
  print(text)
  print(f'\nstudy.md and study_<criterion>.png in {out}/')
  return 0


if __name__ == '__main__':
  raise SystemExit(main())
