"""Results of the jitted DeepSea loop on disk: config, CSV logs, bsuite CSVs, summary and plots.

A results folder holds
  config.json       the agent Config and the RunSpec, resolved
  metrics.csv       one row per seed and evaluation: env_steps, episodes, eval_return, eval_optimal,
                    td_loss, q_mean, wall_s
  episodes.csv      one row per seed and training episode: episode_return, total_bad_episodes, ...
  summary.csv       one row per seed: both solve episodes (bsuite's and the official code's criterion)
                    and the episodes played (fewer than the budget once every seed has solved)
  bsuite/seed_<s>/  bsuite-format CSVs (sizes of bsuite's sweep only) that bsuite's analysis scores
  deepsea.png       test-episode optimality and bsuite's bad-episode ratio against episodes
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
from typing import Any, NamedTuple, Sequence

import numpy as np
import pandas as pd

from hyperagent import checkpoint
from hyperagent.config import Config
from hyperagent.bsuite import csv_format as bsuite_csv
from hyperagent.deepsea import run


def bsuite_rows(result: run.Result, seed_index: int, every_episode: bool = False) -> pd.DataFrame:
  """One seed's episodes as bsuite's logger would write them: at its log episodes by default, plus the
  last episode, so a run stopped early (once solved) still shows bsuite's analysis where it ended."""
  episode_return = result.episode_return[seed_index].astype(np.float64)
  episodes = np.arange(1, len(episode_return) + 1)
  frame = pd.DataFrame(dict(
      episode=episodes, total_return=np.cumsum(episode_return), episode_return=episode_return,
      total_bad_episodes=result.total_bad_episodes[seed_index],
      denoised_return=result.denoised_return[seed_index]))
  if not every_episode:
    frame = frame[np.isin(episodes, bsuite_csv.bsuite_log_episodes(len(episodes))) | (episodes == len(episodes))]
  return frame


