"""Keeps the tests' JAX compilation cache to themselves.

Tests that call an entry point's `main` (and every script a test starts as a subprocess) turn on
JAX's on-disk cache, by default ~/.cache/hyperagent/jax, which the user's own runs and the other
pytest worker also write. JAX writes cache entries without a lock, so a reader can meet one half
written: it then warns on stderr and compiles again, and a test that checks stderr would fail. Each
pytest worker gets a cache folder of its own; subprocesses inherit it through the environment.

On a GPU, several tests compare two runs bit for bit (a resume against a straight run); XLA's GPU
convolution and scatter kernels are not deterministic unless told, so the suite tells them (set
before JAX starts a backend; the flag is parsed, and ignored, on a CPU).

Most of the suite's time is XLA compiling small programs that then run for a moment, so the suite
compiles without XLA's optimisation passes (JAX_DISABLE_MOST_OPTIMIZATIONS, inherited by the scripts
tests start): session 42 measured a test that compiles two DeepSea runs at 144 s of CPU optimised and
59 s not. Tests that run compiled code for long (MinAtar's reference comparison, the Atari loop, a
learning run) lose more in running than they save in compiling; they carry the `optimized` marker and
compile as users' runs do. `JAX_DISABLE_MOST_OPTIMIZATIONS=0 make test` optimises everything.
"""
import os

import pytest

if '--xla_gpu_deterministic_ops' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' --xla_gpu_deterministic_ops=true').strip()
os.environ.setdefault('JAX_DISABLE_MOST_OPTIMIZATIONS', '1')  # before any test module imports JAX


@pytest.fixture(autouse=True, scope='session')
def _own_compilation_cache(tmp_path_factory):
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv('HYPERAGENT_JAX_CACHE', str(tmp_path_factory.mktemp('jax-cache')))
    yield


@pytest.fixture(autouse=True)
def _optimised_where_marked(request):
  everywhere = os.environ['JAX_DISABLE_MOST_OPTIMIZATIONS'].lower() in ('0', 'false')
  if everywhere or request.node.get_closest_marker('optimized') is None:
    yield
    return
  import jax
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv('JAX_DISABLE_MOST_OPTIMIZATIONS', '0')  # the scripts the test starts
    jax.config.update('jax_disable_most_optimizations', False)
    try:
      yield
    finally:
      jax.config.update('jax_disable_most_optimizations', True)
