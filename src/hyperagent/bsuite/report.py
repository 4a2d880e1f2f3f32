"""A bsuite report: bsuite's own loader, scores and plots for several agents, as one static HTML page.

    make_report({'hyperagent': 'results/ha', 'dqn': 'results/dqn'}, 'reports/bsuite')

reads every `bsuite_id_-_*.csv` in each directory with `bsuite.logging.csv_load.load_bsuite`, scores
them with `summary_analysis.bsuite_score` / `ave_score_by_tag`, and writes into `out_dir`:

  index.html            everything below, with relative <img> links (copy the folder as a whole)
  scores.csv            agent x experiment bsuite score
  scores_long.csv       one row per (agent, experiment): score, type, tags, finished
  scores_by_tag.csv     agent x tag average score (tags with data only; complete experiments only by default)
  completeness.csv/.md  per agent and experiment: ids with data of bsuite's sweep, full length, complete
  coverage.csv          per agent and tag: how many of the tag's sweep ids its score rests on
  deep_sea_solutions.csv  per agent and size: first logged episode with < 90% bad episodes, solved, finished
  radar.png, bar.png    bsuite's summary plots, of the experiments the tag scores count
  deep_sea_scaling.png  bsuite's `plot_scaling_log` (and deep_sea_stochastic_scaling.png) when present
  experiment_<env>.png  one per experiment present, from that experiment's analysis module

A plot that fails is skipped and listed, with its error, on the page; the scores never depend on plots.
"""
from __future__ import annotations

import contextlib
import html
import importlib
import io
import json
import os
import warnings
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import pandas as pd

from hyperagent.bsuite import compat as bsuite_compat
from hyperagent.bsuite import csv_format as bsuite_csv
from hyperagent.bsuite import sweep as bsuite_sweep

AGENT = 'agent_name'  # the sweep variable csv_load.load_bsuite gives a {name: dir} mapping
# Per-experiment plot, first one the experiment's analysis module has. deep_sea has no
# `plot_learning`; its `plot_regret` is the learning curve (average bad episodes by size).
_EXPERIMENT_PLOTS = ('plot_learning', 'plot_regret', 'plot_seeds')
_SCALING_EXPERIMENTS = ('deep_sea', 'deep_sea_stochastic')
_MIN_RADAR_TAGS = 3  # with fewer axes a radar has no area; then all bsuite tags are drawn


def check_results(results: Mapping[str, str | os.PathLike]) -> dict[str, str]:
  """Validates {agent name: results dir}; returns it with absolute paths, or raises a clear error."""
  if not results:
    raise ValueError('no results given: pass {agent_name: results_dir}')
  checked = {}
  for name, directory in results.items():
    if not isinstance(name, str) or not name.strip():
      raise ValueError(f'agent names must be non-empty strings, got {name!r}')
    path = os.path.abspath(os.fspath(directory))
    if not os.path.isdir(path):
      raise FileNotFoundError(f'results dir for agent {name!r} does not exist: {path}')
    if not bsuite_csv.bsuite_csv_files(path):
      raise ValueError(f'results dir for agent {name!r} has no bsuite CSVs '
                       f'(files named bsuite_id_-_<experiment>-<i>.csv): {path}')
    checked[name] = path
  return checked


def _drop_groupby_leftovers(df: pd.DataFrame) -> pd.DataFrame:
  # bsuite's groupby().apply().reset_index() leaves 'level_1' behind (bsuite checks the wrong frame).
  return df.drop(columns=[c for c in df.columns if str(c).startswith('level_')])


@contextlib.contextmanager
def _quiet_bsuite():
  """bsuite prints progress/warnings to stdout and triggers pandas/plotnine warnings; keep them out."""
  with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
    warnings.filterwarnings('ignore', module=r'bsuite(\.|$)')
    warnings.filterwarnings('ignore', module=r'plotnine(\.|$)')
    warnings.filterwarnings('ignore', category=FutureWarning)
    try:
      from plotnine.exceptions import PlotnineWarning
      warnings.filterwarnings('ignore', category=PlotnineWarning)
    except ImportError:  # pragma: no cover
      pass
    yield


