"""The DeepSea wing: the pure-JAX environment (env), its runs in the jitted loop (run) and their results
folder (results)."""
