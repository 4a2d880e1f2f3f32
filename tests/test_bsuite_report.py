"""bsuite scoring on pandas 3, bsuite-format CSVs from our own logs, and the HTML report.

Known scores come from bsuite's real DeepSea with bsuite's real CSV logger: a uniform random agent
scores 0.0 and an agent that always goes "right" scores 1.0 (both unfinished: few episodes).
"""
from __future__ import annotations

import os
import re
from typing import Callable

import bsuite
import numpy as np
import pandas as pd
import pytest

from bsuite.experiments.deep_sea import analysis as deep_sea_analysis
from bsuite.logging import csv_load
from bsuite.utils import wrappers

from hyperagent.bsuite import compat as bsuite_compat
from hyperagent.bsuite import csv_format as bsuite_csv
from hyperagent.bsuite import report as bsuite_report

import experiment_scripts  # tests/experiment_scripts.py

SIZES = list(range(10, 51, 2))
ALL_DEEP_SEA = [f'deep_sea/{i}' for i in range(21)]


# ------------------------------------------------------------------ agents on bsuite's real envs

def _random_policy(env, timestep, episode, rng):
  del timestep, episode
  return int(rng.integers(env.action_spec().num_values))


def _oracle_policy(env, timestep, episode, rng):
  """Always "right": the action mapped to right in the current cell (DeepSea only)."""
  del episode, rng
  row, column = np.unravel_index(np.argmax(timestep.observation), timestep.observation.shape)
  return int(env.raw_env._action_mapping[row, column])  # pylint: disable=protected-access


def _late_learner(random_episodes: int) -> Callable:
  """Random for the first `random_episodes` episodes, then always right: solves at ~1.1x that."""
  def policy(env, timestep, episode, rng):
    if episode < random_episodes:
      return _random_policy(env, timestep, episode, rng)
    return _oracle_policy(env, timestep, episode, rng)
  return policy


def _run(results_dir, bsuite_id: str, num_episodes: int, policy: Callable, seed: int = 0
         ) -> pd.DataFrame:
  """Runs bsuite's env with its CSV logger; returns our own per-episode log (every episode),
  kept the way a JAX loop would keep it."""
  env = bsuite.load_and_record_to_csv(bsuite_id, str(results_dir))
  rng = np.random.default_rng(seed)
  steps, total_return, rows = 0, 0.0, []
  for episode in range(num_episodes):
    timestep = env.reset()
    episode_len, episode_return = 0, 0.0
    while not timestep.last():
      timestep = env.step(policy(env, timestep, episode, rng))
      episode_len += 1
      episode_return += timestep.reward
    steps += episode_len
    total_return += episode_return
    rows.append(dict(steps=steps, episode=episode + 1, total_return=total_return,
                     episode_len=episode_len, episode_return=episode_return,
                     **env.bsuite_info()))  # deep_sea: total_bad_episodes, denoised_return
  return pd.DataFrame(rows)


def _deep_sea_score(results_dir) -> float:
  bsuite_compat.patch()
  df, _ = csv_load.load_bsuite(str(results_dir))
  return float(deep_sea_analysis.score(df[df.bsuite_env == 'deep_sea']))


@pytest.fixture(scope='module')
def random_dir(tmp_path_factory):
  """Uniform random agent: 100 episodes on every deep_sea size, 20 on bandit/0."""
  directory = tmp_path_factory.mktemp('random')
  for i, bsuite_id in enumerate(ALL_DEEP_SEA):
    _run(directory, bsuite_id, 100, _random_policy, seed=i)
  _run(directory, 'bandit/0', 20, _random_policy)
  return directory


@pytest.fixture(scope='module')
def oracle_dir(tmp_path_factory):
  """Always-right agent: 20 episodes on every deep_sea size."""
  directory = tmp_path_factory.mktemp('oracle')
  for bsuite_id in ALL_DEEP_SEA:
    _run(directory, bsuite_id, 20, _oracle_policy)
  return directory


# ------------------------------------------------------------------ compat: known scores