class Scores(NamedTuple):
  """What `load_and_score` returns."""
  data: pd.DataFrame       # every logged row, with bsuite metadata and `agent_name`
  by_experiment: pd.DataFrame  # agent_name, bsuite_env, score, type, tags, finished
  by_tag: pd.DataFrame     # agent_name, tag, score (NaN for tags without data)
  failures: dict[tuple[str, str], str]  # (agent, experiment) -> why bsuite could not score it


def _score_each(df: pd.DataFrame, sweep_vars: list[str]
                ) -> tuple[pd.DataFrame, dict[tuple[str, str], str]]:
  """`bsuite_score` one (agent, experiment) at a time, so one bad experiment cannot hide the rest.

  bsuite's scorers fail on some too-short runs, e.g. deep_sea_stochastic before episode 100.
  """
  from bsuite.experiments import summary_analysis
  frames, failures = [], {}
  for (agent, experiment), group in df.groupby([AGENT, 'bsuite_env']):
    try:
      frames.append(summary_analysis.bsuite_score(group, sweep_vars))
    except Exception as error:  # pylint: disable=broad-except
      failures[(agent, experiment)] = f'{type(error).__name__}: {error}'[:500]
      info = summary_analysis.BSUITE_INFO.get(experiment)
      if info is not None:
        frames.append(pd.DataFrame([{AGENT: agent, 'bsuite_env': experiment, 'score': float('nan'),
                                     'type': info.type, 'tags': str(info.tags), 'finished': False}]))
  return pd.concat(frames, ignore_index=True), failures


def load_and_score(results: Mapping[str, str | os.PathLike]) -> Scores:
  """Loads {agent name: results dir} with bsuite's csv_load and scores it with bsuite."""
  checked = check_results(results)
  bsuite_compat.patch()
  from bsuite.experiments import summary_analysis
  from bsuite.logging import csv_load

  with _quiet_bsuite():
    df, sweep_vars = csv_load.load_bsuite(checked)
    if df.empty:
      raise ValueError('the bsuite CSVs hold no rows for any known bsuite id')
    assert sweep_vars == [AGENT], sweep_vars
    failures = {}
    try:
      score_df = summary_analysis.bsuite_score(df, sweep_vars)
    except Exception:  # pylint: disable=broad-except
      score_df, failures = _score_each(df, sweep_vars)
    score_df = _drop_groupby_leftovers(score_df)
    tag_df = _drop_groupby_leftovers(summary_analysis.ave_score_by_tag(score_df, sweep_vars))
  score_df = score_df.sort_values([AGENT, 'bsuite_env']).reset_index(drop=True)
  return Scores(df, score_df, tag_df, failures)


def _save_ggplot(plot: Any, path: str, dpi: int) -> None:
  plot.save(path, dpi=dpi, verbose=False, bbox_inches='tight')  # 'tight': axis labels are not clipped


def coverage(data: pd.DataFrame, by_experiment: pd.DataFrame) -> pd.DataFrame:
  """Per agent and bsuite tag: how many of the tag's ids in bsuite's sweep have data, and whether every
  experiment scored for it ran its full episodes. A tag score is `partial` otherwise: it averages only
  what ran (deep_sea/0 alone scores exploration 1.0)."""
  from bsuite import sweep
  rows = []
  for agent, frame in data.groupby(AGENT):
    present = set(frame['bsuite_id'].unique())
    unfinished = set(by_experiment[(by_experiment[AGENT] == agent) & ~by_experiment['finished'].astype(bool)]
                     ['bsuite_env'])
    for tag, ids in sweep.TAGS.items():
      have = present & set(ids)
      if not have:
        continue
      short = sorted({i.split('/')[0] for i in have} & unfinished)
      rows.append({AGENT: agent, 'tag': tag, 'ids': len(have), 'ids_in_tag': len(ids),
                   'unfinished_experiments': ', '.join(short),
                   'partial': len(have) < len(ids) or bool(short)})
  return pd.DataFrame(rows, columns=[AGENT, 'tag', 'ids', 'ids_in_tag', 'unfinished_experiments', 'partial'])


