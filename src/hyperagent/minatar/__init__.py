"""The MinAtar wing: MinAtar's five games (gymnax's pure-JAX versions) as JaxEnvs for the jitted loop."""