def test_random_agent_scores_zero(random_dir):
  assert _deep_sea_score(random_dir) == 0.0
  scores = bsuite_report.load_and_score({'random': random_dir})
  row = scores.by_experiment.set_index('bsuite_env').loc['deep_sea']
  assert row.score == 0.0 and not row.finished
  assert not scores.failures
  assert not any(str(c).startswith('level_') for c in scores.by_experiment.columns)


def test_oracle_scores_one(oracle_dir):
  assert _deep_sea_score(oracle_dir) == 1.0
  scores = bsuite_report.load_and_score({'oracle': oracle_dir})
  tags = scores.by_tag.set_index('tag').score
  assert tags['exploration'] == 1.0 and tags.drop('exploration').isna().all()


def test_patch_is_explicit_idempotent_and_reversible():
  from bsuite.experiments import summary_analysis
  from bsuite.utils import smoothers
  bsuite_compat.patch()
  radar, smoother = summary_analysis._radar, smoothers.mean  # pylint: disable=protected-access
  bsuite_compat.patch()  # second call changes nothing
  assert summary_analysis._radar is radar and smoothers.mean is smoother  # pylint: disable=protected-access
  assert bsuite_compat.is_patched()
  pd.testing.assert_series_equal(pd.Series([1, 2]).append(pd.Series([3], index=[2])),
                                 pd.Series([1, 2, 3]))
  assert list(pd.Series({'a': 1}).iteritems()) == [('a', 1)]
  assert not hasattr(pd.Series, '__float__')  # pandas 3's strictness is kept outside bsuite's radar
  bsuite_compat.unpatch()
  assert not hasattr(pd.Series, 'append') and not hasattr(pd.Series, 'iteritems')
  assert summary_analysis._radar is not radar and smoothers.mean is not smoother  # pylint: disable=protected-access
  bsuite_compat.patch()


# ------------------------------------------------------------------ bsuite_csv

def test_log_episodes_follow_bsuite_logger():
  expected = [e for e in range(1, 20001) if wrappers._logarithmic_logging(e)]  # pylint: disable=protected-access
  assert bsuite_csv.bsuite_log_episodes(20000).tolist() == expected
  assert bsuite_csv.bsuite_log_episodes(10000).tolist()[:16] == [
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 17, 20, 25, 30]
  assert len(bsuite_csv.bsuite_log_episodes(10000)) == 49
  assert bsuite_csv.bsuite_log_episodes(10**7)[-1] == 10**7
  assert bsuite_csv.bsuite_log_episodes(0).size == 0


def test_deep_sea_id():
  assert [bsuite_csv.deep_sea_id(size) for size in (10, 12, 50)] == [
      'deep_sea/0', 'deep_sea/1', 'deep_sea/20']
  for bad in (11, 8, 52, 10.0, True, '10'):
    with pytest.raises(ValueError, match='valid sizes are'):
      bsuite_csv.deep_sea_id(bad)


