"""Process-wide JAX settings for the command-line entry points and the worker processes they start
(`bsuite.sweep.init_worker`); the training code itself never imports it."""
from __future__ import annotations

import os

import jax


def enable_compilation_cache(path: str | None = None) -> None:
  """Keeps compiled loops on disk, so re-running a command skips most of its compile time."""
  path = path or os.environ.get('HYPERAGENT_JAX_CACHE', os.path.expanduser('~/.cache/hyperagent/jax'))
  jax.config.update('jax_compilation_cache_dir', path)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)  # the DeepSea init takes ~0.7 s


def unroll_cpu_threefry() -> bool:
  """Lowers JAX's threefry PRNG on the CPU as straight-line code, as on every other backend.

  On the CPU JAX emits its five threefry rounds as a rolled while loop (smaller programs); each
  iteration is then a separate kernel dispatch, and the DeepSea step draws random numbers about 15
  times, so those loops took ~19% of a step (BENCHMARKS.md). Only the lowering changes: the bits
  are the same (tests/test_runtime.py). It uses a private JAX hook, so it returns False and
  changes nothing if that hook moves in a future JAX. HYPERAGENT_STOCK_PRNG=1 in the environment
  keeps JAX's own lowering, for every command (the benchmarks' before/after figures).
  """
  if os.environ.get('HYPERAGENT_STOCK_PRNG') == '1':
    return False
  try:
    from jax._src.interpreters import mlir
    from jax._src.random import threefry2x32
    rule = threefry2x32._threefry2x32_lowering_rule  # the unrolled rule the GPU/TPU fallback uses
    mlir.register_lowering(threefry2x32.threefry2x32_p, rule, platform='cpu')
  except (ImportError, AttributeError):
    return False
  return True


def configure() -> None:
  """Every setting above: what each command-line entry point calls first."""
  enable_compilation_cache()
  unroll_cpu_threefry()