def write_tables(out_dir: str, settings: dict[str, Any], spec: run.RunSpec, result: run.Result,
                 extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
  """config.json (`settings`: the Config's fields), metrics.csv and summary.csv of a finished run, or
  of a run still going (its record so far, read from the checkpoint by the archive); returns the
  per-seed summary."""
  os.makedirs(out_dir, exist_ok=True)
  checkpoint.write_text(os.path.join(out_dir, 'config.json'),
                        json.dumps(dict(config=settings, run=dataclasses.asdict(spec), **(extra or {})), indent=1))

  seeds = np.asarray(spec.seeds)
  num_evals = len(result.eval_steps)
  metrics = pd.DataFrame(dict(
      seed=np.repeat(seeds, num_evals), env_steps=np.tile(result.eval_steps, len(seeds)),
      episodes=np.tile(result.eval_steps / spec.size, len(seeds)),
      eval_return=result.eval_return.ravel(), eval_optimal=result.eval_optimal.ravel(),
      td_loss=result.td_loss.ravel(), q_mean=result.q_mean.ravel(),
      wall_s=np.tile(result.eval_wall_s, len(seeds))))
  metrics.to_csv(os.path.join(out_dir, 'metrics.csv'), index=False)
  rows = run.summary(result, spec)
  pd.DataFrame(rows).to_csv(os.path.join(out_dir, 'summary.csv'), index=False)
  return rows


def write_results(out_dir: str, config: Config, spec: run.RunSpec, result: run.Result,
                  extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
  """Writes the folder described in the module docstring; returns the per-seed summary."""
  rows = write_tables(out_dir, config.to_dict(), spec, result, extra)
  episodes = pd.concat([bsuite_rows(result, i, every_episode=True).assign(seed=s)
                        for i, s in enumerate(spec.seeds)])
  episodes.to_csv(os.path.join(out_dir, 'episodes.csv'), index=False)

  try:
    bsuite_id = bsuite_csv.deep_sea_id(spec.size)
  except ValueError:
    bsuite_id = None  # not a size of bsuite's sweep: bsuite could not score it
  if bsuite_id is not None:
    if not spec.deterministic:
      bsuite_id = bsuite_id.replace('deep_sea', 'deep_sea_stochastic')
    for i, seed in enumerate(spec.seeds):
      bsuite_csv.write_deep_sea_csv(os.path.join(out_dir, 'bsuite', f'seed_{seed}'), bsuite_id,
                                    bsuite_rows(result, i), overwrite=True)
  plot_run(os.path.join(out_dir, 'deepsea.png'), spec, result)
  return rows


def plot_run(path: str, spec: run.RunSpec, result: run.Result) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  episodes_at_eval = result.eval_steps / spec.size
  for i, seed in enumerate(spec.seeds):
    left.plot(episodes_at_eval, result.eval_optimal[i], '.-', label=f'seed {seed}', alpha=0.8)
    bad = result.total_bad_episodes[i] / np.arange(1, result.total_bad_episodes.shape[1] + 1)
    right.plot(np.arange(1, len(bad) + 1), bad, alpha=0.8)
  left.set(xlabel='training episodes', ylabel='test episodes reaching the treasure',
           title=f'DeepSea N={spec.size}: {spec.eval_episodes} sampled-index test episodes', ylim=(-0.02, 1.02))
  right.axhline(0.9, color='k', linestyle='--', linewidth=1, label="bsuite's threshold 0.9")
  right.set(xlabel='training episodes', ylabel='bad episodes / episodes', xscale='log',
            title="bsuite's criterion", ylim=(0, 1.02))
  left.legend(fontsize=7, ncol=2)
  right.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def format_summary(rows: Sequence[dict[str, Any]]) -> str:
  """The per-seed solve table printed at the end of `make deepsea`."""
  show = lambda v: '—' if v is None else f'{v:g}'
  lines = ['seed  bsuite-solve-episode  all-optimal-eval-episode  final-test-optimal',
           *(f"{r['seed']:>4}  {show(r['bsuite_solve_episode']):>20}  {show(r['eval_solve_episode']):>24}  "
             f"{r['final_eval_optimal']:>18.2f}" for r in rows)]
  for key, name in (('bsuite_solve_episode', "bsuite's criterion"), ('eval_solve_episode', 'all-optimal test')):
    solved = [r[key] for r in rows if r[key] is not None]
    median = np.median(censored([r[key] for r in rows]))  # unsolved seeds count as never, as in the study
    shown = f', median {median:g} episodes' if np.isfinite(median) else (', median never' if solved else '')
    lines.append(f'solved under {name}: {len(solved)}/{len(rows)} seeds{shown}')
  return '\n'.join(lines)


# ----------------------------------------------------------------------------- scaling study


def fit_exponent(sizes: Sequence[float], episodes: Sequence[float]) -> tuple[float, float]:
  """Least-squares fit of log(episodes) = log(c) + k·log(N); returns (k, c)."""
  k, log_c = np.polyfit(np.log(np.asarray(sizes, float)), np.log(np.asarray(episodes, float)), 1)
  return float(k), float(np.exp(log_c))


def median_episodes(table: pd.DataFrame, criterion: str, by: Sequence[str] = ('size',)) -> pd.Series:
  """Median episodes to solve over seeds per `by` (size, or agent and size), unsolved seeds counted as
  never (+inf), as the study's table counts them: a size that half or more of its seeds failed has no
  finite median, and the median of the seeds that solved would flatter it."""
  return table.groupby(list(by))[criterion].agg(lambda e: float(np.median(censored(e.tolist()))))


def plot_scaling(path: str, table: pd.DataFrame, criterion: str) -> dict[str, tuple[float, float]]:
  """Log-log episodes-to-solve against N per agent (median over seeds with unsolved seeds as never,
  seeds as dots), the fitted exponent, and the 2^N episodes dithering needs. The fit runs through the
  sizes from the smallest up to the first whose median is not finite; returns {agent: (k, c)} for
  agents with >= 3 such sizes (a power law through two points says nothing); the label gives the
  range of N it was fitted on."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  import matplotlib.ticker

  fig, ax = plt.subplots(figsize=(6.5, 4.5))
  fits = {}
  sizes_all = np.sort(table['size'].unique())
  for agent, group in table.groupby('agent'):
    solved = group.dropna(subset=[criterion])
    line, = ax.plot([], [])
    color = line.get_color()
    ax.scatter(solved['size'], solved[criterion], color=color, alpha=0.35, s=12)
    medians = median_episodes(group, criterion)
    unsolved = group[group[criterion].isna()]
    if len(unsolved):
      ax.scatter(unsolved['size'], unsolved['budget_episodes'], color=color, marker='x', s=30)
    finite = np.isfinite(medians.values)
    leading = medians.iloc[:int(np.argmin(finite)) if not finite.all() else len(medians)]
    label = agent
    if len(leading) >= 3:
      k, c = fit_exponent(leading.index, leading.values)
      fits[agent] = (k, c)
      grid = np.linspace(leading.index.min(), leading.index.max(), 50)
      ax.plot(grid, c * grid ** k, color=color, linestyle=':', linewidth=1)
      label = f'{agent}: episodes ∝ N^{k:.2f} (N = {leading.index.min()}–{leading.index.max()})'
    ax.plot(medians.index[finite], medians.values[finite], 'o-', color=color, label=label)
  dither = np.linspace(sizes_all.min(), min(sizes_all.max(), 24), 50)
  ax.plot(dither, 2.0 ** dither, 'k--', alpha=0.5, label='2^N (dithering)')
  ax.set(xscale='log', yscale='log', xlabel='DeepSea size N', ylabel=f'episodes to solve ({criterion})',
         title='DeepSea: median over seeds, unsolved as never (x: unsolved at budget)')
  ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
  ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
  ax.set_xticks(sizes_all[::-(-len(sizes_all) // 10)])  # at most 10 labelled sizes
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return fits


# ----------------------------------------------------------------------------- statistics over seeds


def censored(episodes: Sequence[float | None]) -> np.ndarray:
  """Episodes to solve with unsolved seeds as +inf: they solved later than any solved seed, if ever, so
  medians and their bootstrap stay honest about them."""
  return np.array([np.inf if e is None or np.isnan(float(e)) else float(e) for e in episodes])


def bootstrap_median(episodes: Sequence[float | None], draws: int = 2_000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
  """(median, low, high): the median over seeds and a percentile bootstrap interval, seeds resampled
  with replacement; unsolved seeds count as +inf, so a bound is inf where they weigh in."""
  x = censored(episodes)
  rng = np.random.default_rng(seed)
  medians = np.median(rng.choice(x, size=(draws, len(x)), replace=True), axis=1)
  tail = (1 - level) / 2
  low, high = np.quantile(medians, [tail, 1 - tail], method='inverted_cdf')
  return float(np.median(x)), float(low), float(high)


def with_earlier_rows(path: str, table: pd.DataFrame, key: str) -> pd.DataFrame:
  """`table` (one row per `key`, size and seed) after the rows of the table at `path`, if any, whose
  (`key`, size) pairs `table` does not hold: what a script's summary keeps of its earlier commands."""
  if not os.path.exists(path):
    return table
  old = pd.read_csv(path)
  ran = set(zip(table[key], table['size'])) if len(table) else set()
  return pd.concat([old[[pair not in ran for pair in zip(old[key], old['size'])]], table], ignore_index=True)


class ExponentFit(NamedTuple):
  """episodes ∝ N^k, with a bootstrap interval over seeds."""
  k: float
  low: float
  high: float
  unsolved: float  # fraction of bootstrap draws with an unsolved median at some size (k = ∞ there)


class NoFit(NamedTuple):
  """Why a table gives no exponent."""
  reason: str


def bootstrap_exponent(table: pd.DataFrame, criterion: str, draws: int = 2_000, level: float = 0.95,
                       seed: int = 0) -> ExponentFit | NoFit:
  """(k, low, high, unsolved) for episodes ∝ N^k fitted to the per-size medians of `table` (columns size
  and `criterion`, one row per seed), with a bootstrap interval that resamples seeds within each size.
  Needs three or more sizes whose median is finite. A draw whose median is infinite at some size (too
  many unsolved seeds) fits no finite line; it counts as k = ∞, the top of the ordering, since seeds go
  unsolved at the large sizes, not the small ones. Leaving such draws out would make the interval look
  bounded when it is not: once they are 2.5% of the draws or more (its upper tail), `high` is ∞. Their fraction is
  returned as `unsolved`; NoFit when it is more than half the draws."""
  groups = [censored(g[criterion].tolist()) for _, g in sorted(table.groupby('size'))]
  sizes = np.array(sorted(table['size'].unique()), float)
  medians = np.array([np.median(g) for g in groups])
  if len(sizes) < 3:
    return NoFit(f'only {len(sizes)} size{"s" * (len(sizes) != 1)}; 3 needed')
  if not np.all(np.isfinite(medians)):
    return NoFit(f'the median is never at {int((~np.isfinite(medians)).sum())} of the {len(sizes)} sizes')
  k, _ = fit_exponent(sizes, medians)
  rng = np.random.default_rng(seed)
  boot = np.full(draws, np.inf)
  for i in range(draws):
    m = np.array([np.median(rng.choice(g, size=len(g), replace=True)) for g in groups])
    if np.all(np.isfinite(m)):
      boot[i] = fit_exponent(sizes, m)[0]
  unsolved = float(np.mean(np.isinf(boot)))
  if unsolved > 0.5:
    return NoFit('more than half the bootstrap draws had an unsolved median')
  tail = (1 - level) / 2
  return ExponentFit(k, _quantile(boot, tail), _quantile(boot, 1 - tail), unsolved)


def _quantile(values: np.ndarray, q: float) -> float:
  """numpy's default (linear) quantile, ∞ where it reaches an infinite value (numpy gives NaN between two)."""
  ordered = np.sort(values)
  pos = q * (len(ordered) - 1)
  i, j = int(np.floor(pos)), int(np.ceil(pos))
  if np.isinf(ordered[j]):
    return np.inf
  return float(ordered[i] + (ordered[j] - ordered[i]) * (pos - i))


def collect_runs(*study_dirs: str, labels: Sequence[str] = ()) -> pd.DataFrame:
  """Every run folder `<agent>-N<size>-<mapping>[-stochastic]-<run id>` with a summary.csv under any of
  `study_dirs`, as one table (one row per seed) with its agent, its budget and the folder it came from.
  `labels[i]`, where given and not empty, names a variant: the agent of study_dirs[i]'s runs is then
  '<agent> (<label>)', a series of its own (e.g. the same agent with another prior).
  A study can grow across sessions and workspaces (a re-run of the small sizes in one folder, a long
  run in another); the same agent, size and seed found twice is an error naming both folders, since
  a median must not count one seed twice; so is one agent and size in folders of different settings
  (a mapping, a budget, an override). Column `unfinished`: the seed has not solved under both
  criteria and its run stopped short of the budget (a run still going, as the archive keeps it), so
  its episodes to solve are not known, only that they exceed `episodes`."""
  rows = []
  for study_dir, label in itertools.zip_longest(study_dirs, labels[:len(study_dirs)], fillvalue=''):
    for name in sorted(os.listdir(study_dir)):
      path = os.path.join(study_dir, name, 'summary.csv')
      if '-N' not in name or not os.path.exists(path):
        continue
      with open(os.path.join(study_dir, name, 'config.json')) as f:
        saved = json.load(f)
      budget = saved['run']['episodes']
      # what must agree for two folders' seeds to be one sample: everything but the seeds
      setting = json.dumps(dict(saved, run={k: v for k, v in saved['run'].items() if k != 'seeds'}), sort_keys=True)
      agent = name.split('-N')[0] + (f' ({label})' if label else '')
      rows.append(pd.read_csv(path).assign(agent=agent, budget_episodes=budget,
                                           folder=os.path.join(study_dir, name), setting=setting))
  if not rows:
    return pd.DataFrame()
  table = pd.concat(rows, ignore_index=True)
  solved = table['eval_solve_episode'].notna() & table['bsuite_solve_episode'].notna()
  table['unfinished'] = ~solved & (table['episodes'] < table['budget_episodes'])
  twice = table[table.duplicated(['agent', 'size', 'seed'], keep=False)]
  if len(twice):
    (agent, size, seed), group = next(iter(twice.groupby(['agent', 'size', 'seed'])))
    raise ValueError(f'{agent} N = {size} seed {seed} is in more than one run folder: '
                     f'{", ".join(group["folder"])}; pass the study folders so that each seed is in one')
  for (agent, size), group in table.groupby(['agent', 'size']):
    if group['setting'].nunique() > 1:
      raise ValueError(f'{agent} N = {size}: the run folders {", ".join(sorted(set(group["folder"])))} hold '
                       'different settings (config.json beyond the seeds), so their seeds are not one sample; '
                       'label a folder (LABEL=FOLDER) to make its runs a series of their own')
  return table.drop(columns='setting')