def test_writer_matches_bsuite_logger(tmp_path):
  """Same episodes, two writers: bsuite's logger vs ours at bsuite_log_episodes -> same CSV, score."""
  by_bsuite, ours = tmp_path / 'bsuite', tmp_path / 'ours'
  num_episodes = 60
  policies = {'deep_sea/0': _late_learner(30), 'deep_sea/5': _late_learner(40),
              'deep_sea/20': _random_policy}
  for seed, (bsuite_id, policy) in enumerate(policies.items()):
    log = _run(by_bsuite, bsuite_id, num_episodes, policy, seed=seed)
    logged = log[log.episode.isin(bsuite_csv.bsuite_log_episodes(num_episodes))]
    if bsuite_id == 'deep_sea/5':  # a dict of arrays, as a JAX loop returns; steps/len derived
      logged = {k: v.to_numpy() for k, v in logged.items() if k not in ('steps', 'episode_len')}
    bsuite_csv.write_deep_sea_csv(ours, bsuite_id, logged)

  for bsuite_id in policies:
    name = os.path.basename(bsuite_csv.bsuite_csv_path('.', bsuite_id))
    theirs_df, ours_df = pd.read_csv(by_bsuite / name), pd.read_csv(ours / name)
    assert list(ours_df.columns) == list(theirs_df.columns) == list(bsuite_csv.COLUMNS)
    pd.testing.assert_frame_equal(ours_df, theirs_df, check_dtype=False)

  bsuite_compat.patch()  # bsuite's deep_sea analysis needs it on pandas >= 2, whatever ran before
  solved = {}
  for directory in (by_bsuite, ours):
    df, _ = csv_load.load_bsuite(str(directory))
    solved[directory] = deep_sea_analysis.find_solution(df, merge=False).set_index('size')
    assert deep_sea_analysis.score(df) == pytest.approx(2 / 3)
  pd.testing.assert_frame_equal(solved[ours], solved[by_bsuite])
  assert solved[ours].solved.tolist() == [True, True, False]
  assert solved[ours].episode.tolist() == [40, 50, 60]  # first logged episode with < 90% bad


def _synthetic_rows(bad: bool) -> dict[str, np.ndarray]:
  episode = bsuite_csv.bsuite_log_episodes(10_000)
  treasure = np.zeros_like(episode) if bad else episode
  return dict(episode=episode, total_bad_episodes=episode if bad else np.zeros_like(episode),
              total_return=0.99 * treasure, episode_return=np.full(len(episode), 0.0 if bad else 0.99),
              denoised_return=treasure)


@pytest.mark.parametrize('bad, expected', [(False, 1.0), (True, 0.0)])
def test_written_full_runs_score(tmp_path, bad, expected):
  for size in SIZES:
    bsuite_csv.write_deep_sea_csv(tmp_path, bsuite_csv.deep_sea_id(size), _synthetic_rows(bad))
  scores = bsuite_report.load_and_score({'agent': tmp_path})
  row = scores.by_experiment.set_index('bsuite_env').loc['deep_sea']
  assert row.score == expected
  assert row.finished  # 10,000 episodes logged, as bsuite requires
  df, _ = csv_load.load_bsuite(str(tmp_path))
  assert sorted(df['size'].unique()) == SIZES and len(df) == 21 * 49


def test_writer_rejects_bad_input(tmp_path):
  rows = _synthetic_rows(bad=False)
  with pytest.raises(ValueError, match='lack column'):
    bsuite_csv.write_deep_sea_csv(tmp_path, 0, {k: v for k, v in rows.items() if k != 'total_return'})
  with pytest.raises(ValueError, match='strictly increasing'):
    bsuite_csv.write_deep_sea_csv(tmp_path, 0, {k: v[::-1] for k, v in rows.items()})
  with pytest.raises(ValueError, match='total_bad_episodes'):
    bsuite_csv.write_deep_sea_csv(tmp_path, 0, {**rows, 'total_bad_episodes': rows['episode'] + 1})
  for bad_id in (21, -1, 'deep_sea/21', 'catch/0', 'deep_sea'):
    with pytest.raises(ValueError, match='deep_sea sweep index'):
      bsuite_csv.write_deep_sea_csv(tmp_path, bad_id, rows)
  path = bsuite_csv.write_deep_sea_csv(tmp_path, 'deep_sea_stochastic/3', rows)
  assert os.path.basename(path) == 'bsuite_id_-_deep_sea_stochastic-3.csv'
  with pytest.raises(ValueError, match='already exists'):
    bsuite_csv.write_deep_sea_csv(tmp_path, 'deep_sea_stochastic/3', rows)
  bsuite_csv.write_deep_sea_csv(tmp_path, 'deep_sea_stochastic/3', rows, overwrite=True)


# ------------------------------------------------------------------ report

def _img_sources(index_html: str) -> list[str]:
  with open(index_html, encoding='utf-8') as f:
    return re.findall(r'<img src="([^"]+)"', f.read())


