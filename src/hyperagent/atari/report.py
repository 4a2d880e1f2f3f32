"""Atari report: per-game raw and human-normalised scores, IQM with stratified-bootstrap CIs, curves.

Reads the run directories the Atari loop writes (final.json, eval.csv; any depth under the given
paths). IQM (Agarwal et al. 2021): the mean of the middle 50% of all (game, run) human-normalised
scores; its CI comes from a stratified bootstrap that resamples the runs of each game with
replacement, independently per game (what rliable's `get_interval_estimates` does by default),
implemented here with numpy because rliable 1.2 fails to import with pandas 3 (ECOSYSTEM.md §4).
"""
from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from typing import Sequence

import numpy as np

from hyperagent import cli
from hyperagent.atari import env as atari


# run settings that do not change what a run learns, or that differ between the runs pooled under one label
POOLED = ('game', 'seed', 'env_mode', 'num_threads', 'chunk', 'log_every', 'checkpoint_replay')


def find_runs(paths: Sequence[str]) -> list[dict]:
  """Every run directory under `paths` with a final.json or an eval.csv, with its results loaded.
  Runs are pooled by agent and protocol: runs of one label under other settings (steps, --set, ...),
  or the same game and seed twice, are refused, naming the folders."""
  runs = []
  for root in paths:
    for directory, _, files in sorted(os.walk(root)):
      if 'final.json' not in files and 'eval.csv' not in files:
        continue
      run = dict(dir=directory, final=None, curve=None)
      if 'config.json' in files:
        with open(os.path.join(directory, 'config.json')) as f:
          config = json.load(f)
        run.update(game=config['game'], agent=config['run']['agent'], protocol=config['run']['protocol'],
                   seed=config['run']['seed'],
                   settings=dict(run={k: v for k, v in config['run'].items() if k not in POOLED},
                                 agent=config.get('agent', {})))
      if 'final.json' in files:
        with open(os.path.join(directory, 'final.json')) as f:
          run['final'] = json.load(f)
        run.update({k: run['final'][k] for k in ('game', 'agent', 'protocol', 'seed')})
      if 'eval.csv' in files:
        with open(os.path.join(directory, 'eval.csv'), newline='') as f:
          rows = list(csv.DictReader(f))
        run['curve'] = (np.array([float(r['env_steps']) for r in rows]),
                        np.array([float(r['eval_return']) for r in rows]))
      if 'game' in run:
        run['label'] = f"{run['agent']}-{run['protocol']}"
        runs.append(run)
  check_pooled(runs)
  return runs


def check_pooled(runs: list[dict]) -> None:
  """Raises ValueError where one label's runs were made under different settings, or repeat a run."""
  first: dict[str, dict] = {}
  seen: dict[tuple, str] = {}
  for run in runs:
    key = (run['label'], run['game'], run['seed'])
    if key in seen:
      raise ValueError(f'{run["dir"]} and {seen[key]} are both {run["label"]} on {run["game"]}, seed {run["seed"]}: '
                       'give one of them.')
    seen[key] = run['dir']
    if 'settings' not in run:
      continue
    other = first.setdefault(run['label'], run)
    differ = cli.differences(other['settings'], run['settings'])
    if differ:
      raise ValueError(f'{run["dir"]} and {other["dir"]} are both {run["label"]} but differ in {", ".join(differ)}; '
                       'report them separately.')


def iqm(scores: np.ndarray) -> float:
  """Interquartile mean: drop the lowest and highest 25% (scipy.stats.trim_mean(x, 0.25))."""
  x = np.sort(np.ravel(scores))
  cut = int(0.25 * len(x))
  return float(np.mean(x[cut:len(x) - cut]))


def stratified_bootstrap_ci(per_game: Sequence[np.ndarray], statistic=iqm, reps: int = 2000,
                            alpha: float = 0.05, seed: int = 0) -> tuple[float, float, float]:
  """(point, low, high): `statistic` of the pooled scores, CI from resampling runs within each game."""
  rng = np.random.default_rng(seed)
  point = statistic(np.concatenate(per_game))
  stats = np.empty(reps)
  for i in range(reps):
    stats[i] = statistic(np.concatenate([g[rng.integers(0, len(g), len(g))] for g in per_game]))
  low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
  return point, float(low), float(high)


