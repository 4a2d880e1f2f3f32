"""MinAtar results: one run's folder (metrics.csv and curve.png, `write_results`) and the table and
curves over many runs that `experiments/minatar_report.py` writes (final test returns with Student's t
intervals over seeds, a uniform random policy under the same test protocol, published DQN figures)."""
from __future__ import annotations

import glob
import json
import os

import numpy as np
import pandas as pd
from scipy import stats

from hyperagent import cli
from hyperagent.minatar import env as minatar
from hyperagent.minatar import run


def write_results(out: str, agent: str, result: run.Result, spec: run.RunSpec) -> pd.DataFrame:
  """One run's metrics.csv and curve.png (test and training returns per seed, and their mean) in `out`."""
  frame = run.to_frame(result, spec.seeds)
  frame.to_csv(os.path.join(out, 'metrics.csv'), index=False)
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
  for ax, column, title in ((axes[0], 'eval_return', 'test episodes'), (axes[1], 'train_return', 'training episodes')):
    for seed, g in frame.groupby('seed'):
      ax.plot(g.steps, g[column], alpha=0.35, lw=1)
    mean = frame.groupby('steps')[column].mean()
    ax.plot(mean.index, mean.values, color='k', lw=2, label=f'mean of {len(spec.seeds)} seeds')
    ax.set(title=f'MinAtar {spec.game}, {agent}: {title}', xlabel='agent steps', ylabel='return')
    ax.legend()
  fig.tight_layout()
  fig.savefig(os.path.join(out, 'curve.png'), dpi=110)
  plt.close(fig)
  return frame


GAMES = tuple(minatar.GAMES)

# Published DQN returns on MinAtar: Young & Tian's DQN (30 seeds), read off the learning-curve figure
# in the MinAtar repository's README (kenjyoung/MinAtar, img/learning_curves.gif, "consistent with"
# arXiv 1903.03176 v2), at 1M and 5M frames (1 frame = 1 agent step). Read off a plot: about ±0.3
# (±1 on space_invaders). Their protocol differs from ours; PUBLISHED_NOTE says how.
PUBLISHED = {'asterix': (7.0, 16.9), 'breakout': (9.2, 10.0), 'freeway': (47.8, 50.2), 'seaquest': (1.0, 20.1),
             'space_invaders': (32.5, 43.6)}
PUBLISHED_NOTE = (
    "Published DQN: Young & Tian's DQN at 1M (5M) frames, read off the learning curves in the MinAtar "
    "README (mean of 30 seeds; about ±0.3, ±1 on space_invaders). Their curve is the moving average of "
    "the last 100 *training* episodes (ε = 0.1), with sticky actions (p = 0.1), the full 6-action set, "
    "and no step limit but freeway's 2,500; ours are greedy test episodes (HyperAgent: one sampled "
    "index each; Ensemble+: one member each; DQN: ε = 0) on gymnax's games (no sticky actions, each "
    "game's minimal action set, episodes cut at 1,000 steps but freeway's 2,500, and the few step "
    "differences from the reference "
    "games that tests/test_minatar_reference.py pins). The training-return column (training episodes "
    "that ended in the last evaluation period, ε-greedy for DQN) is the closer match to theirs. Our DQN is "
    "this project's learner with no index and their target settings (Double DQN, Adam, 1-step targets, "
    "target copied every 1,000 steps, ε 1 → 0.1 over the first 100k steps, warm-up included, where "
    "theirs anneals over the 100k after its warm-up), not theirs (plain DQN, RMSProp); "
    "HyperAgent and Ensemble+ (ten heads on one shared CNN, each on its own target) share these "
    "settings. A \"spec-targets\" row, where shown, copied its target every 4 "
    "updates with 5-step returns (the SPEC's short targets, the MinAtar preset's until session 23). "
    "asterix at 1M sits on a steep rise of their curve (4.3 at 0.9M, 9.3 at 1.1M); seaquest's rises after 1.3M.")

