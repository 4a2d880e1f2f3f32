"""bsuite-format CSVs from the pure-JAX loops (DeepSea runs and every id of the bsuite engine), so
bsuite's own loader and scorer read them. The columns below are DeepSea's; other environments
append their own bsuite_info() columns after the first five.

bsuite's CSV logger (`bsuite.logging.csv_logging.Logger` behind `bsuite.utils.wrappers.Logging`)
writes one file per bsuite id, `<results_dir>/bsuite_id_-_deep_sea-<i>.csv`, with one row at the end
of each episode whose number is in `bsuite_log_episodes`, and these columns:

  steps               transitions so far (all episodes)
  episode             episodes finished so far (the row is written at the end of this episode)
  total_return        sum of rewards so far
  episode_len         length of this episode (N for DeepSea of size N)
  episode_return      return of this episode
  total_bad_episodes  episodes so far in which the agent moved "left" while on the diagonal
                      (row == column); counted once per episode
  denoised_return     episodes so far that collected the treasure reward (+1), noise excluded

`bsuite.logging.csv_load.load_bsuite` recovers the bsuite id from the file name and joins `size` and
`mapping_seed` from `bsuite.sweep.SETTINGS`; `deep_sea.analysis.score` only reads `episode`,
`total_bad_episodes` and `size`. Finer logging than bsuite's is allowed (the solve episode is then
found more exactly), but log at `bsuite_log_episodes(...)` to compare like with like.
"""
from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

# Written in this order, as bsuite's logger does (its 5 standard keys, then DeepSea's bsuite_info()).
COLUMNS = ('steps', 'episode', 'total_return', 'episode_len', 'episode_return',
           'total_bad_episodes', 'denoised_return')
_INT_COLUMNS = ('steps', 'episode', 'episode_len', 'total_bad_episodes')
# Every DeepSea episode lasts exactly N steps, so these two can be filled in when not logged.
_DERIVABLE = ('steps', 'episode_len')

_PREFIX = 'bsuite_id_-_'  # bsuite.logging.csv_logging.BSUITE_PREFIX
_EXPERIMENTS = ('deep_sea', 'deep_sea_stochastic')  # same sizes, same columns
# bsuite.utils.wrappers._logarithmic_logging: log when episode == 10**floor(log10(episode)) * ratio.
_LOG_RATIOS = (1., 1.2, 1.4, 1.7, 2., 2.5, 3., 4., 5., 6., 7., 8., 9., 10.)


def _deep_sea_sizes() -> tuple[int, ...]:
  from bsuite.experiments.deep_sea import sweep  # light import: a tuple of dicts
  return tuple(int(setting['size']) for setting in sweep.SETTINGS)


def deep_sea_id(size: int) -> str:
  """The bsuite id of the DeepSea sweep entry of this size: 10 -> 'deep_sea/0', ..., 50 -> 'deep_sea/20'."""
  sizes = _deep_sea_sizes()
  if isinstance(size, (bool, np.bool_)) or not isinstance(size, (int, np.integer)) or size not in sizes:
    raise ValueError(f'no bsuite deep_sea id has size {size!r}; valid sizes are {list(sizes)}')
  return f'deep_sea/{sizes.index(int(size))}'


def _parse_id(size_index_or_bsuite_id: int | str) -> tuple[str, int]:
  """('deep_sea/3' | 'deep_sea_stochastic/3' | 3) -> (bsuite_id, size)."""
  sizes = _deep_sea_sizes()
  value = size_index_or_bsuite_id
  if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
    experiment, index = 'deep_sea', int(value)
  elif isinstance(value, str) and value.count('/') == 1:
    experiment, _, index_text = value.partition('/')
    index = int(index_text) if index_text.isdigit() else -1
  else:
    experiment, index = '', -1
  if experiment not in _EXPERIMENTS or not 0 <= index < len(sizes):
    raise ValueError(
        f'expected a deep_sea sweep index 0..{len(sizes) - 1} or a bsuite id like "deep_sea/3" or '
        f'"deep_sea_stochastic/3", got {value!r}')
  return f'{experiment}/{index}', sizes[index]


def bsuite_csv_path(results_dir: str | os.PathLike, bsuite_id: str) -> str:
  """Where bsuite's CSV logger puts the file for `bsuite_id` ('/' becomes '-')."""
  return os.path.join(os.fspath(results_dir), _PREFIX + bsuite_id.replace('/', '-') + '.csv')


def write_csv(results_dir: str | os.PathLike, bsuite_id: str, frame: pd.DataFrame) -> str:
  """The whole file, written whole: via a temporary file, so a reader (the report, a resuming sweep)
  never sees half of it. Returns its path."""
  return write_csvs([(results_dir, bsuite_id, frame)])[0]


def write_csvs(files: Sequence[tuple[str | os.PathLike, str, pd.DataFrame]]) -> list[str]:
  """Several ids' files, (results_dir, bsuite_id, frame) each: every one to a temporary file first,
  then all renamed, so a kill while the slow part runs leaves none of them finished, not some
  (a resumed sweep would play the rest in another grouping, from scratch). Returns their paths."""
  paths = []
  for results_dir, bsuite_id, frame in files:
    os.makedirs(os.fspath(results_dir), exist_ok=True)
    paths.append(bsuite_csv_path(results_dir, bsuite_id))
    frame.to_csv(paths[-1] + '.tmp', index=False)
  for path in paths:
    os.replace(path + '.tmp', path)
  return paths