def score_table(runs: list[dict]) -> list[dict]:
  """One row per (label, game) with final scores: seeds, raw mean/std, HNS mean."""
  groups = defaultdict(list)
  for run in runs:
    if run['final'] is not None:
      groups[(run['label'], run['game'])].append(run['final']['raw_score'])
  rows = []
  for (label, game), raw in sorted(groups.items()):
    raw = np.array(raw)
    hns = atari.human_normalized(game, raw) if game in atari.HUMAN_RANDOM else np.full_like(raw, np.nan)
    std = float(raw.std(ddof=1)) if len(raw) > 1 else 0.0  # the sample std over seeds
    rows.append(dict(agent=label, game=game, seeds=len(raw), raw_mean=float(raw.mean()), raw_std=std,
                     hns_mean=float(np.mean(hns)), hns_median=float(np.median(hns))))
  return rows


def score_at(run: dict, step: int | None) -> float | None:
  """The run's final score (step None: the best parameters' final test), or its evaluation at `step`
  (None where it has none)."""
  if step is None:
    return None if run['final'] is None else run['final']['raw_score']
  if run['curve'] is None:
    return None
  at = np.flatnonzero(run['curve'][0] == step)
  return float(run['curve'][1][at[0]]) if len(at) else None


def common_step(runs: list[dict]) -> int | None:
  """The last evaluation step every run of a scored game (HUMAN_RANDOM) has reached (None without one)."""
  ends = [int(run['curve'][0][-1]) for run in runs
          if run['curve'] is not None and len(run['curve'][0]) and run['game'] in atari.HUMAN_RANDOM]
  return min(ends) if ends else None


def aggregate(runs: list[dict], reps: int = 2000, step: int | None = None) -> list[dict]:
  """Per label, over the human-normalised scores (HNS) of the final evaluations (step None) or of the
  evaluations at `step` (runs without one are left out): the IQM over (game, run) with a stratified-
  bootstrap 95% CI, and the median and mean over games of each game's mean over its runs (Agarwal et
  al. 2021's median and mean: a game with more runs does not weigh more)."""
  per_label = defaultdict(lambda: defaultdict(list))
  for run in runs:
    score = score_at(run, step)
    if score is not None and run['game'] in atari.HUMAN_RANDOM:
      per_label[run['label']][run['game']].append(float(atari.human_normalized(run['game'], score)))
  out = []
  for label, games in sorted(per_label.items()):
    per_game = [np.array(v) for _, v in sorted(games.items())]
    point, low, high = stratified_bootstrap_ci(per_game, iqm, reps)
    game_means = [g.mean() for g in per_game]
    out.append(dict(agent=label, games=len(per_game), runs=sum(map(len, per_game)), iqm=point, iqm_low=low,
                    iqm_high=high, median=float(np.median(game_means)), mean=float(np.mean(game_means))))
  return out


