"""Process-wide JAX settings for the command-line entry points (never imported by the library)."""
from __future__ import annotations

import os

import jax


def enable_compilation_cache(path: str | None = None) -> None:
  """Keeps compiled loops on disk, so re-running a command skips most of its compile time."""
  path = path or os.environ.get('HYPERAGENT_JAX_CACHE', os.path.expanduser('~/.cache/hyperagent/jax'))
  jax.config.update('jax_compilation_cache_dir', path)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)