def completeness(data: pd.DataFrame, by_experiment: pd.DataFrame) -> pd.DataFrame:
  """Per agent and experiment: the ids with data out of the experiment's ids in bsuite's sweep, whether
  every one of them ran bsuite's full episode count (its `finished`), and `complete` (both)."""
  from bsuite import sweep
  rows = []
  for row in by_experiment.itertuples():
    ids = [i for i in sweep.SWEEP if i.split('/')[0] == row.bsuite_env]
    have = data[(data[AGENT] == getattr(row, AGENT)) & (data['bsuite_env'] == row.bsuite_env)]['bsuite_id'].nunique()
    finished = bool(row.finished)
    rows.append({AGENT: getattr(row, AGENT), 'experiment': row.bsuite_env, 'ids': have, 'ids_in_sweep': len(ids),
                 'full_episodes': finished, 'complete': finished and have == len(ids), 'score': row.score})
  return pd.DataFrame(rows, columns=[AGENT, 'experiment', 'ids', 'ids_in_sweep', 'full_episodes', 'complete',
                                     'score'])


def completeness_cell(row) -> str:
  """One agent's cell of the "Complete experiments" table (README and HTML): the score where complete,
  else what ran."""
  if row.complete:
    return f'**{row.score:.2f}** (complete)'
  return f'{row.ids}/{row.ids_in_sweep} ids' + ('' if row.full_episodes else ', short runs')


def completeness_markdown(table: pd.DataFrame) -> str:
  """Experiments as rows, agents as columns (`completeness_cell`), 'not run' where an agent has no data."""
  agents = sorted(table[AGENT].unique())
  wide = _by_agent(table, 'experiment', completeness_cell, agents, 'experiment').fillna('not run')
  lines = ['| experiment | ' + ' | '.join(agents) + ' |', '|---|' + '---|' * len(agents)]
  lines += ['| ' + ' | '.join(row) + ' |' for row in wide[['experiment', *agents]].itertuples(index=False)]
  return '\n'.join(lines)


def seed_families(results: Mapping[str, str | os.PathLike]) -> dict[str, str]:
  """{agent name: family} for the folders that are one agent and config at several sweep seeds (their
  config.json from bsuite_run.py, `--seeds`); the family is named after its lowest seed's folder.
  Folders without a config.json, or alone in their family, are left out, and so, with a warning, is a
  family holding one seed twice (an archived run beside its rerun): its spread would count that seed twice."""
  members: dict[str, list[tuple[int, str]]] = {}
  for name, folder in results.items():
    path = os.path.join(os.fspath(folder), bsuite_sweep.RUN_INFO)
    if not os.path.exists(path):
      continue
    with open(path) as f:
      info = json.load(f)
    key = json.dumps([info.get('agent'), info.get('config')], sort_keys=True)
    members.setdefault(key, []).append((int(info.get('seed', 0)), name))
  families = {}
  for found in members.values():
    seeds = [seed for seed, _ in found]
    if len(set(seeds)) < len(seeds):
      warnings.warn(f'{", ".join(sorted(name for _, name in found))} are one agent and config with a seed in '
                    'two of them: no spread over seeds for them (name one folder per seed)')
    elif len(found) > 1:
      family = min(found)[1]
      families.update({name: family for _, name in found})
  return families


