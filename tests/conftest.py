"""Keeps the tests' JAX compilation cache to themselves.

Tests that call an entry point's `main` (and every script a test starts as a subprocess) turn on
JAX's on-disk cache, by default ~/.cache/hyperagent/jax, which the user's own runs and the other
pytest worker also write. JAX writes cache entries without a lock, so a reader can meet one half
written: it then warns on stderr and compiles again, and a test that checks stderr would fail. Each
pytest worker gets a cache folder of its own; subprocesses inherit it through the environment.

On a GPU, several tests compare two runs bit for bit (a resume against a straight run); XLA's GPU
convolution and scatter kernels are not deterministic unless told, so the suite tells them (set
before JAX starts a backend; the flag is parsed, and ignored, on a CPU).
"""
import os

import pytest

if '--xla_gpu_deterministic_ops' not in os.environ.get('XLA_FLAGS', ''):
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' --xla_gpu_deterministic_ops=true').strip()


@pytest.fixture(autouse=True, scope='session')
def _own_compilation_cache(tmp_path_factory):
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv('HYPERAGENT_JAX_CACHE', str(tmp_path_factory.mktemp('jax-cache')))
    yield