def test_make_report_two_agents(random_dir, oracle_dir, tmp_path):
  out = tmp_path / 'report'
  index = bsuite_report.make_report({'random': random_dir, 'oracle': oracle_dir}, out, complete_only=False)
  assert index == str(out / 'index.html')
  sources = _img_sources(index)
  for src in sources:
    assert not os.path.isabs(src) and '..' not in src
    assert (out / src).is_file() and (out / src).stat().st_size > 1000, src
  assert {'radar.png', 'bar.png', 'deep_sea_scaling.png', 'experiment_deep_sea.png',
          'experiment_bandit.png'} <= set(sources)
  with open(index, encoding='utf-8') as f:
    page = f.read()
  assert 'Skipped plots' not in page and '<table' in page and 'Complete experiments' in page
  complete = pd.read_csv(out / 'completeness.csv').set_index(['agent_name', 'experiment'])
  assert complete.loc[('oracle', 'deep_sea')].ids == 21 and not complete.loc[('oracle', 'deep_sea')].complete  # 20 episodes
  assert '| deep_sea |' in (out / 'completeness.md').read_text()

  scores = pd.read_csv(out / 'scores.csv', index_col='agent_name')
  assert scores.loc['random', 'deep_sea'] == 0.0 and scores.loc['oracle', 'deep_sea'] == 1.0
  assert np.isnan(scores.loc['oracle', 'bandit'])
  solutions = pd.read_csv(out / 'deep_sea_solutions.csv')
  assert len(solutions) == 2 * 21
  assert solutions[solutions.agent_name == 'oracle'].solved.all()
  assert not solutions[solutions.agent_name == 'random'].solved.any()


def test_make_report_lists_what_failed(oracle_dir, tmp_path, monkeypatch):
  from bsuite.experiments import summary_analysis

  def boom(*args, **kwargs):
    raise RuntimeError('boom')

  monkeypatch.setattr(deep_sea_analysis, 'plot_regret', boom)
  monkeypatch.setitem(summary_analysis.BSUITE_INFO, 'deep_sea',
                      summary_analysis.BSUITE_INFO['deep_sea']._replace(score=boom))
  index = bsuite_report.make_report({'oracle': oracle_dir}, tmp_path)
  for src in _img_sources(index):
    assert (tmp_path / src).is_file()
  assert not (tmp_path / 'experiment_deep_sea.png').exists()
  with open(index, encoding='utf-8') as f:
    page = f.read()
  assert 'Skipped plots' in page and 'experiment_deep_sea' in page and 'RuntimeError: boom' in page
  assert 'n/a' in page  # the score bsuite could not compute


def test_make_report_rejects_bad_dirs(tmp_path, oracle_dir):
  out = tmp_path / 'out'
  with pytest.raises(FileNotFoundError, match='does not exist'):
    bsuite_report.make_report({'a': oracle_dir, 'b': tmp_path / 'missing'}, out)
  (tmp_path / 'empty').mkdir()
  (tmp_path / 'empty' / 'other.csv').write_text('x\n1\n')
  with pytest.raises(ValueError, match='no bsuite CSVs'):
    bsuite_report.make_report({'b': tmp_path / 'empty'}, out)
  with pytest.raises(ValueError, match='no results'):
    bsuite_report.make_report({}, out)
  assert not out.exists()




def test_cli_names_and_errors(tmp_path, capsys):
  cli = experiment_scripts.load('bsuite_report')
  (tmp_path / 'run_a').mkdir()
  assert cli.parse_results([str(tmp_path / 'run_a'), f'b={tmp_path}']) == {
      'run_a': str(tmp_path / 'run_a'), 'b': str(tmp_path)}
  with pytest.raises(ValueError, match='used twice'):
    cli.parse_results([f'x={tmp_path}', f'x={tmp_path}'])
  with pytest.raises(ValueError, match='LABEL=FOLDER'):
    cli.parse_results([f'={tmp_path}'])
  with pytest.raises(SystemExit) as exit_info:
    cli.main([str(tmp_path / 'nope'), '--out', str(tmp_path / 'out')])
  assert exit_info.value.code == 2
  assert 'does not exist' in capsys.readouterr().err
  with pytest.raises(SystemExit):
    cli.main([str(tmp_path / 'run_a'), '--out', str(tmp_path / 'out')])
  assert 'no bsuite CSVs' in capsys.readouterr().err
  with pytest.raises(SystemExit):
    cli.main([str(tmp_path / 'run_a'), '--out', str(tmp_path / 'out'), '--all-experiments',
              '--common-experiments'])
  assert 'not allowed with argument --all-experiments' in capsys.readouterr().err