def plot_curves(runs: list[dict], path: str):
  """Evaluation return vs agent steps, one panel per game: mean over seeds with markers (a single
  evaluation still shows), shaded min-max, and the final evaluation (best parameters) as a star."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  games = sorted({run['game'] for run in runs if run['curve'] is not None})
  if not games:
    return False
  cols = min(4, len(games))
  rows = -(-len(games) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
  for ax, game in zip(axes.ravel(), games):
    by_label, finals = defaultdict(list), defaultdict(list)
    for run in runs:
      if run['game'] == game and run['curve'] is not None:
        by_label[run['label']].append(run['curve'])
      if run['game'] == game and run['final'] is not None:
        finals[run['label']].append((run['final']['env_steps'], run['final']['raw_score']))
    for label, curves in sorted(by_label.items()):
      length = min(len(c[0]) for c in curves)  # seeds may be at different points of a running job
      steps = curves[0][0][:length]
      values = np.stack([c[1][:length] for c in curves])
      line, = ax.plot(steps, values.mean(0), 'o-', markersize=3, label=f'{label} ({len(curves)})')
      ax.fill_between(steps, values.min(0), values.max(0), alpha=0.2)
      if finals[label]:
        at, score = np.mean(finals[label], axis=0)
        ax.plot([at], [score], '*', markersize=11, color=line.get_color(),
                label=f'{label}: final test, best params')
    if game in atari.HUMAN_RANDOM:
      ax.axhline(atari.HUMAN_RANDOM[game][1], color='grey', ls='--', lw=0.8, label='human')
    ax.set_title(game)
    ax.set_xlabel('agent steps')
    ax.set_ylabel('eval return')
    ax.legend(fontsize=7)
  for ax in axes.ravel()[len(games):]:
    ax.axis('off')
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return True


def write_report(paths: Sequence[str], out_dir: str, reps: int = 2000, step: int | None = None) -> str:
  """Writes scores.csv, aggregate.csv, aggregate_at_step.csv, curves.png and report.md into out_dir;
  returns the markdown. `step`: where the per-evaluation IQM is read (default: the last evaluation
  every run has reached)."""
  runs = find_runs(paths)
  if not runs:
    raise ValueError(f'No Atari runs (final.json or eval.csv) under {", ".join(paths)}.')
  if reps < 1:
    raise ValueError(f'reps must be >= 1, got {reps}.')
  evaluated = sorted({int(x) for run in runs if run['curve'] is not None for x in run['curve'][0]})
  if step is not None and step not in evaluated:
    raise ValueError(f'no run evaluated at step {step:,}; the steps evaluated are '
                     f'{", ".join(f"{x:,}" for x in evaluated) or "none"}.')
  os.makedirs(out_dir, exist_ok=True)
  step = common_step(runs) if step is None else step
  table, agg = score_table(runs), aggregate(runs, reps)
  at_step = [dict(step=step, **a) for a in aggregate(runs, reps, step)] if step is not None else []
  for name, rows in (('scores.csv', table), ('aggregate.csv', agg), ('aggregate_at_step.csv', at_step)):
    path = os.path.join(out_dir, name)
    if rows:
      with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    elif os.path.exists(path):  # an earlier report's, for other runs
      os.remove(path)
  has_curves = plot_curves(runs, os.path.join(out_dir, 'curves.png'))
  lines = ['# Atari report', '', f'{len(runs)} run directories under {", ".join(paths)}; '
           f'{sum(r["final"] is not None for r in runs)} with a final evaluation.', '',
           '## Final scores per game', '', '| agent | game | seeds | raw score (mean ± std over seeds) | HNS mean | HNS median |',
           '|---|---|---|---|---|---|']
  lines += [f"| {r['agent']} | {r['game']} | {r['seeds']} | {r['raw_mean']:.1f} ± {r['raw_std']:.1f} | "
            f"{r['hns_mean']:.3f} | {r['hns_median']:.3f} |" for r in table]
  lines += ['', '## Aggregate human-normalised score', '',
            f'IQM with a 95% stratified-bootstrap CI ({reps} resamples of the runs within each game).', '',
            '| agent | games | runs | IQM [95% CI] | median of game means | mean of game means |', '|---|---|---|---|---|---|']
  row = lambda a: (f"| {a['agent']} | {a['games']} | {a['runs']} | {a['iqm']:.3f} [{a['iqm_low']:.3f}, "
                   f"{a['iqm_high']:.3f}] | {a['median']:.3f} | {a['mean']:.3f} |")
  lines += [row(a) for a in agg]
  lines += ['', 'These are the final scores: the best evaluation\'s parameters tested again over '
            'final_eval_episodes games (200 by default), which picks the luckiest point of each run '
            '(optimistic, SPEC §7.9).']
  if step is not None:
    lines += ['', f'## Aggregate human-normalised score at step {step:,}', '',
              f'Each run\'s evaluation at step {step:,} (its eval_episodes games, 10 by default, on the online '
              'parameters), the measure of SPEC §5.3\'s figures; runs without an evaluation there are left out.', '',
              '| agent | games | runs | IQM [95% CI] | median of game means | mean of game means |', '|---|---|---|---|---|---|']
    lines += [row(a) for a in at_step] or [f'| (no run of a scored game has an evaluation at step {step:,}) |']
  if has_curves:
    lines += ['', '## Learning curves', '', '![evaluation return vs agent steps](curves.png)']
  text = '\n'.join(lines) + '\n'
  with open(os.path.join(out_dir, 'report.md'), 'w') as f:
    f.write(text)
  return text