def seed_spread(complete: pd.DataFrame, families: Mapping[str, str]) -> pd.DataFrame:
  """Per family (`seed_families`) and experiment complete in every member: its folders, and the
  mean, min and max of bsuite's score over them."""
  rows = []
  table = complete[complete[AGENT].isin(list(families))]
  for (family, experiment), frame in table.groupby([table[AGENT].map(families), 'experiment']):
    size = sum(1 for f in families.values() if f == family)
    if len(frame) == size and frame.complete.all():
      rows.append({'family': family, 'experiment': experiment, 'folders': size, 'mean': frame.score.mean(),
                   'min': frame.score.min(), 'max': frame.score.max()})
  return pd.DataFrame(rows, columns=['family', 'experiment', 'folders', 'mean', 'min', 'max'])


def _coverage_note(cover: pd.DataFrame) -> str:
  """One line per agent naming its partial tags, for the summary plots' captions."""
  lines = []
  for agent, frame in cover[cover['partial'].astype(bool)].groupby(AGENT):
    parts = [f'{r.tag} {r.ids}/{r.ids_in_tag} ids' + (' (short runs)' if r.unfinished_experiments else '')
             for r in frame.itertuples()]
    lines.append(f'{agent}: partial scores: ' + ', '.join(parts))
  return '\n'.join(lines)


def _with_caption(plot: Any, note: str, kind: str) -> Any:
  if not note:
    return plot
  if kind == 'figure':
    plot.text(0.01, -0.02, note, fontsize=9, ha='left', va='top', transform=plot.transFigure)
    return plot
  import plotnine
  return plot + plotnine.labs(caption=note)


def _save_figure(fig: Any, path: str, dpi: int) -> None:
  import matplotlib.pyplot as plt
  try:
    fig.savefig(path, dpi=dpi, bbox_inches='tight')  # 'tight' keeps the radar's legend
  finally:
    plt.close(fig)


def _radar_tags(tag_df: pd.DataFrame) -> list[str]:
  """The tags every agent has a score for; else those any agent has; else all (with fewer than
  _MIN_RADAR_TAGS). bsuite's radar draws a missing score at its floor, which would read as an agent
  failing a tag it never ran."""
  scored = tag_df[tag_df.score.notna()]
  agents = tag_df[AGENT].unique()
  every_agent = sorted(tag for tag, rows in scored.groupby('tag') if set(rows[AGENT]) >= set(agents))
  if len(every_agent) >= _MIN_RADAR_TAGS:
    return every_agent
  with_data = sorted(scored['tag'].unique())
  if len(with_data) >= _MIN_RADAR_TAGS:
    return with_data
  return sorted(tag_df['tag'].unique())


def _solutions(experiment: str, df: pd.DataFrame) -> pd.DataFrame:
  """bsuite's `find_solution` for deep_sea(_stochastic): one row per agent and size, merged back
  with the logged columns (as the scaling plots expect)."""
  analysis = importlib.import_module(f'bsuite.experiments.{experiment}.analysis')
  return analysis.find_solution(df, [AGENT])


class _Plots:
  """Renders plots into out_dir, remembering what worked and what was skipped (and why)."""

  def __init__(self, out_dir: str, dpi: int):
    self.out_dir, self.dpi = out_dir, dpi
    self.made: dict[str, str] = {}     # key -> file name
    self.skipped: dict[str, str] = {}  # key -> reason

  def render(self, key: str, filename: str, make: Callable[[], Any], kind: str) -> None:
    path = os.path.join(self.out_dir, filename)
    try:
      with _quiet_bsuite():
        plot = make()
        if plot is None:
          raise ValueError('the plotting function returned nothing')
        if kind == 'figure':
          _save_figure(plot, path, self.dpi)
        else:
          _save_ggplot(plot, path, self.dpi)
    except Exception as error:  # pylint: disable=broad-except  # a plot must not sink the report
      if os.path.exists(path):
        os.remove(path)
      self.skipped[key] = f'{type(error).__name__}: {error}'.strip()[:500]
    else:
      self.made[key] = filename