def test_coverage_marks_partial_tag_scores():
  """deep_sea/0 alone would score exploration 1.0: the coverage says it rests on 1 of the tag's 62 ids."""
  from bsuite import sweep
  data = pd.DataFrame({bsuite_report.AGENT: ['a', 'a', 'b'] + ['c'] * 21,
                       'bsuite_id': ['deep_sea/0', 'catch/0', 'deep_sea/0'] + [f'deep_sea/{i}' for i in range(21)]})
  scored = pd.DataFrame({bsuite_report.AGENT: ['a', 'a', 'b', 'c'], 'bsuite_env': ['deep_sea', 'catch', 'deep_sea', 'deep_sea'],
                         'finished': [True, False, True, True]})
  cover = bsuite_report.coverage(data, scored).set_index([bsuite_report.AGENT, 'tag'])
  assert len(sweep.TAGS['exploration']) == 62
  row = cover.loc[('a', 'exploration')]
  assert row.ids == 1 and row.ids_in_tag == 62 and row.partial and row.unfinished_experiments == ''
  assert cover.loc[('a', 'basic')].unfinished_experiments == 'catch'
  assert cover.loc[('c', 'exploration')].ids == 21 and cover.loc[('c', 'exploration')].partial
  assert ('b', 'basic') not in cover.index  # no data for a tag: no row


def test_completeness_needs_every_id_of_the_sweep_at_full_length():
  """Agent c ran all 21 deep_sea ids in full: complete, with its score. Agent a ran deep_sea/0 in full
  (1 of 21 ids) and catch/0 short: neither is complete, and the table says what ran."""
  data = pd.DataFrame({bsuite_report.AGENT: ['a', 'a'] + ['c'] * 21,
                       'bsuite_id': ['deep_sea/0', 'catch/0'] + [f'deep_sea/{i}' for i in range(21)]})
  data['bsuite_env'] = data['bsuite_id'].str.split('/').str[0]
  scored = pd.DataFrame({bsuite_report.AGENT: ['a', 'a', 'c'], 'bsuite_env': ['deep_sea', 'catch', 'deep_sea'],
                         'finished': [True, False, True], 'score': [1.0, 0.3, 0.95]})
  table = bsuite_report.completeness(data, scored).set_index([bsuite_report.AGENT, 'experiment'])
  assert table.loc[('c', 'deep_sea')].complete and table.loc[('c', 'deep_sea')].ids_in_sweep == 21
  assert not table.loc[('a', 'deep_sea')].complete and table.loc[('a', 'deep_sea')].ids == 1
  assert table.loc[('a', 'catch')].ids_in_sweep == 20 and not table.loc[('a', 'catch')].full_episodes
  text = bsuite_report.completeness_markdown(table.reset_index())
  assert '| catch | 1/20 ids, short runs | not run |' in text
  assert '| deep_sea | 1/21 ids | **0.95** (complete) |' in text


