"""Copies the small, readable part of results/ into docs/results/, which git tracks.

  python experiments/archive_results.py [results] [--to docs/results]
  make archive

results/ is ignored by git: it holds checkpoints of hundreds of MB (replay buffers). A workspace can be
replaced between sessions, and in session 13 one was: every result folder of sessions 5-12 went with it,
and only the figures quoted in README.md and BENCHMARKS.md survived. This keeps what the reports read:
every .csv, .json, .jsonl and .md file under 2 MB, at the same relative path. A MinAtar run still going
writes metrics.csv only when it ends, so its rows so far are read from its checkpoint and written as
metrics.csv beside the copied config.json (the report then marks it by the steps it has reached); a
DeepSea run still going (a checkpoint and no summary.csv yet) gets its config.json, metrics.csv and
summary.csv written from its checkpoint's record, so `make deepsea-study-report` can list it as
unfinished, with the seeds solved so far, even once the workspace and the checkpoint are gone.
Logs that accumulate over sessions are merged, not replaced, since a new workspace's copy holds only
its own runs: a runs.jsonl keeps the archived lines and gains the new ones, and a config.json's
`commands` list (a bsuite results folder's) gains the commands it did not have. A MinAtar run started
again from zero (its checkpoint lost with a workspace) does not replace the longer rows archived
before, nor does a DeepSea run still going that started again: they stay until the new run's rows
outnumber them, and the archive says so.
Commit docs/results/ after running it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

from hyperagent import cli

KEEP = ('.csv', '.json', '.jsonl', '.md')
MAX_BYTES = 2 << 20


def minatar_spec(folder: str) -> dict | None:
  """The run settings of a MinAtar run folder with a checkpoint, or None for any other folder."""
  config = os.path.join(folder, 'config.json')
  if not (os.path.exists(config) and os.path.exists(os.path.join(folder, 'checkpoint.npz'))):
    return None
  with open(config) as f:
    spec = json.load(f).get('spec', {})
  return spec if 'game' in spec and 'seeds' in spec else None


def deepsea_unfinished(folder: str) -> bool:
  """A DeepSea run folder whose run has not written its summary yet (still going, or stopped)."""
  path = os.path.join(folder, 'checkpoint.npz')
  if not os.path.exists(path) or os.path.exists(os.path.join(folder, 'summary.csv')):
    return False
  from hyperagent import checkpoint
  spec = checkpoint.load_meta(path).get('run', {}).get('spec', {})
  return 'size' in spec and 'game' not in spec


def archived_rows(path: str) -> int:
  """Data rows of an archived CSV (0 if there is none)."""
  if not os.path.exists(path):
    return 0
  with open(path) as f:
    return max(sum(1 for _ in f) - 1, 0)


def started_again(metrics: str, rows: int, folder: str) -> bool:
  """Whether the run in `folder`, with `rows` metrics rows, has fewer than those archived at `metrics`
  (it started again from zero, its checkpoint lost): then the archived rows are kept, and it says so."""
  archived = archived_rows(metrics)
  if rows < archived:
    print(f'kept {metrics}: its {archived} rows are more than the {rows} of the run in {folder}, which started again')
  return rows < archived


def merge_into(source: str, target: str) -> None:
  """Copies `source` over `target`, except that logs which accumulate keep what `target` already had."""
  from hyperagent import checkpoint
  if os.path.exists(target) and source.endswith('.jsonl'):
    with open(target) as f:
      lines = f.read().splitlines()
    seen = set(lines)
    with open(source) as f:
      lines += [line for line in f.read().splitlines() if line not in seen]
    checkpoint.write_text(target, ''.join(line + '\n' for line in lines))
    return
  if os.path.exists(target) and source.endswith('.json'):
    with open(target) as f:
      old = json.load(f)
    with open(source) as f:
      new = json.load(f)
    if isinstance(old, dict) and isinstance(new, dict) and isinstance(old.get('commands'), list) and isinstance(
        new.get('commands'), list):
      commands = list(old['commands'])
      for command in new['commands']:  # a command run n times here is kept n times, not once per archive
        if new['commands'].count(command) > commands.count(command):
          commands.append(command)
      checkpoint.write_text(target, json.dumps(dict(new, commands=commands), indent=2))
      return
  shutil.copy2(source, target)


def archive(src: str, dst: str) -> list[str]:
  """Copies the kept files of `src` into `dst`; returns the paths written (relative to `dst`)."""
  written = []
  for folder, folders, files in os.walk(src):
    folders[:] = [f for f in folders if not f.startswith('.')]  # lock files (.locks), not results
    rel = os.path.relpath(folder, src)
    target = os.path.normpath(os.path.join(dst, rel))
    kept = [n for n in files if n.endswith(KEEP) and os.path.getsize(os.path.join(folder, n)) <= MAX_BYTES]
    spec = minatar_spec(folder)
    if deepsea_unfinished(folder):
      from hyperagent.deepsea import results, run
      settings, deepsea_spec, record = run.checkpointed(os.path.join(folder, 'checkpoint.npz'))
      agent = os.path.basename(folder).split('-N')[0]
      if not started_again(os.path.join(target, 'metrics.csv'), len(record.eval_steps) * len(deepsea_spec.seeds),
                           folder):
        results.write_tables(target, settings, deepsea_spec, record, extra=dict(agent=agent, unfinished=True))
        written += [os.path.normpath(os.path.join(rel, n)) for n in ('config.json', 'metrics.csv', 'summary.csv')]
    if not kept and spec is None:
      continue
    if spec is not None:  # its rows come from the checkpoint, below
      kept = [n for n in kept if n != 'metrics.csv']
    os.makedirs(target, exist_ok=True)
    for name in kept:
      merge_into(os.path.join(folder, name), os.path.join(target, name))
      written.append(os.path.normpath(os.path.join(rel, name)))
    if spec is not None:  # newer than any metrics.csv: the checkpoint is saved every 5 minutes
      from hyperagent.minatar import run
      frame = run.checkpointed_frame(os.path.join(folder, 'checkpoint.npz'), tuple(spec['seeds']))
      metrics = os.path.join(target, 'metrics.csv')
      if len(frame) and not started_again(metrics, len(frame), folder):
        frame.to_csv(metrics, index=False)
        written.append(os.path.normpath(os.path.join(rel, 'metrics.csv')))
  return sorted(set(written))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0], epilog=__doc__.split('\n', 1)[1],
                                   formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
  parser.add_argument('results', nargs='?', default='results', help='the workspace results folder (default: results)')
  parser.add_argument('--to', type=cli.folder_flag, default='docs/results', help='the archive, committed (default: docs/results)')
  args = parser.parse_args(argv)
  if not os.path.isdir(args.results):
    parser.error(f'{args.results} is not a folder')
  written = archive(args.results, args.to)
  print(f'{len(written)} files written under {args.to}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
