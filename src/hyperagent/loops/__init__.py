"""Thin loops around the shared jitted `act`/`learn`.

* `deepsea`: the whole DeepSea training run as jitted `lax.scan` chunks, seeds vmapped.
* `bsuite_adapter`: bsuite's two-method agent (`select_action`, `update`) for any bsuite id, and `run`,
  which plays one id through bsuite's CSV logger (our agents, or bsuite's own boot_dqn).
* `bsuite_sweep`: resolving ids/experiments/tags, resumability from the CSVs, and the worker-process
  setup that the parallel runner (experiments/bsuite_run.py) uses.
"""
