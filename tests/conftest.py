"""Keeps the tests' JAX compilation cache to themselves.

Tests that call an entry point's `main` (and every script a test starts as a subprocess) turn on
JAX's on-disk cache, by default ~/.cache/hyperagent/jax, which the user's own runs and the other
pytest worker also write. JAX writes cache entries without a lock, so a reader can meet one half
written: it then warns on stderr and compiles again, and a test that checks stderr would fail. Each
pytest worker gets a cache folder of its own; subprocesses inherit it through the environment.
"""
import pytest


@pytest.fixture(autouse=True, scope='session')
def _own_compilation_cache(tmp_path_factory):
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv('HYPERAGENT_JAX_CACHE', str(tmp_path_factory.mktemp('jax-cache')))
    yield
