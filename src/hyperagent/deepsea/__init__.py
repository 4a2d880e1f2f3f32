"""The DeepSea wing: the pure-JAX environment (env), the jitted training loop (loop) and its results
folder (results)."""
