"""What a bsuite sweep cost: per complete experiment, run-steps and wall-clock, from `runs.jsonl`.

  python experiments/bsuite_costs.py docs/results/bsuite/hyperagent
  python experiments/bsuite_costs.py hyperagent=docs/results/bsuite/hyperagent retimed=results/bsuite-retime/hyperagent

With several folders, an experiment's figures come from the last folder that has it complete (so a
re-timed folder listed last replaces the older times). Wall-clock is as the runs met it: whatever else
shared the machine then shared their time (BENCHMARKS.md says what ran beside each). The total is the
sum over experiments, i.e. the time of one core playing them in turn; two processes, one per core,
sharing the list (experiments/bsuite_sweep.sh) take about half, plus the imbalance of the last group.
"""
from __future__ import annotations

import argparse
import sys

from hyperagent import cli
from hyperagent.bsuite import sweep


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0], epilog=__doc__.split('\n', 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
  parser.add_argument('results', nargs='+', metavar='[LABEL=]RESULTS_DIR', help="a folder with bsuite_run.py's runs.jsonl")
  args = parser.parse_args(argv)
  chosen: dict[str, tuple[str, dict]] = {}
  for spec in args.results:
    label, folder = cli.labelled_folder(spec)
    summaries = sweep.read_finished(folder)
    if not summaries:
      parser.error(f'{folder} has no {sweep.RUN_LOG}: nothing finished there')
    for cost in sweep.experiment_costs(summaries):
      chosen[cost['experiment']] = (label or folder, cost)
  wanted = [e for e in sweep.experiments() if e not in sweep.NO_JAX_PORT]
  print('| experiment | ids | run-steps | groups | wall-clock | ms per run-step | from |')
  print('|---|---|---|---|---|---|---|')
  for name in wanted:
    if name in chosen:
      source, c = chosen[name]
      print(f"| {name} | {c['ids']} | {c['run_steps'] / 1e6:.2f} M | {c['groups']} | {c['seconds']:,.0f} s | "
            f"{c['ms_per_run_step']:.3f} | {source} |")
  total = sum(c['seconds'] for _, c in chosen.values())
  steps = sum(c['run_steps'] for _, c in chosen.values())
  missing = [e for e in wanted if e not in chosen]
  print(f'\n{len(chosen)} of {len(wanted)} non-MNIST experiments complete: {steps / 1e6:.1f} M run-steps, '
        f'{total / 3600:.2f} h in turn on one core, about {total / 7200:.2f} h on two.')
  if missing:
    print(f'not complete: {", ".join(missing)}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