def test_tag_scores_count_complete_experiments_only(tmp_path, monkeypatch):
  """A complete deep_sea (all 21 sizes, 10,000 episodes, always right: 1.0) and a 20-episode bandit/0:
  by default the tags, and the bar plot, rest on deep_sea alone (exploration 1.0, no basic score);
  with complete_only=False bandit's short run gives basic a provisional score too, and a bar."""
  folder = tmp_path / 'agent'
  folder.mkdir()
  for size in SIZES:
    bsuite_csv.write_deep_sea_csv(folder, bsuite_csv.deep_sea_id(size), _synthetic_rows(bad=False))
  _run(folder, 'bandit/0', 20, _random_policy)
  from bsuite.experiments import summary_analysis
  barred = []  # the experiments each bar plot draws: those the tag scores count
  bar_plot = summary_analysis.bsuite_bar_plot
  monkeypatch.setattr(summary_analysis, 'bsuite_bar_plot',
                      lambda df, *a, **k: barred.append(set(df.bsuite_env)) or bar_plot(df, *a, **k))
  strict = bsuite_report.make_report({'a': folder}, tmp_path / 'strict')
  tags = pd.read_csv(tmp_path / 'strict' / 'scores_by_tag.csv', index_col='agent_name')
  assert tags.loc['a', 'exploration'] == 1.0 and 'basic' not in tags.columns
  with open(strict, encoding='utf-8') as f:
    assert 'only the experiments complete for that agent (a: deep_sea)' in f.read()
  bsuite_report.make_report({'a': folder}, tmp_path / 'all', complete_only=False)
  tags = pd.read_csv(tmp_path / 'all' / 'scores_by_tag.csv', index_col='agent_name')
  assert tags.loc['a', 'exploration'] == 1.0 and not np.isnan(tags.loc['a', 'basic'])
  assert barred == [{'deep_sea'}, {'deep_sea', 'bandit'}]
  assert (tmp_path / 'strict' / 'bar.png').exists()
  long = pd.read_csv(tmp_path / 'strict' / 'scores_long.csv').set_index('bsuite_env')
  assert long.loc['deep_sea', 'complete'] and (long.loc['deep_sea', ['ids', 'ids_in_sweep']] == 21).all()
  assert not long.loc['bandit', 'complete'] and long.loc['bandit', 'ids'] == 1
  with open(strict, encoding='utf-8') as f:
    assert '* (1/20 ids)' in f.read()  # bandit's score in the per-experiment table: short and partial


def test_a_score_cell_says_when_runs_are_short_or_ids_missing():
  """bsuite's `finished` looks only at the ids present: an experiment missing ids (Ensemble+'s cartpole
  at 14 of 20) must not read as an ordinary score."""
  row = lambda **kw: pd.Series({'score': 0.695, 'finished': True, 'ids': 20, 'ids_in_sweep': 20, **kw})
  assert bsuite_report._score_cell(row()) == '0.695'
  assert bsuite_report._score_cell(row(ids=14)) == '0.695 (14/20 ids)'
  assert bsuite_report._score_cell(row(finished=False)) == '0.695 *'
  assert bsuite_report._score_cell(row(score=np.nan)) == 'n/a'


def test_common_experiments_count_only_what_every_agent_has_complete(tmp_path):
  """a has deep_sea complete, b only a short bandit/0: by default a's exploration tag rests on its
  deep_sea; counting only the experiments every agent has complete leaves no tag score at all."""
  a, b = tmp_path / 'a', tmp_path / 'b'
  a.mkdir()
  b.mkdir()
  for size in SIZES:
    bsuite_csv.write_deep_sea_csv(a, bsuite_csv.deep_sea_id(size), _synthetic_rows(bad=False))
  _run(b, 'bandit/0', 20, _random_policy)
  bsuite_report.make_report({'a': a, 'b': b}, tmp_path / 'own')
  tags = pd.read_csv(tmp_path / 'own' / 'scores_by_tag.csv', index_col='agent_name')
  assert tags.loc['a', 'exploration'] == 1.0
  index = bsuite_report.make_report({'a': a, 'b': b}, tmp_path / 'common', common_only=True)
  assert pd.read_csv(tmp_path / 'common' / 'scores_by_tag.csv').empty
  scores = pd.read_csv(tmp_path / 'common' / 'scores.csv', index_col='agent_name')
  assert scores.loc['a', 'deep_sea'] == 1.0  # the per-experiment scores stay whole
  with open(index, encoding='utf-8') as f:
    assert 'No experiment is complete for every agent yet' in f.read()