TUNED_NOTE = (
    "Tuning: the MinAtar preset tunes nothing of HyperAgent's own: what DQN has is MinAtar's DQN's, what "
    "is HyperAgent's own (prior_std, prior_scale and posterior_scale 0.1, σ, λ, M, K) is the SPEC's Atari "
    "column's. One choice was made on one game: MinAtar's targets (copy every 1,000 steps, 1-step returns) "
    "replaced the SPEC's short ones (every 4 updates, 5-step) after both learners did far better with them "
    "on asterix (BENCHMARKS.md, \"MinAtar\"); the other four games played no part in it. The scales 1 / 3 / 1 "
    "that sessions 9-12 tuned on breakout are no longer the preset's.")


def find_run(root: str, game: str, agent: str) -> tuple[str | None, list[str]]:
  """(<root>/<game>/<agent>, else the newest <agent>-<run id> folder that `make minatar` writes; the
  other <agent>-<run id> folders, oldest first, which the report leaves out and names)."""
  found = sorted(glob.glob(os.path.join(root, game, f'{agent}-*')), key=os.path.getmtime)
  exact = os.path.join(root, game, agent)
  if os.path.isdir(exact):
    return exact, found
  return (found[-1], found[:-1]) if found else (None, [])


def run_spec(folder: str) -> dict | None:
  """The run settings (`spec`) in a run folder's config.json, the latest command's; None without one."""
  path = os.path.join(folder, 'config.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)['spec']


def load_run(folder: str) -> tuple[pd.DataFrame, str] | None:
  """(metrics rows, status) of one run folder, or None where nothing has been written yet."""
  metrics, ckpt = os.path.join(folder, 'metrics.csv'), os.path.join(folder, 'checkpoint.npz')
  spec = run_spec(folder)
  if os.path.exists(ckpt) and spec is not None:
    frame = run.checkpointed_frame(ckpt, tuple(spec['seeds']))
    if len(frame):
      return frame, status(frame, spec['steps'])
  if os.path.exists(metrics):  # a finished run, or an archived one (experiments/archive_results.py)
    frame = pd.read_csv(metrics)
    if not len(frame):
      return None
    return frame, 'finished' if spec is None else status(frame, spec['steps'])
  return None


def status(frame: pd.DataFrame, steps: int) -> str:
  """'finished' once the rows reach the run's `steps`, else how far they have got."""
  reached = frame.steps.max()
  return 'finished' if reached >= steps else f'unfinished: {reached:,} of {steps:,} steps'


def parse_root(text: str) -> tuple[str, str]:
  """'FOLDER' or 'LABEL=FOLDER' -> (folder, label); a label names a variant ('paper scales')."""
  label, folder = cli.labelled_folder(text)
  return folder, label


def series_name(agent: str, label: str) -> str:
  return f'{agent} ({label})' if label else agent


def final(frame: pd.DataFrame, column: str = 'eval_return', last: int = 1) -> np.ndarray:
  """[seeds] `column` at each seed's last evaluation (the test return, or with train_return the mean
  return of the training episodes that ended in the last evaluation period), or its mean over the
  last `last` evaluations."""
  steps = np.sort(frame.steps.unique())[-last:]
  return frame[frame.steps.isin(steps)].groupby('seed')[column].mean().sort_index().to_numpy(float)


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
  """(mean, low, high): Student's t interval (a single value has no interval: low = high = mean)."""
  values = np.asarray(values, float)
  mean = float(values.mean())
  if len(values) < 2:
    return mean, mean, mean
  half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
  return mean, mean - half, mean + half


def fmt(mean: float, low: float, high: float) -> str:
  return f'{mean:.2f} ({low:.2f}–{high:.2f})'


def random_baseline(games, episodes: int, seed: int, max_steps: dict[str, int] | None = None) -> dict[str, np.ndarray]:
  """The random policy's test returns per game, its episodes cut where the runs' are (`max_steps`
  per game; default: the game's own limit)."""
  return {game: run.random_returns(game, episodes, seed, (max_steps or {}).get(game)) for game in games}


def table(runs: dict, random: dict[str, np.ndarray], agents, games, last: int = 5) -> str:
  """Markdown: one row per game; per agent its final return with CI, per-seed values and status, its
  mean over the last `last` evaluations, and the training return of the last period."""
  head = (['game'] + [f'{agent}: final test return (95% CI)' for agent in agents]
          + [f'{agent}: mean of the last {last} evaluations' for agent in agents]
          + [f'{agent}: training return, last period' for agent in agents] + ['random policy', 'published DQN 1M (5M)'])
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  # finished runs of other lengths than most (a 100k pass beside 1M runs) say their length
  lengths = [int(frame.steps.max()) for frame, status in runs.values() if status == 'finished']
  usual = max(set(lengths), key=lengths.count) if lengths else None
  for game in games:
    cells = [game]
    for agent in agents:
      if (game, agent) not in runs:
        cells.append('not run')
        continue
      frame, status = runs[game, agent]
      values = final(frame)
      cell = f'{fmt(*mean_ci(values))}; seeds {", ".join(f"{v:.1f}" for v in values)}'
      if status == 'finished' and int(frame.steps.max()) != usual:
        status = f'at {int(frame.steps.max()):,} steps'
      cells.append(cell if status == 'finished' else f'{cell} [{status}]')
    for agent in agents:
      cells.append(fmt(*mean_ci(final(runs[game, agent][0], last=last))) if (game, agent) in runs else '')
    for agent in agents:
      cells.append(fmt(*mean_ci(final(runs[game, agent][0], 'train_return'))) if (game, agent) in runs else '')
    cells.append(fmt(*mean_ci(random[game])) if game in random else '')
    cells.append('~{:g} (~{:g})'.format(*PUBLISHED[game]))
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def above_random(values: np.ndarray, random_values: np.ndarray) -> bool:
  """The agent's 95% t interval over seeds lies wholly above the random policy's 95% interval: the
  reading of "well above random" this report applies, one rule for every game."""
  return mean_ci(values)[1] > mean_ci(random_values)[2]


def verdicts(runs: dict, random: dict[str, np.ndarray], agents, games) -> str:
  """One line per agent: the finished games on which its final return is above random, and which are
  unfinished (those are not judged)."""
  lines = []
  for agent in agents:
    finished = [g for g in games if (g, agent) in runs and runs[g, agent][1] == 'finished' and g in random]
    above = [g for g in finished if above_random(final(runs[g, agent][0]), random[g])]
    unfinished = [g for g in games if (g, agent) in runs and runs[g, agent][1] != 'finished']
    below = [g for g in finished if g not in above]
    line = (f'- {agent}: above a random policy on {len(above)} of {len(finished)} finished games'
            f' ({", ".join(above) or "none"})')
    line += f'; not on {", ".join(below)}' if below else ''
    line += f'; unfinished: {", ".join(unfinished)}' if unfinished else ''
    lines.append(line)
  return ('Above random: the final return\'s 95% interval lies wholly above the random policy\'s.\n'
          + '\n'.join(lines))


def plot(runs: dict, random: dict[str, np.ndarray], agents, games, path: str) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, len(games), figsize=(4 * len(games), 3.4), squeeze=False)
  colours = {agent: f'C{i}' for i, agent in enumerate(agents)}
  # one step axis for every game, so an unfinished run shows how far it has got
  right = max([1.0] + [frame.steps.max() / 1e6 for frame, _ in runs.values() if len(frame)])
  for ax, game in zip(axes[0], games):
    for agent in agents:
      if (game, agent) not in runs:
        continue
      frame, status = runs[game, agent]
      for _, g in frame.groupby('seed'):
        ax.plot(g.steps / 1e6, g.eval_return, color=colours[agent], alpha=0.25, lw=0.8)
      mean = frame.groupby('steps').eval_return.mean()
      ax.plot(mean.index / 1e6, mean.values, color=colours[agent], lw=2, marker='o', ms=3,  # a run's first
              label=agent + ('' if status == 'finished' else ' (unfinished)'))  # point shows before its line
    if game in random:
      ax.axhline(random[game].mean(), color='grey', ls='--', lw=1, label='random policy')
    ax.set(title=game, xlabel='agent steps (millions)', ylabel='test return', xlim=(0, right))
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
