"""The MinAtar results table and curves: every agent's final test return on each game with a 95% CI
over seeds, beside a uniform random policy (measured here, same episode limit) and published DQN
figures.

  python experiments/minatar_report.py [results/minatar ...] [--out reports/minatar]
  python experiments/minatar_report.py results/minatar "paper scales=results/minatar-paper-scales"
  make minatar-report

Reads results/minatar/<game>/<agent>/ (or the newest <agent>-<run id>/ that `make minatar` writes):
the run's checkpoint (a run not yet at its steps is marked unfinished with the steps it has reached,
also one extended past a finished metrics.csv), or metrics.csv where there is no checkpoint (marked
unfinished where it stops short of config.json's steps, as an archived run does: whether a process is
still training it, the folders cannot say). Several folders make several series; a
LABEL=FOLDER names a variant (the order of bsuite_report's NAME=DIR). Writes <out>/minatar.md (the table) and
<out>/minatar_curves.png (mean test return against steps per agent, every seed faint, random dashed).

Final return of a seed: the mean of its last evaluation's test episodes (10 by default, each with its
own sampled index, at most the game's own episode limit). One evaluation of 10 episodes swings a lot
on breakout (a seed's return moves by 10-15 between evaluations), so the table also gives each seed's
mean over its last `--last` evaluations (default 5: the last 250k of 1M steps). The CI is Student's t
over seeds.
"""
from __future__ import annotations

import argparse
import os
import sys

from hyperagent import cli
from hyperagent.config import AGENTS
from hyperagent.minatar.results import (GAMES, PUBLISHED_NOTE, TUNED_NOTE, find_run, load_run, parse_root, plot,
                                        random_baseline, run_spec, series_name, table, verdicts)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n', 1)[0], epilog=__doc__.split('\n\n', 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
  parser.add_argument('roots', nargs='*', default=['results/minatar'], metavar='[LABEL=]FOLDER',
                      help='folders of <game>/<agent>/ run folders; a label marks a variant, e.g. '
                           '"paper scales=results/minatar-paper-scales"')
  parser.add_argument('--out', type=cli.folder_flag, default='reports/minatar', help='where the table and curves go (default: reports/minatar)')
  parser.add_argument('--games', nargs='+', default=list(GAMES), choices=GAMES, help='games to table (default: all five)')
  parser.add_argument('--agents', nargs='+', default=list(AGENTS), choices=AGENTS, help='agents to table (default: all)')
  parser.add_argument('--random-episodes', type=int, default=100, help='episodes of the random policy per game')
  parser.add_argument('--seed', type=int, default=0, help="the random policy's seed")
  parser.add_argument('--last', type=int, default=5, help='evaluations averaged per seed in the steadier column')
  args = parser.parse_args(argv)
  if args.random_episodes < 2:
    parser.error(f'--random-episodes must be at least 2 (a mean and its spread), got {args.random_episodes}')
  if args.last < 1:
    parser.error(f'--last must be >= 1, got {args.last}')
  try:
    roots = [parse_root(text) for text in args.roots]
  except ValueError as error:
    parser.error(str(error))
  for root, _ in roots:
    if not os.path.isdir(root):
      parser.error(f'{root} is not a folder (expected <game>/<agent>/ run folders, as make minatar writes)')
  runs, agents, caps = {}, [], {}
  for root, label in roots:
    for agent in args.agents:
      name = series_name(agent, label)
      for game in args.games:
        folder, others = find_run(root, game, agent)
        if others:  # a quick try beside a long run: say which one the table shows
          print(f'note: {game}, {name}: {len(others)} other run folder{"s" * (len(others) > 1)} left out '
                f'({", ".join(others)}); the table shows {folder}. Give a root holding the one to report, or '
                'LABEL=FOLDER roots for several', file=sys.stderr)
        loaded = folder and load_run(folder)
        if loaded:
          runs[game, name] = loaded
          caps.setdefault(game, set()).add((run_spec(folder) or {}).get('eval_steps'))
          agents += [name] if name not in agents else []
          print(f'{game}, {name}: {folder} ({loaded[1]})')
  if not runs:
    print(f'no MinAtar runs under {", ".join(root for root, _ in roots)}', file=sys.stderr)
    return 1
  # the random policy's episodes are cut where the runs' test episodes were, where they agree
  mixed = sorted(game for game, cap in caps.items() if len(cap) > 1)
  if mixed:
    print(f'note: the runs of {", ".join(mixed)} cut their test episodes at different steps; the random policy '
          'there uses the game\'s own limit', file=sys.stderr)
  random = random_baseline(args.games, args.random_episodes, args.seed,
                           {game: next(iter(cap)) for game, cap in caps.items() if len(cap) == 1 and None not in cap})
  os.makedirs(args.out, exist_ok=True)
  text = (f'Final test return: mean over seeds of each seed\'s last evaluation; 95% CI: Student\'s t over '
          f'seeds. Random policy: {args.random_episodes} episodes per game, mean (95% CI).\n\n'
          + table(runs, random, agents, args.games, args.last) + '\n\n'
          + verdicts(runs, random, agents, args.games) + '\n\n' + PUBLISHED_NOTE + '\n\n' + TUNED_NOTE + '\n')
  with open(os.path.join(args.out, 'minatar.md'), 'w') as f:
    f.write(text)
  plot(runs, random, agents, args.games, os.path.join(args.out, 'minatar_curves.png'))
  print(text)
  print(f'written: {args.out}/minatar.md, {args.out}/minatar_curves.png')
  return 0


if __name__ == '__main__':
  sys.exit(main())
