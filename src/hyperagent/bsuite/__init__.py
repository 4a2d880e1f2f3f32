"""The bsuite wing: the pure-JAX ports of its environments (envs), the jitted engine that runs them
(engine), the two-method agent adapter for bsuite's own environments (adapter), sweep bookkeeping
(sweep), bsuite-format CSVs (csv_format), the pandas-3 shim for bsuite's analysis (compat) and the
report (report).

Nothing here is imported by the core; import the submodule you need."""
