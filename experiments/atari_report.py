"""Atari report over result directories: `make atari-report RESULTS=results/atari`.

Writes report.md (per-game raw and human-normalised scores, IQM with stratified-bootstrap CIs of the
final scores and of the evaluations at one step), scores.csv, aggregate.csv, aggregate_at_step.csv and
curves.png into --out.
"""
from __future__ import annotations

import argparse
import sys

from hyperagent import cli
from hyperagent.atari import report as atari_report


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__)
  p.add_argument('results', nargs='+', help='directories holding Atari runs (searched recursively)')
  p.add_argument('--out', type=cli.folder_flag, default='reports/atari', help='where the report goes (default: reports/atari)')
  p.add_argument('--reps', type=int, default=2000, help='bootstrap resamples')
  p.add_argument('--at-step', type=int, default=None,
                 help='agent step of the per-evaluation IQM (default: the last evaluation every run reached)')
  args = p.parse_args(argv)
  try:
    print(atari_report.write_report(args.results, args.out, args.reps, args.at_step))
  except ValueError as e:
    p.error(str(e))
  print(f'written to {args.out}/', file=sys.stderr)
  return 0


if __name__ == '__main__':
  sys.exit(main())
