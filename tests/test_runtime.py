"""runtime.unroll_cpu_threefry changes how the PRNG is compiled, never the numbers it draws."""
import jax
import numpy as np
import pytest

from hyperagent import runtime


def draws(key):
  k1, k2 = jax.random.split(key)
  return jax.random.normal(k1, (3, 5)), jax.random.randint(k2, (7,), 0, 100), jax.random.split(k2, 3)


@pytest.mark.skipif(jax.default_backend() != 'cpu', reason='the switch only concerns the CPU lowering')
def test_unrolled_threefry_draws_the_same_bits_without_a_while_loop():
  from jax._src.interpreters import mlir
  from jax._src.random import threefry2x32
  stock_rule = threefry2x32._threefry2x32_cpu_lowering_rule
  key = jax.random.PRNGKey(2024)
  mlir.register_lowering(threefry2x32.threefry2x32_p, stock_rule, platform='cpu')  # whatever ran before
  jax.clear_caches()
  stock_hlo = jax.jit(draws).lower(key).as_text()
  stock = jax.jit(draws)(key)
  try:
    assert runtime.unroll_cpu_threefry()
    jax.clear_caches()
    unrolled_hlo = jax.jit(draws).lower(key).as_text()
    unrolled = jax.jit(draws)(key)
  finally:  # back to JAX's own CPU rule, so the other tests see stock JAX
    mlir.register_lowering(threefry2x32.threefry2x32_p, stock_rule, platform='cpu')
    jax.clear_caches()
  assert 'while' in stock_hlo and 'while' not in unrolled_hlo
  for a, b in zip(stock, unrolled):  # legacy uint32 keys: split keys compare as plain arrays
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.skipif(jax.default_backend() != 'cpu', reason='the switch only concerns the CPU lowering')
def test_stock_prng_environment_variable_keeps_jax_lowering(monkeypatch):
  from jax._src.interpreters import mlir
  from jax._src.random import threefry2x32
  mlir.register_lowering(threefry2x32.threefry2x32_p, threefry2x32._threefry2x32_cpu_lowering_rule, platform='cpu')
  jax.clear_caches()
  monkeypatch.setenv('HYPERAGENT_STOCK_PRNG', '1')
  assert runtime.unroll_cpu_threefry() is False
  assert 'while' in jax.jit(draws).lower(jax.random.PRNGKey(0)).as_text()