def _experiment_plot(experiment: str, df: pd.DataFrame) -> Callable[[], Any]:
  def make():
    analysis = importlib.import_module(f'bsuite.experiments.{experiment}.analysis')
    for name in _EXPERIMENT_PLOTS:
      if hasattr(analysis, name):
        return getattr(analysis, name)(df, [AGENT])
    raise ValueError(f'bsuite.experiments.{experiment}.analysis has none of {_EXPERIMENT_PLOTS}')
  return make


def _experiment_plot_name(experiment: str) -> str:
  try:
    analysis = importlib.import_module(f'bsuite.experiments.{experiment}.analysis')
  except ImportError:
    return '?'
  return next((name for name in _EXPERIMENT_PLOTS if hasattr(analysis, name)), '?')


# ---------------------------------------------------------------- HTML

_CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f2f2f2; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #555; font-size: 90%; }
code { background: #f5f5f5; padding: 0 3px; }
"""


def _table(df: pd.DataFrame, index: bool = True) -> str:
  return df.to_html(na_rep='', border=0, escape=True, index=index)


def _by_agent(long: pd.DataFrame, row: str, cell: Callable[[Any], str],
              agents: Sequence[str], row_label: str) -> pd.DataFrame:
  """Long (agent, row, ...) frame -> one row per `row` value, one column per agent (given order)."""
  shown = long.assign(_cell=long.apply(cell, axis=1) if len(long) else [])
  wide = shown.pivot(index=row, columns=AGENT, values='_cell')
  wide = wide.reindex(columns=[a for a in agents if a in wide.columns])
  wide.columns.name = None
  wide.index.name = row_label
  return wide.reset_index()


def _img(filename: str, alt: str) -> str:
  src = html.escape(filename, quote=True)
  return f'<p><img src="{src}" alt="{html.escape(alt, quote=True)}"></p>'


def _score_cell(row: Any) -> str:
  """bsuite's score, marked where it is not the experiment's: `*` for runs short of bsuite's episode
  count, and the ids that ran where some are missing (bsuite's `finished` looks only at those present)."""
  if pd.isna(row.score):
    return 'n/a'
  missing = f' ({row.ids}/{row.ids_in_sweep} ids)' if row.ids < row.ids_in_sweep else ''
  return f'{row.score:.3f}' + ('' if row.finished else ' *') + missing


def _solution_cell(row: Any) -> str:
  return f'{int(row.episode)}' if row.solved else f'> {int(row.episode)}'


def _write_html(path: str, title: str, results: Mapping[str, str], scores: Scores,
                radar_tags: Sequence[str], solutions: Mapping[str, pd.DataFrame], cover: pd.DataFrame,
                complete: pd.DataFrame, counted: pd.DataFrame | None, common: bool, plots: _Plots,
                spread: pd.DataFrame | None = None) -> None:
  """spread: `seed_spread`'s table, or None.
  counted: the (agent, experiment) rows tag scores average (`common`: those complete for every
  agent), or None for everything that ran."""
  import bsuite
  df, score_df, tag_df = scores.data, scores.by_experiment, scores.by_tag
  parts = [f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
           f'<style>{_CSS}</style></head><body>', f'<h1>{html.escape(title)}</h1>']

  agents = list(results)
  inputs = pd.DataFrame([
      {'agent': name, 'results dir': directory,
       'bsuite ids': int(df.loc[df[AGENT] == name, 'bsuite_id'].nunique()),
       'experiments': ', '.join(sorted(df.loc[df[AGENT] == name, 'bsuite_env'].unique()))}
      for name, directory in results.items()])
  parts += ['<h2>Inputs</h2>', _table(inputs, index=False)]

  ids = complete.rename(columns={'experiment': 'bsuite_env'})[[AGENT, 'bsuite_env', 'ids', 'ids_in_sweep']]
  score_table = _by_agent(score_df.merge(ids, on=[AGENT, 'bsuite_env']), 'bsuite_env', _score_cell, agents,
                          'experiment')
  parts += ['<h2>bsuite score per experiment</h2>', _table(score_table, index=False),
            '<p class="note">Scores from <code>bsuite.experiments.summary_analysis.bsuite_score</code> '
            f'(bsuite {html.escape(bsuite.__version__)}). <b>*</b> = not finished: fewer episodes '
            'than bsuite runs for that experiment; <b>(k/n ids)</b> = only k of the n ids of bsuite\'s sweep '
            'ran. Either way the score is provisional.</p>']
  plain = lambda row: completeness_cell(row).replace('**', '')  # the markdown cell, unbolded
  parts += ['<h2>Complete experiments</h2>',
            _table(_by_agent(complete, 'experiment', plain, agents, 'experiment'), index=False),
            '<p class="note"><i>complete</i>: every id of the experiment in bsuite\'s sweep ran bsuite\'s full '
            'episode count (completeness.csv, completeness.md).</p>']
  if spread is not None and len(spread):
    parts += ['<h2>Over seeds</h2>', _table(spread.round(3), index=False),
              '<p class="note">Folders of one agent and config at several sweep seeds (their config.json), '
              'named after the lowest seed\'s folder; experiments complete in every one of them (seeds.csv).</p>']
  if scores.failures:
    parts += ['<p>bsuite could not score (shown as <i>n/a</i>):</p>', '<ul>']
    parts += [f'<li><b>{html.escape(agent)}</b> / {html.escape(experiment)}: {html.escape(reason)}</li>'
              for (agent, experiment), reason in sorted(scores.failures.items())]
    parts.append('</ul>')
  with_data = tag_df[tag_df.score.notna()].merge(cover, on=[AGENT, 'tag'], how='left')
  if not with_data.empty:
    def tag_cell(row):
      partial = '' if pd.isna(row.partial) or not row.partial else f' (partial: {row.ids:.0f}/{row.ids_in_tag:.0f} ids)'
      return f'{row.score:.3f}{partial}'
    by_tag = _by_agent(with_data, 'tag', tag_cell, agents, 'tag')
    if counted is not None:
      listed = counted.groupby(AGENT)['experiment'].apply(lambda e: ', '.join(sorted(e)))
      what = (f'A tag score averages only the experiments complete for {"every" if common else "that"} agent ('
              + '; '.join(f'{html.escape(a)}: {html.escape(e)}' for a, e in listed.items()) + '). ')
    else:
      what = 'A tag score averages every experiment that ran, complete or not. '
    parts += ['<h2>Average score per tag</h2>', _table(by_tag, index=False),
              f'<p class="note">{what}<i>partial</i>: only that many of the tag\'s ids in bsuite\'s sweep '
              'count, or some ran fewer episodes than bsuite runs; the score rests on those alone '
              '(coverage.csv).</p>']
  elif counted is not None:
    parts += ['<h2>Average score per tag</h2>',
              f'<p class="note">No experiment is complete{" for every agent" if common else ""} yet (every id '
              'of bsuite\'s sweep at its full episode count), so no tag has a score; '
              '<code>--all-experiments</code> averages what ran.</p>']

  parts.append('<h2>Summary plots</h2>')
  if 'radar' in plots.made:
    left_out = sorted(set(with_data.tag) - set(radar_tags))
    tags_note = (' Tags without data are drawn at bsuite\'s floor (0.05), because fewer than '
                 f'{_MIN_RADAR_TAGS} tags have data.' if not set(radar_tags) <= set(with_data.tag)
                 else f' Left out, as not every agent has a score there: {html.escape(", ".join(left_out))}.'
                 if left_out else '')
    parts += [_img(plots.made['radar'], 'bsuite radar plot'),
              f'<p class="note">Radar over tags: {html.escape(", ".join(radar_tags))}.{tags_note}</p>']
  if 'bar' in plots.made:
    parts.append(_img(plots.made['bar'], 'bsuite bar plot'))

  for experiment, table in solutions.items():
    parts += [f'<h2>{experiment}: scaling</h2>']
    key = f'{experiment}_scaling'
    if key in plots.made:
      parts.append(_img(plots.made[key], f'{experiment} scaling plot'))
    parts += [_table(_by_agent(table, 'size', _solution_cell, agents, 'size N'), index=False),
              '<p class="note">First logged episode with fewer than '
              f'{"90" if experiment == "deep_sea" else "80"}% bad episodes, per size N; '
              '<code>&gt; e</code> = not solved by the last logged episode e. The bsuite score counts '
              'sizes solved before episode 2<sup>N</sup> + 100.</p>']

  experiments = sorted(score_df.bsuite_env.unique())
  if experiments:
    parts.append('<h2>Per-experiment plots</h2>')
  for experiment in experiments:
    key = f'experiment_{experiment}'
    if key in plots.made:
      parts += [f'<h3>{html.escape(experiment)} <span class="note">'
                f'(<code>{_experiment_plot_name(experiment)}</code>)</span></h3>',
                _img(plots.made[key], f'{experiment} plot')]

  if plots.skipped:
    parts += ['<h2>Skipped plots</h2>', '<ul>']
    parts += [f'<li><b>{html.escape(key)}</b>: {html.escape(reason)}</li>'
              for key, reason in sorted(plots.skipped.items())]
    parts.append('</ul>')
  parts.append('</body></html>\n')
  with open(path, 'w', encoding='utf-8') as f:
    f.write('\n'.join(parts))


def make_report(results: Mapping[str, str | os.PathLike],
                out_dir: str | os.PathLike,
                *,
                title: str = 'bsuite report',
                dpi: int = 90,
                complete_only: bool = True,
                common_only: bool = False) -> str:
  """Scores `results` ({agent name: dir of bsuite CSVs}) with bsuite and writes the report.

  complete_only: tag scores, the radar and the coverage count only each agent's complete experiments
  (every id of bsuite's sweep at bsuite's episode count), so a sweep in progress shows no tag score
  resting on a part of an experiment; False averages everything that ran (bsuite's own behaviour).
  common_only: with complete_only, only the experiments complete for every agent count, so each
  agent's tag scores rest on the same experiments.

  Returns the path of `<out_dir>/index.html`. Raises FileNotFoundError / ValueError (before writing
  anything) when a directory is missing or has no bsuite CSVs.
  """
  checked = check_results(results)
  scores = load_and_score(checked)
  df, score_df = scores.data, scores.by_experiment
  from bsuite.experiments import summary_analysis
  complete = completeness(df, score_df)
  counted = None
  if complete_only:
    counted = complete.loc[complete.complete, [AGENT, 'experiment']]
    if common_only:
      agents_done = counted.groupby('experiment')[AGENT].nunique()
      counted = counted[counted.experiment.isin(agents_done[agents_done == len(checked)].index)]
    keys = counted.rename(columns={'experiment': 'bsuite_env'})
    score_df_counted = score_df.merge(keys, on=[AGENT, 'bsuite_env'])
    df_counted = df.merge(keys, on=[AGENT, 'bsuite_env'])
    tag_df = (_drop_groupby_leftovers(summary_analysis.ave_score_by_tag(score_df_counted, [AGENT]))
              if len(score_df_counted) else scores.by_tag.iloc[0:0])
    scores = scores._replace(by_tag=tag_df)
  else:
    tag_df, score_df_counted, df_counted = scores.by_tag, score_df, df

  out = os.path.abspath(os.fspath(out_dir))
  os.makedirs(out, exist_ok=True)

  # Tables first: they do not depend on any plot working.
  score_df.pivot(index=AGENT, columns='bsuite_env', values='score').to_csv(
      os.path.join(out, 'scores.csv'))
  # the long table says which scores are of complete experiments (the wide one above is bsuite's alone)
  score_df.merge(complete.rename(columns={'experiment': 'bsuite_env'})[
      [AGENT, 'bsuite_env', 'ids', 'ids_in_sweep', 'complete']], on=[AGENT, 'bsuite_env'], how='left').to_csv(
          os.path.join(out, 'scores_long.csv'), index=False)
  tag_df[tag_df.score.notna()].pivot(index=AGENT, columns='tag', values='score').to_csv(
      os.path.join(out, 'scores_by_tag.csv'))

  plots = _Plots(out, dpi)
  solutions, solved_frames = {}, {}
  for experiment in _SCALING_EXPERIMENTS:
    frames = []
    for agent, agent_df in df[df.bsuite_env == experiment].groupby(AGENT):
      try:
        with _quiet_bsuite():
          frames.append(_solutions(experiment, agent_df))
      except Exception as error:  # pylint: disable=broad-except  # e.g. too few episodes
        plots.skipped[f'{experiment}_scaling ({agent})'] = f'{type(error).__name__}: {error}'[:500]
    if frames:
      solved = pd.concat(frames, ignore_index=True)
      solved['size'] = solved['size'].astype(int)  # float after bsuite's metadata join
      solved_frames[experiment] = solved
      solutions[experiment] = solved_frames[experiment][
          [AGENT, 'size', 'episode', 'solved', 'finished']].sort_values([AGENT, 'size'])
      solutions[experiment].to_csv(os.path.join(out, f'{experiment}_solutions.csv'), index=False)

  cover = coverage(df_counted, score_df_counted)
  cover.to_csv(os.path.join(out, 'coverage.csv'), index=False)
  complete.to_csv(os.path.join(out, 'completeness.csv'), index=False)
  families = seed_families(checked)
  spread = seed_spread(complete, families) if families else None  # several seeds of one agent
  if spread is not None:
    spread.to_csv(os.path.join(out, 'seeds.csv'), index=False)
  with open(os.path.join(out, 'completeness.md'), 'w') as f:
    f.write(completeness_markdown(complete) + '\n')
  note = _coverage_note(cover)
  radar_tags = _radar_tags(tag_df)
  nothing_counted = ('no experiment is complete for any agent, so no tag has a score '
                     '(complete_only; `--all-experiments` draws what ran)')
  if tag_df.score.notna().any():
    plots.render('radar', 'radar.png', lambda: _with_caption(summary_analysis.bsuite_radar_plot(
        tag_df[tag_df.tag.isin(radar_tags)].copy(), [AGENT]), note, 'figure'), kind='figure')
  else:
    plots.skipped['radar'] = nothing_counted
  # the bars show the experiments the tag scores count: a partial experiment's score (2 of 23 ids,
  # say) would stand beside complete ones with nothing to tell them apart
  if len(score_df_counted):
    plots.render('bar', 'bar.png', lambda: _with_caption(
        summary_analysis.bsuite_bar_plot(score_df_counted.copy(), [AGENT]), note, 'ggplot'), kind='ggplot')
  else:
    plots.skipped['bar'] = nothing_counted
  for experiment, solved in solved_frames.items():
    analysis = importlib.import_module(f'bsuite.experiments.{experiment}.analysis')
    plots.render(f'{experiment}_scaling', f'{experiment}_scaling.png',
                 lambda a=analysis, s=solved: a.plot_scaling_log(s.copy(), [AGENT]), kind='ggplot')
  for experiment in sorted(df.bsuite_env.unique()):
    plots.render(f'experiment_{experiment}', f'experiment_{experiment}.png',
                 _experiment_plot(experiment, df[df.bsuite_env == experiment].copy()), kind='ggplot')

  index = os.path.join(out, 'index.html')
  _write_html(index, title, checked, scores, radar_tags, solutions, cover, complete, counted, common_only, plots,
              spread)
  return index

