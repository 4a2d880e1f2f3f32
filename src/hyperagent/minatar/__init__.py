"""The MinAtar wing: MinAtar's five games (gymnax's pure-JAX versions) as JaxEnvs (env) and their runs in
the jitted loop (run)."""