def test_a_report_with_no_complete_experiment_says_so(random_dir, tmp_path):
  index = bsuite_report.make_report({'random': random_dir}, tmp_path)
  with open(index, encoding='utf-8') as f:
    page = f.read()
  assert 'No experiment is complete yet' in page and not {'radar.png', 'bar.png'} & set(_img_sources(index))


def test_the_radar_keeps_to_tags_every_agent_has_scored():
  """bsuite's radar draws a missing tag score at its floor: an agent that never ran a tag would look
  as if it failed it. Tags scored for every agent come first; with fewer than 3 of those, any tag
  with data; with fewer than 3 of those, all."""
  def tags(scores):  # {agent: {tag: score or None}}
    return pd.DataFrame([{bsuite_report.AGENT: agent, 'tag': tag, 'score': score}
                         for agent, row in scores.items() for tag, score in row.items()])
  full = dict(basic=0.9, noise=0.7, scale=0.8, credit_assignment=0.6)
  partial = dict(basic=0.9, noise=0.8, scale=0.9, credit_assignment=None)
  assert bsuite_report._radar_tags(tags(dict(a=full, b=partial))) == ['basic', 'noise', 'scale']
  assert bsuite_report._radar_tags(tags(dict(a=full, b=dict(basic=0.5, noise=None, scale=None,
                                                            credit_assignment=None)))) == sorted(full)
  assert bsuite_report._radar_tags(tags(dict(a=dict(basic=0.5, noise=None, scale=None,
                                                    credit_assignment=None)))) == sorted(full)


def test_seed_spread_over_the_folders_of_one_agent_at_several_seeds(tmp_path):
  """Folders whose config.json hold one agent and config at seeds 0-2 form a family named after seed 0's;
  another config, a lone seed and a folder without config.json stay out. Its spread: experiments complete
  in every member only, with mean, min and max by hand."""
  import json
  folders = {}
  for name, agent, seed, rate in (('ha', 'hyperagent', 0, 1e-3), ('ha-seed1', 'hyperagent', 1, 1e-3),
                                  ('ha-seed2', 'hyperagent', 2, 1e-3), ('tuned', 'hyperagent', 1, 3e-4),
                                  ('dqn', 'dqn', 0, 1e-3)):
    (tmp_path / name).mkdir()
    (tmp_path / name / 'config.json').write_text(json.dumps(
        dict(agent=agent, seed=seed, config={'learning_rate': rate}, commands=[])))
    folders[name] = str(tmp_path / name)
  (tmp_path / 'bare').mkdir()
  families = bsuite_report.seed_families({**folders, 'bare': str(tmp_path / 'bare')})
  assert families == {'ha': 'ha', 'ha-seed1': 'ha', 'ha-seed2': 'ha'}
  table = pd.DataFrame({bsuite_report.AGENT: ['ha', 'ha-seed1', 'ha-seed2'] * 2 + ['dqn'],
                        'experiment': ['bandit'] * 3 + ['catch'] * 3 + ['bandit'],
                        'complete': [True] * 5 + [False, True], 'score': [0.9, 0.6, 0.75, 1.0, 1.0, 0.2, 0.1]})
  spread = bsuite_report.seed_spread(table, families)
  assert spread.to_dict('records') == [dict(family='ha', experiment='bandit', folders=3, mean=pytest.approx(0.75),
                                            min=0.6, max=0.9)]  # catch is short on seed 2: left out
  assert bsuite_report.seed_spread(table.iloc[1:], families).empty  # seed 0 never ran bandit: left out too
  (tmp_path / 'rerun').mkdir()  # seed 0 again: a spread would count it twice
  (tmp_path / 'rerun' / 'config.json').write_text((tmp_path / 'ha' / 'config.json').read_text())
  with pytest.warns(UserWarning, match='a seed in two of them'):
    assert bsuite_report.seed_families({**folders, 'rerun': str(tmp_path / 'rerun')}) == {}
