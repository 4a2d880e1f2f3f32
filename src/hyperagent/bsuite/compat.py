"""Make bsuite 0.3.6's analysis code run on pandas 3 (and keep its plots quiet).

bsuite's scoring and plotting (`bsuite.experiments.*.analysis`, `summary_analysis`) were written for
pandas 1.x and an old plotnine. On pandas 3.1 four things break; `patch()` fixes each one (plus one
plotnine break, 5 below) and nothing else:

1. `Series.append` was removed (pandas 2.0). `deep_sea.analysis.find_solution` joins the solved and
   unsolved sizes with `solved.append(unsolved)`, so every deep_sea / deep_sea_stochastic `score`,
   `bsuite_score` and the scaling plots fail. Fix: add `Series.append` as `pd.concat([self, other])`.
2. `Series.iteritems` was removed (pandas 2.0). `deep_sea.analysis._make_baseline` uses it when
   `plot_scaling`/`plot_scaling_log` get `sweep_vars`. Fix: alias it to `Series.items`.
3. `summary_analysis._radar` calls `df.groupby('tag').mean()` on a frame that still holds string
   columns (`agent_name`, `agent`); pandas 3 raises instead of dropping them. Fix: wrap `_radar`
   so it only sees the numeric `tag`/`score` columns (rows with a NaN score, i.e. tags without data,
   are dropped, so bsuite draws them at its floor instead of drawing NaN).
4. The same `_radar` calls `float(selected['score'])` on a one-row Series, which pandas 3 refuses.
   Fix: inside the wrapped `_radar` call only, give `pd.Series` a `__float__` for length-1 Series.
   It is removed again when the call returns, so our own code keeps pandas 3's strict behaviour.

One more break comes from plotnine (0.15), not pandas:

5. plotnine now calls a custom `geom_smooth(method=f)` as `f(data, xseq, params)` with `params` a
   dict, while bsuite's `bsuite.utils.smoothers.mean` takes `span`, `se`, `level`, `method_args` as
   keyword arguments, so the dict lands in `span` ("unsupported operand type(s) for /: 'float' and
   'dict'"). That breaks every learning curve built on `plotting.plot_regret_learning` (bandit,
   catch, mnist, cartpole, ... `plot_learning`). Fix: replace `smoothers.mean` with an adapter that
   accepts both calling conventions.

Fixes 1 and 2 add methods that pandas 3 does not have at all, so code that already runs on pandas 3
cannot notice them (short of probing with `hasattr`); fixes 3 and 5 replace attributes of bsuite's
own modules. All stay installed until `unpatch()`. Nothing is changed at import time: call `patch()`
(idempotent) before using bsuite's analysis, as `bsuite_report.make_report` does.

`patch()` also silences the `matplotlib.font_manager` logger: bsuite's plots ask for the 'serif'
family, which is not installed on our machines, and matplotlib logs one "findfont" line per text
element before falling back to DejaVu Sans.
"""
from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any, Iterator, Mapping

import pandas as pd

_FONT_LOGGER = 'matplotlib.font_manager'
_MARK = '_hyperagent_pandas3_compat'

# What `patch()` changed, so that `unpatch()` undoes exactly that.
_state: dict[str, Any] = {
    'patched': False, 'added': [], 'radar': None, 'smoother': None, 'font_level': None}


def _series_append(self: pd.Series, other: pd.Series, **unused_kwargs: Any) -> pd.Series:
  """pandas<2 `Series.append`: the two Series one after the other (index kept)."""
  return pd.concat([self, other])


def _series_float(self: pd.Series) -> float:
  """pandas<3 `float(series)`, for a Series of exactly one element."""
  if len(self) != 1:
    raise TypeError(f'cannot convert a Series of length {len(self)} to float')
  return float(self.iloc[0])


@contextlib.contextmanager
def _series_float_allowed() -> Iterator[None]:
  """Lets `float(series)` work on length-1 Series for the duration of the block (not thread-safe)."""
  if hasattr(pd.Series, '__float__'):  # pandas<3, or an outer block already added it
    yield
    return
  pd.Series.__float__ = _series_float
  try:
    yield
  finally:
    del pd.Series.__float__


def _wrap_radar(radar):
  @functools.wraps(radar)
  def radar_numeric_only(df: pd.DataFrame, *args: Any, **kwargs: Any):
    with _series_float_allowed():
      return radar(df[['tag', 'score']].dropna(), *args, **kwargs)

  setattr(radar_numeric_only, _MARK, True)
  return radar_numeric_only


def _wrap_smoother(smoother):
  @functools.wraps(smoother)
  def smoother_any_convention(data: pd.DataFrame, xseq: Any, params: Any = None, **kwargs: Any):
    if isinstance(params, Mapping):  # plotnine >= 0.13: f(data, xseq, params)
      kwargs = {**params, **kwargs}
    elif params is not None:  # the old positional `span`
      kwargs['span'] = params
    return smoother(data, xseq, **kwargs)

  setattr(smoother_any_convention, _MARK, True)
  return smoother_any_convention


def is_patched() -> bool:
  """Whether `patch()` is in effect."""
  return _state['patched']


def patch() -> None:
  """Applies the fixes described in the module docstring. Safe to call any number of times."""
  if _state['patched']:
    return
  # Heavy import (~2 s: it imports every experiment's analysis module); only done when asked.
  from bsuite.experiments import summary_analysis
  from bsuite.utils import smoothers

  for name, value in (('append', _series_append), ('iteritems', pd.Series.items)):
    if not hasattr(pd.Series, name):
      setattr(pd.Series, name, value)
      _state['added'].append(name)

  if not getattr(summary_analysis._radar, _MARK, False):  # pylint: disable=protected-access
    _state['radar'] = summary_analysis._radar  # pylint: disable=protected-access
    summary_analysis._radar = _wrap_radar(_state['radar'])  # pylint: disable=protected-access

  if not getattr(smoothers.mean, _MARK, False):
    _state['smoother'] = smoothers.mean
    smoothers.mean = _wrap_smoother(_state['smoother'])

  font_logger = logging.getLogger(_FONT_LOGGER)
  _state['font_level'] = font_logger.level
  font_logger.setLevel(max(font_logger.level, logging.ERROR))
  _state['patched'] = True


def unpatch() -> None:
  """Undoes `patch()` (mainly for tests). A no-op when not patched."""
  if not _state['patched']:
    return
  from bsuite.experiments import summary_analysis
  from bsuite.utils import smoothers

  for name in _state['added']:
    delattr(pd.Series, name)
  _state['added'] = []
  if _state['radar'] is not None:
    summary_analysis._radar = _state['radar']  # pylint: disable=protected-access
    _state['radar'] = None
  if _state['smoother'] is not None:
    smoothers.mean = _state['smoother']
    _state['smoother'] = None
  logging.getLogger(_FONT_LOGGER).setLevel(_state['font_level'])
  _state['font_level'] = None
  _state['patched'] = False
