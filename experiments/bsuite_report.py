"""Score bsuite result directories with bsuite and write an HTML report (scores, radar, bar, scaling).

  python experiments/bsuite_report.py results/hyperagent results/dqn --out reports/bsuite
  python experiments/bsuite_report.py ha=results/run3 dqn=results/run7 --out reports/bsuite

Each RESULTS_DIR holds one agent's bsuite CSVs (`bsuite_id_-_<experiment>-<i>.csv`, from bsuite's
logger or `hyperagent.bsuite.csv_format.write_deep_sea_csv`). The agent is named after the directory,
or `name=dir` names it. The report is `<out>/index.html`; see `hyperagent.bsuite.report`.
"""
from __future__ import annotations

import argparse
import os
import sys

from hyperagent import cli


def parse_results(specs: list[str]) -> dict[str, str]:
  """['a=dir1', 'dir2'] -> {'a': 'dir1', 'dir2': 'dir2'}; duplicate names are an error."""
  results: dict[str, str] = {}
  for spec in specs:
    name, directory = cli.labelled_folder(spec)
    name = name or os.path.basename(os.path.normpath(os.path.abspath(directory)))
    if name in results:
      raise ValueError(f'agent name {name!r} is used twice; name them with NAME=RESULTS_DIR')
    results[name] = directory
  return results


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      description=__doc__.split('\n', 1)[0],
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog='\n'.join(__doc__.splitlines()[1:]))
  parser.add_argument('results', nargs='+', metavar='RESULTS_DIR',
                      help='directory of bsuite CSVs for one agent, or NAME=DIR')
  parser.add_argument('--out', type=cli.folder_flag, required=True, metavar='DIR', help='report directory (created)')
  parser.add_argument('--title', default='bsuite report', help='page title')
  parser.add_argument('--dpi', type=cli.count, default=90, help='resolution of the PNG plots')
  counting = parser.add_mutually_exclusive_group()  # what tag scores average: one choice
  counting.add_argument('--all-experiments', action='store_true',
                        help='tag scores and radar from every experiment that ran (default: complete ones only)')
  counting.add_argument('--common-experiments', action='store_true',
                        help="tag scores and radar from the experiments complete for every agent, so the agents' "
                             'tags rest on the same experiments')
  args = parser.parse_args(argv)

  import matplotlib
  matplotlib.use('Agg')  # a script writing PNGs: never open windows
  from hyperagent.bsuite import report as bsuite_report

  try:
    results = bsuite_report.check_results(parse_results(args.results))
  except (ValueError, FileNotFoundError) as error:
    parser.error(str(error))
  index = bsuite_report.make_report(results, args.out, title=args.title, dpi=args.dpi,
                                    complete_only=not args.all_experiments, common_only=args.common_experiments)
  print(index)
  return 0


if __name__ == '__main__':
  sys.exit(main())