def _is_log_episode(episode: int) -> bool:
  """bsuite's rule, with the same floating-point arithmetic (so the same episodes pass)."""
  exponent = np.floor(np.log10(np.maximum(1, episode)))
  return any(episode == 10**exponent * ratio for ratio in _LOG_RATIOS)


def bsuite_log_episodes(num_episodes: int) -> np.ndarray:
  """Episode numbers (1-based, ascending, <= num_episodes) after which bsuite's CSV logger writes a row.

  1..10, then 12, 14, 17, 20, 25, 30, 40, ..., 90, then the same ratios times 100, 1000, ...:
  49 rows for bsuite's 10,000 DeepSea episodes. Returned as an int64 array, e.g. for
  `jnp.isin(episode, log_episodes)` inside a jitted loop.
  """
  if num_episodes < 1:
    return np.zeros((0,), np.int64)
  candidates = set()
  for exponent in range(int(math.log10(num_episodes)) + 2):
    for ratio in _LOG_RATIOS:
      value = round(10**exponent * ratio)
      if 1 <= value <= num_episodes and _is_log_episode(value):
        candidates.add(value)
  return np.array(sorted(candidates), dtype=np.int64)


def _as_frame(rows: pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
  if isinstance(rows, pd.DataFrame):
    return rows.reset_index(drop=True)
  if isinstance(rows, Mapping):
    columns = {name: np.asarray(value).reshape(-1) for name, value in rows.items()}
    lengths = {name: len(value) for name, value in columns.items()}
    if len(set(lengths.values())) > 1:
      raise ValueError(f'all columns of `rows` must have the same length, got {lengths}')
    return pd.DataFrame(columns)
  raise TypeError(f'rows must be a pandas DataFrame or a mapping of column -> array, got {type(rows)}')


def deep_sea_rows(rows: pd.DataFrame | Mapping[str, Any], size: int) -> pd.DataFrame:
  """Checks logged DeepSea rows and returns them as bsuite's columns, in bsuite's order and dtypes.

  `rows` needs `episode`, `total_bad_episodes`, `total_return`, `episode_return` and
  `denoised_return`; `steps` and `episode_len` are filled in as `episode * size` and `size` when
  absent. Other columns are ignored.
  """
  df = _as_frame(rows)
  missing = [c for c in COLUMNS if c not in df.columns and c not in _DERIVABLE]
  if missing:
    raise ValueError(f'rows lack column(s) {missing}; bsuite deep_sea CSVs have {list(COLUMNS)} '
                     f'({list(_DERIVABLE)} can be derived)')
  if len(df) == 0:
    raise ValueError('rows is empty: bsuite needs at least one logged episode')
  out = pd.DataFrame(index=df.index)
  for column in COLUMNS:
    if column in df.columns:
      values = df[column].to_numpy()
    elif column == 'steps':
      values = df['episode'].to_numpy() * size
    else:
      values = np.full(len(df), size)
    if not np.all(np.isfinite(values.astype(np.float64))):
      raise ValueError(f'column {column!r} has non-finite values')
    if column in _INT_COLUMNS:
      if np.any(values != np.round(values)):
        raise ValueError(f'column {column!r} must hold whole numbers')
      values = np.round(values).astype(np.int64)
    else:
      values = values.astype(np.float64)
    out[column] = values

  episode, bad = out['episode'].to_numpy(), out['total_bad_episodes'].to_numpy()
  if episode[0] < 1 or np.any(np.diff(episode) <= 0):
    raise ValueError('episode must be >= 1 and strictly increasing (one row per logged episode)')
  if np.any(bad < 0) or np.any(bad > episode) or np.any(np.diff(bad) < 0):
    raise ValueError('total_bad_episodes must be a non-decreasing count between 0 and episode')
  return out


def write_deep_sea_csv(results_dir: str | os.PathLike,
                       size_index_or_bsuite_id: int | str,
                       rows: pd.DataFrame | Mapping[str, Any],
                       *,
                       overwrite: bool = False) -> str:
  """Writes `rows` (one per logged episode) as bsuite's CSV logger would, and returns the file path.

  Args:
    results_dir: directory for the run's bsuite CSVs (created if needed). Use one per agent/run.
    size_index_or_bsuite_id: the sweep index i (0..20, size 10 + 2i) or a bsuite id such as
      'deep_sea/3' or 'deep_sea_stochastic/3'. Use `deep_sea_id(size)` to go from a size.
    rows: a DataFrame or a mapping column -> 1-D array; see `deep_sea_rows` for the columns.
    overwrite: replace an existing file (bsuite's logger refuses by default too).
  """
  bsuite_id, size = _parse_id(size_index_or_bsuite_id)
  frame = deep_sea_rows(rows, size)
  path = bsuite_csv_path(results_dir, bsuite_id)
  if os.path.exists(path) and not overwrite:
    raise ValueError(f'{path} already exists; pass overwrite=True or use a fresh results_dir')
  return write_csv(results_dir, bsuite_id, frame)


def bsuite_csv_files(results_dir: str | os.PathLike) -> Sequence[str]:
  """The bsuite CSVs in `results_dir` (the files `csv_load` reads), sorted."""
  directory = os.fspath(results_dir)
  if not os.path.isdir(directory):
    return []
  return sorted(os.path.join(directory, name) for name in os.listdir(directory)
                if name.startswith(_PREFIX) and name.endswith('.csv'))
