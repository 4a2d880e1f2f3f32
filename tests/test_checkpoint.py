"""checkpoint.written_rows / restore_rows: a replay saved without its never-written rows comes back whole."""
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pytest

from hyperagent import checkpoint


class Buffer(NamedTuple):
  obs: jnp.ndarray
  action: jnp.ndarray
  rows: jnp.ndarray


@pytest.mark.parametrize('axis', [0, 1])
def test_written_rows_round_trip(axis):
  shape = (6, 3) if axis == 0 else (2, 6)  # 6 rows along `axis`
  fresh = Buffer(jnp.zeros(shape + (4,)), jnp.zeros(shape, jnp.int32), jnp.array(0))
  written = Buffer(fresh.obs.at[(slice(None),) * axis + (slice(0, 4),)].set(1.5),
                   fresh.action.at[(slice(None),) * axis + (slice(0, 4),)].set(7), jnp.array(4))
  cut = checkpoint.written_rows(written, ('obs', 'action'), 4, axis=axis)
  assert cut.obs.shape[axis] == 4 and cut.action.shape[axis] == 4 and int(cut.rows) == 4
  assert np.all(np.asarray(cut.obs) == 1.5) and np.all(np.asarray(cut.action) == 7)
  back = checkpoint.restore_rows(cut, fresh, ('obs', 'action'), 4, axis=axis)
  for name in ('obs', 'action'):
    np.testing.assert_array_equal(getattr(back, name), getattr(written, name))
    assert getattr(back, name).dtype == getattr(written, name).dtype
