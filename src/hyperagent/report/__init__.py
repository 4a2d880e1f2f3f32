"""Scoring and reporting on bsuite's own terms.

* `bsuite_compat`: an explicit `patch()` that lets bsuite 0.3.6's analysis code run on pandas 3.
* `bsuite_csv`: bsuite-format CSVs written from a pure-JAX DeepSea run, and the episodes bsuite logs at.
* `bsuite_report`: load result directories, score them with bsuite, and write plots + one `index.html`.

Nothing here is imported by the agent; import the submodule you need.
"""
