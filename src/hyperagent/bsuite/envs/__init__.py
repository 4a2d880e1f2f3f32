"""bsuite's environments (all but MNIST) as pure JAX functions: `hyperagent.environment.JaxEnv`s.

Each module has `make(**settings) -> (JaxEnv, params)` taking the keyword arguments of bsuite's own
environment class, and is tested step for step against it in tests/test_bsuite_envs.py.
"""
